//! The RFC 7162 (CONDSTORE, QRESYNC) parts of commands that imap-codec 1.0
//! does not decode, taken out of the raw command before it is decoded: SELECT
//! and EXAMINE parameters, FETCH modifiers (CHANGEDSINCE, VANISHED) and the
//! MODSEQ item, STORE's UNCHANGEDSINCE. What is left is a plain RFC 3501
//! command; what was taken is in `Cond`. (SEARCH's MODSEQ key is
//! search_keys.rs's.)

use super::tokens::{inner, is, spans, text, without, Kind, Span};

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

/// The command without its RFC 7162 parts, and those parts; None when the
/// command has none (or they are malformed: it is then decoded as it is,
/// and refused as BAD).
pub fn take(buf: &[u8]) -> Option<(Vec<u8>, Cond)> {
    // Cheap test first: every form names one of these words.
    let upper: Vec<u8> = buf.iter().map(u8::to_ascii_uppercase).collect();
    let has = |w: &[u8]| upper.windows(w.len()).any(|x| x == w);
    if !(has(b"CONDSTORE") || has(b"QRESYNC") || has(b"MODSEQ") || has(b"SINCE ")) {
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
    fn store_modifier() {
        let (b, c) = t("a STORE 1:3 (UNCHANGEDSINCE 99) +FLAGS (\\Seen)\r\n").unwrap();
        assert_eq!(b, "a STORE 1:3 +FLAGS (\\Seen)\r\n");
        assert_eq!(c.unchanged_since, Some(99));
        assert!(t("a SEARCH SINCE 1-Feb-1994\r\n").is_none());
    }
}
