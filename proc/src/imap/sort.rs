//! SORT (RFC 5256 3), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267): what a
//! message is sorted by, the base subject (RFC 5256 2.1), and the raw
//! command turned into the SEARCH imap-codec decodes (`take`).
//!
//! Strings compare as i;ascii-casemap (ASCII letters folded), ties go to the
//! lower sequence number. DATE is the Date: header in UTC, or the internal
//! date when there is none; FROM/TO/CC the first address's mailbox (local
//! part); DISPLAYFROM/DISPLAYTO its display name, or the address when none.

use super::tokens::{inner, is, spans, text, Kind};
use mail_parser::{Address, HeaderValue, MessageParser};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criterion {
    pub key: Key,
    pub reverse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    OrderedSubject,
    References,
}

/// SORT or THREAD, as taken from the command.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    Sort {
        criteria: Vec<Criterion>,
        /// ESORT: RETURN options (upper case), answered as ESEARCH.
        ret: Option<Vec<String>>,
    },
    Thread(Algorithm),
}

/// What SORT and THREAD know of one message.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub seq: u32,
    pub uid: u32,
    pub internal: i64,
    pub size: u64,
    /// The Date: header in UTC seconds, or the internal date.
    pub sent: i64,
    pub subject: String,
    /// The subject had Re:/Fwd: or a (fwd) trailer (THREAD=REFERENCES 5).
    pub reply: bool,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    /// References, or the first In-Reply-To id when there are none.
    pub references: Vec<String>,
}

