//! STORE and UID STORE (RFC 3501 6.4.6): flags and keywords, with the FETCH
//! answers unless .SILENT. A keyword new to the folder is announced (FLAGS,
//! PERMANENTFLAGS) before any FETCH that carries it. With CONDSTORE (RFC
//! 7162 3.1.3) the answers carry MODSEQ and UNCHANGEDSINCE makes it
//! conditional: messages changed since are left alone and named in MODIFIED.

use crate::imap::flags::{self, Bits};
use crate::imap::folder::{self, Folder};
use crate::imap::io::Io;
use crate::imap::respond::{flags_lines, uid_ranges};
use crate::imap::view::Selected;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;

/// Flag bits for a STORE/APPEND flag list (keywords added to `folder` as needed).
pub(super) fn flag_bits(
    folder: &Folder,
    st: &mut folder::State,
    list: &[Flag<'_>],
) -> std::io::Result<Bits> {
    let mut bits = 0;
    for f in list {
        bits |= match f {
            Flag::Answered => flags::ANSWERED,
            Flag::Deleted => flags::DELETED,
            Flag::Draft => flags::DRAFT,
            Flag::Flagged => flags::FLAGGED,
            Flag::Seen => flags::SEEN,
            Flag::Keyword(k) => folder.keyword(st, k.inner())?.unwrap_or(0),
            Flag::Extension(_) => 0,
        };
    }
    Ok(bits)
}

/// One STORE as the client sent it.
pub struct Store<'a, 'b> {
    pub set: &'a SequenceSet,
    pub kind: &'a StoreType,
    pub response: &'a StoreResponse,
    pub list: &'a [Flag<'b>],
    pub uid: bool,
    /// RFC 7162 3.1.3: change only messages not changed since.
    pub unchanged_since: Option<u64>,
}

pub fn store(
    io: &mut Io,
    sel: &mut Selected,
    tag: &str,
    req: Store<'_, '_>,
) -> std::io::Result<()> {
    let Store {
        set,
        kind,
        response,
        list,
        uid,
        unchanged_since,
    } = req;
    let condstore = io.enabled.condstore;
    let mut modified: Vec<u32> = Vec::new();
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    if sel.read_only {
        io.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        return Ok(());
    }
    if !uid && sel.out_of_range(set) {
        io.tagged(tag, "BAD", "Invalid message sequence number");
        return Ok(());
    }
    let targets = sel.targets(set, uid);
    let folder = sel.folder.clone();
    let mut out = String::new();
    let mut changed = false;
    {
        let mut st = folder.lock()?;
        let bits = flag_bits(&folder, &mut st, list)?;
        // A keyword new to the folder is announced before any FETCH that
        // carries it (RFC 3501 7.2.6: FLAGS lists what may appear).
        if st.keywords.len() != sel.keywords {
            sel.keywords = st.keywords.len();
            out.push_str(&flags_lines(&st.keywords, false));
        }
        for (seq, u) in targets {
            let Ok(j) = st.msgs.binary_search_by_key(&u, |m| m.uid) else {
                continue;
            };
            if unchanged_since.is_some_and(|n| st.msgs[j].modseq > n) {
                modified.push(if uid { u } else { seq });
                continue;
            }
            let old = st.msgs[j].flags;
            let new = match kind {
                StoreType::Add => old | bits,
                StoreType::Remove => old & !bits,
                // Keep letters we do not map (e.g. P) on a replace.
                StoreType::Replace => {
                    bits | (old
                        & !(flags::ANSWERED
                            | flags::DELETED
                            | flags::DRAFT
                            | flags::FLAGGED
                            | flags::SEEN)
                        & 0xffff_ffff)
                }
            };
            if new != old {
                match folder.set_flags(&mut st, j, new) {
                    Ok(()) => changed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            let modseq = st.msgs[j].modseq;
            sel.told(u, modseq);
            let uid_part = if uid {
                format!("UID {u} ")
            } else {
                String::new()
            };
            if *response == StoreResponse::Answer {
                let recent = sel.recent.contains(&u);
                let modseq = if condstore {
                    format!(" MODSEQ ({modseq})")
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "* {seq} FETCH ({uid_part}FLAGS {}{modseq})\r\n",
                    flags::imap_list(new, &st.keywords, recent)
                ));
            } else if condstore && new != old {
                // .SILENT still tells the new mod-sequence (RFC 7162 3.1.3).
                out.push_str(&format!("* {seq} FETCH ({uid_part}MODSEQ ({modseq}))\r\n"));
            }
        }
    }
    io.push(&out);
    if changed {
        io.changed(&folder.path);
    }
    if modified.is_empty() {
        io.tagged(tag, "OK", "STORE completed");
    } else {
        modified.sort_unstable();
        io.tagged(
            tag,
            "OK",
            &format!(
                "[MODIFIED {}] Conditional STORE failed",
                uid_ranges(&modified)
            ),
        );
    }
    Ok(())
}
