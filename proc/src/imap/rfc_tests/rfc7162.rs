//! CONDSTORE and QRESYNC (RFC 7162) transcripts against the real session,
//! in process: mod-sequences, conditional STORE, SEARCH MODSEQ, FETCH
//! CHANGEDSINCE and VANISHED, and a resync after flag changes, an expunge,
//! a change by another program and a restart (the folder cache dropped).

use super::{number_after, text};
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condstore_modseqs_conditional_store_and_search() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CAPABILITY\r\nb SELECT INBOX (CONDSTORE)\r\nc FETCH 1:* (FLAGS MODSEQ)\r\nd LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" CONDSTORE QRESYNC"), "{out}");
    let highest = number_after(&out, "* OK [HIGHESTMODSEQ ");
    let m1 = number_after(&out, "* 1 FETCH (FLAGS (\\Recent) MODSEQ (");
    let m2 = number_after(&out, "* 2 FETCH (FLAGS (\\Recent) MODSEQ (");
    assert!(m1 <= highest && m2 <= highest, "{out}");

    let cmds = format!(
        "a SELECT INBOX\r\nb STORE 1 +FLAGS (\\Flagged)\r\n\
         c STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)\r\n\
         d SEARCH MODSEQ {}\r\ne UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})\r\n\
         f FETCH 2 MODSEQ\r\ng STORE 2 (UNCHANGEDSINCE 0) -FLAGS.SILENT (\\Seen)\r\n\
         h STATUS INBOX (HIGHESTMODSEQ MESSAGES)\r\ni LOGOUT\r\n",
        highest + 1
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    // Not yet enabled: no MODSEQ on the first STORE's answer...
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged))\r\nb OK"),
        "{out}"
    );
    // ...UNCHANGEDSINCE turns it on and tells HIGHESTMODSEQ first; message 1
    // changed after `highest`, so only 2 is changed and 1 is MODIFIED.
    let after = number_after(&out, "* OK [HIGHESTMODSEQ ");
    assert!(after > highest, "{out}");
    let m2 = number_after(&out, "* 2 FETCH (FLAGS (\\Seen) MODSEQ (");
    assert!(
        out.contains("c OK [MODIFIED 1] Conditional STORE failed"),
        "{out}"
    );
    assert!(
        !out.contains("* 1 FETCH (FLAGS (\\Flagged \\Seen)"),
        "{out}"
    );
    // SEARCH MODSEQ: both changed since; the highest of them is given.
    assert!(
        out.contains(&format!("* SEARCH 1 2 (MODSEQ {m2})")),
        "{out}"
    );
    // CHANGEDSINCE: both, with MODSEQ though not asked for.
    assert!(
        out.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{out}"
    );
    assert!(
        out.contains("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ("),
        "{out}"
    );
    assert!(out.contains(&format!("* 2 FETCH (MODSEQ ({m2}))")), "{out}");
    // UNCHANGEDSINCE 0 can never hold.
    assert!(out.contains("g OK [MODIFIED 2]"), "{out}");
    assert!(
        out.contains(&format!(
            "* STATUS \"INBOX\" (HIGHESTMODSEQ {m2} MESSAGES 2)"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qresync_after_changes_an_expunge_another_program_and_a_restart() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    // A third message, so that something stays unchanged.
    std::fs::write(
        inbox.join("new").join("1002.M2.test"),
        b"Subject: third\r\n\r\nthree\r\n",
    )
    .unwrap();
    let out = text(
        &h.session(true, b"a ENABLE QRESYNC\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
            .await,
    );
    assert!(out.contains("* ENABLED QRESYNC"), "{out}");
    let validity = number_after(&out, "[UIDVALIDITY ");
    let known = number_after(&out, "* OK [HIGHESTMODSEQ ");

    // Meanwhile: flags of 2 change, 1 is expunged, and (with the server
    // down) another program marks 3 seen by renaming its file.
    let out = text(
        &h.session(
            true,
            b"a SELECT INBOX\r\nb STORE 2 +FLAGS (\\Answered)\r\nc STORE 1 +FLAGS (\\Deleted)\r\nd EXPUNGE\r\ne LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains("* 1 EXPUNGE"), "{out}");
    crate::imap::forget_folders(&inbox);
    let cur = inbox.join("cur");
    let third = std::fs::read_dir(&cur)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("1002."))
        .unwrap();
    std::fs::rename(cur.join(&third), cur.join(format!("{third}S"))).unwrap();

    // The client comes back with what it knew: only the changes are sent.
    let cmds = format!(
        "a ENABLE QRESYNC\r\nb SELECT INBOX (QRESYNC ({validity} {known} 1:3))\r\n\
         c UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known} VANISHED)\r\n\
         d STORE 2 +FLAGS (\\Deleted)\r\ne EXPUNGE\r\nf SELECT INBOX\r\ng LOGOUT\r\n"
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    let select = &out[..out.find("b OK").unwrap()];
    assert!(select.contains("* VANISHED (EARLIER) 1\r\n"), "{out}");
    // (\Recent again: the restart forgot who had seen them.)
    assert!(
        select.contains("* 1 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ ("),
        "{out}"
    );
    assert!(
        select.contains("* 2 FETCH (UID 3 FLAGS (\\Seen \\Recent) MODSEQ ("),
        "{out}"
    );
    assert_eq!(select.matches(" FETCH ").count(), 2, "{out}");
    assert!(select.contains("* 2 EXISTS"), "{out}");
    let got = number_after(select, "* OK [HIGHESTMODSEQ ");
    assert!(got > known, "{out}");
    // UID FETCH ... VANISHED says the same.
    assert!(
        out.contains("* VANISHED (EARLIER) 1\r\n* 1 FETCH (UID 2"),
        "{out}"
    );
    // With QRESYNC on, an expunge is told as VANISHED, never EXPUNGE.
    assert!(out.contains("* VANISHED 3\r\ne OK"), "{out}");
    assert!(!out.contains(" EXPUNGE\r\n"), "{out}");
    // A second SELECT closes the first (RFC 7162 3.2.11).
    assert!(out.contains("* OK [CLOSED]"), "{out}");

    // A stale UIDVALIDITY: no resync data, just the mailbox.
    let cmds = format!(
        "a ENABLE QRESYNC\r\nb SELECT INBOX (QRESYNC ({} {known}))\r\nc LOGOUT\r\n",
        validity + 1
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(!out.contains("VANISHED") && !out.contains("FETCH"), "{out}");
    // QRESYNC parameters before ENABLE QRESYNC are refused.
    let cmds = format!("a SELECT INBOX (QRESYNC ({validity} {known}))\r\nb LOGOUT\r\n");
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(out.contains("a BAD"), "{out}");
}
