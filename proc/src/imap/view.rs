//! A session's view of its selected mailbox: sequence numbers to UIDs, the
//! flags the client was last told, its \Recent set; and the untagged updates
//! that keep it in step with the folder without ever renumbering behind the
//! client's back (RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH).

use super::flags;
use super::folder::{self, Folder};
use super::io::Enabled;
use super::respond::{flags_lines, uid_ranges};
use super::search::in_set;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A session's view of its selected mailbox.
pub struct Selected {
    pub folder: Arc<Folder>,
    pub read_only: bool,
    /// Sequence number - 1 -> UID.
    pub uids: Vec<u32>,
    /// The client knows the flags of every message whose mod-sequence is at
    /// most this (every flag change takes a new one, ours or another
    /// program's), so a sync tells only those above it: no per-message copy
    /// of the flags, which was 8 bytes a message for each idle session.
    pub told: u64,
    /// Messages above `told` whose flags this session has told already
    /// (its own STORE and FETCH), at the mod-sequence it told; emptied at
    /// each sync.
    pub told_above: HashMap<u32, u64>,
    pub recent: HashSet<u32>,
    /// RFC 5182: the UIDs `SEARCH RETURN (SAVE)` saved, for `$`.
    pub saved: Vec<u32>,
    /// RFC 5267: searches kept up to date (UPDATE), at most MAX_CONTEXTS.
    pub contexts: Vec<Context>,
    pub(super) generation: u64,
    pub(super) keywords: usize,
    pub(super) sid: u64,
}

/// Searches one session may keep up to date at once (RFC 5267 4.3.1: at
/// least one; each is run again whenever the mailbox changes).
pub const MAX_CONTEXTS: usize = 5;

/// A UID SEARCH or UID SORT kept up to date (RFC 5267 UPDATE).
pub struct Context {
    pub tag: String,
    /// The command as decoded (`tag UID SEARCH ...`), run again on changes.
    pub command: Vec<u8>,
    /// SORT's criteria; None for SEARCH.
    pub sort: Option<Vec<super::sort::Criterion>>,
    /// The UIDs the client holds, in result order.
    pub results: Vec<u32>,
    /// The state they were computed in (`Selected::state_key`).
    pub seen: (u64, usize, u64),
}

impl Selected {
    /// Changes when the folder's flags or messages change (its highest
    /// mod-sequence) or the view does (told of new or expunged messages).
    pub fn state_key(&self) -> (u64, usize, u64) {
        let highest = self
            .folder
            .lock()
            .map(|st| st.highest_modseq())
            .unwrap_or(0);
        (highest, self.uids.len(), self.generation)
    }

    pub fn open(folder: Arc<Folder>, sid: u64, read_only: bool) -> std::io::Result<Selected> {
        let mut st = folder.lock()?;
        let mut s = Selected {
            folder: folder.clone(),
            read_only,
            uids: Vec::with_capacity(st.msgs.len()),
            told: st.highest_modseq(),
            told_above: HashMap::new(),
            recent: HashSet::new(),
            saved: Vec::new(),
            contexts: Vec::new(),
            generation: st.generation,
            keywords: st.keywords.len(),
            sid,
        };
        for m in st.msgs.iter_mut() {
            s.claim_recent(m);
            s.uids.push(m.uid);
        }
        drop(st);
        Ok(s)
    }

    /// \Recent goes to the first session that sees a message (EXAMINE only looks).
    pub(super) fn claim_recent(&mut self, m: &mut folder::Msg) {
        if m.recent_to == 0 && !self.read_only {
            m.recent_to = self.sid;
        }
        if m.recent_to == self.sid || (self.read_only && m.recent_to == 0) {
            self.recent.insert(m.uid);
        }
    }

