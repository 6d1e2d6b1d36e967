//! Maildir++ layout helpers shared by admin commands, delivery and imap.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Folders every new account gets besides INBOX (SPECIAL-USE).
pub const SPECIAL_FOLDERS: [&str; 4] = ["Sent", "Drafts", "Trash", "Junk"];

/// `<root>/<domain>/<local>` for a normalized address.
pub fn account_dir(root: &Path, address: &str) -> Option<PathBuf> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.contains('/')
        || domain.contains('/')
        || local.starts_with('.')
        || domain.starts_with('.')
    {
        return None;
    }
    Some(root.join(domain).join(local))
}

fn mkdir(p: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    if !p.exists() {
        std::fs::DirBuilder::new().mode(0o700).create(p)?;
    }
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g))?;
    }
    Ok(())
}

fn make_maildir(p: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    mkdir(p, owner)?;
    for sub in ["cur", "new", "tmp"] {
        mkdir(&p.join(sub), owner)?;
    }
    Ok(())
}

/// Create INBOX and the special folders; `owner` is (uid, gid) when run as root.
pub fn create_account(
    root: &Path,
    address: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let dir = account_dir(root, address)
        .ok_or_else(|| std::io::Error::other(format!("{address}: not a valid address")))?;
    if !root.exists() {
        std::fs::create_dir_all(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    }
    if let Some(domain_dir) = dir.parent() {
        mkdir(domain_dir, owner)?;
    }
    make_maildir(&dir, owner)?;
    for f in SPECIAL_FOLDERS {
        let fd = dir.join(format!(".{f}"));
        make_maildir(&fd, owner)?;
        let marker = fd.join("maildirfolder");
        if !marker.exists() {
            std::fs::write(&marker, b"")?;
            if let Some((u, g)) = owner {
                std::os::unix::fs::chown(&marker, Some(u), Some(g))?;
            }
        }
    }
    Ok(dir)
}
