//! Commands imap-codec 1.0 does not parse, read from the raw command: ID
//! (RFC 2971), NAMESPACE (RFC 2342), UID EXPUNGE (RFC 4315) and the
//! LIST-EXTENDED forms (RFC 5258: selection options, several patterns,
//! RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (...))), STATUS items it
//! does not know, and CREATE with USE (RFC 6154).

use imap_codec::imap_types::sequence::SequenceSet;

#[derive(Default, Clone, Debug)]
pub struct ListOpts {
    pub subscribed: bool,
    /// RFC 5258 RECURSIVEMATCH: a name that does not meet the selection but
    /// has a descendant that does is listed with CHILDINFO.
    pub recursive: bool,
    pub special_use: bool,
    pub return_subscribed: bool,
    pub status: Vec<String>,
}

#[derive(Debug)]
pub struct ListCmd {
    pub reference: String,
    pub patterns: Vec<String>,
    pub opts: ListOpts,
}

#[derive(Debug)]
pub enum Ext {
    Id(String),
    Namespace(String),
    UidExpunge(String, SequenceSet),
    List(String, ListCmd),
    /// STATUS with an item imap-codec does not know (RFC 8438 SIZE): the
    /// mailbox and the item names, upper case.
    Status(String, String, Vec<String>),
    /// CREATE with RFC 6154 `(USE (...))`: the name and the attributes.
    Create(String, String, Vec<String>),
    /// RFC 5267 CANCELUPDATE: the tags of the searches to stop updating.
    CancelUpdate(String, Vec<String>),
    /// RFC 4467 GENURLAUTH: (URL, mechanism) pairs.
    GenUrlAuth(String, Vec<(String, String)>),
    /// RFC 4467 URLFETCH: the URLs.
    UrlFetch(String, Vec<String>),
    /// RFC 4467 RESETKEY: a mailbox (all when None) and mechanisms.
    ResetKey(String, Option<String>, Vec<String>),
}

/// STATUS items this server answers.
pub const STATUS_ITEMS: [&str; 10] = [
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",
    "DELETED-STORAGE",
    "SIZE",
    "HIGHESTMODSEQ",
    "MAILBOXID",
];

/// `tag [UID] SEARCH RETURN (opts) criteria`: the command without the RETURN
/// part, and the options (upper case; none means ALL, RFC 4731 3.1). None
/// for anything else, or options this server does not know.
pub fn search_return(buf: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    let upper: Vec<u8> = buf.iter().take(256).map(u8::to_ascii_uppercase).collect();
    let at = upper.windows(15).position(|w| w == b" SEARCH RETURN ")? + 7;
    // Only as the command itself: tag, optional UID, SEARCH.
    let head = std::str::from_utf8(upper.get(..at)?).ok()?;
    let words: Vec<&str> = head.split_whitespace().collect();
    if !(words.len() == 2 || (words.len() == 3 && words[1] == "UID")) {
        return None;
    }
    let open = at + " RETURN ".len();
    if buf.get(open) != Some(&b'(') {
        return None;
    }
    let close = open + buf.get(open..)?.iter().position(|&b| b == b')')?;
    let words: Vec<String> = std::str::from_utf8(buf.get(open + 1..close)?)
        .ok()?
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let opts = return_options(&words, true)?;
    let mut plain = buf.get(..at)?.to_vec();
    plain.extend_from_slice(buf.get(close + 1..)?);
    Some((plain, opts))
}

/// RETURN options of SEARCH (RFC 4731, RFC 5182's SAVE when `save`) and
/// of SORT, with RFC 5267's CONTEXT, UPDATE and `PARTIAL lo:hi` (one string,
/// `lo <= hi`); None when one is unknown or malformed, or when both ALL and
/// PARTIAL are asked for (RFC 5267 4.4).
pub fn return_options(words: &[String], save: bool) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "MIN" | "MAX" | "ALL" | "COUNT" | "CONTEXT" | "UPDATE" => out.push(w.clone()),
            "SAVE" if save => out.push(w.clone()),
            "PARTIAL" => {
                let (a, b) = it.next()?.split_once(':')?;
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a == 0 || b == 0 {
                    return None;
                }
                out.push(format!("PARTIAL {}:{}", a.min(b), a.max(b)));
            }
            _ => return None,
        }
    }
    let windows = out
        .iter()
        .filter(|o| *o == "ALL" || o.starts_with("PARTIAL"))
        .count();
    (windows <= 1).then_some(out)
}

