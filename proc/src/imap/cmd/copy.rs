//! COPY and UID COPY (RFC 3501 6.4.7, COPYUID of RFC 4315), MOVE and UID
//! MOVE (RFC 6851). Copies are hard links where the file system allows;
//! keywords are mapped by name, as each folder numbers its own.

use crate::imap::flags::{self, Bits};
use crate::imap::folder;
use crate::imap::io::Io;
use crate::imap::respond::uid_ranges;
use crate::imap::state::Login;
use crate::imap::view::Selected;
use imap_codec::imap_types::sequence::SequenceSet;

/// What to copy where; `mv` for MOVE.
pub struct Transfer<'a> {
    pub set: &'a SequenceSet,
    pub dest: &'a str,
    pub uid: bool,
    pub mv: bool,
}

/// COPY, or MOVE (RFC 6851) when `mv`.
pub fn copy(
    io: &mut Io,
    login: &Login,
    sel: &mut Selected,
    tag: &str,
    t: Transfer<'_>,
) -> std::io::Result<()> {
    let Transfer { set, dest, uid, mv } = t;
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    let Some(dst) = super::target(io, login, tag, dest) else {
        return Ok(());
    };
    let host = io.sh.hostname.clone();
    if mv && sel.read_only {
        io.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        return Ok(());
    }
    if !uid && sel.out_of_range(set) {
        io.tagged(tag, "BAD", "Invalid message sequence number");
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
    // A copy keeps its base name, and so its EMAILID (RFC 8474), unless the
    // target holds that name already (a copy into the same folder).
    let mut taken: std::collections::HashSet<String> = dst
        .lock()?
        .msgs
        .iter()
        .map(|m| flags::base(&m.file).to_string())
        .collect();
    for (u, path, bits) in sources {
        let own = path
            .file_name()
            .map(|n| flags::base(&n.to_string_lossy()).to_string())
            .unwrap_or_default();
        let base = if own.is_empty() || taken.contains(&own) {
            folder::unique_base(&host)
        } else {
            own
        };
        taken.insert(base.clone());
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
        io.changed(&dst.path);
    }
    if mv && !from.is_empty() {
        io.push(&format!("* OK {code}Moved\r\n"));
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
        let gone = sel.expunged(io.enabled, &from);
        io.push(&gone);
        io.changed(&src.path);
    }
    if let Some(e) = failure {
        log::warn!("{}: copy to {}: {e}", io.service.name(), dst.path.display());
        io.tagged(tag, "NO", "[SERVERBUG] Copy failed part way");
        return Ok(());
    }
    // Into the selected mailbox itself: the new messages are announced in
    // this response (EXISTS), not only at the next command.
    if sel.folder.path == dst.path {
        let updates = sel.sync(io.enabled, true);
        io.push(&updates);
    }
    let what = if mv { "MOVE" } else { "COPY" };
    if mv {
        io.tagged(tag, "OK", &format!("{what} completed"));
    } else {
        io.tagged(tag, "OK", &format!("{code}{what} completed"));
    }
    Ok(())
}
