//! MULTIAPPEND (RFC 3502) and literal8 APPEND (RFC 3516) transcripts
//! against the real session, in process.

use super::text;
use crate::inprocess::Imap;

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

/// BINARY (RFC 3516): parts with their transfer encoding undone, their
/// decoded size, partial ranges, NUL in a literal8, and UNKNOWN-CTE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_fetch_undoes_transfer_encodings() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    std::fs::write(
        inbox.join("new").join("1002.M2.test"),
        "Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nsoft\r\n\
         --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n\
         --b\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
         --b--\r\n",
    )
    .unwrap();
    let out = h
        .session(
            true,
            b"a SELECT INBOX\r\nb FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[2] FLAGS)\r\n\
              c FETCH 3 BINARY[2]<1.2>\r\nd FETCH 3 (FLAGS)\r\ne FETCH 3 BINARY.PEEK[3]\r\n\
              f FETCH 3 BINARY.PEEK[9]\r\ng LOGOUT\r\n",
        )
        .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.contains(" BINARY"), "{text}");
    // (BINARY items follow the others in the answer.)
    assert!(
        text.contains("* 3 FETCH (FLAGS (\\Recent) BINARY[1] {10}\r\ncafé soft BINARY.SIZE[2] 4)"),
        "{text}"
    );
    // Bytes 1 and 2 of 00 01 02 ff: no NUL, a plain literal.
    assert!(
        out.windows(20)
            .any(|w| w == b"BINARY[2]<1> {2}\r\n\x01\x02"),
        "{text}"
    );
    // BINARY without PEEK sets \Seen.
    assert!(
        text.contains("* 3 FETCH (FLAGS (\\Seen \\Recent))\r\nd OK"),
        "{text}"
    );
    assert!(text.contains("e NO [UNKNOWN-CTE]"), "{text}");
    assert!(
        text.contains("* 3 FETCH (BINARY[9] {0}\r\n)\r\nf OK"),
        "{text}"
    );
    // The whole base64 part has a NUL: a literal8.
    let out = h
        .session(
            true,
            b"a SELECT INBOX\r\nb FETCH 3 BINARY.PEEK[2]\r\nc LOGOUT\r\n",
        )
        .await;
    let want: &[u8] = b"BINARY[2] ~{4}\r\n\x00\x01\x02\xff)\r\nb OK";
    assert!(
        out.windows(want.len()).any(|w| w == want),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// CATENATE (RFC 4469): a message made of a part of another message (an
/// IMAP URL into this account) and text sent with the command; a URL that
/// names nothing fails the whole APPEND with BADURL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catenate_builds_a_message_from_pieces() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CAPABILITY\r\nb STATUS INBOX (UIDVALIDITY)\r\n\
              c APPEND Drafts CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT {12+}\r\nnew body\r\n..)\r\n\
              d APPEND Drafts CATENATE (URL \"/INBOX/;UID=9\")\r\n\
              e APPEND Drafts CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=1\")\r\n\
              f SELECT Drafts\r\ng FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT])\r\nh LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" CATENATE"), "{out}");
    assert!(out.contains("c OK [APPENDUID "), "{out}");
    assert!(out.contains("d NO [BADURL /INBOX/;UID=9]"), "{out}");
    // A stale UIDVALIDITY names nothing.
    assert!(out.contains("e NO [BADURL "), "{out}");
    assert!(out.contains("* 1 EXISTS"), "{out}");
    assert!(out.contains("Subject: first"), "{out}");
    assert!(out.contains("BODY[TEXT] {12}\r\nnew body\r\n.."), "{out}");
}

/// Each CATENATE URL reads a message file: one APPEND may name at most 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catenate_urls_are_bounded() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let urls: String = (0..51).map(|_| " URL \"/INBOX/;UID=1\"").collect();
    let cmd = format!(
        "a APPEND Drafts CATENATE ({})\r\nb LOGOUT\r\n",
        urls.trim_start()
    );
    let out = text(&h.session(true, cmd.as_bytes()).await);
    assert!(out.contains("a NO [LIMIT]"), "{out}");
}
