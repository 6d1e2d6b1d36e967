//! Mailbox names to Maildir++ folders. The hierarchy delimiter is `.` (as in
//! Maildir++): `Lists.rust` is `<account>/.Lists.rust/`. A name that could
//! leave the account (`/`, `..`, empty levels, control characters) is refused.

use std::path::{Path, PathBuf};

pub const DELIM: char = '.';
pub const SUBSCRIPTIONS: &str = "sx-subscriptions";
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

/// Why a name for a new folder is refused: as `check`, and it must be valid
/// modified UTF-7 (RFC 3501 5.1.3), the form names are stored in (utf8.rs),
/// so that every client can be told it. Existing folders (another program's
/// included) are found by `check` alone.
pub fn check_new(name: &str) -> Result<(), &'static str> {
    check(name)?;
    if super::utf8::decode(name).is_none() {
        return Err("Mailbox name is not valid modified UTF-7");
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

/// INBOX and every folder of the account, sorted (INBOX first). A folder is a
/// `.name` directory with a `cur/`; `cur/` is looked up from the account's
/// directory (fstatat), not by walking the whole path again for every folder.
pub fn all(account: &Path) -> Vec<String> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, Mode, SFlag};
    let mut out = Vec::new();
    let dir = nix::fcntl::open(
        account,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    if let (Ok(dir), Ok(rd)) = (dir, std::fs::read_dir(account)) {
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = n.strip_prefix('.') {
                let has_cur = check(name).is_ok()
                    && fstatat(&dir, format!("{n}/cur").as_str(), AtFlags::empty()).is_ok_and(
                        |st| {
                            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
                        },
                    );
                if has_cur {
                    out.push(name.to_string());
                }
            }
        }
    }
    out.sort();
    out.insert(0, "INBOX".to_string());
    out
}

/// How many folder directories the account has (INBOX not counted), from the
/// directory listing alone: CREATE's limit check must not cost a stat per folder.
pub fn count(account: &Path) -> usize {
    std::fs::read_dir(account).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| {
                e.file_name().as_encoded_bytes().first() == Some(&b'.')
                    && e.file_type().is_ok_and(|t| t.is_dir())
            })
            .count()
    })
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

/// Longest LIST pattern (reference + pattern, after runs of wildcards are
/// collapsed) that is matched; no name is longer than MAX_NAME, so a longer
/// pattern is only a way to make matching expensive.
pub const MAX_PATTERN: usize = 4 * MAX_NAME;

/// A LIST/LSUB pattern, compiled once per command. Matching is a dynamic
/// programme over (pattern position, name position): O(pattern x name) time and
/// O(name) memory whatever the wildcards, never recursion or backtracking.
pub struct Pattern(Vec<u8>);

impl Pattern {
    /// `None` when the pattern is longer than MAX_PATTERN.
    pub fn new(pattern: &str) -> Option<Pattern> {
        let mut p: Vec<u8> = Vec::with_capacity(pattern.len().min(MAX_PATTERN + 1));
        // INBOX is case-insensitive, also as the first level of a pattern.
        let bytes = pattern.as_bytes();
        let (head, rest) = match (bytes.get(..5), bytes.get(5)) {
            (Some(h), None | Some(b'.' | b'*' | b'%')) if h.eq_ignore_ascii_case(b"INBOX") => {
                (&b"INBOX"[..], &bytes[5..])
            }
            _ => (&b""[..], bytes),
        };
        for &b in head.iter().chain(rest) {
            // `**`, `*%` and `%*` match what `*` matches; `%%` what `%` does.
            match (p.last(), b) {
                (Some(b'*'), b'*' | b'%') => continue,
                (Some(b'%'), b'*') => {
                    if let Some(last) = p.last_mut() {
                        *last = b'*';
                    }
                    continue;
                }
                (Some(b'%'), b'%') => continue,
                _ => {}
            }
            p.push(b);
            if p.len() > MAX_PATTERN {
                return None;
            }
        }
        Some(Pattern(p))
    }

