//! SEARCH: every RFC 3501 search key, evaluated message by message. Keys that
//! look inside a message read the file once per message and search the
//! decoded text (mail-parser), case-insensitively.

use super::flags::{self, Bits};
use super::folder::now_secs;
use super::folder::Meta;
use super::header_text::{values, HeaderText};
use super::search_keys::Marked;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::{MessageParser, PartType};
use std::path::Path;
use std::sync::Arc;

/// Whether `v` is in `set`, `*` being `largest` (ranges in either order).
pub fn in_set(set: &SequenceSet, v: u32, largest: u32) -> bool {
    let val = |x: &SeqOrUid| match x {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => val(x) == v,
        Sequence::Range(a, b) => {
            let (a, b) = (val(a), val(b));
            a.min(b) <= v && v <= a.max(b)
        }
    })
}

/// One message as SEARCH sees it.
pub struct Item<'a> {
    pub seq: u32,
    pub uid: u32,
    pub flags: Bits,
    pub recent: bool,
    pub meta: Arc<Meta>,
    /// The folder's cur/ and the message's file name in it (joined only
    /// when the file is read: most searches never read it).
    cur: &'a Path,
    file: &'a str,
    pub keywords: &'a [String],
    pub max_seq: u32,
    pub max_uid: u32,
    /// Its mod-sequence (RFC 7162 SEARCH MODSEQ).
    pub modseq: u64,
    /// When it was saved to the folder (RFC 8514), 0 when not known.
    pub saved: i64,
    raw: Option<Vec<u8>>,
}

impl<'a> Item<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seq: u32,
        uid: u32,
        flags: Bits,
        recent: bool,
        meta: Arc<Meta>,
        (cur, file): (&'a Path, &'a str),
        keywords: &'a [String],
        max: (u32, u32),
    ) -> Self {
        Item {
            seq,
            uid,
            flags,
            recent,
            meta,
            cur,
            file,
            keywords,
            max_seq: max.0,
            max_uid: max.1,
            modseq: 0,
            saved: 0,
            raw: None,
        }
    }

    /// The header block, cached with the message's metadata.
    fn header(&self) -> Arc<[u8]> {
        super::folder::keep(&self.meta.header, || {
            super::folder::read_header(&self.cur.join(self.file))
                .unwrap_or_default()
                .into()
        })
    }

    /// The decoded fields searched most, cached with the message's metadata.
    fn header_text(&self) -> Arc<HeaderText> {
        super::folder::keep(&self.meta.header_text, || {
            HeaderText::of(&self.header()).into()
        })
    }

    fn raw(&mut self) -> &[u8] {
        if self.raw.is_none() {
            self.raw = Some(std::fs::read(self.cur.join(self.file)).unwrap_or_default());
        }
        self.raw.as_deref().unwrap_or_default()
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn header_has(it: &mut Item<'_>, name: &str, needle: &str) -> bool {
    let needle = lower(needle);
    if let Some(values) = it.header_text().field(name) {
        return values.iter().any(|v| v.contains(&needle));
    }
    let header = it.header();
    let Some(m) = MessageParser::default().parse_headers(&header[..]) else {
        return false;
    };
    values(&m, name).iter().any(|v| v.contains(&needle))
}

fn body_has(it: &mut Item<'_>, needle: &str, with_header: bool) -> bool {
    let needle = lower(needle);
    let raw = it.raw();
    if with_header
        && lower(&String::from_utf8_lossy(super::mime::header_block(raw))).contains(&needle)
    {
        return true;
    }
    let Some(m) = MessageParser::default().parse(raw) else {
        return false;
    };
    m.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => lower(t).contains(&needle),
        _ => false,
    })
}

fn day(secs: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.date_naive())
}

fn sent_day(it: &mut Item<'_>) -> Option<chrono::NaiveDate> {
    it.header_text().sent
}

fn text(a: &imap_codec::imap_types::core::AString<'_>) -> String {
    String::from_utf8_lossy(a.as_ref()).into_owned()
}

fn keyword_set(it: &Item<'_>, name: &str) -> bool {
    it.keywords
        .iter()
        .position(|k| k.eq_ignore_ascii_case(name))
        .is_some_and(|i| it.flags & flags::keyword_bit(i) != 0)
}

