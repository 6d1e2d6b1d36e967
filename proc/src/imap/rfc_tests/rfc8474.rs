//! OBJECTID (RFC 8474) transcripts against the real session, in process.

use super::{id_after, text};
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_and_email_ids() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CREATE Box\r\nb STATUS Box (MAILBOXID)\r\nc RENAME Box Moved\r\n\
              d STATUS Moved (MAILBOXID MESSAGES)\r\ne SELECT INBOX\r\n\
              f FETCH 1:2 (EMAILID THREADID)\r\ng COPY 1 Moved\r\nh SEARCH EMAILID nope\r\ni LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" OBJECTID"), "{out}");
    let created = id_after(&out, "a OK [MAILBOXID (");
    assert!(created.starts_with('F') && created.len() == 25, "{out}");
    assert_eq!(
        id_after(&out, "* STATUS \"Box\" (MAILBOXID ("),
        created,
        "{out}"
    );
    // RENAME keeps it.
    assert_eq!(
        id_after(&out, "* STATUS \"Moved\" (MAILBOXID ("),
        created,
        "{out}"
    );
    let inbox = id_after(&out, "* OK [MAILBOXID (");
    assert_ne!(inbox, created, "{out}");
    let e1 = id_after(&out, "* 1 FETCH (EMAILID (");
    let e2 = id_after(&out, "* 2 FETCH (EMAILID (");
    assert!(e1.starts_with('M') && e1 != e2, "{out}");
    assert!(
        out.contains(&format!("* 1 FETCH (EMAILID ({e1}) THREADID NIL)")),
        "{out}"
    );
    assert!(out.contains("* SEARCH\r\nh OK"), "{out}");

    // The copy has the same EMAILID; SEARCH finds it by that; a folder made
    // again under an old name gets a new MAILBOXID.
    let cmds = format!(
        "a SELECT Moved\r\nb FETCH 1 (EMAILID)\r\nc UID SEARCH EMAILID {e1}\r\n\
         d DELETE Box\r\ne CREATE Gone\r\nf DELETE Gone\r\ng CREATE Gone\r\nh LOGOUT\r\n"
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert_eq!(id_after(&out, "* OK [MAILBOXID ("), created, "{out}");
    assert!(
        out.contains(&format!("* 1 FETCH (EMAILID ({e1}))")),
        "{out}"
    );
    assert!(out.contains("* SEARCH 1\r\nc OK"), "{out}");
    let first = id_after(&out, "e OK [MAILBOXID (");
    let again = id_after(&out, "g OK [MAILBOXID (");
    assert_ne!(first, again, "{out}");
}

/// CREATE-SPECIAL-USE (RFC 6154): the use given at CREATE shows in LIST,
/// follows RENAME and goes with DELETE; uses without a real folder behind
/// them are refused with USEATTR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_special_use() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CREATE Bin (USE (\\Trash))\r\nb CREATE Every (USE (\\All))\r\n\
              c CREATE Two (USE (\\Sent \\Archive))\r\nd LIST (SPECIAL-USE) \"\" *\r\n\
              e RENAME Bin Old.Bin\r\nf LIST \"\" Old*\r\ng DELETE Old.Bin\r\n\
              h CREATE Old.Bin\r\ni LIST \"\" Old.Bin\r\nj LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" CREATE-SPECIAL-USE"), "{out}");
    assert!(out.contains("a OK [MAILBOXID ("), "{out}");
    assert!(out.contains("b NO [USEATTR]"), "{out}");
    assert!(out.contains("c NO [USEATTR]"), "{out}");
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Trash) \".\" \"Bin\""),
        "{out}"
    );
    assert!(
        !out.contains("\"Every\"") && !out.contains("\"Two\""),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Trash) \".\" \"Old.Bin\""),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Old.Bin\"\r\ni OK"),
        "{out}"
    );
}

