//! APPEND as clients send it, read here since imap-codec 1.0 knows neither
//! MULTIAPPEND (RFC 3502: several messages, each with its own flags and
//! date), literal8 (RFC 3516: `~{n}`, NUL allowed) nor CATENATE (RFC 4469:
//! a message made of literals and IMAP URLs). The message bytes are not
//! copied: each message (or text piece) is a range of the command buffer.

use super::ext;
use super::tokens::{astring, inner, is, literal_data, mailbox, spans, text, Kind};
use std::ops::Range;

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub flags: Vec<String>,
    /// The date-time given, in seconds since the epoch.
    pub date: Option<i64>,
    /// Where its bytes are in the command buffer.
    pub data: Range<usize>,
    /// Sent as literal8.
    pub binary: bool,
    /// RFC 4469 CATENATE: the message is made of these parts (`data` is
    /// then empty).
    pub catenate: Option<Vec<Piece>>,
}

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Bytes sent with the command.
    Text(Range<usize>),
    /// An IMAP URL (RFC 5092) of a message or part in this account.
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    pub tag: String,
    pub mailbox: String,
    pub messages: Vec<Message>,
}

/// RFC 3501 date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space-padded).
fn date_time(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

/// `tag APPEND mailbox [flags] [date] literal [[flags] [date] literal ...]`.
pub fn parse(buf: &[u8]) -> Option<Append> {
    let top = spans(buf, 0..buf.len())?;
    let tag = text(buf, top.first()?).to_string();
    if ext::tag_of(tag.as_bytes()) != tag || !text(buf, top.get(1)?).eq_ignore_ascii_case("APPEND")
    {
        return None;
    }
    let mailbox = mailbox(buf, top.get(2)?)?;
    let mut messages = Vec::new();
    let mut k = 3;
    while k < top.len() {
        let mut flags = Vec::new();
        if let Some(s) = top.get(k).filter(|s| s.kind == Kind::List) {
            for f in spans(buf, inner(s))? {
                if f.kind != Kind::Atom {
                    return None;
                }
                flags.push(text(buf, &f).to_string());
            }
            k += 1;
        }
        let mut date = None;
        if let Some(s) = top.get(k).filter(|s| buf.get(s.at.start) == Some(&b'"')) {
            let quoted = text(buf, s);
            date = Some(date_time(quoted.get(1..quoted.len().checked_sub(1)?)?)?);
            k += 1;
        }
        if is(buf, top.get(k), "CATENATE") {
            let list = top.get(k + 1).filter(|s| s.kind == Kind::List)?;
            messages.push(Message {
                flags,
                date,
                data: 0..0,
                binary: false,
                catenate: Some(pieces(buf, &spans(buf, inner(list))?)?),
            });
            k += 2;
            continue;
        }
        // RFC 9755 4 (RFC 6855): `UTF8 (literal8)`, a message whose header
        // may hold UTF-8; stored as any other.
        let lit = match is(buf, top.get(k), "UTF8") {
            true => {
                let list = top.get(k + 1).filter(|s| s.kind == Kind::List)?;
                k += 1;
                match spans(buf, inner(list))?.as_slice() {
                    [one] if buf.get(one.at.start) == Some(&b'~') => list,
                    _ => return None,
                }
            }
            false => top.get(k)?,
        };
        let lit = &match lit.kind {
            Kind::List => spans(buf, inner(lit))?.into_iter().next()?,
            _ => lit.clone(),
        };
        let (data, binary) = literal_data(buf, lit)?;
        let end = lit.at.end;
        messages.push(Message {
            flags,
            date,
            data: end - data.len()..end,
            binary,
            catenate: None,
        });
        k += 1;
    }
    if messages.is_empty() {
        return None;
    }
    Some(Append {
        tag,
        mailbox,
        messages,
    })
}

/// `TEXT literal` and `URL url` pairs (RFC 4469 5).
fn pieces(buf: &[u8], items: &[super::tokens::Span]) -> Option<Vec<Piece>> {
    if items.is_empty() || !items.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let what = text(buf, &pair[0]).to_ascii_uppercase();
        match what.as_str() {
            "TEXT" => {
                let (data, _) = literal_data(buf, &pair[1])?;
                let end = pair[1].at.end;
                out.push(Piece::Text(end - data.len()..end));
            }
            "URL" => out.push(Piece::Url(astring(buf, &pair[1])?)),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_multi_and_binary() {
        let b = b"a APPEND INBOX (\\Seen) \"24-Nov-2026 10:00:00 +0100\" {5}\r\nhello\r\n";
        let a = parse(b).unwrap();
        assert_eq!(a.mailbox, "INBOX");
        assert_eq!(a.messages.len(), 1);
        let m = &a.messages[0];
        assert_eq!(m.flags, ["\\Seen"]);
        assert_eq!(m.date, Some(1795510800));
        assert_eq!(&b[m.data.clone()], b"hello");
        let b = b"t APPEND \"My Box\" {3+}\r\none (\\Flagged) ~{4}\r\nt\0o!  \" 1-Jan-2020 00:00:00 +0000\" {5}\r\nthree\r\n";
        let a = parse(b).unwrap();
        assert_eq!(a.mailbox, "My Box");
        assert_eq!(a.messages.len(), 3);
        assert_eq!(&b[a.messages[0].data.clone()], b"one");
        assert!(a.messages[1].binary && a.messages[1].flags == ["\\Flagged"]);
        assert_eq!(&b[a.messages[1].data.clone()], b"t\0o!");
        assert_eq!(a.messages[2].date, Some(1577836800));
        let b = b"c APPEND Drafts CATENATE (URL \"/INBOX;UIDVALIDITY=3/;UID=2/;SECTION=1\" TEXT {3+}\r\nabc)\r\n";
        let a = parse(b).unwrap();
        let parts = a.messages[0].catenate.as_ref().unwrap();
        assert_eq!(
            parts[0],
            Piece::Url("/INBOX;UIDVALIDITY=3/;UID=2/;SECTION=1".into())
        );
        let Piece::Text(r) = &parts[1] else { panic!() };
        assert_eq!(&b[r.clone()], b"abc");
        let b = "u APPEND INBOX UTF8 (~{12}\r\nSubject: é\n)\r\n".as_bytes();
        let a = parse(b).unwrap();
        assert_eq!(&b[a.messages[0].data.clone()], "Subject: é\n".as_bytes());
        assert!(parse(b"u APPEND INBOX UTF8 ({1}\r\nx)\r\n").is_none());
        assert!(parse(b"a APPEND INBOX (\\Seen)\r\n").is_none());
        assert!(parse(b"a APPEND INBOX \"bad date\" {1}\r\nx\r\n").is_none());
        assert!(parse(b"a APPEND INBOX {1}\r\nx junk\r\n").is_none());
    }
}
