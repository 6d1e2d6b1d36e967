//! FETCH and UID FETCH (RFC 3501 6.4.5): message data from the folder's
//! metadata cache where it can, the whole message and its text streamed from
//! the file (never held in memory), other sections parsed from it (mime.rs).
//! FETCH never renumbers: expunges by others wait for a command that may.

use crate::imap::flags;
use crate::imap::folder::{self, Meta};
use crate::imap::io::Io;
use crate::imap::mime;
use crate::imap::parts::Parts;
use crate::imap::respond::{internal_date, literal, literal_any, section_text};
use crate::imap::view::{self, Selected};
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::sequence::SequenceSet;
use std::sync::Arc;

/// FETCH items whose data is a stretch of the message file as it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Streamed {
    Whole,
    Text,
}

fn streamed(n: &MessageDataItemName<'_>) -> Option<Streamed> {
    match n {
        MessageDataItemName::Rfc822 => Some(Streamed::Whole),
        MessageDataItemName::Rfc822Text => Some(Streamed::Text),
        MessageDataItemName::BodyExt { section: None, .. } => Some(Streamed::Whole),
        MessageDataItemName::BodyExt {
            section: Some(Section::Text(None)),
            ..
        } => Some(Streamed::Text),
        _ => None,
    }
}

/// The name a streamed item is answered under (RFC 3501 7.4.2: BODY.PEEK
/// is answered as BODY).
fn item_name(n: &MessageDataItemName<'_>) -> Vec<u8> {
    match n {
        MessageDataItemName::Rfc822 => b"RFC822".to_vec(),
        MessageDataItemName::Rfc822Text => b"RFC822.TEXT".to_vec(),
        MessageDataItemName::BodyExt { section, .. } => {
            format!("BODY[{}]", section_text(section)).into_bytes()
        }
        _ => Vec::new(),
    }
}

/// One FETCH as the client sent it, with its RFC 7162 parts.
pub struct Fetch<'a, 'b> {
    pub set: &'a SequenceSet,
    pub items: MacroOrMessageDataItemNames<'b>,
    pub uid: bool,
    pub cond: &'a Parts,
}

