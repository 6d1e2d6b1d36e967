//! SEARCHRES (RFC 5182) and WITHIN (RFC 5032) transcripts against the real
//! session, in process.

use super::text;
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_result_is_used_by_later_commands() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    for i in 2..6 {
        std::fs::write(
            inbox.join("new").join(format!("10{i}0.M{i}.test")),
            format!("Subject: zz{i}\r\n\r\nbody\r\n"),
        )
        .unwrap();
    }
    let out = text(
        &h.session(
            true,
            b"a CAPABILITY\r\nb SELECT INBOX\r\nc SEARCH RETURN (SAVE) SUBJECT zz\r\n\
              d FETCH $ (UID)\r\ne STORE 3 +FLAGS (\\Deleted)\r\nf EXPUNGE\r\n\
              g UID FETCH $ (FLAGS)\r\nh SEARCH RETURN (SAVE MIN) NOT $\r\ni UID SEARCH $\r\n\
              j SEARCH RETURN (SAVE COUNT) SUBJECT nothing-like-this\r\nk FETCH $ (UID)\r\n\
              l COPY $ INBOX\r\nm LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" SEARCHRES WITHIN"), "{out}");
    // SAVE alone: only the tagged OK.
    assert!(
        out.contains("b OK [READ-WRITE] SELECT completed\r\nc OK SEARCH completed"),
        "{out}"
    );
    // Messages 3..6 matched; $ in FETCH names them.
    for (seq, uid) in [(3, 3), (4, 4), (5, 5), (6, 6)] {
        assert!(
            out.contains(&format!("* {seq} FETCH (UID {uid})\r\n")),
            "{out}"
        );
    }
    assert!(!out.contains("* 1 FETCH (UID 1)"), "{out}");
    // UID 3 expunged: it leaves the saved result.
    assert!(out.contains("* 3 EXPUNGE"), "{out}");
    assert!(out.contains("* 3 FETCH (UID 4 FLAGS (\\Recent))"), "{out}");
    assert!(!out.contains("FETCH (UID 3 FLAGS"), "{out}");
    // NOT $ with MIN saves the least of messages 1, 2: UID 1.
    assert!(out.contains("* ESEARCH (TAG \"h\") MIN 1\r\n"), "{out}");
    assert!(out.contains("* SEARCH 1\r\ni OK"), "{out}");
    // An empty saved result: commands touch nothing and succeed.
    assert!(
        out.contains("* ESEARCH (TAG \"j\") COUNT 0\r\nj OK"),
        "{out}"
    );
    assert!(out.contains("k OK FETCH completed"), "{out}");
    assert!(out.contains("l OK COPY completed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_and_younger_use_the_internal_date() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    // The second message arrived two hours ago.
    let f = std::fs::File::options()
        .write(true)
        .open(inbox.join("new").join("1001.M1.test"))
        .unwrap();
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    f.set_modified(then).unwrap();
    drop(f);
    let out = text(
        &h.session(
            true,
            b"a SELECT INBOX\r\nb SEARCH OLDER 3600\r\nc SEARCH YOUNGER 3600\r\n\
              d SEARCH OR YOUNGER 60 OLDER 7000\r\ne SEARCH OLDER 0\r\nf LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains("* SEARCH 2\r\nb OK"), "{out}");
    assert!(out.contains("* SEARCH 1\r\nc OK"), "{out}");
    assert!(out.contains("* SEARCH 1 2\r\nd OK"), "{out}");
    // RFC 5032: the interval is a non-zero number.
    assert!(out.contains("e BAD"), "{out}");
}
