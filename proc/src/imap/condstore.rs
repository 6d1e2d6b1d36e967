//! The RFC 7162 (CONDSTORE, QRESYNC) parts of commands that imap-codec 1.0
//! does not decode, taken out of the raw command before it is decoded: SELECT
//! and EXAMINE parameters, FETCH modifiers (CHANGEDSINCE, VANISHED) and the
//! MODSEQ item, STORE's UNCHANGEDSINCE, and SEARCH's MODSEQ key. What is left
//! is a plain RFC 3501 command; what was taken is in `Cond`.
//!
//! A SEARCH MODSEQ key becomes `HEADER <marker> "<n>"`, where the marker is a
//! field name made of random letters at start: no client can send it, and
//! search.rs reads it back as the MODSEQ test.

use std::ops::Range;
use std::sync::OnceLock;

/// What a command said about mod-sequences.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cond {
    /// SELECT/EXAMINE (CONDSTORE).
    pub select_condstore: bool,
    /// SELECT/EXAMINE (QRESYNC (uidvalidity modseq [known-uids ...])).
    pub qresync: Option<Qresync>,
    /// FETCH asked for MODSEQ.
    pub fetch_modseq: bool,
    /// FETCH asked for MODSEQ only: the UID put in its place is not shown.
    pub hide_uid: bool,
    /// FETCH (CHANGEDSINCE n).
    pub changed_since: Option<u64>,
    /// FETCH (... VANISHED).
    pub vanished: bool,
    /// STORE (UNCHANGEDSINCE n).
    pub unchanged_since: Option<u64>,
    /// SEARCH used a MODSEQ key.
    pub search_modseq: bool,
}

