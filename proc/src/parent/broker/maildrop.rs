//! The maildrop directory (EMAIL_MAILDROP_DIR, mode 1733): where sendmail
//! leaves a message while the server is down, as a file of the sending user
//! (its owner is who sent it: the kernel's word, as with the submit socket).
//! The parent opens each finished file and hands it to smtp, which submits it
//! as a local session would and says when it is in the queue; then it is
//! removed, or renamed `.bad` when smtp could not take it (kept, logged).
//!
//! The file format is ours and versioned (`sx sendmail` writes it, smtp's
//! `local.rs` reads it): a first line `SXDROP1`, then `from <address>` (may
//! be empty), one `rcpt <address>` line per recipient, an empty line, and the
//! message. It is written as `<name>.tmp`, synced, and renamed `<name>.msg`.

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Room for the envelope lines beside the message itself.
pub const MAX_ENVELOPE: u64 = 1 << 20;
/// Directory entries looked at per request: a directory flooded with junk
/// names costs each request a bounded amount.
const MAX_SCAN: usize = 1000;
/// A `.tmp` this old belongs to a sendmail that died while writing it.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub struct Dropped {
    pub file: String,
    pub uid: u32,
    pub fd: OwnedFd,
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 100
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The next finished file not already handed out.
pub fn next(dir: &Path, max: u64, skip: &HashSet<String>) -> Option<Dropped> {
    let entries = std::fs::read_dir(dir).ok()?;
    for e in entries.flatten().take(MAX_SCAN) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if !name_ok(&name) || skip.contains(&name) {
            continue;
        }
        let path = dir.join(&name);
        if name.ends_with(".tmp") {
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
            if old {
                log::info!("maildrop: removed {name}, left unfinished a day ago");
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if !name.ends_with(".msg") {
            continue;
        }
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                log::warn!("maildrop: cannot open {name}: {e}");
                set_aside(dir, &name);
                continue;
            }
        };
        let Ok(md) = f.metadata() else { continue };
        // A link to another user's file would send it as that user.
        let why = if !md.is_file() {
            Some("not a regular file".to_string())
        } else if md.nlink() != 1 {
            Some(format!("{} links", md.nlink()))
        } else if md.len() > max {
            Some(format!("{} bytes, over the size limit", md.len()))
        } else {
            None
        };
        if let Some(why) = why {
            log::warn!("maildrop: {name} of uid {}: {why}", md.uid());
            set_aside(dir, &name);
            continue;
        }
        return Some(Dropped {
            file: name,
            uid: md.uid(),
            fd: f.into(),
        });
    }
    None
}

/// smtp has it in the queue (ok) or refused it for good.
pub fn done(dir: &Path, file: &str, ok: bool) {
    if !name_ok(file) {
        return;
    }
    if ok {
        if let Err(e) = std::fs::remove_file(dir.join(file)) {
            log::warn!("maildrop: cannot remove {file}: {e}");
        }
    } else {
        set_aside(dir, file);
    }
}

/// Kept for the administrator, out of the way of the next scan.
fn set_aside(dir: &Path, name: &str) {
    let bad = format!("{}.bad", name.trim_end_matches(".msg"));
    match std::fs::rename(dir.join(name), dir.join(&bad)) {
        Ok(()) => log::warn!("maildrop: {name} kept as {bad}"),
        Err(e) => log::warn!("maildrop: cannot set {name} aside: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_files_only_links_and_oversize_set_aside() {
        let d = std::env::temp_dir().join(format!("sx-maildrop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.as_path();
        std::fs::write(p.join("a.tmp"), "partial").unwrap();
        std::fs::write(p.join("b.msg"), "SXDROP1\n").unwrap();
        std::fs::write(p.join("big.msg"), vec![b'x'; 100]).unwrap();
        std::fs::write(p.join("orig"), "x").unwrap();
        std::fs::hard_link(p.join("orig"), p.join("linked.msg")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", p.join("sym.msg")).unwrap();
        let mut skip = HashSet::new();
        let mut got = Vec::new();
        while let Some(x) = next(p, 50, &skip) {
            skip.insert(x.file.clone());
            got.push(x.file);
        }
        assert_eq!(got, ["b.msg"]);
        for bad in ["big.bad", "linked.bad", "sym.bad"] {
            assert!(std::fs::symlink_metadata(p.join(bad)).is_ok(), "{bad}");
        }
        assert!(p.join("a.tmp").exists());
        done(p, "b.msg", true);
        assert!(!p.join("b.msg").exists());
        done(p, "../orig", true);
        assert!(p.join("orig").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