/// Whether message `it` matches `key`.
pub fn matches(key: &SearchKey<'_>, it: &mut Item<'_>) -> bool {
    use SearchKey as K;
    let f = it.flags;
    match key {
        K::And(keys) => keys.as_ref().iter().all(|k| matches(k, it)),
        K::SequenceSet(s) => in_set(s, it.seq, it.max_seq),
        K::Uid(s) => in_set(s, it.uid, it.max_uid),
        K::All => true,
        K::Answered => f & flags::ANSWERED != 0,
        K::Unanswered => f & flags::ANSWERED == 0,
        K::Deleted => f & flags::DELETED != 0,
        K::Undeleted => f & flags::DELETED == 0,
        K::Draft => f & flags::DRAFT != 0,
        K::Undraft => f & flags::DRAFT == 0,
        K::Flagged => f & flags::FLAGGED != 0,
        K::Unflagged => f & flags::FLAGGED == 0,
        K::Seen => f & flags::SEEN != 0,
        K::Unseen => f & flags::SEEN == 0,
        K::Recent => it.recent,
        K::Old => !it.recent,
        K::New => it.recent && f & flags::SEEN == 0,
        K::Keyword(k) => keyword_set(it, k.inner()),
        K::Unkeyword(k) => !keyword_set(it, k.inner()),
        K::Larger(n) => it.meta.size > u64::from(*n),
        K::Smaller(n) => it.meta.size < u64::from(*n),
        K::Before(d) => day(it.meta.internal).is_some_and(|x| x < *d.as_ref()),
        K::On(d) => day(it.meta.internal).is_some_and(|x| x == *d.as_ref()),
        K::Since(d) => day(it.meta.internal).is_some_and(|x| x >= *d.as_ref()),
        K::SentBefore(d) => sent_day(it).is_some_and(|x| x < *d.as_ref()),
        K::SentOn(d) => sent_day(it).is_some_and(|x| x == *d.as_ref()),
        K::SentSince(d) => sent_day(it).is_some_and(|x| x >= *d.as_ref()),
        K::From(s) => header_has(it, "From", &text(s)),
        K::To(s) => header_has(it, "To", &text(s)),
        K::Cc(s) => header_has(it, "Cc", &text(s)),
        K::Bcc(s) => header_has(it, "Bcc", &text(s)),
        K::Subject(s) => header_has(it, "Subject", &text(s)),
        K::Header(name, s) => match Marked::of(&text(name)) {
            // RFC 7162 3.1.5 and RFC 5032, as search_keys.rs rewrote them.
            Some(Marked::Modseq) => text(s).parse::<u64>().is_ok_and(|n| it.modseq >= n),
            Some(Marked::Older) => text(s)
                .parse::<i64>()
                .is_ok_and(|n| it.meta.internal <= now_secs() - n),
            Some(Marked::Younger) => text(s)
                .parse::<i64>()
                .is_ok_and(|n| it.meta.internal >= now_secs() - n),
            Some(Marked::EmailId) => super::folder::email_id(it.file) == text(s),
            // No threads are kept: THREADID is NIL, nothing has one.
            Some(Marked::ThreadId) => false,
            Some(Marked::SaveDateSupported) => true,
            Some(m @ (Marked::SavedBefore | Marked::SavedOn | Marked::SavedSince)) => {
                let want = chrono::NaiveDate::parse_from_str(&text(s), "%d-%b-%Y").ok();
                let have = (it.saved > 0).then(|| day(it.saved)).flatten();
                match (have, want) {
                    (Some(h), Some(w)) => match m {
                        Marked::SavedBefore => h < w,
                        Marked::SavedOn => h == w,
                        _ => h >= w,
                    },
                    _ => false,
                }
            }
            None => header_has(it, &text(name), &text(s)),
        },
        K::Body(s) => body_has(it, &text(s), false),
        K::Text(s) => body_has(it, &text(s), true),
        K::Not(k) => !matches(k, it),
        K::Or(a, b) => matches(a, it) || matches(b, it),
    }
}
