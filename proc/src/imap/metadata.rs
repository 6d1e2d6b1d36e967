//! METADATA (RFC 5464): entries on the server (mailbox "") and on each
//! mailbox, /private and /shared (one user per account, so both are the
//! user's), kept in `sx-metadata` in the folder (INBOX and the server's in
//! the account directory, as `sx-metadata` and `sx-metadata-server`):
//! `SXMD 1`, then one `<entry> <base64 value>` line per entry. Bounded: an
//! entry name at most 1 KiB, a value at most MAX_VALUE, a mailbox's entries
//! together at most MAX_TOTAL; beyond that `NO [METADATA MAXSIZE n]` or
//! `[METADATA TOOMANY]`.

use super::ext;
use super::tokens::{astring, inner, literal_data, mailbox, spans, text, Kind, Span};
use base64::Engine;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Below the 64 KiB a command may have after login, so MAXSIZE can be told.
pub const MAX_VALUE: usize = 32 * 1024;
pub const MAX_TOTAL: usize = 256 * 1024;
pub const MAX_ENTRY: usize = 1024;
const HEAD: &str = "SXMD 1";
/// A folder's entries (INBOX's in the account directory).
pub const FILE: &str = "sx-metadata";
/// The server's entries, in the account directory.
pub const SERVER_FILE: &str = "sx-metadata-server";

/// The file holding `mailbox`'s entries: "" is the server's.
pub fn file(account: &Path, folder: Option<&Path>) -> PathBuf {
    match folder {
        None => account.join(SERVER_FILE),
        Some(f) => f.join(FILE),
    }
}

/// A valid entry name, lower-cased (RFC 5464 3.2: names compare without
/// case); `/private` and `/shared` alone only to read (with DEPTH).
pub fn entry_name(s: &str, to_read: bool) -> Option<String> {
    let l = s.to_ascii_lowercase();
    let top = to_read && (l == "/private" || l == "/shared");
    let ok = (top || l.starts_with("/private/") || l.starts_with("/shared/"))
        && l.len() <= MAX_ENTRY
        && !l.ends_with('/')
        && !l.contains("//")
        && l.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'*' && b != b'%');
    ok.then_some(l)
}

/// Entries in name order; nothing for a missing or unreadable file.
pub fn read(path: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for l in super::names::versioned_lines(&text, "SXMD ", path)? {
        if let Some((name, v)) = l.split_once(' ') {
            if let Ok(v) = base64::engine::general_purpose::STANDARD.decode(v) {
                out.insert(name.to_string(), v);
            }
        }
    }
    Ok(out)
}

/// Why a SETMETADATA was refused (its response code).
#[derive(Debug, PartialEq)]
pub enum Refused {
    MaxSize(usize),
    TooMany,
}

/// Set (Some) or remove (None) entries, all or none.
pub fn write(
    path: &Path,
    changes: &[(String, Option<Vec<u8>>)],
) -> std::io::Result<Result<(), Refused>> {
    let mut all = read(path)?;
    for (name, v) in changes {
        match v {
            Some(v) if v.len() > MAX_VALUE => return Ok(Err(Refused::MaxSize(MAX_VALUE))),
            Some(v) => {
                all.insert(name.clone(), v.clone());
            }
            None => {
                all.remove(name);
            }
        }
    }
    let total: usize = all.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_TOTAL {
        return Ok(Err(Refused::TooMany));
    }
    let mut text = format!("{HEAD}\n");
    for (k, v) in &all {
        text.push_str(k);
        text.push(' ');
        text.push_str(&base64::engine::general_purpose::STANDARD.encode(v));
        text.push('\n');
    }
    crate::accounts::write_atomic(path, text.as_bytes(), 0o600)?;
    Ok(Ok(()))
}

/// GETMETADATA DEPTH (RFC 5464 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Depth {
    Zero,
    One,
    Infinity,
}

/// The entries `wanted` asks for, at `depth`, in name order.
pub fn select<'a>(
    all: &'a BTreeMap<String, Vec<u8>>,
    wanted: &str,
    depth: Depth,
) -> Vec<(&'a str, &'a [u8])> {
    let below = format!("{wanted}/");
    all.iter()
        .filter(|(k, _)| {
            *k == wanted
                || match depth {
                    Depth::Zero => false,
                    Depth::Infinity => k.starts_with(&below),
                    Depth::One => k
                        .strip_prefix(&below)
                        .is_some_and(|rest| !rest.contains('/')),
                }
        })
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect()
}

