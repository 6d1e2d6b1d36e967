//! SEARCH keys imap-codec 1.0 does not decode, and the saved search result,
//! rewritten in the raw command before it is decoded:
//!
//! - `MODSEQ [entry-name entry-type] n` (RFC 7162 3.1.5), `OLDER n` and
//!   `YOUNGER n` (RFC 5032 WITHIN), `EMAILID id` and `THREADID id` (RFC
//!   8474), `SAVEDBEFORE/SAVEDON/SAVEDSINCE date` and `SAVEDATESUPPORTED`
//!   (RFC 8514) become `HEADER <marker> "n"`, where the
//!   marker is a field name with random letters chosen at start: no client
//!   can send it, and search.rs reads it back as the test it stands for.
//! - `$` (RFC 5182 SEARCHRES), the last result saved by `SEARCH RETURN
//!   (SAVE)`: as the message set of FETCH, STORE, COPY, MOVE and UID EXPUNGE
//!   it becomes the saved messages' UIDs or sequence numbers; as a search key,
//!   `UID <uids>`. An empty result becomes UID 4294967295, which no message
//!   has (RFC 3501 UIDs are below it in practice), so the command touches
//!   nothing.
//!
//! Search programs are walked key by key with each key's arity, so a `$` or
//! `MODSEQ` that is another key's argument (`SUBJECT MODSEQ`) is left alone.

use super::tokens::{inner, is, spans, text, Kind, Span};
use std::ops::Range;
use std::sync::OnceLock;

/// The stand-in for an empty saved result.
pub const NO_MESSAGE: &str = "4294967295";

/// A search test that has no imap-codec key of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marked {
    Modseq,
    Older,
    Younger,
    /// RFC 8474 EMAILID and THREADID.
    EmailId,
    ThreadId,
    /// RFC 8514 SAVEDBEFORE, SAVEDON, SAVEDSINCE, SAVEDATESUPPORTED.
    SavedBefore,
    SavedOn,
    SavedSince,
    SaveDateSupported,
}

impl Marked {
    fn prefix(self) -> &'static str {
        match self {
            Marked::Modseq => "X-Sx-Modseq-",
            Marked::Older => "X-Sx-Older-",
            Marked::Younger => "X-Sx-Younger-",
            Marked::EmailId => "X-Sx-Emailid-",
            Marked::ThreadId => "X-Sx-Threadid-",
            Marked::SavedBefore => "X-Sx-Savedbefore-",
            Marked::SavedOn => "X-Sx-Savedon-",
            Marked::SavedSince => "X-Sx-Savedsince-",
            Marked::SaveDateSupported => "X-Sx-Savedatesupported-",
        }
    }

    /// The header field name standing for this test.
    pub fn marker(self) -> String {
        format!("{}{}", self.prefix(), secret())
    }

    /// Which test a HEADER field name stands for, if it is one of ours.
    pub fn of(name: &str) -> Option<Marked> {
        [
            Marked::Modseq,
            Marked::Older,
            Marked::Younger,
            Marked::EmailId,
            Marked::ThreadId,
            Marked::SavedBefore,
            Marked::SavedOn,
            Marked::SavedSince,
            Marked::SaveDateSupported,
        ]
        .into_iter()
        .find(|m| {
            name.strip_prefix(m.prefix())
                .is_some_and(|rest| rest == secret())
        })
    }
}

fn secret() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        (0..24)
            .map(|_| char::from(b'a' + (rand::random::<u8>() % 26)))
            .collect()
    })
}

/// The saved result (RFC 5182) in both forms a command may need.
#[derive(Debug, Clone)]
pub struct Saved {
    pub uids: String,
    pub seqs: String,
}

/// What a rewrite found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    /// A MODSEQ key was used (CONDSTORE turns on; the answer says MODSEQ).
    pub modseq: bool,
    /// `$` was used.
    pub saved: bool,
}