    /// The saved result as the UIDs and the sequence numbers of the
    /// messages still here (an expunged one leaves it, RFC 5182 2.1).
    pub fn saved_sets(&self) -> super::search_keys::Saved {
        let mut uids = Vec::new();
        let mut seqs = Vec::new();
        for u in &self.saved {
            if let Ok(i) = self.uids.binary_search(u) {
                uids.push(*u);
                seqs.push(i as u32 + 1);
            }
        }
        let set = |v: &[u32]| {
            if v.is_empty() {
                super::search_keys::NO_MESSAGE.to_string()
            } else {
                uid_ranges(v)
            }
        };
        super::search_keys::Saved {
            uids: set(&uids),
            seqs: set(&seqs),
        }
    }

    pub(super) fn max_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    /// (sequence number, UID) of the messages a set names.
    pub(super) fn targets(&self, set: &SequenceSet, uid: bool) -> Vec<(u32, u32)> {
        let (max_seq, max_uid) = (self.uids.len() as u32, self.max_uid());
        self.uids
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                if uid {
                    in_set(set, **u, max_uid)
                } else {
                    in_set(set, *i as u32 + 1, max_seq)
                }
            })
            .map(|(i, u)| (i as u32 + 1, *u))
            .collect()
    }

    /// Whether a (non-UID) set names sequence numbers beyond the mailbox.
    pub(super) fn out_of_range(&self, set: &SequenceSet) -> bool {
        let n = self.uids.len() as u32;
        // u32::MAX stands for an empty saved result (search_keys.rs).
        let bad =
            |x: &SeqOrUid| matches!(x, SeqOrUid::Value(v) if v.get() > n && v.get() != u32::MAX);
        let star_empty = |x: &SeqOrUid| matches!(x, SeqOrUid::Asterisk) && n == 0;
        set.0.as_ref().iter().any(|s| match s {
            Sequence::Single(x) => bad(x) || star_empty(x),
            Sequence::Range(a, b) => (bad(a) && bad(b)) || (star_empty(a) && star_empty(b)),
        })
    }

    /// What changed in the folder since the client last heard, as untagged
    /// responses (EXPUNGE only when `allow_expunge`); the view is updated.
    pub fn sync(&mut self, en: Enabled, allow_expunge: bool) -> String {
        let mut out = String::new();
        let folder = self.folder.clone();
        let mut st = match folder.lock() {
            Ok(s) => s,
            Err(e) => {
                log::info!("sync {}: {e}", folder.path.display());
                return out;
            }
        };
        if st.generation == self.generation {
            return out;
        }
        let mut pending = false;
        if allow_expunge {
            let gone: Vec<u32> = self
                .uids
                .iter()
                .copied()
                .filter(|u| st.msgs.binary_search_by_key(u, |m| m.uid).is_err())
                .collect();
            out.push_str(&self.expunged(en, &gone));
        }
        if st.keywords.len() != self.keywords {
            self.keywords = st.keywords.len();
            out.push_str(&flags_lines(&st.keywords, self.read_only));
        }
        let told = std::mem::take(&mut self.told_above);
        for i in 0..self.uids.len() {
            match st.msgs.binary_search_by_key(&self.uids[i], |m| m.uid) {
                Ok(j)
                    if st.msgs[j].modseq > self.told
                        && told.get(&self.uids[i]) != Some(&st.msgs[j].modseq) =>
                {
                    let m = &st.msgs[j];
                    let recent = self.recent.contains(&m.uid);
                    let modseq = if en.condstore {
                        format!(" MODSEQ ({})", m.modseq)
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "* {} FETCH (UID {} FLAGS {}{modseq})\r\n",
                        i + 1,
                        m.uid,
                        flags::imap_list(m.flags, &st.keywords, recent)
                    ));
                }
                Ok(_) => {}
                Err(_) => pending = true,
            }
        }
        self.told = st.highest_modseq();
        let last = self.max_uid();
        let start = st.msgs.partition_point(|m| m.uid <= last);
        let mut added = false;
        for j in start..st.msgs.len() {
            let mut m = st.msgs[j].clone();
            self.claim_recent(&mut m);
            st.msgs[j].recent_to = m.recent_to;
            self.uids.push(m.uid);
            added = true;
        }
        if added {
            out.push_str(&format!("* {} EXISTS\r\n", self.uids.len()));
            // IMAP4rev2 has no RECENT response (RFC 9051 7.4, Appendix E).
            if !en.rev2 {
                out.push_str(&format!("* {} RECENT\r\n", self.recent.len()));
            }
        }
        if !pending {
            self.generation = st.generation;
        }
        out
    }

    /// The client now knows message `uid`'s flags as of `modseq`.
    pub fn told(&mut self, uid: u32, modseq: u64) {
        if modseq > self.told {
            self.told_above.insert(uid, modseq);
        }
    }

    /// Drop these UIDs (ascending) from the view: one `* n EXPUNGE` each, in
    /// an order whose numbers stay right as each takes effect; or, once
    /// QRESYNC is on, one `* VANISHED` for all (RFC 7162 3.2.10).
    pub fn expunged(&mut self, en: Enabled, gone: &[u32]) -> String {
        let mut out = String::new();
        let mut vanished = Vec::new();
        for uid in gone {
            if let Ok(i) = self.uids.binary_search(uid) {
                if !en.qresync {
                    out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                }
                vanished.push(*uid);
                self.uids.remove(i);
                self.recent.remove(uid);
            }
        }
        if en.qresync && !vanished.is_empty() {
            out = format!("* VANISHED {}\r\n", uid_ranges(&vanished));
        }
        out
    }
}

