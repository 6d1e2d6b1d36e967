//! The parts of SELECT, FETCH and STORE that imap-codec 1.0 does not decode,
//! taken out of the raw command before it is decoded: RFC 7162's (CONDSTORE,
//! QRESYNC: SELECT and EXAMINE parameters, FETCH modifiers CHANGEDSINCE and
//! VANISHED, the MODSEQ item, STORE's UNCHANGEDSINCE), RFC 3516's BINARY
//! FETCH items, RFC 8474's EMAILID and THREADID and RFC 8514's SAVEDATE. What is left is a plain RFC 3501 command; what was taken is
//! in `Parts`. A FETCH left with no item gets UID in their place, which the
//! answer then leaves out. (SEARCH keys are search_keys.rs's.)

use super::tokens::{inner, is, spans, text, without, Kind, Span};

/// What was taken out of a command.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parts {
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
    /// FETCH asked for BINARY items (RFC 3516), in the order asked.
    pub binary: Vec<Binary>,
    /// FETCH asked for EMAILID or THREADID (RFC 8474).
    pub email_id: bool,
    pub thread_id: bool,
    /// FETCH asked for SAVEDATE (RFC 8514).
    pub save_date: bool,
}

impl Parts {
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

/// The command without its RFC 7162 parts, and those parts; None when the
/// command has none (or they are malformed: it is then decoded as it is,
/// and refused as BAD).
pub fn take(buf: &[u8]) -> Option<(Vec<u8>, Parts)> {
    // Cheap test first: every form names one of these words.
    let has = |w: &[u8]| buf.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    if !(has(b"CONDSTORE")
        || has(b"QRESYNC")
        || has(b"MODSEQ")
        || has(b"SINCE ")
        || has(b"BINARY")
        || has(b"ID")
        || has(b"SAVEDATE"))
    {
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
        _ => None,
    }
}

fn select(buf: &[u8], top: &[Span]) -> Option<(Vec<u8>, Parts)> {
    let params = top.get(3)?;
    if top.len() != 4 || params.kind != Kind::List {
        return None;
    }
    let p = spans(buf, inner(params))?;
    let mut cond = Parts::default();
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

/// A FETCH item of RFC 3516: `BINARY[part]<partial>`, `BINARY.PEEK[...]`,
/// `BINARY.SIZE[part]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    /// Part numbers (empty: the whole message).
    pub part: Vec<u32>,
    /// `<origin.count>`.
    pub partial: Option<(u32, u32)>,
    pub peek: bool,
    pub size: bool,
}

impl Binary {
    fn parse(t: &str) -> Option<Binary> {
        let up = t.to_ascii_uppercase();
        let (rest, peek, size) = if let Some(r) = up.strip_prefix("BINARY.PEEK[") {
            (r, true, false)
        } else if let Some(r) = up.strip_prefix("BINARY.SIZE[") {
            (r, false, true)
        } else {
            (up.strip_prefix("BINARY[")?, false, false)
        };
        let (sec, after) = rest.split_once(']')?;
        let part = if sec.is_empty() {
            Vec::new()
        } else {
            sec.split('.')
                .map(|n| n.parse::<u32>().ok().filter(|v| *v > 0))
                .collect::<Option<Vec<u32>>>()?
        };
        let partial = match after {
            "" => None,
            p if !size => {
                let (o, c) = p.strip_prefix('<')?.strip_suffix('>')?.split_once('.')?;
                Some((o.parse().ok()?, c.parse().ok().filter(|c: &u32| *c > 0)?))
            }
            _ => return None,
        };
        Some(Binary {
            part,
            partial,
            peek,
            size,
        })
    }