/// SETMETADATA or GETMETADATA as sent (imap-codec 1.0 knows neither).
#[derive(Debug, PartialEq)]
pub enum Command {
    Set {
        tag: String,
        mailbox: String,
        /// Entry names (valid, lower-cased) and values (None: NIL, remove).
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    Get {
        tag: String,
        mailbox: String,
        entries: Vec<String>,
        max_size: Option<usize>,
        depth: Depth,
    },
}

/// A value: NIL, a quoted string (unescaped) or a literal/literal8's bytes.
fn value(b: &[u8], s: &Span) -> Option<Option<Vec<u8>>> {
    if s.kind == Kind::Atom {
        return text(b, s).eq_ignore_ascii_case("NIL").then_some(None);
    }
    if let Some((data, _)) = literal_data(b, s) {
        return Some(Some(data.to_vec()));
    }
    astring(b, s).map(|t| Some(t.into_bytes()))
}

pub fn parse(buf: &[u8]) -> Option<Command> {
    let top = spans(buf, 0..buf.len())?;
    let tag = text(buf, top.first()?).to_string();
    if ext::tag_of(tag.as_bytes()) != tag {
        return None;
    }
    match text(buf, top.get(1)?).to_ascii_uppercase().as_str() {
        "SETMETADATA" if top.len() == 4 => {
            let mailbox = mailbox(buf, &top[2])?;
            let list = top.get(3).filter(|s| s.kind == Kind::List)?;
            let items = spans(buf, inner(list))?;
            if items.is_empty() || !items.len().is_multiple_of(2) {
                return None;
            }
            let mut entries = Vec::new();
            for pair in items.chunks(2) {
                let name = entry_name(&astring(buf, &pair[0])?, false)?;
                entries.push((name, value(buf, &pair[1])?));
            }
            Some(Command::Set {
                tag,
                mailbox,
                entries,
            })
        }
        "GETMETADATA" => {
            let mut k = 2;
            let (mut max_size, mut depth) = (None, Depth::Zero);
            // Options come first, in a list (RFC 5464 4.2).
            if top.len() == 5 {
                let opts = top.get(2).filter(|s| s.kind == Kind::List)?;
                let o = spans(buf, inner(opts))?;
                if o.is_empty() || !o.len().is_multiple_of(2) {
                    return None;
                }
                for pair in o.chunks(2) {
                    let v = text(buf, &pair[1]).to_ascii_lowercase();
                    match text(buf, &pair[0]).to_ascii_uppercase().as_str() {
                        "MAXSIZE" => max_size = Some(v.parse().ok()?),
                        "DEPTH" => {
                            depth = match v.as_str() {
                                "0" => Depth::Zero,
                                "1" => Depth::One,
                                "infinity" => Depth::Infinity,
                                _ => return None,
                            }
                        }
                        _ => return None,
                    }
                }
                k = 3;
            }
            if top.len() != k + 2 {
                return None;
            }
            let mailbox = mailbox(buf, &top[k])?;
            let e = &top[k + 1];
            let names: Vec<Span> = if e.kind == Kind::List {
                spans(buf, inner(e))?
            } else {
                vec![e.clone()]
            };
            let entries = names
                .iter()
                .map(|n| astring(buf, n).and_then(|t| entry_name(&t, true)))
                .collect::<Option<Vec<_>>>()?;
            if entries.is_empty() {
                return None;
            }
            Some(Command::Get {
                tag,
                mailbox,
                entries,
                max_size,
                depth,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_commands() {
        let c = parse(b"a SETMETADATA INBOX (/private/Comment \"hi \\\"x\\\"\" /shared/x NIL /private/b ~{3}\r\na\0b)\r\n").unwrap();
        let Command::Set {
            mailbox, entries, ..
        } = c
        else {
            panic!()
        };
        assert_eq!(mailbox, "INBOX");
        assert_eq!(
            entries[0],
            ("/private/comment".into(), Some(b"hi \"x\"".to_vec()))
        );
        assert_eq!(entries[1], ("/shared/x".into(), None));
        assert_eq!(entries[2].1.as_deref(), Some(&b"a\0b"[..]));
        let c = parse(
            b"b GETMETADATA (DEPTH infinity MAXSIZE 10) \"\" (/shared/comment /private/x)\r\n",
        )
        .unwrap();
        assert_eq!(
            c,
            Command::Get {
                tag: "b".into(),
                mailbox: "".into(),
                entries: vec!["/shared/comment".into(), "/private/x".into()],
                max_size: Some(10),
                depth: Depth::Infinity
            }
        );
        assert!(parse(b"c GETMETADATA INBOX /private/*\r\n").is_none());
        assert!(parse(b"c SETMETADATA INBOX (/other/x \"v\")\r\n").is_none());
        assert!(parse(b"c SETMETADATA INBOX (/private/x)\r\n").is_none());
    }

    #[test]
    fn depth_selects_levels() {
        let mut m = BTreeMap::new();
        for k in [
            "/private/a",
            "/private/a/b",
            "/private/a/b/c",
            "/private/ab",
        ] {
            m.insert(k.to_string(), vec![]);
        }
        let names = |d| {
            select(&m, "/private/a", d)
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Depth::Zero), ["/private/a"]);
        assert_eq!(names(Depth::One), ["/private/a", "/private/a/b"]);
        assert_eq!(names(Depth::Infinity).len(), 3);
    }
}
