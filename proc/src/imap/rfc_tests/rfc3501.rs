//! RFC 3501 7.4.2 unsolicited FETCH: flags another session changes reach a
//! selected session once, at its next command; a session's own changes are
//! not echoed back to it (its STORE answered them, or .SILENT asked not to).

use super::text;
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_changes_by_others_are_told_once_and_own_are_not_echoed() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let mut a = h.client();
    a.until("* PREAUTH").await;
    a.send("a SELECT INBOX\r\n").await;
    let out = a.until("a OK").await;
    assert!(out.contains("* 2 EXISTS"), "{out}");

    // Another session flags message 1: the next command tells it, once.
    let other = text(
        &h.session(
            true,
            b"x SELECT INBOX\r\nx STORE 1 +FLAGS (\\Flagged)\r\nx LOGOUT\r\n",
        )
        .await,
    );
    assert!(other.contains("x OK"), "{other}");
    a.send("b NOOP\r\n").await;
    let out = a.until("b OK").await;
    assert_eq!(out.matches("* 1 FETCH (UID 1 FLAGS (").count(), 1, "{out}");
    assert!(out.contains("\\Flagged"), "{out}");
    assert!(!out.contains("* 2 FETCH"), "{out}");
    a.send("c NOOP\r\n").await;
    let out = a.until("c OK").await;
    assert!(!out.contains("FETCH"), "{out}");

    // Its own STORE .SILENT: no FETCH now, nor at the next command.
    a.send("d STORE 2 +FLAGS.SILENT (\\Answered)\r\n").await;
    let out = a.until("d OK").await;
    assert!(!out.contains("FETCH"), "{out}");
    a.send("e NOOP\r\n").await;
    let out = a.until("e OK").await;
    assert!(!out.contains("FETCH"), "{out}");

    // Its own STORE: one FETCH, in the STORE's answer only.
    a.send("f STORE 2 -FLAGS (\\Answered)\r\n").await;
    let out = a.until("f OK").await;
    assert_eq!(out.matches("* 2 FETCH").count(), 1, "{out}");
    a.send("g NOOP\r\n").await;
    let out = a.until("g OK").await;
    assert!(!out.contains("FETCH"), "{out}");

    // A change by another session after its own on the same message is told.
    a.send("h STORE 1 +FLAGS.SILENT (\\Seen)\r\n").await;
    a.until("h OK").await;
    h.session(
        true,
        b"x SELECT INBOX\r\nx STORE 1 -FLAGS (\\Flagged)\r\nx LOGOUT\r\n",
    )
    .await;
    a.send("i NOOP\r\n").await;
    let out = a.until("i OK").await;
    assert_eq!(out.matches("* 1 FETCH (UID 1 FLAGS (").count(), 1, "{out}");
    assert!(
        out.contains("\\Seen") && !out.contains("\\Flagged"),
        "{out}"
    );
    a.send("j LOGOUT\r\n").await;
    a.until("j OK").await;
}
