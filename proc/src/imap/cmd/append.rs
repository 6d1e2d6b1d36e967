//! APPEND (RFC 3501 6.3.11, APPENDUID of RFC 4315) with MULTIAPPEND (RFC
//! 3502), literal8 (RFC 3516) and CATENATE (RFC 4469: a message made of
//! literals and parts of messages in this account, named by IMAP URLs; one
//! that names nothing fails the command with BADURL): each message is
//! written to tmp/ (with CRLF
//! line ends, unless it came as literal8, which is stored as sent), synced,
//! and then all are added to the folder or none: a failure part way takes
//! back the ones added. A client that has the folder selected hears of them
//! in the same response.

use crate::imap::appends::{Append, Piece};
use crate::imap::folder::{self, Folder};
use crate::imap::io::Io;
use crate::imap::respond::uid_ranges;
use crate::imap::state::State;
use imap_codec::imap_types::flag::Flag;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// CATENATE URLs in one APPEND.
const MAX_URLS: usize = 50;

/// Write one message to `tmp` and sync it; its mtime is the internal date.
fn write_tmp(tmp: &Path, data: &[u8], as_sent: bool, date: Option<i64>) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    let mut w = std::io::BufWriter::new(f);
    if as_sent {
        w.write_all(data)?;
    } else {
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
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    let when = date.unwrap_or_else(folder::now_secs);
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(when.max(0) as u64))?;
    f.sync_all()
}

fn failed(io: &mut Io, tag: &str, dst: &Folder, e: &std::io::Error) {
    log::warn!(
        "{}: append to {}: {e}",
        io.service.name(),
        dst.path.display()
    );
    io.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
}

pub fn append(io: &mut Io, state: &mut State, a: &Append, buf: &[u8]) -> std::io::Result<()> {
    let tag = a.tag.as_str();
    let Some(login) = state.login() else {
        return Ok(());
    };
    let mailbox = crate::imap::utf8::name_in(a.mailbox.as_bytes(), io.enabled.utf8);
    let Some(dst) = super::target(io, login, tag, &mailbox) else {
        return Ok(());
    };
    // Each URL reads a whole message file, however little of it it takes:
    // a command may name only so many.
    let urls = a
        .messages
        .iter()
        .flat_map(|m| m.catenate.iter().flatten())
        .filter(|p| matches!(p, Piece::Url(_)))
        .count();
    if urls > MAX_URLS {
        io.tagged(tag, "NO", "[LIMIT] Too many URLs in one APPEND");
        return Ok(());
    }
    // Each message's bytes: a range of the command, or (CATENATE) its
    // pieces put together, URLs fetched from this account.
    let mut bodies: Vec<std::borrow::Cow<'_, [u8]>> = Vec::new();
    for m in &a.messages {
        let body = match &m.catenate {
            None => std::borrow::Cow::Borrowed(buf.get(m.data.clone()).unwrap_or_default()),
            Some(pieces) => {
                let mut out = Vec::new();
                for p in pieces {
                    match p {
                        Piece::Text(r) => {
                            out.extend_from_slice(buf.get(r.clone()).unwrap_or_default())
                        }
                        Piece::Url(u) => match crate::imap::url::fetch(&login.account, u) {
                            Some(b) => out.extend_from_slice(&b),
                            None => {
                                io.tagged(
                                    tag,
                                    "NO",
                                    &format!(
                                        "[BADURL {}] Cannot fetch it",
                                        crate::log::cut(u, 200)
                                    ),
                                );
                                return Ok(());
                            }
                        },
                    }
                    if out.len() as u64 > io.sh.max_literal {
                        break;
                    }
                }
                std::borrow::Cow::Owned(out)
            }
        };
        if body.len() as u64 > io.sh.max_literal {
            io.tagged(tag, "NO", "[TOOBIG] Message larger than APPENDLIMIT");
            return Ok(());
        }
        if body.is_empty() {
            io.tagged(tag, "NO", "Empty message");
            return Ok(());
        }
        bodies.push(body);
    }
    // Every message on disk in tmp/ first.
    let mut written: Vec<(PathBuf, String)> = Vec::new();
    for (m, data) in a.messages.iter().zip(&bodies) {
        let base = folder::unique_base(&io.sh.hostname);
        let tmp = dst.path.join("tmp").join(&base);
        if let Err(e) = write_tmp(&tmp, data, m.binary, m.date) {
            let _ = std::fs::remove_file(&tmp);
            for (t, _) in &written {
                let _ = std::fs::remove_file(t);
            }
            failed(io, tag, &dst, &e);
            return Ok(());
        }
        written.push((tmp, base));
    }
    // Then all into the folder, or none.
    let added = {
        let mut st = dst.lock()?;
        let mut uids: Vec<u32> = Vec::new();
        let mut failure = None;
        for (m, (tmp, base)) in a.messages.iter().zip(&written) {
            let flags: Vec<Flag<'_>> = m
                .flags
                .iter()
                .filter_map(|f| Flag::try_from(f.as_str()).ok())
                .collect();
            let added = super::store::flag_bits(&dst, &mut st, &flags)
                .and_then(|bits| dst.add(&mut st, tmp, base, bits));
            match added {
                Ok(uid) => uids.push(uid),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => Ok((st.uidvalidity, uids)),
            Some(e) => {
                // Take back what went in: indexes of the UIDs just added.
                let idx: Vec<usize> = uids
                    .iter()
                    .filter_map(|u| st.msgs.binary_search_by_key(u, |m| m.uid).ok())
                    .collect();
                dst.remove(&mut st, &idx);
                Err(e)
            }
        }
    };
    let (validity, uids) = match added {
        Ok(x) => x,
        Err(e) => {
            for (t, _) in &written {
                let _ = std::fs::remove_file(t);
            }
            failed(io, tag, &dst, &e);
            return Ok(());
        }
    };
    if let Err(e) = dst.sync_cur() {
        failed(io, tag, &dst, &e);
        return Ok(());
    }
    io.changed(&dst.path);
    if let State::Selected(_, sel) = state {
        if sel.folder.path == dst.path {
            let updates = sel.sync(io.enabled, true);
            io.push(&updates);
        }
    }
    io.tagged(
        tag,
        "OK",
        &format!(
            "[APPENDUID {validity} {}] APPEND completed",
            uid_ranges(&uids)
        ),
    );
    Ok(())
}
