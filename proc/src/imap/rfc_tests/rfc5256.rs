//! SORT, ESORT, SORT=DISPLAY and THREAD (RFC 5256, 5267, 5957) transcripts
//! against the real session, in process.

use super::text;
use crate::inprocess::Imap;

/// Five messages after the harness's two (which have no Date: `first`, and
/// `second`, from c@d.test).
fn fill(inbox: &std::path::Path) {
    let msgs = [
        (
            "Zed <zed@z.test>",
            "Re: Alpha",
            "Tue, 24 Nov 2026 12:00:00 +0000",
            "<3@x>",
            "<1@b.test>",
            300,
        ),
        (
            "amy@a.test",
            "beta",
            "Tue, 24 Nov 2026 09:00:00 -0500",
            "<4@x>",
            "",
            10,
        ),
        (
            "\"Bob B\" <bob@b.test>",
            "[list] Alpha (fwd)",
            "Mon, 23 Nov 2026 08:00:00 +0000",
            "<5@x>",
            "",
            5000,
        ),
        (
            "carl@c.test",
            "Re: beta",
            "Wed, 25 Nov 2026 08:00:00 +0000",
            "<6@x>",
            "<4@x>",
            20,
        ),
        (
            "dora@d.test",
            "Fwd: Re: Re: beta",
            "Thu, 26 Nov 2026 08:00:00 +0000",
            "<7@x>",
            "<4@x> <6@x>",
            30,
        ),
    ];
    for (i, (from, subject, date, id, refs, pad)) in msgs.iter().enumerate() {
        let refs = if refs.is_empty() {
            String::new()
        } else {
            format!("References: {refs}\r\n")
        };
        let body = "x".repeat(*pad);
        std::fs::write(
            inbox.join("new").join(format!("10{}0.M{i}.test", i + 2)),
            format!("From: {from}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {id}\r\n{refs}\r\n{body}\r\n"),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_by_each_key_and_esort() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    fill(&inbox);
    let out = text(
        &h.session(
            true,
            b"a SELECT INBOX\r\nb SORT (SUBJECT) UTF-8 ALL\r\nc SORT (REVERSE SIZE) UTF-8 ALL\r\n\
              d SORT (FROM) UTF-8 NOT SUBJECT first\r\ne UID SORT (DATE) US-ASCII SEEN\r\n\
              f SORT (DISPLAYFROM) UTF-8 FROM test\r\ng SORT RETURN (MIN MAX COUNT) (REVERSE DATE) UTF-8 ALL\r\n\
              h SORT (DATE) KOI8-R ALL\r\ni SORT (BOGUS) UTF-8 ALL\r\nj LOGOUT\r\n",
        )
        .await,
    );
    assert!(
        out.contains(" SORT SORT=DISPLAY ESORT ")
            && out.contains(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES "),
        "{out}"
    );
    // Base subjects: alpha (3, 5), beta (4, 6, 7), first (1), second (2);
    // ties by sequence number.
    assert!(out.contains("* SORT 3 5 4 6 7 1 2\r\nb OK"), "{out}");
    assert!(out.contains("* SORT 5 3 2 7 6 1 4\r\nc OK"), "{out}");
    // Mailboxes: a(1) amy(4) bob(5) c(2) carl(6) dora(7) zed(3).
    assert!(out.contains("* SORT 4 5 2 6 7 3\r\nd OK"), "{out}");
    assert!(out.contains("* SORT\r\ne OK"), "{out}");
    // Display names where there is one ("Bob B", "Zed"), else the address.
    assert!(out.contains("* SORT 1 4 5 2 6 7 3\r\nf OK"), "{out}");
    // The harness's first two messages have no Date: their internal date
    // (now) is the newest; the oldest is 5.
    assert!(out.contains("* ESEARCH (TAG \"g\") MIN "), "{out}");
    assert!(out.contains(" MAX 5 COUNT 7\r\ng OK"), "{out}");
    assert!(out.contains("h NO [BADCHARSET"), "{out}");
    assert!(out.contains("i BAD"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_by_subject_and_by_references() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    fill(&inbox);
    let out = text(
        &h.session(
            true,
            b"a SELECT INBOX\r\nb THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT first NOT SUBJECT second\r\n\
              c THREAD REFERENCES UTF-8 NOT SUBJECT first NOT SUBJECT second\r\n\
              d UID THREAD REFERENCES UTF-8 SUBJECT nothing\r\ne THREAD FOO UTF-8 ALL\r\nf LOGOUT\r\n",
        )
        .await,
    );
    // alpha: 5 (23 Nov) then 3; beta: 4, 6, 7 by date.
    assert!(out.contains("* THREAD (5 3)(4 (6)(7))\r\nb OK"), "{out}");
    // References: 6 answers 4, 7 answers 6. 3 refers to a message not
    // matched (a dummy, pruned) and shares 5's base subject; both are
    // replies or forwards ("Re:", "(fwd)"), so a dummy holds the two.
    assert!(out.contains("* THREAD ((5)(3))(4 6 7)\r\nc OK"), "{out}");
    assert!(out.contains("* THREAD\r\nd OK"), "{out}");
    assert!(out.contains("e BAD"), "{out}");
}
