//! COMPRESS=DEFLATE (RFC 4978) against the real session, in process: the
//! client's bytes after the command are raw deflate, and so is everything
//! the server says after its tagged OK.

use super::text;
use crate::compress::peer::{deflate_all as deflate, inflate_all as inflate};
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_deflate_both_ways_after_the_ok() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    // Sent in one go: the compressed commands arrive with the COMPRESS
    // line, so the session must inflate what it had already read.
    let mut input = b"a CAPABILITY\r\nb COMPRESS DEFLATE\r\n".to_vec();
    input.extend(deflate(
        b"c SELECT INBOX\r\nd FETCH 1 (BODY[])\r\ne COMPRESS DEFLATE\r\nf LOGOUT\r\n",
    ));
    let out = h.session(true, &input).await;
    let ok = b"b OK DEFLATE active\r\n";
    let at = out
        .windows(ok.len())
        .position(|w| w == ok)
        .unwrap_or_else(|| panic!("{}", text(&out)))
        + ok.len();
    let before = text(&out[..at]);
    assert!(before.contains(" COMPRESS=DEFLATE"), "{before}");
    let after = text(&inflate(&out[at..]));
    assert!(after.contains("c OK [READ-WRITE]"), "{after}");
    assert!(
        after.contains("* 1 FETCH (BODY[] {120}\r\nFrom: a@b.test")
            && after.contains("\r\nhello\r\n FLAGS (\\Seen \\Recent))\r\nd OK"),
        "{after}"
    );
    // RFC 4978 3: a second COMPRESS is refused.
    assert!(after.contains("e NO [COMPRESSIONACTIVE]"), "{after}");
    assert!(
        after.contains("* BYE") && after.contains("f OK LOGOUT"),
        "{after}"
    );

    // Not before login; an unknown mechanism is not a command.
    let out = text(
        &h.session(
            false,
            b"a COMPRESS DEFLATE\r\nb COMPRESS GZIP\r\nc LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains("a BAD") && out.contains("b BAD"), "{out}");
}

/// A deflate stream that inflates to an endless command line ends the
/// session after a bounded amount, not after the autologout half an hour on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_without_end_in_a_deflate_stream_ends_the_session() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let mut input = b"a COMPRESS DEFLATE\r\n".to_vec();
    input.extend(deflate(&vec![b'x'; 20 << 20]));
    let t = std::time::Instant::now();
    let out = h.session(true, &input).await;
    let ok = b"a OK DEFLATE active\r\n";
    let at = out.windows(ok.len()).position(|w| w == ok).unwrap() + ok.len();
    let after = text(&inflate(&out[at..]));
    assert!(
        after.contains("BAD Command line too long\r\n* BYE Command line without end"),
        "{after}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}