    /// `*` matches anything, `%` anything but the delimiter.
    pub fn matches(&self, name: &str) -> bool {
        let n = name.as_bytes();
        // INBOX (any case) as the first level is compared as INBOX.
        let inbox = n.get(..5).is_some_and(|h| h.eq_ignore_ascii_case(b"INBOX"))
            && matches!(n.get(5), None | Some(b'.'));
        let at = |i: usize| -> u8 {
            match n.get(i) {
                Some(&c) if inbox && i < 5 => c.to_ascii_uppercase(),
                Some(&c) => c,
                None => 0,
            }
        };
        // row[j]: pattern[..i] matches name[..j].
        let mut row = vec![false; n.len() + 1];
        row[0] = true;
        for &pc in &self.0 {
            match pc {
                b'*' => {
                    // Reachable from any earlier reachable position.
                    let mut seen = false;
                    for cell in row.iter_mut() {
                        seen |= *cell;
                        *cell = seen;
                    }
                }
                b'%' => {
                    // Like `*`, but a delimiter in between breaks the run.
                    let mut seen = false;
                    for (j, cell) in row.iter_mut().enumerate() {
                        if j > 0 && at(j - 1) == DELIM as u8 {
                            seen = false;
                        }
                        seen |= *cell;
                        *cell = seen;
                    }
                }
                c => {
                    for j in (1..row.len()).rev() {
                        row[j] = row[j - 1] && at(j - 1) == c;
                    }
                    row[0] = false;
                }
            }
            if !row.iter().any(|r| *r) {
                return false;
            }
        }
        row[n.len()]
    }
}

/// LIST wildcard match of one name (tests and one-off callers).
pub fn matches(pattern: &str, name: &str) -> bool {
    Pattern::new(pattern).is_some_and(|p| p.matches(name))
}

/// First line of the subscriptions file: a name starting with `.` is refused
/// by `check`, so it cannot be a mailbox. Release 0.1's files have none.
const SUBSCRIPTIONS_HEAD: &str = ".SXSUB 1";

/// The lines of a small state file (keywords, subscriptions) after its first
/// line `<head>1`; a file without that line is release 0.1's and all lines
/// count. A later version (`<head>2`...) is an error, logged: the caller
/// neither serves nor rewrites the file.
pub fn versioned_lines<'a>(
    text: &'a str,
    head: &str,
    path: &Path,
) -> std::io::Result<impl Iterator<Item = &'a str> + use<'a>> {
    let mut lines = text.lines().peekable();
    if let Some(v) = lines.peek().and_then(|l| l.strip_prefix(head)) {
        if v.trim() != "1" {
            log::error!(
                "{}: written by a newer release ({head}{v}); kept as it is",
                path.display()
            );
            return Err(std::io::Error::other("file of a newer release"));
        }
        lines.next();
    }
    Ok(lines)
}

/// The subscribed names; Err for a file of a later release (kept as it is).
fn read_subscriptions(account: &Path) -> std::io::Result<Vec<String>> {
    let path = account.join(SUBSCRIPTIONS);
    let Ok(t) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let names = versioned_lines(&t, ".SXSUB ", &path)?
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Ok(names)
}

pub fn subscriptions(account: &Path) -> Vec<String> {
    read_subscriptions(account).unwrap_or_default()
}

pub fn set_subscribed(account: &Path, name: &str, on: bool) -> std::io::Result<()> {
    let mut subs = read_subscriptions(account)?;
    subs.retain(|s| s != name);
    if on {
        subs.push(name.to_string());
    }
    let mut text = format!("{SUBSCRIPTIONS_HEAD}\n");
    for s in &subs {
        text.push_str(s);
        text.push('\n');
    }
    crate::accounts::write_atomic(&account.join(SUBSCRIPTIONS), text.as_bytes(), 0o600)
}

/// Special uses given at CREATE (RFC 6154 CREATE-SPECIAL-USE), kept in the
/// account's `sx-specialuse`: `.SXSU 1`, then `<attribute> <name>` lines.
const SPECIAL_USES: &str = "sx-specialuse";
const SPECIAL_USES_HEAD: &str = ".SXSU 1";

/// The special uses CREATE may give (RFC 6154 2): the ones backed by a real
/// folder; \All and \Flagged would need virtual ones.
pub const CREATABLE_USES: [&str; 5] = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"];