    /// The name the answer carries: `BINARY[1.2]<0>` or `BINARY.SIZE[1.2]`.
    pub fn name(&self) -> String {
        let part: Vec<String> = self.part.iter().map(u32::to_string).collect();
        let part = part.join(".");
        if self.size {
            return format!("BINARY.SIZE[{part}]");
        }
        match self.partial {
            Some((o, _)) => format!("BINARY[{part}]<{o}>"),
            None => format!("BINARY[{part}]"),
        }
    }
}

/// What a FETCH item of ours is.
enum Ours {
    Modseq,
    Binary(Binary),
    /// RFC 8474.
    EmailId,
    ThreadId,
    /// RFC 8514.
    SaveDate,
}

fn ours(buf: &[u8], s: &Span) -> Option<Ours> {
    if s.kind != Kind::Atom {
        return None;
    }
    let t = text(buf, s);
    if t.eq_ignore_ascii_case("MODSEQ") {
        return Some(Ours::Modseq);
    }
    if t.eq_ignore_ascii_case("EMAILID") {
        return Some(Ours::EmailId);
    }
    if t.eq_ignore_ascii_case("THREADID") {
        return Some(Ours::ThreadId);
    }
    if t.eq_ignore_ascii_case("SAVEDATE") {
        return Some(Ours::SaveDate);
    }
    Binary::parse(t).map(Ours::Binary)
}

fn fetch(buf: &[u8], top: &[Span], cmd_at: usize) -> Option<(Vec<u8>, Parts)> {
    let items = top.get(cmd_at + 2)?;
    let mut cond = Parts::default();
    let mut cut = Vec::new();
    let mut replace_with_uid = None;
    let note = |o: Ours, cond: &mut Parts| match o {
        Ours::Modseq => cond.fetch_modseq = true,
        Ours::Binary(b) => cond.binary.push(b),
        Ours::EmailId => cond.email_id = true,
        Ours::ThreadId => cond.thread_id = true,
        Ours::SaveDate => cond.save_date = true,
    };
    match items.kind {
        Kind::Atom => {
            if let Some(o) = ours(buf, items) {
                note(o, &mut cond);
                replace_with_uid = Some(items.at.clone());
            }
        }
        Kind::List => {
            let names = spans(buf, inner(items))?;
            let mut mine = Vec::new();
            for n in &names {
                if let Some(o) = ours(buf, n) {
                    note(o, &mut cond);
                    mine.push(n.at.clone());
                }
            }
            if !mine.is_empty() {
                if mine.len() == names.len() {
                    replace_with_uid = Some(items.at.clone());
                } else {
                    cut.extend(mine);
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

fn store(buf: &[u8], top: &[Span], cmd_at: usize) -> Option<(Vec<u8>, Parts)> {
    let m = top.get(cmd_at + 2).filter(|s| s.kind == Kind::List)?;
    let mods = spans(buf, inner(m))?;
    if mods.len() != 2 || !is(buf, mods.first(), "UNCHANGEDSINCE") {
        return None;
    }
    let n: u64 = text(buf, mods.get(1)?).parse().ok()?;
    let cond = Parts {
        unchanged_since: Some(n),
        ..Default::default()
    };
    Some((without(buf, std::slice::from_ref(&m.at)), cond))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(String, Parts)> {
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
    fn binary_items() {
        let (b, c) = t("a FETCH 1 (FLAGS BINARY.PEEK[1.2]<0.10> BINARY.SIZE[1])\r\n").unwrap();
        assert_eq!(b, "a FETCH 1 (FLAGS)\r\n");
        assert_eq!(c.binary.len(), 2);
        assert_eq!(c.binary[0].part, [1, 2]);
        assert_eq!(c.binary[0].partial, Some((0, 10)));
        assert!(c.binary[0].peek && c.binary[1].size);
        assert_eq!(c.binary[0].name(), "BINARY[1.2]<0>");
        assert_eq!(c.binary[1].name(), "BINARY.SIZE[1]");
        let (b, c) = t("a FETCH 1 BINARY[]\r\n").unwrap();
        assert_eq!(b, "a FETCH 1 UID\r\n");
        assert!(c.hide_uid && c.binary[0].part.is_empty());
        assert!(t("a FETCH 1 (BINARY[0])\r\n").is_none());
        assert!(t("a FETCH 1 (BINARY.SIZE[1]<0.5>)\r\n").is_none());
    }

    #[test]
    fn store_modifier() {
        let (b, c) = t("a STORE 1:3 (UNCHANGEDSINCE 99) +FLAGS (\\Seen)\r\n").unwrap();
        assert_eq!(b, "a STORE 1:3 +FLAGS (\\Seen)\r\n");
        assert_eq!(c.unchanged_since, Some(99));
        assert!(t("a SEARCH SINCE 1-Feb-1994\r\n").is_none());
    }
}
