//! Mailbox names to Maildir++ folders. The hierarchy delimiter is `.` (as in
//! Maildir++): `Lists.rust` is `<account>/.Lists.rust/`. A name that could
//! leave the account (`/`, `..`, empty levels, control characters) is refused.

use std::path::{Path, PathBuf};

pub const DELIM: char = '.';
const SUBSCRIPTIONS: &str = "sx-subscriptions";
const MAX_NAME: usize = 200;

pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// Why a name is refused, for the NO text.
pub fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("Mailbox name is empty or too long");
    }
    if name.contains('/') || name.contains('\\') || name.starts_with('~') {
        return Err("Mailbox names may not contain / or \\ or start with ~");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("Mailbox names may not contain control characters");
    }
    if name.starts_with(DELIM) || name.ends_with(DELIM) || name.contains("..") {
        return Err("Mailbox names may not have empty levels");
    }
    Ok(())
}

/// The folder directory for `name`, relative like `account`.
pub fn folder(account: &Path, name: &str) -> Result<PathBuf, &'static str> {
    if is_inbox(name) {
        return Ok(account.to_path_buf());
    }
    check(name)?;
    Ok(account.join(format!(".{name}")))
}

/// INBOX and every folder of the account, sorted (INBOX first).
pub fn all(account: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(account) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = n.strip_prefix('.') {
                if check(name).is_ok() && e.path().join("cur").is_dir() {
                    out.push(name.to_string());
                }
            }
        }
    }
    out.sort();
    out.insert(0, "INBOX".to_string());
    out
}

/// The SPECIAL-USE attribute (RFC 6154) of the folders every account gets.
pub fn special_use(name: &str) -> Option<&'static str> {
    match name {
        "Sent" => Some("\\Sent"),
        "Drafts" => Some("\\Drafts"),
        "Trash" => Some("\\Trash"),
        "Junk" => Some("\\Junk"),
        _ => None,
    }
}

/// LIST wildcard match: `*` matches anything, `%` anything but the delimiter.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn m(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| m(&p[1..], &n[i..])),
            Some(b'%') => {
                for i in 0..=n.len() {
                    if m(&p[1..], &n[i..]) {
                        return true;
                    }
                    if i < n.len() && n[i] == DELIM as u8 {
                        return false;
                    }
                }
                false
            }
            Some(c) => n.first() == Some(c) && m(&p[1..], &n[1..]),
        }
    }
    // INBOX is case-insensitive, also as the first level of a pattern.
    // get(): a non-ASCII name or pattern may have no char boundary at 5.
    let (p, n) = if is_inbox(name.get(..5).unwrap_or("")) && pattern.len() >= 5 {
        let pp = if is_inbox(pattern.get(..5).unwrap_or("")) {
            format!("INBOX{}", &pattern[5..])
        } else {
            pattern.to_string()
        };
        (pp, format!("INBOX{}", &name[5..]))
    } else {
        (pattern.to_string(), name.to_string())
    };
    m(p.as_bytes(), n.as_bytes())
}

pub fn subscriptions(account: &Path) -> Vec<String> {
    std::fs::read_to_string(account.join(SUBSCRIPTIONS))
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_subscribed(account: &Path, name: &str, on: bool) -> std::io::Result<()> {
    let mut subs = subscriptions(account);
    subs.retain(|s| s != name);
    if on {
        subs.push(name.to_string());
    }
    let tmp = account.join("sx-subscriptions.tmp");
    std::fs::write(&tmp, subs.join("\n") + "\n")?;
    std::fs::rename(tmp, account.join(SUBSCRIPTIONS))
}

/// The folder names (and INBOX) at or below `name`.
pub fn with_children(account: &Path, name: &str) -> Vec<String> {
    let prefix = format!("{name}{DELIM}");
    all(account)
        .into_iter()
        .filter(|n| n == name || n.starts_with(&prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        let a = Path::new("d/u");
        for bad in [
            "../x", "a/b", "..", ".x", "x.", "a..b", "", "~x", "a\nb", "/etc",
        ] {
            assert!(folder(a, bad).is_err(), "{bad:?}");
        }
        assert_eq!(folder(a, "inbox").unwrap(), Path::new("d/u"));
        assert_eq!(
            folder(a, "Lists.rust").unwrap(),
            Path::new("d/u/.Lists.rust")
        );
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a.b"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a.b"));
        assert!(matches("a.%", "a.b"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("S*", "Sent"));
        assert!(!matches("T*", "Sent"));
    }
}