pub async fn fetch(
    io: &mut Io,
    sel: &mut Selected,
    tag: &str,
    req: Fetch<'_, '_>,
) -> std::io::Result<()> {
    let Fetch {
        set,
        items,
        uid,
        cond,
    } = req;
    // RFC 7162 3.2.6: VANISHED only in UID FETCH, once QRESYNC is on.
    if cond.vanished && !(uid && io.enabled.qresync) {
        io.tagged(tag, "BAD", "VANISHED needs UID FETCH and QRESYNC enabled");
        return Ok(());
    }
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    let changed_since = cond.changed_since;
    // CHANGEDSINCE implies MODSEQ (RFC 7162 3.1.4.1).
    let want_modseq = cond.fetch_modseq || changed_since.is_some();
    let mut names = match items {
        MacroOrMessageDataItemNames::Macro(m) => {
            use imap_codec::imap_types::fetch::Macro;
            use MessageDataItemName as N;
            let mut v = vec![N::Flags, N::InternalDate, N::Rfc822Size];
            match m {
                Macro::Fast => {}
                Macro::All => v.push(N::Envelope),
                Macro::Full => v.extend([N::Envelope, N::Body]),
                _ => {}
            }
            v
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
    };
    if cond.hide_uid {
        // The UID stood in for MODSEQ alone in a plain FETCH.
        names.retain(|n| *n != MessageDataItemName::Uid);
    }
    if uid && !names.contains(&MessageDataItemName::Uid) {
        names.insert(0, MessageDataItemName::Uid);
    }
    if !uid && sel.out_of_range(set) {
        io.tagged(tag, "BAD", "Invalid message sequence number");
        return Ok(());
    }
    let sets_seen = !sel.read_only
        && (names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        }) || cond.binary.iter().any(|b| !b.peek && !b.size));
    // Top-level header sections are served from the cached header block.
    let header_only = |s: &Option<Section<'_>>| {
        matches!(
            s,
            Some(Section::Header(None))
                | Some(Section::HeaderFields(None, _))
                | Some(Section::HeaderFieldsNot(None, _))
        )
    };
    // The whole message and its top-level text are streamed from the
    // file, never held in memory (a 50 MB message costs 64 KiB to send).
    let needs_body = names.iter().any(|n| match n {
        MessageDataItemName::BodyExt { section, .. } => {
            !header_only(section) && streamed(n).is_none()
        }
        MessageDataItemName::BodyStructure | MessageDataItemName::Body => true,
        _ => false,
    }) || !cond.binary.is_empty();
    // ... and the text's start is where the cached header block ends.
    let needs_header = names.iter().any(|n| match n {
        MessageDataItemName::BodyExt { section, .. } => {
            header_only(section) || streamed(n) == Some(Streamed::Text)
        }
        MessageDataItemName::Envelope | MessageDataItemName::Rfc822Header => true,
        _ => streamed(n) == Some(Streamed::Text),
    });
    let streams = names.iter().any(|n| streamed(n).is_some());
    let targets = sel.targets(set, uid);
    let folder = sel.folder.clone();
    if let (true, Some(since)) = (cond.vanished, changed_since) {
        let vanished = vanished_in(sel, set, since)?;
        if !vanished.is_empty() {
            io.push(&format!("* VANISHED (EARLIER) {vanished}\r\n"));
        }
    }
    let mut changed = false;
    // Keywords only ever grow: copy them again only when one was added.
    let mut keywords: Vec<String> = Vec::new();
    for (seq, u) in targets {
        let item = {
            let mut st = folder.lock()?;
            if st.keywords.len() != keywords.len() {
                keywords = st.keywords.clone();
            }
            match st.msgs.binary_search_by_key(&u, |m| m.uid) {
                Ok(j) => {
                    let meta = folder.meta(&mut st, j).ok();
                    Some((st.msgs[j].clone(), meta))
                }
                Err(_) => None,
            }
        };
        // Expunged by someone else: nothing to say until the EXPUNGE can be sent.
        let Some((mut m, meta)) = item else {
            continue;
        };
        if changed_since.is_some_and(|n| m.modseq <= n) {
            continue;
        }
        let meta = meta.unwrap_or_else(|| Arc::new(Meta::default()));
        let path = folder.file_path(&m);
        let raw = tokio::task::block_in_place(|| {
            if needs_body {
                std::fs::read(&path)
            } else if needs_header {
                if let Some(h) = meta.header.get() {
                    return Ok(h.to_vec());
                }
                let h = folder::read_header(&path)?;
                let _ = meta.header.set(h.clone().into());
                Ok(h)
            } else {
                Ok(Vec::new())
            }
        });
        let raw = match raw {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // Opened before anything of this message is written, so a file
        // gone meanwhile skips the message as above.
        let file = if streams {
            match std::fs::File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len()))) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let mut flags_changed = false;
        if sets_seen && m.flags & flags::SEEN == 0 {
            let mut st = folder.lock()?;
            if let Ok(j) = st.msgs.binary_search_by_key(&u, |x| x.uid) {
                let bits = st.msgs[j].flags | flags::SEEN;
                if folder.set_flags(&mut st, j, bits).is_ok() {
                    m.flags = bits;
                    m.modseq = st.msgs[j].modseq;
                    flags_changed = true;
                    changed = true;
                }
            }
        }
        let recent = sel.recent.contains(&u);
        let mut out: Vec<u8> = format!("* {seq} FETCH (").into_bytes();
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
        };
        for n in &names {
            sep(&mut out);
            if let (Some(kind), Some((f, size))) = (streamed(n), file.as_ref()) {
                // `raw` holds the header block when TEXT is asked for.
                let skip = match kind {
                    Streamed::Whole => 0,
                    Streamed::Text => (mime::header_block(&raw).len() as u64).min(*size),
                };
                let (mut start, mut len) = (skip, size - skip);
                let partial = match n {
                    MessageDataItemName::BodyExt { partial, .. } => *partial,
                    _ => None,
                };
                if let Some((p_start, p_len)) = partial {
                    let s = u64::from(p_start).min(len);
                    len = (len - s).min(u64::from(p_len.get()));
                    start += s;
                }
                out.extend_from_slice(&item_name(n));
                if let Some((p_start, _)) = partial {
                    out.extend_from_slice(format!("<{p_start}>").as_bytes());
                }
                out.extend_from_slice(format!(" {{{len}}}\r\n").as_bytes());
                io.out.append(&mut out);
                io.stream(f, start, len).await?;
                continue;
            }
            match n {
                MessageDataItemName::Uid => out.extend_from_slice(format!("UID {u}").as_bytes()),
                MessageDataItemName::Flags => out.extend_from_slice(
                    format!("FLAGS {}", flags::imap_list(m.flags, &keywords, recent)).as_bytes(),
                ),
                MessageDataItemName::InternalDate => out.extend_from_slice(
                    format!("INTERNALDATE \"{}\"", internal_date(meta.internal)).as_bytes(),
                ),
                MessageDataItemName::Rfc822Size => {
                    out.extend_from_slice(format!("RFC822.SIZE {}", meta.size).as_bytes())
                }
                MessageDataItemName::Envelope => {
                    cached(&mut out, b"ENVELOPE ", &meta.envelope, || {
                        mime::envelope(mime::header_block(&raw)).into()
                    })
                }
                MessageDataItemName::BodyStructure => {
                    cached(&mut out, b"BODYSTRUCTURE ", &meta.structure, || {
                        mime::structure(&raw, true).into()
                    })
                }
                MessageDataItemName::Body => cached(&mut out, b"BODY ", &meta.body, || {
                    mime::structure(&raw, false).into()
                }),
                MessageDataItemName::Rfc822 => {
                    out.extend_from_slice(b"RFC822 ");
                    literal(&mut out, &raw);
                }
                MessageDataItemName::Rfc822Header => {
                    out.extend_from_slice(b"RFC822.HEADER ");
                    literal(&mut out, mime::header_block(&raw));
                }
                MessageDataItemName::Rfc822Text => {
                    let h = mime::header_block(&raw).len();
                    out.extend_from_slice(b"RFC822.TEXT ");
                    literal(&mut out, &raw[h..]);
                }
                MessageDataItemName::BodyExt {
                    section,
                    partial,
                    peek: _,
                } => {
                    let data = tokio::task::block_in_place(|| mime::section(&raw, section))
                        .unwrap_or_default();
                    out.extend_from_slice(format!("BODY[{}]", section_text(section)).as_bytes());
                    let data: &[u8] = match partial {
                        Some((start, len)) => {
                            out.extend_from_slice(format!("<{start}>").as_bytes());
                            let s = (*start as usize).min(data.len());
                            let e = s.saturating_add(len.get() as usize).min(data.len());
                            &data[s..e]
                        }
                        None => &data,
                    };
                    out.push(b' ');
                    literal(&mut out, data);
                }
            }
        }
        if flags_changed && !names.contains(&MessageDataItemName::Flags) {
            sep(&mut out);
            out.extend_from_slice(
                format!("FLAGS {}", flags::imap_list(m.flags, &keywords, recent)).as_bytes(),
            );
        }
        // RFC 3516: parts with their transfer encoding undone.
        for b in &cond.binary {
            let data = match tokio::task::block_in_place(|| mime::binary(&raw, &b.part)) {
                Ok(d) => d,
                Err(mime::NotBinary::Missing) => std::borrow::Cow::Borrowed(&b""[..]),
                Err(mime::NotBinary::Unknown) => {
                    io.tagged(
                        tag,
                        "NO",
                        "[UNKNOWN-CTE] Cannot decode this part's transfer encoding",
                    );
                    return Ok(());
                }
            };
            sep(&mut out);
            out.extend_from_slice(b.name().as_bytes());
            out.push(b' ');
            if b.size {
                out.extend_from_slice(data.len().to_string().as_bytes());
                continue;
            }
            let data: &[u8] = match b.partial {
                Some((start, len)) => {
                    let s = (start as usize).min(data.len());
                    let e = s.saturating_add(len as usize).min(data.len());
                    &data[s..e]
                }
                None => &data,
            };
            literal_any(&mut out, data);
        }
        // RFC 8474: EMAILID from the base name; no threads are kept, so
        // THREADID is NIL (4.2).
        if cond.email_id {
            sep(&mut out);
            out.extend_from_slice(format!("EMAILID ({})", folder::email_id(&m.file)).as_bytes());
        }
        if cond.thread_id {
            sep(&mut out);
            out.extend_from_slice(b"THREADID NIL");
        }
        // RFC 8514: NIL where the save date is not known (mail from before
        // it was recorded).
        if cond.save_date {
            sep(&mut out);
            if m.saved > 0 {
                out.extend_from_slice(
                    format!("SAVEDATE \"{}\"", internal_date(m.saved)).as_bytes(),
                );
            } else {
                out.extend_from_slice(b"SAVEDATE NIL");
            }
        }
        // A flag change this FETCH made is news like any other (3.1.4.1).
        if want_modseq || (flags_changed && io.enabled.condstore) {
            sep(&mut out);
            out.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes());
        }
        out.extend_from_slice(b")\r\n");
        // FETCH does not renumber: `seq` still names this message.
        if flags_changed || names.contains(&MessageDataItemName::Flags) {
            sel.told(u, m.modseq);
        }
        io.out.extend_from_slice(&out);
        io.flush_if_big().await?;
    }
    if changed {
        io.changed(&folder.path);
    }
    io.tagged(tag, "OK", "FETCH completed");
    Ok(())
}

/// The UIDs in `set` expunged since `since` (RFC 7162 3.2.6), as a set.
fn vanished_in(sel: &Selected, set: &SequenceSet, since: u64) -> std::io::Result<String> {
    let st = sel.folder.lock()?;
    let last = st.uidnext.saturating_sub(1);
    let listed = st.vanished_since(since, |u| crate::imap::search::in_set(set, u, last));
    Ok(match listed {
        Some(v) => crate::imap::respond::uid_ranges(&v),
        None => view::missing(&sel.uids, last, Some(set)),
    })
}

/// `label` and a serialized item from the folder's metadata cache, made on first use.
fn cached(
    out: &mut Vec<u8>,
    label: &[u8],
    cell: &std::sync::OnceLock<std::sync::Arc<[u8]>>,
    make: impl FnOnce() -> std::sync::Arc<[u8]>,
) {
    out.extend_from_slice(label);
    out.extend_from_slice(&crate::imap::folder::keep(cell, make));
}
