//! Maildir++ layout helpers shared by admin commands, delivery and imap.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
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

/// Open (creating it if missing) the directory `name` beneath `parent` without
/// following a symbolic link, and give it to `owner`. The Maildir tree belongs
/// to the mail user: as root we must never follow a link planted in it, or a
/// chown would land on whatever it points to.
fn dir_at(parent: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => std::io::Error::other(format!(
            "{name}: not a directory (a symbolic link?); refusing to use it"
        )),
        e => e.into(),
    })?;
    if let Some((u, g)) = owner {
        nix::unistd::fchown(&fd, Some(u.into()), Some(g.into()))?;
    }
    Ok(fd)
}

fn make_maildir(
    parent: &OwnedFd,
    name: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<OwnedFd> {
    let dir = dir_at(parent, name, owner)?;
    for sub in ["cur", "new", "tmp"] {
        dir_at(&dir, sub, owner)?;
    }
    Ok(dir)
}

/// Create INBOX and the special folders; `owner` is (uid, gid) when run as root.
pub fn create_account(
    root: &Path,
    address: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let dir = account_dir(root, address)
        .ok_or_else(|| std::io::Error::other(format!("{address}: not a valid address")))?;
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| std::io::Error::other(format!("{address}: not a valid address")))?;
    if !root.exists() {
        std::fs::create_dir_all(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    }
    // The root is the operator's; everything beneath it is opened one level at
    // a time, never through a link.
    let root_fd = std::fs::File::open(root).map(OwnedFd::from)?;
    let domain_fd = dir_at(&root_fd, domain, owner)?;
    let account = make_maildir(&domain_fd, local, owner)?;
    for f in SPECIAL_FOLDERS {
        let folder = make_maildir(&account, &format!(".{f}"), owner)?;
        let marker = openat(
            &folder,
            "maildirfolder",
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        if let Some((u, g)) = owner {
            nix::unistd::fchown(&marker, Some(u.into()), Some(g.into()))?;
        }
    }
    Ok(dir)
}

/// Bytes of mail in an account: every message file in `new/` and `cur/` of
/// INBOX and of each folder. What EMAIL_QUOTA limits (delivery defers past it)
/// and QUOTA reports.
pub fn usage(account: &Path) -> u64 {
    let mut folders = vec![account.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(account) {
        folders.extend(
            rd.flatten()
                .filter(|e| e.file_name().as_encoded_bytes().first() == Some(&b'.'))
                .map(|e| e.path()),
        );
    }
    let mut total = 0u64;
    for f in folders {
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(f.join(sub)) {
                total += rd
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>();
            }
        }
    }
    total
}
