//! MULTIAPPEND (RFC 3502) and literal8 APPEND (RFC 3516) transcripts
//! against the real session, in process.

use crate::inprocess::Imap;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_messages_in_one_append_all_or_none() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let (m1, m2, m3): (&[u8], &[u8], &[u8]) = (
        b"Subject: one\r\n\r\nbody\r\n",
        b"Subject: two\r\n\r\nbody\r\n",
        b"Subject: 3\r\n\r\nbi\0ary\r\n\r\n",
    );
    let mut cmds: Vec<u8> = b"a SELECT INBOX\r\n".to_vec();
    cmds.extend_from_slice(
        format!(
            "b APPEND INBOX (\\Seen) \" 5-Nov-2026 10:00:00 +0000\" {{{}+}}\r\n",
            m1.len()
        )
        .as_bytes(),
    );
    cmds.extend_from_slice(m1);
    cmds.extend_from_slice(format!(" (\\Flagged $Work) {{{}+}}\r\n", m2.len()).as_bytes());
    cmds.extend_from_slice(m2);
    cmds.extend_from_slice(format!(" ~{{{}+}}\r\n", m3.len()).as_bytes());
    cmds.extend_from_slice(m3);
    cmds.extend_from_slice(b"\r\n");
    cmds.extend_from_slice(
        b"c FETCH 3:5 (UID FLAGS INTERNALDATE RFC822.SIZE)\r\nd FETCH 5 BODY.PEEK[TEXT]\r\n\
          e APPEND Nowhere {3+}\r\nabc {3+}\r\ndef\r\nf APPEND INBOX {3+}\r\nabc\r\n\
          g APPEND INBOX (\\Seen) {3+}\r\nabc {0+}\r\n\r\nh STATUS INBOX (MESSAGES)\r\ni LOGOUT\r\n",
    );
    let out = text(&h.session(true, &cmds).await);
    assert!(out.contains(" MULTIAPPEND"), "{out}");
    // Three messages: one response, UIDs as a set, EXISTS in the same response.
    assert!(out.contains("* 5 EXISTS"), "{out}");
    assert!(out.contains("b OK [APPENDUID "), "{out}");
    assert!(out.contains(" 3:5] APPEND completed"), "{out}");
    assert!(out.contains("* 3 FETCH (UID 3 FLAGS (\\Seen"), "{out}");
    assert!(
        out.contains("INTERNALDATE \"05-Nov-2026 10:00:00 +0000\""),
        "{out}"
    );
    assert!(
        out.contains("* 4 FETCH (UID 4 FLAGS (\\Flagged $Work"),
        "{out}"
    );
    // literal8: stored as sent, NUL and all.
    assert!(
        out.contains("* 5 FETCH (BODY[TEXT] {10}\r\nbi\0ary\r\n\r\n)"),
        "{out}"
    );
    assert!(out.contains("e NO [TRYCREATE]"), "{out}");
    // An empty message anywhere fails the whole command: nothing added.
    assert!(out.contains("f OK [APPENDUID "), "{out}");
    assert!(out.contains("g NO Empty message"), "{out}");
    assert!(out.contains("* STATUS \"INBOX\" (MESSAGES 6)"), "{out}");
}
