//! SETMETADATA and GETMETADATA (RFC 5464), on the server ("") and on the
//! account's mailboxes; storage and limits are metadata.rs's.

use crate::imap::io::Io;
use crate::imap::metadata::{self, Command, Refused};
use crate::imap::names;
use crate::imap::respond::{literal_any, quote};
use crate::imap::state::Login;
use std::path::PathBuf;

/// The file of `mailbox`'s entries, or the NO saying why there is none.
fn file_of(io: &mut Io, login: &Login, tag: &str, mailbox: &str) -> Option<PathBuf> {
    if mailbox.is_empty() {
        return Some(metadata::file(&login.account, None));
    }
    let stored = crate::imap::utf8::name_in(mailbox.as_bytes(), io.enabled.utf8);
    let folder = super::folder_or_no(io, login, tag, &stored)?;
    if !folder.join("cur").is_dir() {
        io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
        return None;
    }
    Some(metadata::file(&login.account, Some(&folder)))
}

/// A value as a response writes it: quoted when it can be, a literal (a
/// literal8 when it holds NUL) otherwise.
fn value(out: &mut Vec<u8>, v: &[u8]) {
    match std::str::from_utf8(v) {
        Ok(t) if !t.contains(['\r', '\n', '\0']) => out.extend_from_slice(quote(t).as_bytes()),
        _ => literal_any(out, v),
    }
}

pub fn metadata(io: &mut Io, login: &Login, cmd: Command) {
    match cmd {
        Command::Set {
            tag,
            mailbox,
            entries,
        } => {
            let Some(path) = file_of(io, login, &tag, &mailbox) else {
                return;
            };
            match metadata::write(&path, &entries) {
                Ok(Ok(())) => {
                    // For NOTIFY's metadata events in other sessions.
                    io.changed(&path);
                    io.tagged(&tag, "OK", "SETMETADATA completed")
                }
                Ok(Err(Refused::MaxSize(n))) => io.tagged(
                    &tag,
                    "NO",
                    &format!("[METADATA MAXSIZE {n}] Value too long"),
                ),
                Ok(Err(Refused::TooMany)) => {
                    io.tagged(&tag, "NO", "[METADATA TOOMANY] Too much metadata")
                }
                Err(e) => {
                    log::warn!("{}: metadata {}: {e}", io.service.name(), path.display());
                    io.tagged(&tag, "NO", "[SERVERBUG] Cannot store metadata");
                }
            }
        }
        Command::Get {
            tag,
            mailbox,
            entries,
            max_size,
            depth,
        } => {
            let Some(path) = file_of(io, login, &tag, &mailbox) else {
                return;
            };
            let all = match metadata::read(&path) {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("{}: metadata {}: {e}", io.service.name(), path.display());
                    io.tagged(&tag, "NO", "[SERVERBUG] Cannot read metadata");
                    return;
                }
            };
            let shown = if names::is_inbox(&mailbox) {
                "INBOX"
            } else {
                &mailbox
            };
            let mut out = format!("* METADATA {} (", io.quote_name(shown)).into_bytes();
            let mut first = true;
            let mut longest_left_out = 0usize;
            for wanted in &entries {
                let found = metadata::select(&all, wanted, depth);
                // An entry asked for by name that does not exist is NIL.
                let items: Vec<(&str, Option<&[u8]>)> = if found.is_empty() {
                    vec![(wanted.as_str(), None)]
                } else {
                    found.into_iter().map(|(k, v)| (k, Some(v))).collect()
                };
                for (k, v) in items {
                    if let (Some(max), Some(v)) = (max_size, v) {
                        if v.len() > max {
                            longest_left_out = longest_left_out.max(v.len());
                            continue;
                        }
                    }
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    out.extend_from_slice(k.as_bytes());
                    out.push(b' ');
                    match v {
                        Some(v) => value(&mut out, v),
                        None => out.extend_from_slice(b"NIL"),
                    }
                }
            }
            out.extend_from_slice(b")\r\n");
            if !first {
                io.push_bytes(&out);
            }
            if longest_left_out > 0 {
                io.tagged(
                    &tag,
                    "OK",
                    &format!("[METADATA LONGENTRIES {longest_left_out}] GETMETADATA completed"),
                );
            } else {
                io.tagged(&tag, "OK", "GETMETADATA completed");
            }
        }
    }
}
