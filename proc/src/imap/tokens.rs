//! The tokens of a raw command, with where each lies, so that parts
//! imap-codec 1.0 does not decode can be cut out or replaced before it
//! decodes the rest (parts.rs, search_keys.rs, sort.rs, appends.rs). Quoted strings and
//! literals are skipped whole, so nothing inside them is taken for a token.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Atom,
    Str,
    List,
}

#[derive(Debug, Clone)]
pub struct Span {
    pub kind: Kind,
    pub at: Range<usize>,
}

/// The tokens of `b[range]` at one level: atoms, quoted strings, literals and
/// whole parenthesized (or bracketed, for BODY[...]) groups.
pub fn spans(b: &[u8], range: Range<usize>) -> Option<Vec<Span>> {
    let mut out = Vec::new();
    let mut i = range.start;
    let end = range.end;
    while i < end {
        match b[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let start = i;
                let mut depth = 0usize;
                loop {
                    match *b.get(i)? {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'"' => i = skip_quoted(b, i)?,
                        b'{' => i = skip_literal(b, i)?.saturating_sub(1),
                        _ => {}
                    }
                    i += 1;
                    if i >= end {
                        return None;
                    }
                }
                i += 1;
                out.push(Span {
                    kind: Kind::List,
                    at: start..i,
                });
            }
            b')' => return None,
            b'"' => {
                let start = i;
                i = skip_quoted(b, i)? + 1;
                out.push(Span {
                    kind: Kind::Str,
                    at: start..i,
                });
            }
            b'{' => {
                let start = i;
                i = skip_literal(b, i)?;
                out.push(Span {
                    kind: Kind::Str,
                    at: start..i,
                });
            }
            // RFC 3516 literal8: `~{n}` and n bytes, NUL allowed.
            b'~' if b.get(i + 1) == Some(&b'{') => {
                let start = i;
                i = skip_literal(b, i + 1)?;
                out.push(Span {
                    kind: Kind::Str,
                    at: start..i,
                });
            }
            _ => {
                let start = i;
                let mut bracket = 0usize;
                while i < end {
                    match b[i] {
                        b'[' => bracket += 1,
                        b']' => bracket = bracket.saturating_sub(1),
                        b' ' | b'(' | b')' | b'\r' | b'\n' | b'"' if bracket == 0 => break,
                        b'"' => i = skip_quoted(b, i)?,
                        _ => {}
                    }
                    i += 1;
                }
                out.push(Span {
                    kind: Kind::Atom,
                    at: start..i.min(end),
                });
            }
        }
    }
    Some(out)
}

/// The index of the closing quote of the quoted string opening at `i`.
fn skip_quoted(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the literal (`{n}` CRLF and n bytes) opening at `i`.
fn skip_literal(b: &[u8], i: usize) -> Option<usize> {
    let close = b.get(i..)?.iter().position(|c| *c == b'}')? + i;
    let n: usize = std::str::from_utf8(b.get(i + 1..close)?)
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    let start = close.checked_add(3)?;
    let end = start.checked_add(n)?;
    (end <= b.len()).then_some(end)
}

pub fn text<'a>(b: &'a [u8], s: &Span) -> &'a str {
    std::str::from_utf8(b.get(s.at.clone()).unwrap_or_default()).unwrap_or("")
}

pub fn is(b: &[u8], s: Option<&Span>, word: &str) -> bool {
    s.is_some_and(|s| s.kind == Kind::Atom && text(b, s).eq_ignore_ascii_case(word))
}

/// The inside of a list span.
pub fn inner(s: &Span) -> Range<usize> {
    s.at.start + 1..s.at.end.saturating_sub(1)
}

/// `buf` with the spans at `cut` removed (each with the space before it).
pub fn without(buf: &[u8], cut: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut from = 0;
    for r in cut {
        let mut start = r.start;
        while start > from && buf[start - 1] == b' ' {
            start -= 1;
        }
        out.extend_from_slice(&buf[from..start]);
        let mut end = r.end;
        // First in a list: the space after it goes instead, so `(A B)`
        // without A is `(B)`.
        if out.last() == Some(&b'(') {
            while buf.get(end) == Some(&b' ') {
                end += 1;
            }
        }
        from = end;
    }
    out.extend_from_slice(&buf[from..]);
    out
}

/// The bytes of a literal or literal8 span (after `{n}` CRLF), and whether
/// it was a literal8; None for any other token.
pub fn literal_data<'a>(b: &'a [u8], s: &Span) -> Option<(&'a [u8], bool)> {
    let t = b.get(s.at.clone())?;
    let (t, binary) = match t.strip_prefix(b"~") {
        Some(r) => (r, true),
        None => (t, false),
    };
    if t.first() != Some(&b'{') {
        return None;
    }
    let close = t.iter().position(|c| *c == b'}')?;
    Some((t.get(close + 3..)?, binary))
}

/// An astring token's text (atom, quoted string unescaped, or literal),
/// decoded as ext.rs decodes the commands it reads.
pub fn astring(b: &[u8], s: &Span) -> Option<String> {
    let mut i = 0;
    match super::ext::tokens(b.get(s.at.clone())?, &mut i, 0)?.as_slice() {
        [t] => t.text().map(str::to_string),
        _ => None,
    }
}

/// A mailbox name token, INBOX in any case spelled `INBOX`.
pub fn mailbox(b: &[u8], s: &Span) -> Option<String> {
    let m = astring(b, s)?;
    Some(if super::names::is_inbox(&m) {
        "INBOX".to_string()
    } else {
        m
    })
}
