//! UTF8=ACCEPT (RFC 9755, which replaces RFC 6855) transcripts against the
//! real session, in process: names stored in modified UTF-7 (RFC 3501
//! 5.1.3), told and taken as UTF-8 once the client enabled it.

use super::text;
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_utf8_once_enabled_and_modified_utf7_before() {
    let h = Imap::new().unwrap();
    let account = h.reset().unwrap();
    // A client that has not enabled UTF-8: names in modified UTF-7, which
    // must be valid; 8-bit in a quoted string is not IMAP4rev1.
    let out = text(
        &h.session(
            true,
            "a CAPABILITY\r\nb CREATE Entw&APw-rfe\r\nc CREATE \"Q&A\"\r\nd CREATE \"Brouillé\"\r\n\
             e CREATE Q&-A\r\nf LIST \"\" *\r\ng LOGOUT\r\n"
                .as_bytes(),
        )
        .await,
    );
    assert!(out.contains(" UTF8=ACCEPT"), "{out}");
    assert!(out.contains("b OK"), "{out}");
    assert!(
        out.contains("c NO [CANNOT] Mailbox name is not valid modified UTF-7"),
        "{out}"
    );
    assert!(out.contains("d BAD"), "{out}");
    assert!(out.contains("e OK"), "{out}");
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Entw&APw-rfe\"\r\n"),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Q&-A\"\r\n"),
        "{out}"
    );
    assert!(account.join(".Entw&APw-rfe").join("cur").is_dir());

    // Enabled: the same folders in UTF-8, UTF-8 in quoted strings and
    // literals taken as names, patterns matched against the UTF-8 name.
    let msg = "Subject: caf\u{e9} \u{2615}\r\n\r\n";
    let cmds = format!(
        "a ENABLE UTF8=ACCEPT\r\nb LIST \"\" \"Entw*\"\r\nc CREATE \"Brouillé\"\r\n\
             d CREATE {{9+}}\r\n日本語\r\ne RENAME \"Brouillé\" \"Archivé.Brouillé\"\r\n\
             f LIST \"\" *\r\ng STATUS \"Entwürfe\" (MESSAGES)\r\nh SELECT \"Q&A\"\r\n\
             i APPEND \"日本語\" UTF8 (~{{{}}}\r\n{msg})\r\n\
             j LSUB \"\" \"*\"\r\nk SUBSCRIBE \"日本語\"\r\nl LSUB \"\" \"日*\"\r\n\
             m GETQUOTAROOT \"日本語\"\r\nn SELECT \"日本語\"\r\n\
             o SEARCH SUBJECT \"café ☕\"\r\np FETCH 1 (ENVELOPE)\r\nq LOGOUT\r\n",
        msg.len()
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(out.contains("* ENABLED UTF8=ACCEPT\r\n"), "{out}");
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Entwürfe\"\r\nb OK"),
        "{out}"
    );
    assert!(out.contains("c OK") && out.contains("d OK"), "{out}");
    assert!(out.contains("e OK"), "{out}");
    for name in ["Entwürfe", "Q&A", "日本語", "Archivé.Brouillé"] {
        assert!(
            out.contains(&format!(" \".\" \"{name}\"\r\n")),
            "{name}: {out}"
        );
    }
    assert!(out.contains("* STATUS \"Entwürfe\" (MESSAGES 0)"), "{out}");
    assert!(out.contains("h OK"), "{out}");
    assert!(out.contains("i OK [APPENDUID"), "{out}");
    assert!(out.contains("* LSUB () \".\" \"日本語\"\r\nl OK"), "{out}");
    assert!(out.contains("* QUOTAROOT \"日本語\""), "{out}");
    // Search strings in UTF-8 quoted strings; the UTF-8 header (RFC 6532)
    // found, and told as it is (a literal, as to any client).
    assert!(out.contains("* SEARCH 1\r\no OK"), "{out}");
    assert!(out.contains("(NIL {9}\r\ncafé ☕ "), "{out}");
    // Stored as modified UTF-7, as Dovecot stores them.
    assert!(account.join(".&ZeVnLIqe-").join("cur").is_dir());
    assert!(account
        .join(".Archiv&AOk-.Brouill&AOk-")
        .join("cur")
        .is_dir());

    // And a client that has not enabled it is told the stored names.
    let out = text(&h.session(true, b"a LIST \"\" *\r\nb LOGOUT\r\n").await);
    assert!(out.contains(" \".\" \"&ZeVnLIqe-\"\r\n"), "{out}");
    assert!(
        out.contains(" \".\" \"Archiv&AOk-.Brouill&AOk-\"\r\n"),
        "{out}"
    );
}
