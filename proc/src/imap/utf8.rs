//! UTF-8 at the protocol's edge (RFC 9755 UTF8=ACCEPT, and IMAP4rev2, RFC
//! 9051, which includes it). Folders are stored under their modified UTF-7
//! names (RFC 3501 5.1.3), as Dovecot stores them, so a Maildir moved
//! between the two keeps its names. A client that has not enabled UTF-8 uses
//! those names as they are; one that has sends and receives UTF-8, converted
//! here on the way in and on the way out, and may put UTF-8 in quoted strings,
//! which imap-codec 1.0 (7-bit quoted strings only) is handed as literals.
//!
//! The codec is strict: a name is valid modified UTF-7 only if decoding it and
//! encoding the result gives it back (no base64 for printable ASCII, no two
//! shifted runs in a row, no stray padding bits), so each folder has one name.

use std::borrow::Cow;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    B64.iter().position(|&x| x == c).map(|p| p as u32)
}

/// `s` in modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk.first().copied().unwrap_or(0),
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            // 2, 3 or 4 characters for 1, 2 or 3 bytes; no padding.
            for k in 0..=chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
            }
        }
        out.push('-');
        run.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The text a modified UTF-7 name stands for; None when it is not valid
/// (see the module's note on strictness).
pub fn decode(s: &str) -> Option<String> {
    let decoded = decode_loose(s)?;
    (encode(&decoded) == s).then_some(decoded)
}

fn decode_loose(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = *b.get(i)?;
        if !(0x20..0x7f).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let end = i + 1 + b.get(i + 1..)?.iter().position(|&x| x == b'-')?;
        let run = b.get(i + 1..end)?;
        if run.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut bytes = Vec::with_capacity(run.len());
            for &x in run {
                bits = (bits << 6) | b64_value(x)?;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        i = end + 1;
    }
    Some(out)
}

/// A mailbox name as the client sent it, as it is stored. With UTF-8 on, a
/// name that is not UTF-8 is passed on with its 8-bit bytes, which no stored
/// name has, so it is refused where names are checked.
pub fn name_in(raw: &[u8], utf8: bool) -> String {
    match (utf8, std::str::from_utf8(raw)) {
        (true, Ok(s)) => encode(s),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// A stored name as this client is told it.
pub fn name_out(stored: &str, utf8: bool) -> Cow<'_, str> {
    match utf8 {
        true => decode(stored).map_or(Cow::Borrowed(stored), Cow::Owned),
        false => Cow::Borrowed(stored),
    }
}

/// With UTF-8 on, quoted strings may hold UTF-8 (RFC 9755 3.1, RFC 9051's
/// QUOTED-CHAR); imap-codec 1.0 takes only 7-bit ones, so each such string is
/// handed on as the literal it is equivalent to. None when there is none (or
/// one is not valid UTF-8: left for the decoder to refuse). Literals are
/// skipped whole, never looked into: linear in the command.
pub fn quoted_to_literals(buf: &[u8]) -> Option<Vec<u8>> {
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'"' => {
                let close = closing_quote(buf, i)?;
                if buf[i + 1..close].iter().any(|&b| b >= 0x80) {
                    found.push((i, close));
                }
                i = close + 1;
            }
            b'{' => i = past_literal(buf, i).unwrap_or(i + 1),
            _ => i += 1,
        }
    }
    if found.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + 16 * found.len());
    let mut from = 0;
    for (open, close) in found {
        let mut text = Vec::with_capacity(close - open);
        let mut j = open + 1;
        while j < close {
            if buf[j] == b'\\' {
                j += 1;
            }
            if let Some(&b) = buf.get(j) {
                text.push(b);
            }
            j += 1;
        }
        std::str::from_utf8(&text).ok()?;
        out.extend_from_slice(&buf[from..open]);
        out.extend_from_slice(format!("{{{}+}}\r\n", text.len()).as_bytes());
        out.extend_from_slice(&text);
        from = close + 1;
    }
    out.extend_from_slice(&buf[from..]);
    Some(out)
}

fn closing_quote(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
}

/// Just past a literal whose `{n}` or `{n+}` header opens at `i` (the header
/// must end its line); None if this `{` opens no literal.
fn past_literal(b: &[u8], i: usize) -> Option<usize> {
    let close = i + b.get(i..)?.iter().take(24).position(|&c| c == b'}')?;
    let digits = std::str::from_utf8(b.get(i + 1..close)?).ok()?;
    let n: usize = digits.strip_suffix('+').unwrap_or(digits).parse().ok()?;
    if b.get(close + 1..close + 3)? != b"\r\n" {
        return None;
    }
    Some(close.checked_add(3)?.checked_add(n)?.min(b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_examples_and_round_trips() {
        // RFC 3501 5.1.3's example, and the usual suspects.
        let cases = [
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Q&A", "Q&-A"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("plain", "plain"),
            ("台北&", "&U,BTFw-&-"),
            ("😀 x", "&2D3eAA- x"),
            ("", ""),
        ];
        for (text, stored) in cases {
            assert_eq!(encode(text), stored, "{text}");
            assert_eq!(decode(stored).as_deref(), Some(text), "{stored}");
        }
    }

    #[test]
    fn invalid_modified_utf7_is_refused() {
        for bad in [
            "&",           // unterminated
            "&Jjo",        // unterminated run
            "&AGE-",       // base64 for printable ASCII "a"
            "&APw-&APw-",  // two runs in a row (one run is the only spelling)
            "&APx-",       // padding bits set
            "&AP-",        // odd number of bytes
            "Entwürfe",    // 8-bit
            "&2D0-",       // lone surrogate
            "a\tb",        // control
            "&ZeVnLIqe=-", // padding character
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_in_and_out() {
        assert_eq!(name_in("Entwürfe".as_bytes(), true), "Entw&APw-rfe");
        assert_eq!(name_in(b"Entw&APw-rfe", false), "Entw&APw-rfe");
        assert_eq!(name_in(b"Q&A", true), "Q&-A");
        assert_eq!(name_out("Entw&APw-rfe", true), "Entwürfe");
        assert_eq!(name_out("Entw&APw-rfe", false), "Entw&APw-rfe");
        // Not valid (another program's folder): shown as stored.
        assert_eq!(name_out("&AGE-", true), "&AGE-");
    }

    #[test]
    fn utf8_quoted_strings_become_literals() {
        assert_eq!(quoted_to_literals(b"a SELECT \"INBOX\"\r\n"), None);
        assert_eq!(
            quoted_to_literals("a CREATE \"Entwürfe \\\"x\\\"\"\r\n".as_bytes()).as_deref(),
            Some("a CREATE {13+}\r\nEntwürfe \"x\"\r\n".as_bytes())
        );
        // A literal is skipped whole, even when it holds a quote and 8-bit.
        let cmd = "a RENAME {4}\r\n\"é\" \"Brouillé\"\r\n".as_bytes();
        assert_eq!(
            quoted_to_literals(cmd).as_deref(),
            Some("a RENAME {4}\r\n\"é\" {9+}\r\nBrouillé\r\n".as_bytes())
        );
        // Not UTF-8: left alone, for the decoder to refuse.
        assert_eq!(quoted_to_literals(b"a CREATE \"\xff\"\r\n"), None);
    }
}