/// The UIDs from 1 to `last` not in `present` (ascending) and in `known`
/// (all when None), as a set: worked out from gaps and ranges, so the cost
/// is in messages and ranges, never in UIDs.
pub fn missing(present: &[u32], last: u32, known: Option<&SequenceSet>) -> String {
    let mut gaps: Vec<(u32, u32)> = Vec::new();
    let mut next = 1u32;
    for &u in present
        .iter()
        .chain(std::iter::once(&last.saturating_add(1)))
    {
        if u > next {
            gaps.push((next, u - 1));
        }
        next = next.max(u.saturating_add(1));
    }
    let wanted = match known {
        Some(k) => ranges(k, last),
        None => vec![(1, last)],
    };
    // Both lists are sorted and disjoint: intersect them in one pass.
    let (mut i, mut j) = (0, 0);
    let mut out: Vec<String> = Vec::new();
    while let (Some(&(a, b)), Some(&(c, d))) = (gaps.get(i), wanted.get(j)) {
        let (lo, hi) = (a.max(c), b.min(d));
        if lo <= hi {
            out.push(if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            });
        }
        if b < d {
            i += 1;
        } else {
            j += 1;
        }
    }
    out.join(",")
}

/// A sequence set as sorted, disjoint, merged ranges (`*` is `last`).
fn ranges(set: &SequenceSet, last: u32) -> Vec<(u32, u32)> {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => last,
    };
    let mut r: Vec<(u32, u32)> = set
        .0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(x) => (v(x), v(x)),
            Sequence::Range(a, b) => (v(a).min(v(b)), v(a).max(v(b))),
        })
        .collect();
    r.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in r {
        match merged.last_mut() {
            Some(m) if a <= m.1.saturating_add(1) => m.1 = m.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_uids_by_gaps_and_ranges() {
        assert_eq!(missing(&[2, 3, 7], 9, None), "1,4:6,8:9");
        let k: SequenceSet = "1:4,6,8:*".parse().unwrap();
        assert_eq!(missing(&[2, 3, 7], 9, Some(&k)), "1,4,6,8:9");
        assert_eq!(missing(&[1, 2], 2, None), "");
        let k: SequenceSet = "4000000000".parse().unwrap();
        assert_eq!(missing(&[1], 4_000_000_001, Some(&k)), "4000000000");
    }
}