/// Arguments each search key takes (RFC 3501 6.4.4, RFC 5032).
fn arity(key: &str) -> Option<usize> {
    Some(match key {
        "ALL" | "ANSWERED" | "DELETED" | "DRAFT" | "FLAGGED" | "NEW" | "OLD" | "RECENT"
        | "SEEN" | "UNANSWERED" | "UNDELETED" | "UNDRAFT" | "UNFLAGGED" | "UNSEEN" | "NOT"
        | "OR" => 0,
        "BCC" | "BEFORE" | "BODY" | "CC" | "FROM" | "KEYWORD" | "LARGER" | "ON" | "SENTBEFORE"
        | "SENTON" | "SENTSINCE" | "SINCE" | "SMALLER" | "SUBJECT" | "TEXT" | "TO" | "UID"
        | "UNKEYWORD" | "CHARSET" => 1,
        "HEADER" => 2,
        _ => return None,
    })
}

/// The command with its extension keys and `$` rewritten, and what was
/// found; None when there is nothing to rewrite. `saved` is the selected
/// mailbox's saved result (None: nothing selected, `$` is left to fail).
pub fn rewrite(buf: &[u8], saved: Option<&Saved>) -> Option<(Vec<u8>, Found)> {
    let has = |w: &[u8]| buf.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    if !(has(b"MODSEQ")
        || has(b"OLDER")
        || has(b"YOUNGER")
        || has(b"EMAILID")
        || has(b"THREADID")
        || has(b"SAVED")
        || buf.contains(&b'$'))
    {
        return None;
    }
    let top = spans(buf, 0..buf.len())?;
    let uid = is(buf, top.get(1), "UID");
    let cmd_at = if uid { 2 } else { 1 };
    let word = text(buf, top.get(cmd_at)?).to_ascii_uppercase();
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut found = Found::default();
    match word.as_str() {
        "SEARCH" => keys(
            buf,
            top.get(cmd_at + 1..)?,
            saved,
            &mut edits,
            &mut found,
            0,
        )?,
        "FETCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" => {
            let set = top.get(cmd_at + 1)?;
            if set.kind == Kind::Atom && text(buf, set) == "$" {
                let s = saved?;
                let with = if uid { &s.uids } else { &s.seqs };
                edits.push((set.at.clone(), with.clone()));
                found.saved = true;
            }
        }
        _ => {}
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + 64);
    let mut from = 0;
    for (r, with) in &edits {
        out.extend_from_slice(buf.get(from..r.start)?);
        out.extend_from_slice(with.as_bytes());
        from = r.end;
    }
    out.extend_from_slice(buf.get(from..)?);
    Some((out, found))
}