fn mailbox(a: Option<&Address<'_>>) -> String {
    a.and_then(|a| a.first())
        .and_then(|x| x.address.as_deref())
        .map(|e| e.rsplit_once('@').map(|(l, _)| l).unwrap_or(e))
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn display(a: Option<&Address<'_>>) -> String {
    let Some(x) = a.and_then(|a| a.first()) else {
        return String::new();
    };
    match x.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(n) => n.trim().to_ascii_uppercase(),
        None => x.address.as_deref().unwrap_or("").to_ascii_uppercase(),
    }
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

impl Facts {
    /// From the message's header block.
    pub fn of(header: &[u8], seq: u32, uid: u32, internal: i64, size: u64) -> Facts {
        let mut f = Facts {
            seq,
            uid,
            internal,
            size,
            sent: internal,
            ..Default::default()
        };
        let Some(m) = MessageParser::default().parse_headers(header) else {
            return f;
        };
        if let Some(d) = m.date() {
            f.sent = d.to_timestamp();
        }
        let (base, reply) = base_subject(m.subject().unwrap_or(""));
        f.subject = base.to_ascii_uppercase();
        f.reply = reply;
        f.from = mailbox(m.from());
        f.to = mailbox(m.to());
        f.cc = mailbox(m.cc());
        f.display_from = display(m.from());
        f.display_to = display(m.to());
        f.message_id = m.message_id().map(str::to_string);
        f.references = ids(m.references());
        if f.references.is_empty() {
            f.references = ids(m.in_reply_to()).into_iter().take(1).collect();
        }
        f
    }
}

fn compare(a: &Facts, b: &Facts, criteria: &[Criterion]) -> Ordering {
    for c in criteria {
        let o = match c.key {
            Key::Arrival => a.internal.cmp(&b.internal),
            Key::Date => a.sent.cmp(&b.sent),
            Key::Size => a.size.cmp(&b.size),
            Key::Subject => a.subject.cmp(&b.subject),
            Key::From => a.from.cmp(&b.from),
            Key::To => a.to.cmp(&b.to),
            Key::Cc => a.cc.cmp(&b.cc),
            Key::DisplayFrom => a.display_from.cmp(&b.display_from),
            Key::DisplayTo => a.display_to.cmp(&b.display_to),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq.cmp(&b.seq)
}

pub fn sort(facts: &mut [Facts], criteria: &[Criterion]) {
    facts.sort_by(|a, b| compare(a, b, criteria));
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    let head = s.get(..p.len())?;
    head.eq_ignore_ascii_case(p).then(|| &s[p.len()..])
}

/// `[` *BLOBCHAR `]` *WSP at the start of `s`: what follows it.
fn after_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    let rest = rest[end..].strip_prefix(']')?;
    Some(rest.trim_start_matches([' ', '\t']))
}

/// *subj-blob subj-refwd at the start of `s`: what follows it.
fn after_leader(s: &str) -> Option<&str> {
    let mut t = s;
    while let Some(r) = after_blob(t) {
        t = r;
    }
    let t = strip_prefix_ci(t, "re")
        .or_else(|| strip_prefix_ci(t, "fwd"))
        .or_else(|| strip_prefix_ci(t, "fw"))?;
    let t = t.trim_start_matches([' ', '\t']);
    let t = after_blob(t).unwrap_or(t);
    t.strip_prefix(':')
}

/// RFC 5256 2.1: the subject without Re:, Fwd:, list tags and (fwd)
/// trailers, whitespace runs made one space; and whether anything of a
/// reply or forward was taken off.
pub fn base_subject(subject: &str) -> (String, bool) {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) trailers: "(fwd)" and white space.
        loop {
            let t = s.trim_end();
            match t.len().checked_sub(5).and_then(|i| t.get(i..)) {
                Some(end) if end.eq_ignore_ascii_case("(fwd)") => {
                    s = t[..t.len() - 5].to_string();
                    reply = true;
                }
                _ => {
                    s = t.to_string();
                    break;
                }
            }
        }
        // (3)-(5): leaders, then a blob that is not all there is.
        loop {
            let before = s.len();
            let t = s.trim_start();
            let t = match after_leader(t) {
                Some(r) => {
                    reply = true;
                    r
                }
                None => t,
            };
            let t = match after_blob(t) {
                Some(r) if !r.trim().is_empty() => r,
                _ => t,
            };
            s = t.trim_start().to_string();
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: ... ]" around everything.
        if let Some(inner) = strip_prefix_ci(&s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            s = inner.to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

/// `tag [UID] SORT [RETURN (...)] (criteria) charset keys` or `tag [UID]
/// THREAD algorithm charset keys`, as `tag [UID] SEARCH CHARSET charset
/// keys` and the order asked for. None for anything else or a malformed
/// head (decoding then refuses it).
pub fn take(buf: &[u8]) -> Option<(Vec<u8>, Order)> {
    let upper: Vec<u8> = buf.iter().take(64).map(u8::to_ascii_uppercase).collect();
    let has = |w: &[u8]| upper.windows(w.len()).any(|x| x == w);
    if !has(b" SORT ") && !has(b" THREAD ") {
        return None;
    }
    let top = spans(buf, 0..buf.len())?;
    let cmd_at = if is(buf, top.get(1), "UID") { 2 } else { 1 };
    let word = text(buf, top.get(cmd_at)?).to_ascii_uppercase();
    let (order, charset_at) = match word.as_str() {
        "SORT" => {
            let mut k = cmd_at + 1;
            let mut ret = None;
            if is(buf, top.get(k), "RETURN") {
                let list = top.get(k + 1).filter(|s| s.kind == Kind::List)?;
                let words: Vec<String> = spans(buf, inner(list))?
                    .iter()
                    .map(|s| text(buf, s).to_ascii_uppercase())
                    .collect();
                ret = Some(super::ext::return_options(&words, false)?);
                k += 2;
            }
            let list = top.get(k).filter(|s| s.kind == Kind::List)?;
            let mut criteria = Vec::new();
            let mut reverse = false;
            for s in spans(buf, inner(list))? {
                let key = match text(buf, &s).to_ascii_uppercase().as_str() {
                    "REVERSE" if !reverse => {
                        reverse = true;
                        continue;
                    }
                    "ARRIVAL" => Key::Arrival,
                    "CC" => Key::Cc,
                    "DATE" => Key::Date,
                    "FROM" => Key::From,
                    "SIZE" => Key::Size,
                    "SUBJECT" => Key::Subject,
                    "TO" => Key::To,
                    "DISPLAYFROM" => Key::DisplayFrom,
                    "DISPLAYTO" => Key::DisplayTo,
                    _ => return None,
                };
                criteria.push(Criterion { key, reverse });
                reverse = false;
            }
            if criteria.is_empty() || reverse {
                return None;
            }
            (Order::Sort { criteria, ret }, k + 1)
        }
        "THREAD" => {
            let algo = match text(buf, top.get(cmd_at + 1)?)
                .to_ascii_uppercase()
                .as_str()
            {
                "ORDEREDSUBJECT" => Algorithm::OrderedSubject,
                "REFERENCES" => Algorithm::References,
                _ => return None,
            };
            (Order::Thread(algo), cmd_at + 2)
        }
        _ => return None,
    };
    let charset = top.get(charset_at)?;
    let keys_from = top.get(charset_at + 1)?.at.start;
    let mut out = buf.get(..top.get(cmd_at)?.at.start)?.to_vec();
    out.extend_from_slice(b"SEARCH CHARSET ");
    out.extend_from_slice(buf.get(charset.at.clone())?);
    out.push(b' ');
    out.extend_from_slice(buf.get(keys_from..)?);
    Some((out, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_of_rfc_5256() {
        for (s, want, reply) in [
            ("Re: hello", "hello", true),
            ("RE:  Re:hello  world  ", "hello world", true),
            ("Fwd: [list] Re: x (fwd)", "x", true),
            ("[list] topic", "topic", false),
            ("[list]", "[list]", false),
            ("[Fwd: Re: a thing]", "a thing", true),
            ("Re[2]: counted", "counted", true),
            ("Fw: short", "short", true),
            ("Reply all", "Reply all", false),
            ("", "", false),
        ] {
            assert_eq!(base_subject(s), (want.to_string(), reply), "{s:?}");
        }
    }

    #[test]
    fn sort_and_thread_become_search() {
        let (b, o) = take(b"a UID SORT (REVERSE DATE SUBJECT) UTF-8 SUBJECT x\r\n").unwrap();
        assert_eq!(b, b"a UID SEARCH CHARSET UTF-8 SUBJECT x\r\n");
        let Order::Sort { criteria, ret } = o else {
            panic!()
        };
        assert_eq!(criteria.len(), 2);
        assert!(criteria[0].reverse && !criteria[1].reverse);
        assert!(ret.is_none());
        let (b, o) = take(b"t SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII ALL\r\n").unwrap();
        assert_eq!(b, b"t SEARCH CHARSET US-ASCII ALL\r\n");
        assert!(matches!(o, Order::Sort { ret: Some(r), .. } if r == ["MIN", "COUNT"]));
        let (b, o) = take(b"t THREAD REFERENCES UTF-8 (ALL)\r\n").unwrap();
        assert_eq!(b, b"t SEARCH CHARSET UTF-8 (ALL)\r\n");
        assert_eq!(o, Order::Thread(Algorithm::References));
        assert!(take(b"t SORT (REVERSE) UTF-8 ALL\r\n").is_none());
        assert!(take(b"t SORT (BOGUS) UTF-8 ALL\r\n").is_none());
        assert!(take(b"t THREAD X UTF-8 ALL\r\n").is_none());
        assert!(take(b"t SEARCH SUBJECT SORT\r\n").is_none());
    }
}
