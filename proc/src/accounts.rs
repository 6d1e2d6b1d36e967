//! The accounts file: one `user@domain:$argon2id$...` per line, `#` comments.
//! Parsed by the parent (which hands hashes to keyholder only) and edited
//! atomically by the admin commands (lock, write tmp, fsync, rename, fsync dir).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub address: String,
    pub hash: String,
}

#[derive(Debug)]
pub struct AccountsError {
    pub path: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for AccountsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.msg)
        }
    }
}

impl std::error::Error for AccountsError {}

/// Lower-cased `local@domain`, or None if it is not a plain address we can host.
pub fn normalize_address(a: &str) -> Option<String> {
    let a = a.trim().to_ascii_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    // ASCII letters, digits and `._-`, and (RFC 6531) letters and digits of
    // any script: a local part is also a Maildir directory name.
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            c.is_ascii_alphanumeric() || "._-".contains(c) || (!c.is_ascii() && c.is_alphanumeric())
        });
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    (local_ok && domain_ok).then_some(a)
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<Account>, AccountsError> {
    let mut out: Vec<Account> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |msg: String| AccountsError {
            path: path.to_path_buf(),
            line: i + 1,
            msg,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((addr, hash)) = t.split_once(':') else {
            return Err(err(
                "expected user@domain:$argon2id$... (missing ':')".into()
            ));
        };
        let Some(address) = normalize_address(addr) else {
            return Err(err(format!("{addr:?} is not a valid address")));
        };
        if !hash.starts_with("$argon2") || argon2::PasswordHash::new(hash).is_err() {
            return Err(err(format!(
                "password hash for {address} is not an argon2 PHC string"
            )));
        }
        if out.iter().any(|a| a.address == address) {
            return Err(err(format!("duplicate account {address}")));
        }
        out.push(Account {
            address,
            hash: hash.to_string(),
        });
    }
    Ok(out)
}

/// Read the accounts file; a missing file is an empty list.
pub fn load(path: &Path) -> Result<Vec<Account>, AccountsError> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(path, &t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(AccountsError {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read: {e}"),
        }),
    }
}

/// Hash a password as argon2id with the crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    match argon2::PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// An exclusive lock on `<file>.lock`, held while an edit runs.
pub struct EditLock {
    _lock: nix::fcntl::Flock<File>,
}

pub fn lock(path: &Path) -> std::io::Result<EditLock> {
    let lock_path = sibling(path, ".lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)?;
    let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    Ok(EditLock { _lock: lock })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replace `path` atomically with `accounts` (mode 0600), keeping a reader never
/// sees a half-written file.
pub fn save(path: &Path, accounts: &[Account]) -> std::io::Result<()> {
    let mut text = String::from("# scorpiox-email accounts: user@domain:argon2id-hash\n");
    for a in accounts {
        text.push_str(&a.address);
        text.push(':');
        text.push_str(&a.hash);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes(), 0o600)
}

/// tmp in the same directory -> fsync -> rename -> fsync(dir).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = sibling(path, &format!(".tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A full disk must not leave half-written temporary files behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_line() {
        let p = Path::new("/etc/acc");
        let h = hash_password("pw").unwrap();
        let ok = parse(p, &format!("# x\nA@B.test:{h}\n")).unwrap();
        assert_eq!(ok[0].address, "a@b.test");
        assert!(verify_password(&ok[0].hash, "pw"));
        assert!(!verify_password(&ok[0].hash, "nope"));
        let e = parse(p, &format!("a@b.test:{h}\nbroken\n")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("/etc/acc:2:"));
        let e = parse(p, "a@b.test:plain\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("Bob@Example.TEST").as_deref(),
            Some("bob@example.test")
        );
        assert!(normalize_address("a%b@c").is_none());
        assert!(normalize_address("../x@c").is_none());
        assert!(normalize_address("a@").is_none());
    }
}