/// METADATA (RFC 5464): server and mailbox entries, NIL for missing ones,
/// DEPTH and MAXSIZE, removal by NIL, limits, and a mailbox that is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_entries() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let big = "x".repeat(40 * 1024);
    let cmds = format!(
        "a SETMETADATA \"\" (/shared/comment \"server note\")\r\n\
         b SETMETADATA INBOX (/private/comment \"mine\" /private/comment/sub {{5+}}\r\nline\n)\r\n\
         c GETMETADATA \"\" /shared/comment\r\nd GETMETADATA INBOX (/private/comment /private/none)\r\n\
         e GETMETADATA (DEPTH 1 MAXSIZE 4) INBOX /private/comment\r\n\
         f SETMETADATA INBOX (/private/comment NIL)\r\ng GETMETADATA (DEPTH infinity) INBOX /private\r\n\
         h SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})\r\ni SETMETADATA Nope (/private/x \"y\")\r\n\
         j GETMETADATA INBOX /private/*\r\nk LOGOUT\r\n",
        big.len()
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(out.contains(" METADATA"), "{out}");
    assert!(out.contains("a OK") && out.contains("b OK"), "{out}");
    assert!(
        out.contains("* METADATA \"\" (/shared/comment \"server note\")\r\nc OK"),
        "{out}"
    );
    assert!(
        out.contains("* METADATA \"INBOX\" (/private/comment \"mine\" /private/none NIL)\r\nd OK"),
        "{out}"
    );
    // MAXSIZE 4 leaves out both values (4 and 5 bytes? "mine" fits).
    assert!(
        out.contains(
            "* METADATA \"INBOX\" (/private/comment \"mine\")\r\ne OK [METADATA LONGENTRIES 5]"
        ),
        "{out}"
    );
    assert!(
        out.contains("* METADATA \"INBOX\" (/private/comment/sub {5}\r\nline\n)\r\ng OK"),
        "{out}"
    );
    assert!(out.contains("h NO [METADATA MAXSIZE 32768]"), "{out}");
    assert!(out.contains("i NO [NONEXISTENT]"), "{out}");
    assert!(out.contains("j BAD"), "{out}");
}

/// SAVEDATE (RFC 8514): when a message was saved to the folder, kept across
/// a restart, NIL for mail from before it was recorded; SAVED* search keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_dates() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    let today = chrono::Utc::now().format("%d-%b-%Y").to_string();
    let cmds = format!(
        "a SELECT INBOX\r\nb FETCH 1 (SAVEDATE)\r\nc APPEND INBOX {{8+}}\r\nSubject:\r\n\
         d UID SEARCH SAVEDON {today}\r\ne SEARCH SAVEDBEFORE 1-Jan-2000\r\n\
         f SEARCH SAVEDATESUPPORTED\r\ng LOGOUT\r\n"
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(out.contains(" SAVEDATE"), "{out}");
    let saved = format!("* 1 FETCH (SAVEDATE \"{today} ");
    assert!(out.contains(&saved), "{out}");
    assert!(out.contains("* SEARCH 1 2 3\r\nd OK"), "{out}");
    assert!(out.contains("* SEARCH\r\ne OK"), "{out}");
    assert!(out.contains("* SEARCH 1 2 3\r\nf OK"), "{out}");
    // After a restart the dates are the recorded ones; a message whose
    // record is gone (mail from before) has none.
    crate::imap::forget_folders(&inbox);
    let log = std::fs::read_to_string(inbox.join("sx-modseq")).unwrap();
    let kept: String = log
        .lines()
        .filter(|l| !l.starts_with("1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(inbox.join("sx-modseq"), kept).unwrap();
    let out = text(
        &h.session(
            true,
            b"a SELECT INBOX\r\nb FETCH 1:2 (SAVEDATE)\r\nc LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains("* 1 FETCH (SAVEDATE NIL)"), "{out}");
    assert!(out.contains(&saved.replace("* 1", "* 2")), "{out}");
}
