//! URLAUTH (RFC 4467) against the real session, in process: URLs made by
//! GENURLAUTH, fetched by URLFETCH while valid, void once tampered with,
//! expired, meant for another, or their mailbox's key reset.

use crate::inprocess::Imap;

/// The URL in `* GENURLAUTH "url"`.
fn made(out: &str) -> String {
    let at = out
        .find("* GENURLAUTH \"")
        .unwrap_or_else(|| panic!("{out}"))
        + 14;
    out[at..].split('"').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_made_fetched_and_voided() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let mut c = h.client();
    let greeting = c.until("* PREAUTH").await;
    assert!(greeting.contains(" URLAUTH "), "{greeting}");

    c.send("a GENURLAUTH \"imap://bob%40a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous\" INTERNAL\r\n")
        .await;
    let out = c.until("a ").await;
    let whole = made(&out);
    assert!(whole
        .starts_with("imap://bob%40a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous:internal:"));
    assert_eq!(whole.rsplit(':').next().map(str::len), Some(64), "{out}");

    c.send(&format!("b URLFETCH \"{whole}\"\r\n")).await;
    let out = c.until("b ").await;
    assert!(
        out.contains(&format!(
            "* URLFETCH \"{whole}\" {{120}}\r\nFrom: a@b.test\r\n"
        )),
        "{out}"
    );
    assert!(out.contains("\r\nhello\r\n\r\nb OK"), "{out}");

    // A section, for this user only (RFC 5092 lower-case keywords).
    c.send("c GENURLAUTH \"imap://bob%40a.test@mail.a.test/INBOX/;uid=2/;section=1;urlauth=user+bob%40a.test\" INTERNAL\r\n")
        .await;
    let part = made(&c.until("c ").await);
    // Tampered, expired, and submit-only URLs are NIL.
    let mut tampered = whole.clone();
    tampered.pop();
    tampered.push(if whole.ends_with('0') { '1' } else { '0' });
    c.send("d GENURLAUTH \"imap://bob%40a.test@mail.a.test/INBOX/;uid=1;expire=2000-01-01T00:00:00Z;urlauth=anonymous\" INTERNAL \"imap://bob%40a.test@mail.a.test/INBOX/;uid=1;urlauth=submit+bob%40a.test\" INTERNAL\r\n").await;
    let out = c.until("d ").await;
    let urls: Vec<String> = out
        .split('"')
        .filter(|s| s.starts_with("imap://"))
        .map(str::to_string)
        .collect();
    assert_eq!(urls.len(), 2, "{out}");
    c.send(&format!(
        "e URLFETCH \"{part}\" \"{tampered}\" \"{}\" \"{}\"\r\n",
        urls[0], urls[1]
    ))
    .await;
    let out = c.until("e ").await;
    assert!(
        out.contains(&format!("\"{part}\" {{8}}\r\npart one ")),
        "{out}"
    );
    assert!(out.contains(&format!("\"{tampered}\" NIL")), "{out}");
    assert!(out.contains(&format!("\"{}\" NIL", urls[0])), "{out}");
    assert!(
        out.contains(&format!("\"{}\" NIL\r\ne OK", urls[1])),
        "{out}"
    );

    // Not another user's mailbox; only INTERNAL.
    c.send("f GENURLAUTH \"imap://eve%40a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous\" INTERNAL\r\n")
        .await;
    assert!(c.until("f ").await.contains("f NO [BADURL"));
    c.send("g GENURLAUTH \"imap://bob%40a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous\" XSECRET\r\n")
        .await;
    assert!(c.until("g ").await.contains("g NO"));

    // RESETKEY voids what was made before.
    c.send("h RESETKEY INBOX\r\n").await;
    assert!(c.until("h ").await.contains("h OK"));
    c.send(&format!("i URLFETCH \"{whole}\"\r\n")).await;
    let out = c.until("i ").await;
    assert!(out.contains(&format!("\"{whole}\" NIL\r\ni OK")), "{out}");
    c.send("j RESETKEY Nowhere\r\nk RESETKEY\r\n").await;
    let out = c.until("k ").await;
    assert!(
        out.contains("j NO [NONEXISTENT]") && out.contains("k OK"),
        "{out}"
    );
}