impl Cond {
    /// Whether the command turns CONDSTORE on (RFC 7162 3.1).
    pub fn enables(&self) -> bool {
        self.select_condstore
            || self.fetch_modseq
            || self.changed_since.is_some()
            || self.unchanged_since.is_some()
            || self.search_modseq
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs the client knows (a sequence set as sent), if given.
    pub known: Option<String>,
}

/// The header name standing for a MODSEQ search key.
pub fn marker() -> &'static str {
    static M: OnceLock<String> = OnceLock::new();
    M.get_or_init(|| {
        let letters: String = (0..24)
            .map(|_| char::from(b'a' + (rand::random::<u8>() % 26)))
            .collect();
        format!("X-Sx-Modseq-{letters}")
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Atom,
    Str,
    List,
}

#[derive(Debug, Clone)]
struct Span {
    kind: Kind,
    at: Range<usize>,
}

/// The tokens of `b[range]` at one level: atoms, quoted strings, literals and
/// whole parenthesized (or bracketed, for BODY[...]) groups.
fn spans(b: &[u8], range: Range<usize>) -> Option<Vec<Span>> {
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

fn text<'a>(b: &'a [u8], s: &Span) -> &'a str {
    std::str::from_utf8(b.get(s.at.clone()).unwrap_or_default()).unwrap_or("")
}

fn is(b: &[u8], s: Option<&Span>, word: &str) -> bool {
    s.is_some_and(|s| s.kind == Kind::Atom && text(b, s).eq_ignore_ascii_case(word))
}

/// The inside of a list span.
fn inner(s: &Span) -> Range<usize> {
    s.at.start + 1..s.at.end.saturating_sub(1)
}

/// The command without its RFC 7162 parts, and those parts; None when the
/// command has none (or they are malformed: it is then decoded as it is,
/// and refused as BAD).
pub fn take(buf: &[u8]) -> Option<(Vec<u8>, Cond)> {
    // Cheap test first: every form names one of these words.
    let upper: Vec<u8> = buf.iter().map(u8::to_ascii_uppercase).collect();
    let has = |w: &[u8]| upper.windows(w.len()).any(|x| x == w);
    if !(has(b"CONDSTORE") || has(b"QRESYNC") || has(b"MODSEQ") || has(b"SINCE")) {
        return None;
    }
    let top = spans(buf, 0..buf.len())?;
    let cmd_at = if is(buf, top.get(1), "UID") { 2 } else { 1 };
    let cmd = top.get(cmd_at)?;
    let word = text(buf, cmd).to_ascii_uppercase();
    match word.as_str() {
        "SELECT" | "EXAMINE" if cmd_at == 1 => select(buf, &top),
        "FETCH" => fetch(buf, &top, cmd_at),
        "STORE" => store(buf, &top, cmd_at),
        "SEARCH" => search(buf, &top, cmd_at),
        _ => None,
    }
}

/// `buf` with the spans at `cut` removed (each with the space before it).
fn without(buf: &[u8], cut: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut from = 0;
    for r in cut {
        let mut start = r.start;
        while start > from && buf[start - 1] == b' ' {
            start -= 1;
        }
        out.extend_from_slice(&buf[from..start]);
        from = r.end;
    }
    out.extend_from_slice(&buf[from..]);
    out
}

fn select(buf: &[u8], top: &[Span]) -> Option<(Vec<u8>, Cond)> {
    let params = top.get(3)?;
    if top.len() != 4 || params.kind != Kind::List {
        return None;
    }
    let p = spans(buf, inner(params))?;
    let mut cond = Cond::default();
    let mut k = 0;
    while k < p.len() {
        if is(buf, p.get(k), "CONDSTORE") {
            cond.select_condstore = true;
        } else if is(buf, p.get(k), "QRESYNC") {
            let list = p.get(k + 1).filter(|s| s.kind == Kind::List)?;
            let q = spans(buf, inner(list))?;
            let uidvalidity = text(buf, q.first()?).parse().ok().filter(|v| *v > 0)?;
            let modseq = text(buf, q.get(1)?).parse().ok().filter(|v| *v > 0)?;
            let known = match q.get(2) {
                Some(s) if s.kind == Kind::Atom => Some(text(buf, s).to_string()),
                Some(_) => return None,
                None => None,
            };
            cond.qresync = Some(Qresync {
                uidvalidity,
                modseq,
                known,
            });
            k += 1;
        } else {
            return None;
        }
        k += 1;
    }
    Some((without(buf, std::slice::from_ref(&params.at)), cond))
}

fn fetch(buf: &[u8], top: &[Span], cmd_at: usize) -> Option<(Vec<u8>, Cond)> {
    let items = top.get(cmd_at + 2)?;
    let mut cond = Cond::default();
    let mut cut = Vec::new();
    let mut replace_with_uid = None;
    match items.kind {
        Kind::Atom if text(buf, items).eq_ignore_ascii_case("MODSEQ") => {
            cond.fetch_modseq = true;
            replace_with_uid = Some(items.at.clone());
        }
        Kind::List => {
            let names = spans(buf, inner(items))?;
            let modseq: Vec<&Span> = names
                .iter()
                .filter(|s| is(buf, Some(s), "MODSEQ"))
                .collect();
            if !modseq.is_empty() {
                cond.fetch_modseq = true;
                if modseq.len() == names.len() {
                    replace_with_uid = Some(items.at.clone());
                } else {
                    cut.extend(modseq.iter().map(|s| s.at.clone()));
                }
            }
        }
        _ => {}
    }
    match top.get(cmd_at + 3) {
        Some(m) if m.kind == Kind::List && top.len() == cmd_at + 4 => {
            let mods = spans(buf, inner(m))?;
            let mut k = 0;
            while k < mods.len() {
                if is(buf, mods.get(k), "CHANGEDSINCE") {
                    let n: u64 = text(buf, mods.get(k + 1)?).parse().ok()?;
                    cond.changed_since = Some(n);
                    k += 1;
                } else if is(buf, mods.get(k), "VANISHED") {
                    cond.vanished = true;
                } else {
                    return None;
                }
                k += 1;
            }
            // RFC 7162 3.2.6: VANISHED only with CHANGEDSINCE.
            if cond.vanished && cond.changed_since.is_none() {
                return None;
            }
            cut.push(m.at.clone());
        }
        None if top.len() == cmd_at + 3 => {}
        _ => return None,
    }
    if cut.is_empty() && replace_with_uid.is_none() {
        return None;
    }
    cut.sort_by_key(|r| r.start);
    let mut out = without(buf, &cut);
    if let Some(r) = replace_with_uid {
        // Nothing cut lies before the item list, so its place is unchanged.
        out.splice(r, b"UID".iter().copied());
        cond.hide_uid = cmd_at == 1;
    }
    Some((out, cond))
}

fn store(buf: &[u8], top: &[Span], cmd_at: usize) -> Option<(Vec<u8>, Cond)> {
    let m = top.get(cmd_at + 2).filter(|s| s.kind == Kind::List)?;
    let mods = spans(buf, inner(m))?;
    if mods.len() != 2 || !is(buf, mods.first(), "UNCHANGEDSINCE") {
        return None;
    }
    let n: u64 = text(buf, mods.get(1)?).parse().ok()?;
    let cond = Cond {
        unchanged_since: Some(n),
        ..Default::default()
    };
    Some((without(buf, std::slice::from_ref(&m.at)), cond))
}

/// Arguments each search key takes (RFC 3501 6.4.4, RFC 5032 OLDER/YOUNGER).
fn search_args(key: &str) -> Option<usize> {
    Some(match key {
        "ALL" | "ANSWERED" | "DELETED" | "DRAFT" | "FLAGGED" | "NEW" | "OLD" | "RECENT"
        | "SEEN" | "UNANSWERED" | "UNDELETED" | "UNDRAFT" | "UNFLAGGED" | "UNSEEN" => 0,
        "BCC" | "BEFORE" | "BODY" | "CC" | "FROM" | "KEYWORD" | "LARGER" | "ON" | "SENTBEFORE"
        | "SENTON" | "SENTSINCE" | "SINCE" | "SMALLER" | "SUBJECT" | "TEXT" | "TO" | "UID"
        | "UNKEYWORD" | "OLDER" | "YOUNGER" | "CHARSET" => 1,
        "HEADER" => 2,
        _ => return None,
    })
}

fn search(buf: &[u8], top: &[Span], cmd_at: usize) -> Option<(Vec<u8>, Cond)> {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    modseq_keys(buf, top.get(cmd_at + 1..)?, &mut edits, 0)?;
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + 64);
    let mut from = 0;
    for (r, with) in &edits {
        out.extend_from_slice(&buf[from..r.start]);
        out.extend_from_slice(with.as_bytes());
        from = r.end;
    }
    out.extend_from_slice(&buf[from..]);
    let cond = Cond {
        search_modseq: true,
        ..Default::default()
    };
    Some((out, cond))
}