fn keys(
    b: &[u8],
    keys_: &[Span],
    saved: Option<&Saved>,
    edits: &mut Vec<(Range<usize>, String)>,
    found: &mut Found,
    depth: usize,
) -> Option<()> {
    if depth > 16 {
        return None;
    }
    let mut k = 0;
    while k < keys_.len() {
        let s = &keys_[k];
        match s.kind {
            Kind::List => {
                keys(b, &spans(b, inner(s))?, saved, edits, found, depth + 1)?;
                k += 1;
                continue;
            }
            Kind::Str => return None,
            Kind::Atom => {}
        }
        let word = text(b, s).to_ascii_uppercase();
        match word.as_str() {
            "$" => {
                let s_ = saved?;
                edits.push((s.at.clone(), format!("UID {}", s_.uids)));
                found.saved = true;
                k += 1;
            }
            "MODSEQ" => {
                // With an entry name (a quoted "/flags/..." string) and type.
                let has_entry = keys_.get(k + 1).is_some_and(|e| e.kind == Kind::Str);
                let n_at = if has_entry { k + 3 } else { k + 1 };
                let n = keys_.get(n_at)?;
                let value: u64 = text(b, n).parse().ok()?;
                edits.push((
                    s.at.start..n.at.end,
                    format!("HEADER {} \"{value}\"", Marked::Modseq.marker()),
                ));
                found.modseq = true;
                k = n_at + 1;
            }
            "OLDER" | "YOUNGER" => {
                let n = keys_.get(k + 1)?;
                let value: u32 = text(b, n).parse().ok().filter(|v| *v > 0)?;
                let m = if word == "OLDER" {
                    Marked::Older
                } else {
                    Marked::Younger
                };
                edits.push((
                    s.at.start..n.at.end,
                    format!("HEADER {} \"{value}\"", m.marker()),
                ));
                k += 2;
            }
            "EMAILID" | "THREADID" => {
                let v = keys_.get(k + 1).filter(|v| v.kind == Kind::Atom)?;
                let m = if word == "EMAILID" {
                    Marked::EmailId
                } else {
                    Marked::ThreadId
                };
                edits.push((
                    s.at.start..v.at.end,
                    format!("HEADER {} \"{}\"", m.marker(), text(b, v)),
                ));
                k += 2;
            }
            "SAVEDBEFORE" | "SAVEDON" | "SAVEDSINCE" => {
                let v = keys_.get(k + 1)?;
                let date = text(b, v).trim_matches('"');
                chrono::NaiveDate::parse_from_str(date, "%d-%b-%Y").ok()?;
                let m = match word.as_str() {
                    "SAVEDBEFORE" => Marked::SavedBefore,
                    "SAVEDON" => Marked::SavedOn,
                    _ => Marked::SavedSince,
                };
                edits.push((
                    s.at.start..v.at.end,
                    format!("HEADER {} \"{date}\"", m.marker()),
                ));
                k += 2;
            }
            "SAVEDATESUPPORTED" => {
                edits.push((
                    s.at.clone(),
                    format!("HEADER {} \"1\"", Marked::SaveDateSupported.marker()),
                ));
                k += 1;
            }
            // A sequence set, or a key we do not know (decoding decides).
            w => k += 1 + arity(w).unwrap_or(0),
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, saved: Option<&Saved>) -> Option<(String, Found)> {
        rewrite(s.as_bytes(), saved).map(|(b, f)| (String::from_utf8(b).unwrap(), f))
    }

    #[test]
    fn modseq_and_within_keys() {
        let m = Marked::Modseq.marker();
        let (b, f) = t("a SEARCH OR NOT MODSEQ 720162338 SUBJECT MODSEQ\r\n", None).unwrap();
        assert!(f.modseq);
        assert_eq!(
            b,
            format!("a SEARCH OR NOT HEADER {m} \"720162338\" SUBJECT MODSEQ\r\n")
        );
        let (b, _) = t(
            "a SEARCH (MODSEQ \"/flags/\\\\draft\" all 620162338)\r\n",
            None,
        )
        .unwrap();
        assert_eq!(b, format!("a SEARCH (HEADER {m} \"620162338\")\r\n"));
        let (b, f) = t("a UID SEARCH OLDER 3600 YOUNGER 60\r\n", None).unwrap();
        assert!(!f.modseq);
        assert_eq!(
            b,
            format!(
                "a UID SEARCH HEADER {} \"3600\" HEADER {} \"60\"\r\n",
                Marked::Older.marker(),
                Marked::Younger.marker()
            )
        );
        assert_eq!(Marked::of(&Marked::Older.marker()), Some(Marked::Older));
        assert_eq!(Marked::of("X-Sx-Older-guess"), None);
        assert!(t("a SEARCH SUBJECT MODSEQ\r\n", None).is_none());
        assert!(t("a SEARCH OLDER 0\r\n", None).is_none());
    }

    #[test]
    fn saved_result() {
        let s = Saved {
            uids: "4:6".into(),
            seqs: "2:4".into(),
        };
        let (b, f) = t("a FETCH $ (FLAGS)\r\n", Some(&s)).unwrap();
        assert_eq!(b, "a FETCH 2:4 (FLAGS)\r\n");
        assert!(f.saved);
        let (b, _) = t("a UID STORE $ +FLAGS (\\Seen)\r\n", Some(&s)).unwrap();
        assert_eq!(b, "a UID STORE 4:6 +FLAGS (\\Seen)\r\n");
        let (b, _) = t("a SEARCH NOT $ SUBJECT $\r\n", Some(&s)).unwrap();
        assert_eq!(b, "a SEARCH NOT UID 4:6 SUBJECT $\r\n");
        let (b, _) = t("a UID EXPUNGE $\r\n", Some(&s)).unwrap();
        assert_eq!(b, "a UID EXPUNGE 4:6\r\n");
        // Nothing selected: left for the decoder to refuse.
        assert!(t("a FETCH $ FLAGS\r\n", None).is_none());
    }
}