/// Every folder's special use: the ones given at CREATE, else the one its
/// name implies (Sent, Drafts, Trash, Junk).
pub struct SpecialUses(std::collections::HashMap<String, String>);

impl SpecialUses {
    pub fn read(account: &Path) -> SpecialUses {
        let path = account.join(SPECIAL_USES);
        let mut map = std::collections::HashMap::new();
        if let Ok(t) = std::fs::read_to_string(&path) {
            if let Ok(lines) = versioned_lines(&t, ".SXSU ", &path) {
                for l in lines {
                    if let Some((attr, name)) = l.split_once(' ') {
                        map.insert(name.to_string(), attr.to_string());
                    }
                }
            }
        }
        SpecialUses(map)
    }

    pub fn of(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .or_else(|| special_use(name))
    }
}

/// Record (or, with None, forget) the special use of `name`; `renamed`
/// moves the entries of a folder and its children to a new name.
pub fn set_special_use(account: &Path, name: &str, attr: Option<&str>) -> std::io::Result<()> {
    edit_special_uses(account, |m| {
        match attr {
            Some(a) => m.insert(name.to_string(), a.to_string()),
            None => m.remove(name),
        };
    })
}

pub fn rename_special_uses(account: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let prefix = format!("{from}{DELIM}");
    edit_special_uses(account, |m| {
        let moved: Vec<(String, String)> = m
            .iter()
            .filter(|(n, _)| *n == from || n.starts_with(&prefix))
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        for (n, a) in moved {
            m.remove(&n);
            m.insert(
                format!("{to}{}", n.get(from.len()..).unwrap_or_default()),
                a,
            );
        }
    })
}

fn edit_special_uses(
    account: &Path,
    change: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> std::io::Result<()> {
    let path = account.join(SPECIAL_USES);
    if let Ok(t) = std::fs::read_to_string(&path) {
        // A file of a later release is left as it is.
        let _ = versioned_lines(&t, ".SXSU ", &path)?;
    }
    let mut m = SpecialUses::read(account).0;
    let before = m.len();
    change(&mut m);
    if m.is_empty() && before == 0 {
        return Ok(());
    }
    let mut names: Vec<_> = m.into_iter().collect();
    names.sort();
    let mut text = format!("{SPECIAL_USES_HEAD}\n");
    for (n, a) in names {
        text.push_str(&format!("{a} {n}\n"));
    }
    crate::accounts::write_atomic(&path, text.as_bytes(), 0o600)
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
        assert!(matches("INBOX.*", "inbox.x"));
        assert!(matches("%.b", "a.b"));
        assert!(!matches("%.b", "a.c.b"));
        assert!(matches("*%", "a.b"));
        assert!(matches("%*", "a.b"));
        assert!(matches("a%%.b", "a.b"));
        assert!(!matches("a", "ab"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("*ä*", "xäy"));
    }

    /// A folder is a `.name` directory with `cur/`; the count for CREATE's
    /// limit takes every `.name` directory, from the listing alone.
    #[test]
    fn all_and_count_read_the_account_directory() {
        let d = std::env::temp_dir().join(format!("sx-names-{}", std::process::id()));
        for p in [".A/cur", ".A.b/cur", ".half", "cur"] {
            std::fs::create_dir_all(d.join(p)).unwrap();
        }
        std::fs::write(d.join(".file"), b"").unwrap();
        assert_eq!(all(&d), ["INBOX", "A", "A.b"]);
        assert_eq!(count(&d), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Regression (issue 14.1): 200,000 `*` overflowed the stack, 300 `*`
    /// then `x` spun for ever; now both answer at once.
    #[test]
    fn hostile_patterns_are_cheap() {
        let t = std::time::Instant::now();
        let stars = "*".repeat(200_000);
        assert!(matches(&stars, "a.b.c"));
        let spin = format!("{}x", "*".repeat(300));
        let name = "a".repeat(MAX_NAME);
        assert!(!matches(&spin, &name));
        let alternating = "*a".repeat(MAX_PATTERN / 2);
        assert!(Pattern::new(&alternating).is_some());
        assert!(!matches(&alternating, &name));
        assert!(Pattern::new(&"a".repeat(MAX_PATTERN + 1)).is_none());
        assert!(
            t.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
}