/// Find `MODSEQ [entry-name entry-type] n` keys among `keys`, skipping every
/// other key's arguments, and note their replacement.
fn modseq_keys(
    b: &[u8],
    keys: &[Span],
    edits: &mut Vec<(Range<usize>, String)>,
    depth: usize,
) -> Option<()> {
    if depth > 16 {
        return None;
    }
    let mut k = 0;
    while k < keys.len() {
        let s = &keys[k];
        if s.kind == Kind::List {
            modseq_keys(b, &spans(b, inner(s))?, edits, depth + 1)?;
            k += 1;
            continue;
        }
        if s.kind != Kind::Atom {
            return None;
        }
        let word = text(b, s).to_ascii_uppercase();
        match word.as_str() {
            "MODSEQ" => {
                // With an entry name (a quoted "/flags/..." string) and type.
                let has_entry = keys.get(k + 1).is_some_and(|e| e.kind == Kind::Str);
                let n_at = if has_entry { k + 3 } else { k + 1 };
                let n = keys.get(n_at)?;
                let value: u64 = text(b, n).parse().ok()?;
                edits.push((
                    s.at.start..n.at.end,
                    format!("HEADER {} \"{value}\"", marker()),
                ));
                k = n_at + 1;
            }
            "NOT" => {
                // The key after it is looked at in the next round.
                k += 1;
            }
            "OR" => k += 1,
            w => match search_args(w) {
                Some(n) => k += 1 + n,
                // A sequence set, or a key we do not know (decoding decides).
                None => k += 1,
            },
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(String, Cond)> {
        take(s.as_bytes()).map(|(b, c)| (String::from_utf8(b).unwrap(), c))
    }

    #[test]
    fn select_parameters() {
        let (b, c) = t("a SELECT INBOX (CONDSTORE)\r\n").unwrap();
        assert_eq!(b, "a SELECT INBOX\r\n");
        assert!(c.select_condstore);
        let (b, c) =
            t("a EXAMINE \"a b\" (QRESYNC (67890007 20050715194045000 41,43:211))\r\n").unwrap();
        assert_eq!(b, "a EXAMINE \"a b\"\r\n");
        let q = c.qresync.unwrap();
        assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
        assert_eq!(q.known.as_deref(), Some("41,43:211"));
        assert!(t("a SELECT INBOX (QRESYNC (0 1))\r\n").is_none());
        assert!(t("a SELECT INBOX (BOGUS)\r\n").is_none());
    }

    #[test]
    fn fetch_modifiers_and_item() {
        let (b, c) = t("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n").unwrap();
        assert_eq!(b, "a UID FETCH 1:* (FLAGS)\r\n");
        assert_eq!(c.changed_since, Some(12345));
        assert!(c.vanished);
        let (b, c) = t("a FETCH 1:3 (FLAGS MODSEQ BODY[HEADER.FIELDS (MODSEQ)])\r\n").unwrap();
        assert_eq!(b, "a FETCH 1:3 (FLAGS BODY[HEADER.FIELDS (MODSEQ)])\r\n");
        assert!(c.fetch_modseq && !c.hide_uid);
        let (b, c) = t("a FETCH 1 MODSEQ\r\n").unwrap();
        assert_eq!(b, "a FETCH 1 UID\r\n");
        assert!(c.fetch_modseq && c.hide_uid);
        let (b, c) = t("a UID FETCH 1 (MODSEQ)\r\n").unwrap();
        assert_eq!(b, "a UID FETCH 1 UID\r\n");
        assert!(!c.hide_uid);
        assert!(t("a FETCH 1 (FLAGS) (VANISHED)\r\n").is_none());
    }

    #[test]
    fn store_and_search() {
        let (b, c) = t("a STORE 1:3 (UNCHANGEDSINCE 99) +FLAGS (\\Seen)\r\n").unwrap();
        assert_eq!(b, "a STORE 1:3 +FLAGS (\\Seen)\r\n");
        assert_eq!(c.unchanged_since, Some(99));
        let (b, c) = t("a SEARCH OR NOT MODSEQ 720162338 SUBJECT MODSEQ\r\n").unwrap();
        assert!(c.search_modseq);
        assert_eq!(
            b,
            format!(
                "a SEARCH OR NOT HEADER {} \"720162338\" SUBJECT MODSEQ\r\n",
                marker()
            )
        );
        let (b, _) = t("a SEARCH (MODSEQ \"/flags/\\\\draft\" all 620162338)\r\n").unwrap();
        assert_eq!(
            b,
            format!("a SEARCH (HEADER {} \"620162338\")\r\n", marker())
        );
        assert!(t("a SEARCH SUBJECT MODSEQ\r\n").is_none());
        assert!(t("a SEARCH SINCE 1-Feb-1994\r\n").is_none());
    }
}