/// The tag of a command line, for a BAD reply ("*" when there is none).
pub fn tag_of(buf: &[u8]) -> String {
    let t: String = buf
        .iter()
        .take_while(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'{' | b'(' | b')' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
        .map(|b| *b as char)
        .collect();
    if t.is_empty() {
        "*".to_string()
    } else {
        t
    }
}

/// The command's name, upper case, after its tag and a `UID` prefix (from
/// the first 64 bytes; empty when there is none).
pub fn command_word(buf: &[u8]) -> String {
    let head = &buf[..buf.len().min(64)];
    let mut words = head
        .split(|b| matches!(b, b' ' | b'\r' | b'\n'))
        .filter(|w| !w.is_empty());
    let _tag = words.next();
    let mut w = words.next().unwrap_or_default();
    if w.eq_ignore_ascii_case(b"UID") {
        w = words.next().unwrap_or_default();
    }
    String::from_utf8_lossy(w).to_ascii_uppercase()
}

/// Whether a command line is an APPEND (`tag APPEND ...`), the one command
/// whose literal may be message-sized.
pub fn is_append(line: &[u8]) -> bool {
    let mut words = line.split(|b| *b == b' ');
    let _tag = words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// The literal a line announces at its end (`{N}` or `{N+}` then CRLF or LF):
/// its length and whether it is synchronizing (RFC 3501 4.3, RFC 7888).
pub fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let (inner, sync) = match inner.strip_suffix(b"+") {
        Some(i) => (i, false),
        None => (inner, true),
    };
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = inner.get(open + 1..)?;
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    // RFC 3501: number = 1*DIGIT, a 32-bit value.
    (n <= u64::from(u32::MAX)).then_some((n, sync))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Atom(String),
    Str(String),
    List(Vec<Tok>),
}

impl Tok {
    pub fn text(&self) -> Option<&str> {
        match self {
            Tok::Atom(s) | Tok::Str(s) => Some(s),
            Tok::List(_) => None,
        }
    }
}

/// Atoms, quoted strings, literals and parenthesized lists of one command.
pub fn tokens(b: &[u8], i: &mut usize, depth: usize) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    while *i < b.len() {
        match b[*i] {
            b' ' | b'\r' | b'\n' => *i += 1,
            b'(' => {
                if depth > 8 {
                    return None;
                }
                *i += 1;
                out.push(Tok::List(tokens(b, i, depth + 1)?));
            }
            b')' => {
                *i += 1;
                return if depth > 0 { Some(out) } else { None };
            }
            b'"' => {
                *i += 1;
                let mut s = Vec::new();
                loop {
                    match *b.get(*i)? {
                        b'"' => break,
                        b'\\' => {
                            *i += 1;
                            s.push(*b.get(*i)?);
                        }
                        c => s.push(c),
                    }
                    *i += 1;
                }
                *i += 1;
                out.push(Tok::Str(String::from_utf8_lossy(&s).into_owned()));
            }
            b'{' => {
                let close = b[*i..].iter().position(|c| *c == b'}')? + *i;
                let n: usize = std::str::from_utf8(&b[*i + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 3;
                // A literal's length is the client's number: it may not overflow.
                let end = start.checked_add(n)?;
                let data = b.get(start..end)?;
                out.push(Tok::Str(String::from_utf8_lossy(data).into_owned()));
                *i = end;
            }
            _ => {
                let start = *i;
                while *i < b.len() && !matches!(b[*i], b' ' | b'(' | b')' | b'\r' | b'\n' | b'"') {
                    *i += 1;
                }
                out.push(Tok::Atom(
                    String::from_utf8_lossy(&b[start..*i]).into_owned(),
                ));
            }
        }
    }
    if depth == 0 {
        Some(out)
    } else {
        None
    }
}

fn upper(t: Option<&Tok>) -> String {
    t.and_then(Tok::text).unwrap_or("").to_ascii_uppercase()
}

pub fn parse(buf: &[u8]) -> Option<Ext> {
    let mut i = 0;
    let toks = tokens(buf, &mut i, 0)?;
    let tag = toks.first()?.text()?.to_string();
    if tag_of(tag.as_bytes()) != tag {
        return None;
    }
    match upper(toks.get(1)).as_str() {
        "ID" if toks.len() == 3 => Some(Ext::Id(tag)),
        "NAMESPACE" if toks.len() == 2 => Some(Ext::Namespace(tag)),
        "UID" if upper(toks.get(2)) == "EXPUNGE" && toks.len() == 4 => {
            let set: SequenceSet = toks[3].text()?.parse().ok()?;
            Some(Ext::UidExpunge(tag, set))
        }
        "LIST" => list(tag, &toks[2..]),
        "GENURLAUTH" if toks.len() > 2 && toks.len() % 2 == 0 => {
            let pairs = toks[2..]
                .chunks(2)
                .map(|p| Some((p[0].text()?.to_string(), p[1].text()?.to_string())))
                .collect::<Option<Vec<_>>>()?;
            Some(Ext::GenUrlAuth(tag, pairs))
        }
        "URLFETCH" if toks.len() > 2 => {
            let urls = toks[2..]
                .iter()
                .map(|t| t.text().map(str::to_string))
                .collect::<Option<Vec<_>>>()?;
            Some(Ext::UrlFetch(tag, urls))
        }
        "RESETKEY" => {
            let mut rest = toks[2..].iter().map(|t| t.text().map(str::to_string));
            let mailbox = match rest.next() {
                None => None,
                Some(m) => {
                    let m = m?;
                    Some(if super::names::is_inbox(&m) {
                        "INBOX".to_string()
                    } else {
                        m
                    })
                }
            };
            let mechs = rest.collect::<Option<Vec<_>>>()?;
            Some(Ext::ResetKey(tag, mailbox, mechs))
        }
        "CANCELUPDATE" if toks.len() > 2 => {
            let tags = toks[2..]
                .iter()
                .map(|t| t.text().map(str::to_string))
                .collect::<Option<Vec<_>>>()?;
            Some(Ext::CancelUpdate(tag, tags))
        }
        "CREATE" if toks.len() == 4 => {
            let name = toks[2].text()?.to_string();
            let Tok::List(params) = &toks[3] else {
                return None;
            };
            match params.as_slice() {
                [u, Tok::List(uses)] if upper(Some(u)) == "USE" => {
                    let uses = uses
                        .iter()
                        .map(|t| t.text().map(str::to_string))
                        .collect::<Option<Vec<_>>>()?;
                    Some(Ext::Create(tag, name, uses))
                }
                _ => None,
            }
        }
        "STATUS" if toks.len() == 4 => {
            let name = toks[2].text()?.to_string();
            let Tok::List(items) = &toks[3] else {
                return None;
            };
            let items: Vec<String> = items.iter().map(|t| upper(Some(t))).collect();
            if items.is_empty() || !items.iter().all(|i| STATUS_ITEMS.contains(&i.as_str())) {
                return None;
            }
            Some(Ext::Status(tag, name, items))
        }
        _ => None,
    }
}

fn list(tag: String, mut t: &[Tok]) -> Option<Ext> {
    let mut opts = ListOpts::default();
    if let Some(Tok::List(sel)) = t.first() {
        for s in sel {
            match upper(Some(s)).as_str() {
                "SUBSCRIBED" => {
                    opts.subscribed = true;
                    opts.return_subscribed = true;
                }
                "SPECIAL-USE" => opts.special_use = true,
                "RECURSIVEMATCH" => opts.recursive = true,
                "REMOTE" => {}
                _ => return None,
            }
        }
        // RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) is BAD.
        if opts.recursive && !opts.subscribed && !opts.special_use {
            return None;
        }
        t = &t[1..];
    }
    let reference = t.first()?.text()?.to_string();
    let patterns = match t.get(1)? {
        Tok::List(ps) => ps
            .iter()
            .map(|p| p.text().map(str::to_string))
            .collect::<Option<Vec<_>>>()?,
        p => vec![p.text()?.to_string()],
    };
    let rest = &t[2..];
    if !rest.is_empty() {
        if upper(rest.first()) != "RETURN" || rest.len() != 2 {
            return None;
        }
        let Tok::List(ret) = &rest[1] else {
            return None;
        };
        let mut k = 0;
        while k < ret.len() {
            match upper(ret.get(k)).as_str() {
                "SUBSCRIBED" => opts.return_subscribed = true,
                "CHILDREN" | "SPECIAL-USE" => {}
                "STATUS" => {
                    let Some(Tok::List(items)) = ret.get(k + 1) else {
                        return None;
                    };
                    opts.status = items.iter().map(|x| upper(Some(x))).collect();
                    k += 1;
                }
                _ => return None,
            }
            k += 1;
        }
    }
    Some(Ext::List(
        tag,
        ListCmd {
            reference,
            patterns,
            opts,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extensions() {
        assert!(matches!(parse(b"a1 ID (\"name\" \"x\")\r\n"), Some(Ext::Id(t)) if t == "a1"));
        assert!(matches!(parse(b"a1 ID NIL\r\n"), Some(Ext::Id(_))));
        assert!(matches!(
            parse(b"a2 NAMESPACE\r\n"),
            Some(Ext::Namespace(_))
        ));
        assert!(matches!(
            parse(b"a3 UID EXPUNGE 1:5,7\r\n"),
            Some(Ext::UidExpunge(..))
        ));
        let Some(Ext::List(_, l)) = parse(b"a4 LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n") else {
            panic!()
        };
        assert!(l.opts.subscribed);
        assert_eq!(l.patterns, vec!["*", "%"]);
        assert_eq!(l.opts.status, vec!["MESSAGES", "UNSEEN"]);
        assert!(parse(b"a5 FOO\r\n").is_none());
        assert_eq!(tag_of(b"abc LIST"), "abc");
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_at_end(b"a LOGIN {5}\r\n"), Some((5, true)));
        assert_eq!(literal_at_end(b"a LOGIN {5+}\r\n"), Some((5, false)));
        assert_eq!(literal_at_end(b"a LOGIN {5}\n"), Some((5, true)));
        assert_eq!(literal_at_end(b"a APPEND x ~{12}\r\n"), Some((12, true)));
        assert_eq!(literal_at_end(b"a LOGIN \"{5}\"\r\n"), None);
        assert_eq!(literal_at_end(b"a LOGIN {}\r\n"), None);
        assert_eq!(literal_at_end(b"a LOGIN {5x}\r\n"), None);
        assert_eq!(literal_at_end(b"a LOGIN {4294967296}\r\n"), None);
        assert_eq!(literal_at_end(b"a LOGIN {99999999999999}\r\n"), None);
        assert_eq!(literal_at_end(b"a NOOP\r\n"), None);
        assert_eq!(literal_at_end(b"{5}"), None);
    }

    #[test]
    fn command_words() {
        assert_eq!(command_word(b"a uid fetch 1 (FLAGS)\r\n"), "FETCH");
        assert_eq!(command_word(b"a SELECT INBOX (CONDSTORE)\r\n"), "SELECT");
        assert_eq!(command_word(b"a NOOP\r\n"), "NOOP");
        assert_eq!(command_word(b"a\r\n"), "");
    }

    #[test]
    fn search_return_is_split_off() {
        let (plain, opts) =
            search_return(b"a UID SEARCH RETURN (min COUNT) SUBJECT x\r\n").unwrap();
        assert_eq!(plain, b"a UID SEARCH SUBJECT x\r\n");
        assert_eq!(opts, ["MIN", "COUNT"]);
        let (plain, opts) = search_return(b"b search return () ALL\r\n").unwrap();
        assert_eq!(plain, b"b search ALL\r\n");
        assert!(opts.is_empty());
        // RFC 5182 SAVE is one of them.
        let (_, opts) = search_return(b"c SEARCH RETURN (SAVE) ALL\r\n").unwrap();
        assert_eq!(opts, ["SAVE"]);
        assert!(search_return(b"c SEARCH RETURN (BOGUS) ALL\r\n").is_none());
        assert!(search_return(b"d SEARCH SUBJECT \" SEARCH RETURN (\"\r\n").is_none());
        assert!(search_return(b"e SEARCH RETURN (MIN\r\n").is_none());
    }
}
