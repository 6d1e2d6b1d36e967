//! Selected-state commands: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE,
//! CLOSE/UNSELECT, APPEND, and the untagged updates that keep a session's
//! view (sequence numbers) in step with the folder without ever renumbering
//! behind the client's back (RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE
//! or SEARCH).

use super::flags::{self, Bits};
use super::folder::{self, Folder, Meta};
use super::mime;
use super::search::{self, in_set};
use super::state::Session;
use super::wire::quote;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

fn internal_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%d-%b-%Y %H:%M:%S +0000").to_string())
        .unwrap_or_else(|| "01-Jan-1970 00:00:00 +0000".to_string())
}

/// `1:3,7` for a sorted list of UIDs.
pub fn uid_ranges(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let mut j = i;
        while j + 1 < uids.len() && uids[j + 1] == uids[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            uids[i].to_string()
        } else {
            format!("{}:{}", uids[i], uids[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn part_text(p: &imap_codec::imap_types::fetch::Part) -> String {
    p.0.as_ref()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// The section as the response names it: `1.2.HEADER.FIELDS (FROM TO)`.
fn section_text(s: &Option<Section<'_>>) -> String {
    let with = |p: &Option<imap_codec::imap_types::fetch::Part>, what: &str| match p {
        Some(p) => format!("{}.{what}", part_text(p)),
        None => what.to_string(),
    };
    let fields = |v: &imap_codec::imap_types::core::NonEmptyVec<
        imap_codec::imap_types::core::AString<'_>,
    >| {
        v.as_ref()
            .iter()
            .map(|a| quote(&String::from_utf8_lossy(a.as_ref())))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match s {
        None => String::new(),
        Some(Section::Part(p)) => part_text(p),
        Some(Section::Header(p)) => with(p, "HEADER"),
        Some(Section::HeaderFields(p, v)) => with(p, &format!("HEADER.FIELDS ({})", fields(v))),
        Some(Section::HeaderFieldsNot(p, v)) => {
            with(p, &format!("HEADER.FIELDS.NOT ({})", fields(v)))
        }
        Some(Section::Text(p)) => with(p, "TEXT"),
        Some(Section::Mime(p)) => format!("{}.MIME", part_text(p)),
    }
}

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

fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

impl Session {
    /// Write `len` bytes of `f` from `start` to the client (after what is
    /// pending), a chunk at a time. A file cut short meanwhile is padded with
    /// spaces: the literal's announced length must hold.
    async fn stream(&mut self, f: &std::fs::File, start: u64, len: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.flush().await?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(chunk.len() as u64) as usize;
            let n = tokio::task::block_in_place(|| f.read_at(&mut chunk[..want], start + done))?;
            if n == 0 {
                log::warn!(
                    "{}: a message file shrank while being sent",
                    self.service.name()
                );
                chunk[..want].fill(b' ');
                self.push_bytes(&chunk[..want]);
                done += want as u64;
            } else {
                self.push_bytes(&chunk[..n]);
                done += n as u64;
            }
            self.flush().await?;
        }
        Ok(())
    }

    /// Tell the client what changed in its mailbox since it last heard.
    pub fn sync(&mut self, allow_expunge: bool) -> std::io::Result<()> {
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        let mut out = String::new();
        {
            let folder = sel.folder.clone();
            let mut st = match folder.lock() {
                Ok(s) => s,
                Err(e) => {
                    log::info!("sync {}: {e}", sel.folder.path.display());
                    return Ok(());
                }
            };
            if st.generation == sel.generation {
                return Ok(());
            }
            let mut pending = false;
            if allow_expunge {
                let mut i = 0;
                while i < sel.uids.len() {
                    if st
                        .msgs
                        .binary_search_by_key(&sel.uids[i], |m| m.uid)
                        .is_err()
                    {
                        out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                        sel.recent.remove(&sel.uids[i]);
                        sel.uids.remove(i);
                        sel.flags.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            if st.keywords.len() != sel.keywords {
                sel.keywords = st.keywords.len();
                if sel.read_only {
                    out.push_str(flags_lines(&st.keywords).lines().next().unwrap_or_default());
                    out.push_str("\r\n");
                } else {
                    out.push_str(&flags_lines(&st.keywords));
                }
            }
            for i in 0..sel.uids.len() {
                match st.msgs.binary_search_by_key(&sel.uids[i], |m| m.uid) {
                    Ok(j) if st.msgs[j].flags != sel.flags[i] => {
                        sel.flags[i] = st.msgs[j].flags;
                        let recent = sel.recent.contains(&sel.uids[i]);
                        out.push_str(&format!(
                            "* {} FETCH (UID {} FLAGS {})\r\n",
                            i + 1,
                            sel.uids[i],
                            flags::imap_list(sel.flags[i], &st.keywords, recent)
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => pending = true,
                }
            }
            let last = sel.uids.last().copied().unwrap_or(0);
            let start = st.msgs.partition_point(|m| m.uid <= last);
            let mut added = false;
            for j in start..st.msgs.len() {
                let mut m = st.msgs[j].clone();
                sel.claim_recent(&mut m);
                st.msgs[j].recent_to = m.recent_to;
                sel.uids.push(m.uid);
                sel.flags.push(m.flags);
                added = true;
            }
            if added {
                out.push_str(&format!("* {} EXISTS\r\n", sel.uids.len()));
                out.push_str(&format!("* {} RECENT\r\n", sel.recent.len()));
            }
            if !pending {
                sel.generation = st.generation;
            }
        }
        self.push(&out);
        Ok(())
    }

    pub fn close(&mut self, tag: &str, expunge: bool) {
        if let Some(sel) = self.sel.take() {
            if expunge && !sel.read_only {
                if let Ok(mut st) = sel.folder.lock() {
                    let idx: Vec<usize> = (0..st.msgs.len())
                        .filter(|&j| st.msgs[j].flags & flags::DELETED != 0)
                        .collect();
                    if !sel.folder.remove(&mut st, &idx).is_empty() {
                        self.changed(&sel.folder.path);
                    }
                }
            }
        }
        self.tagged(tag, "OK", "Completed");
    }

    pub fn expunge(&mut self, tag: &str, only: Option<&SequenceSet>) -> std::io::Result<()> {
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        if sel.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return Ok(());
        }
        let gone = {
            let mut st = sel.folder.lock()?;
            let max_uid = sel.max_uid();
            let idx: Vec<usize> = (0..st.msgs.len())
                .filter(|&j| {
                    let m = &st.msgs[j];
                    m.flags & flags::DELETED != 0
                        && m.uid <= max_uid
                        && only.is_none_or(|set| in_set(set, m.uid, max_uid))
                })
                .collect();
            sel.folder.remove(&mut st, &idx)
        };
        let mut out = String::new();
        for uid in &gone {
            if let Ok(i) = sel.uids.binary_search(uid) {
                out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                sel.uids.remove(i);
                sel.flags.remove(i);
                sel.recent.remove(uid);
            }
        }
        let path = sel.folder.path.clone();
        self.push(&out);
        if !gone.is_empty() {
            self.changed(&path);
        }
        self.sync(true)?;
        self.tagged(tag, "OK", "EXPUNGE completed");
        Ok(())
    }

    pub async fn search(
        &mut self,
        tag: &str,
        charset: Option<&Charset<'_>>,
        key: &SearchKey<'_>,
        uid: bool,
    ) -> std::io::Result<()> {
        if let Some(c) = charset {
            let c = c.as_ref().to_ascii_uppercase();
            if c != "UTF-8" && c != "US-ASCII" {
                self.tagged(
                    tag,
                    "NO",
                    "[BADCHARSET (UTF-8 US-ASCII)] Charset not supported",
                );
                return Ok(());
            }
        }
        if !uid {
            self.sync(false)?;
        } else {
            self.sync(true)?;
        }
        let Some(sel) = self.sel.as_ref() else {
            return Ok(());
        };
        let found = tokio::task::block_in_place(|| -> std::io::Result<Vec<u32>> {
            let mut st = sel.folder.lock()?;
            let keywords = st.keywords.clone();
            let max = (sel.uids.len() as u32, sel.max_uid());
            let mut found = Vec::new();
            for (i, &u) in sel.uids.iter().enumerate() {
                let Ok(j) = st.msgs.binary_search_by_key(&u, |m| m.uid) else {
                    continue;
                };
                let Ok(meta) = sel.folder.meta(&mut st, j) else {
                    continue;
                };
                let m = &st.msgs[j];
                let mut it = search::Item::new(
                    i as u32 + 1,
                    u,
                    m.flags,
                    sel.recent.contains(&u),
                    meta,
                    sel.folder.file_path(m),
                    &keywords,
                    max,
                );
                if search::matches(key, &mut it) {
                    found.push(if uid { u } else { i as u32 + 1 });
                }
            }
            Ok(found)
        })?;
        let line = match self.search_return.take() {
            Some(opts) => esearch(tag, uid, &opts, &found),
            None => {
                let mut line = String::from("* SEARCH");
                for n in found {
                    line.push(' ');
                    line.push_str(&n.to_string());
                }
                line + "\r\n"
            }
        };
        self.push(&line);
        self.tagged(tag, "OK", "SEARCH completed");
        Ok(())
    }

    pub async fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
    ) -> std::io::Result<()> {
        self.sync(uid)?;
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
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        let Some(sel) = self.sel.as_ref() else {
            return Ok(());
        };
        if !uid && sel.out_of_range(set) {
            self.tagged(tag, "BAD", "Invalid message sequence number");
            return Ok(());
        }
        let sets_seen = !sel.read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
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
        });
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
                        flags_changed = true;
                        changed = true;
                    }
                }
            }
            let recent = self.sel.as_ref().is_some_and(|s| s.recent.contains(&u));
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
                    self.out.append(&mut out);
                    self.stream(f, start, len).await?;
                    continue;
                }
                match n {
                    MessageDataItemName::Uid => {
                        out.extend_from_slice(format!("UID {u}").as_bytes())
                    }
                    MessageDataItemName::Flags => out.extend_from_slice(
                        format!("FLAGS {}", flags::imap_list(m.flags, &keywords, recent))
                            .as_bytes(),
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
                        out.extend_from_slice(
                            format!("BODY[{}]", section_text(section)).as_bytes(),
                        );
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
            out.extend_from_slice(b")\r\n");
            // FETCH does not renumber: `seq` still names this message.
            if let Some(sel) = self.sel.as_mut() {
                sel.flags[seq as usize - 1] = m.flags;
            }
            self.out.extend_from_slice(&out);
            self.flush_if_big().await?;
        }
        if changed {
            self.changed(&folder.path);
        }
        self.tagged(tag, "OK", "FETCH completed");
        Ok(())
    }

    /// Flag bits for a STORE/APPEND flag list (keywords added to `folder` as needed).
    fn flag_bits(
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

    pub async fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: &StoreType,
        response: &StoreResponse,
        list: &[Flag<'_>],
        uid: bool,
    ) -> std::io::Result<()> {
        self.sync(uid)?;
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        if sel.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return Ok(());
        }
        if !uid && sel.out_of_range(set) {
            self.tagged(tag, "BAD", "Invalid message sequence number");
            return Ok(());
        }
        let targets = sel.targets(set, uid);
        let folder = sel.folder.clone();
        let mut out = String::new();
        let mut changed = false;
        {
            let mut st = folder.lock()?;
            let bits = Self::flag_bits(&folder, &mut st, list)?;
            // A keyword new to the folder is announced before any FETCH that
            // carries it (RFC 3501 7.2.6: FLAGS lists what may appear).
            if st.keywords.len() != sel.keywords {
                sel.keywords = st.keywords.len();
                out.push_str(&flags_lines(&st.keywords));
            }
            for (seq, u) in targets {
                let Ok(j) = st.msgs.binary_search_by_key(&u, |m| m.uid) else {
                    continue;
                };
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
                let i = seq as usize - 1;
                sel.flags[i] = new;
                if *response == StoreResponse::Answer {
                    let recent = sel.recent.contains(&u);
                    let uid_part = if uid {
                        format!("UID {u} ")
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "* {seq} FETCH ({uid_part}FLAGS {})\r\n",
                        flags::imap_list(new, &st.keywords, recent)
                    ));
                }
            }
        }
        self.push(&out);
        if changed {
            self.changed(&folder.path);
        }
        self.tagged(tag, "OK", "STORE completed");
        Ok(())
    }

    /// COPY, or MOVE (RFC 6851) when `mv`.
    pub fn copy(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        dest: &str,
        uid: bool,
        mv: bool,
    ) -> std::io::Result<()> {
        self.sync(uid)?;
        let Some(dst) = self.target(tag, dest) else {
            return Ok(());
        };
        let host = self.sh.hostname.clone();
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        if mv && sel.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return Ok(());
        }
        if !uid && sel.out_of_range(set) {
            self.tagged(tag, "BAD", "Invalid message sequence number");
            return Ok(());
        }
        let src = sel.folder.clone();
        let sources: Vec<(u32, std::path::PathBuf, Bits)> = {
            let st = src.lock()?;
            sel.targets(set, uid)
                .into_iter()
                .filter_map(|(_, u)| {
                    let j = st.msgs.binary_search_by_key(&u, |m| m.uid).ok()?;
                    Some((u, src.file_path(&st.msgs[j]), st.msgs[j].flags))
                })
                .collect()
        };
        let (mut from, mut to) = (Vec::new(), Vec::new());
        let mut failure = None;
        let keywords_src = src.lock().map(|s| s.keywords.clone()).unwrap_or_default();
        for (u, path, bits) in sources {
            let base = folder::unique_base(&host);
            let tmp = dst.path.join("tmp").join(&base);
            let placed = if mv {
                std::fs::rename(&path, &tmp)
            } else {
                std::fs::hard_link(&path, &tmp).or_else(|_| std::fs::copy(&path, &tmp).map(|_| ()))
            };
            if let Err(e) = placed {
                if e.kind() == std::io::ErrorKind::NotFound {
                    continue;
                }
                failure = Some(e);
                break;
            }
            let mut st = dst.lock()?;
            // Keywords are numbered per folder: map them by name.
            let mut new_bits = bits & 0xffff_ffff;
            for (i, k) in keywords_src.iter().enumerate() {
                if bits & flags::keyword_bit(i) != 0 {
                    new_bits |= dst.keyword(&mut st, k)?.unwrap_or(0);
                }
            }
            match dst.add(&mut st, &tmp, &base, new_bits) {
                Ok(nu) => {
                    from.push(u);
                    to.push(nu);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    failure = Some(e);
                    break;
                }
            }
        }
        if !to.is_empty() {
            if let Err(e) = dst.sync_cur() {
                failure = Some(e);
            }
        }
        let validity = dst.lock().map(|s| s.uidvalidity).unwrap_or(0);
        let code = if from.is_empty() {
            String::new()
        } else {
            format!(
                "[COPYUID {validity} {} {}] ",
                uid_ranges(&from),
                uid_ranges(&to)
            )
        };
        if !to.is_empty() {
            self.changed(&dst.path);
        }
        if mv && !from.is_empty() {
            self.push(&format!("* OK {code}Moved\r\n"));
            {
                // A rescan may already have dropped the moved files.
                let mut st = src.lock()?;
                let mut idx: Vec<usize> = from
                    .iter()
                    .filter_map(|u| st.msgs.binary_search_by_key(u, |m| m.uid).ok())
                    .collect();
                idx.sort_unstable();
                src.remove(&mut st, &idx);
            }
            let gone = &from;
            if let Some(sel) = self.sel.as_mut() {
                let mut out = String::new();
                for u in gone {
                    if let Ok(i) = sel.uids.binary_search(u) {
                        out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                        sel.uids.remove(i);
                        sel.flags.remove(i);
                        sel.recent.remove(u);
                    }
                }
                self.push(&out);
            }
            self.changed(&src.path);
        }
        if let Some(e) = failure {
            log::warn!(
                "{}: copy to {}: {e}",
                self.service.name(),
                dst.path.display()
            );
            self.tagged(tag, "NO", "[SERVERBUG] Copy failed part way");
            return Ok(());
        }
        // Into the selected mailbox itself: the new messages are announced in
        // this response (EXISTS), not only at the next command.
        if self.sel.as_ref().is_some_and(|s| s.folder.path == dst.path) {
            self.sync(true)?;
        }
        let what = if mv { "MOVE" } else { "COPY" };
        if mv {
            self.tagged(tag, "OK", &format!("{what} completed"));
        } else {
            self.tagged(tag, "OK", &format!("{code}{what} completed"));
        }
        Ok(())
    }

    /// The existing folder COPY, MOVE or APPEND writes to, or the NO saying why not.
    fn target(&mut self, tag: &str, name: &str) -> Option<Arc<Folder>> {
        let path = match super::names::folder(&self.account, name) {
            Ok(p) => p,
            Err(why) => {
                self.tagged(tag, "NO", &format!("[CANNOT] {why}"));
                return None;
            }
        };
        match Folder::open(&path) {
            Ok(f) => Some(f),
            Err(_) => {
                self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
                None
            }
        }
    }

    pub fn append(
        &mut self,
        tag: &str,
        name: &str,
        list: &[Flag<'_>],
        date: Option<&DateTime>,
        data: &[u8],
    ) -> std::io::Result<()> {
        let Some(dst) = self.target(tag, name) else {
            return Ok(());
        };
        if data.len() as u64 > self.sh.max_literal {
            self.tagged(tag, "NO", "[TOOBIG] Message larger than APPENDLIMIT");
            return Ok(());
        }
        if data.is_empty() {
            self.tagged(tag, "NO", "Empty message");
            return Ok(());
        }
        let base = folder::unique_base(&self.sh.hostname);
        let tmp = dst.path.join("tmp").join(&base);
        let written = (|| -> std::io::Result<()> {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut w = std::io::BufWriter::new(f);
            // IMAP messages have CRLF line ends; a bare LF gets its CR.
            let mut prev = 0u8;
            for chunk in data.split_inclusive(|b| *b == b'\n') {
                let bare = chunk.ends_with(b"\n")
                    && match chunk.len() {
                        1 => prev != b'\r',
                        n => chunk[n - 2] != b'\r',
                    };
                if bare {
                    w.write_all(&chunk[..chunk.len() - 1])?;
                    w.write_all(b"\r\n")?;
                } else {
                    w.write_all(chunk)?;
                }
                prev = chunk.last().copied().unwrap_or(0);
            }
            let f = w.into_inner().map_err(|e| e.into_error())?;
            let when = date
                .map(|d| d.as_ref().timestamp())
                .unwrap_or_else(folder::now_secs);
            f.set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(when.max(0) as u64),
            )?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            log::warn!(
                "{}: append to {}: {e}",
                self.service.name(),
                dst.path.display()
            );
            self.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
            return Ok(());
        }
        let (validity, uid) = {
            let mut st = dst.lock()?;
            let bits = Self::flag_bits(&dst, &mut st, list)?;
            match dst.add(&mut st, &tmp, &base, bits) {
                Ok(uid) => (st.uidvalidity, uid),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    log::warn!(
                        "{}: append to {}: {e}",
                        self.service.name(),
                        dst.path.display()
                    );
                    self.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
                    return Ok(());
                }
            }
        };
        if let Err(e) = dst.sync_cur() {
            log::warn!(
                "{}: append to {}: {e}",
                self.service.name(),
                dst.path.display()
            );
            self.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
            return Ok(());
        }
        self.changed(&dst.path);
        if self.sel.as_ref().is_some_and(|s| s.folder.path == dst.path) {
            self.sync(true)?;
        }
        self.tagged(
            tag,
            "OK",
            &format!("[APPENDUID {validity} {uid}] APPEND completed"),
        );
        Ok(())
    }
}

/// `label` and a serialized item from the folder's metadata cache, made on first use.
fn cached(
    out: &mut Vec<u8>,
    label: &[u8],
    cell: &std::sync::OnceLock<std::sync::Arc<[u8]>>,
    make: impl FnOnce() -> std::sync::Arc<[u8]>,
) {
    out.extend_from_slice(label);
    out.extend_from_slice(cell.get_or_init(make));
}

/// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (... \*)]` for these keywords.
fn flags_lines(keywords: &[String]) -> String {
    let kw: String = keywords.iter().map(|k| format!(" {k}")).collect();
    format!(
        "* FLAGS ({sys}{kw})\r\n* OK [PERMANENTFLAGS ({sys}{kw} \\*)] Flags permitted\r\n",
        sys = flags::SYSTEM_LIST
    )
}

/// `* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set` (RFC 4731 3.1):
/// `opts` empty means ALL; MIN, MAX and ALL are left out when nothing matched.
fn esearch(tag: &str, uid: bool, opts: &[String], found: &[u32]) -> String {
    let mut line = format!("* ESEARCH (TAG {})", super::wire::quote(tag));
    if uid {
        line.push_str(" UID");
    }
    let want = |o: &str| opts.iter().any(|x| x == o) || (opts.is_empty() && o == "ALL");
    if let (true, Some(min)) = (want("MIN"), found.iter().min()) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (true, Some(max)) = (want("MAX"), found.iter().max()) {
        line.push_str(&format!(" MAX {max}"));
    }
    if want("COUNT") {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if want("ALL") && !found.is_empty() {
        let mut sorted = found.to_vec();
        sorted.sort_unstable();
        line.push_str(&format!(" ALL {}", uid_ranges(&sorted)));
    }
    line + "\r\n"
}
