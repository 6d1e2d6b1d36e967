//! IMAP4rev2 (RFC 9051) beside IMAP4rev1: a session is IMAP4rev1 until the
//! client sends `ENABLE IMAP4rev2` (6.3.1), and then answers as RFC 9051
//! says where the two differ. Transcripts against the real session.

use super::text;
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_imap4rev2_answers_as_rfc9051() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            "a CAPABILITY\r\nb ENABLE IMAP4rev2\r\nc SELECT INBOX\r\nd SEARCH ALL\r\n\
             e UID SEARCH SUBJECT nothing-has-this\r\nf SEARCH RETURN (COUNT) ALL\r\n\
             g CREATE \"Brouillé\"\r\nh APPEND INBOX {12}\r\nSubject: x\r\n\r\n\
             i NOOP\r\nj SELECT Drafts\r\nk STATUS INBOX (MESSAGES DELETED SIZE)\r\n\
             l LIST \"\" \"Brou*\"\r\nm LOGOUT\r\n"
                .as_bytes(),
        )
        .await,
    );
    assert!(out.contains(" IMAP4rev1 IMAP4rev2 "), "{out}");
    assert!(out.contains("* ENABLED IMAP4rev2\r\nb OK"), "{out}");
    // SELECT: FLAGS, EXISTS, LIST; PERMANENTFLAGS, UIDNEXT, UIDVALIDITY;
    // neither RECENT nor UNSEEN (6.3.2).
    let select = &out[out.find("b OK").unwrap()..out.find("c OK").unwrap()];
    assert!(select.contains("* 2 EXISTS\r\n"), "{out}");
    assert!(
        select.contains("* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"),
        "{out}"
    );
    assert!(
        select.contains("[PERMANENTFLAGS (") && select.contains("[UIDNEXT 3]"),
        "{out}"
    );
    assert!(
        !select.contains("RECENT") && !select.contains("UNSEEN"),
        "{out}"
    );
    // SEARCH is answered by ESEARCH (6.4.4, 7.3.4).
    assert!(
        out.contains("* ESEARCH (TAG \"d\") ALL 1:2\r\nd OK"),
        "{out}"
    );
    assert!(out.contains("* ESEARCH (TAG \"e\") UID\r\ne OK"), "{out}");
    assert!(
        out.contains("* ESEARCH (TAG \"f\") COUNT 2\r\nf OK"),
        "{out}"
    );
    assert!(!out.contains("* SEARCH"), "{out}");
    // Names are UTF-8 (5.1).
    assert!(out.contains("g OK"), "{out}");
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Brouillé\"\r\nl OK"),
        "{out}"
    );
    // New mail: EXISTS, no RECENT.
    let noop = &out[out.find("g OK").unwrap()..out.find("i OK").unwrap()];
    assert!(
        noop.contains("* 3 EXISTS\r\n") && !noop.contains("RECENT"),
        "{out}"
    );
    // Selecting another mailbox: CLOSED first, then its LIST with its use.
    let drafts = &out[out.find("i OK").unwrap()..out.find("j OK").unwrap()];
    assert!(
        drafts.starts_with("i OK Completed\r\n* OK [CLOSED]"),
        "{out}"
    );
    assert!(
        drafts.contains("* LIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"),
        "{out}"
    );
    assert!(
        out.contains("* STATUS \"INBOX\" (MESSAGES 3 DELETED 0 SIZE "),
        "{out}"
    );

    // Without ENABLE the session stays IMAP4rev1.
    let out = text(
        &h.session(true, b"a SELECT INBOX\r\nb SEARCH ALL\r\nc LOGOUT\r\n")
            .await,
    );
    assert!(
        out.contains("* 3 RECENT\r\n") || out.contains(" RECENT\r\n"),
        "{out}"
    );
    assert!(out.contains("* SEARCH 1 2 3\r\nb OK"), "{out}");
    assert!(!out.contains("* LIST"), "{out}");
}
