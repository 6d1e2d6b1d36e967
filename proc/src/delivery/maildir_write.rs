//! Writing one message into a Maildir (relative to the delivery chroot):
//! unique name, write in tmp/, rename into new/. The caller then makes it durable
//! with a group sync (crate::groupsync) before reporting it delivered; a file that
//! is in new/ was complete when renamed there, so a reader never sees half of it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

pub enum Failure {
    Temp(String),
    Perm(String),
}

fn temp(e: impl std::fmt::Display) -> Failure {
    Failure::Temp(e.to_string())
}

/// `<secs>.M<usec>P<pid>Q<n>R<random>.<host>` (the Maildir convention, unique
/// across processes and hosts).
fn unique_name(host: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!(
        "{}.M{}P{}Q{}R{:08x}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>(),
        host
    )
}

/// Deliver `msg` to `mailbox`'s INBOX; returns the path in new/ and the open file.
pub fn deliver(
    host: &str,
    mailbox: &str,
    return_path: &str,
    original: &str,
    mut msg: impl std::io::Read,
) -> Result<(std::path::PathBuf, File), Failure> {
    let dir = crate::maildir::account_dir(Path::new("."), mailbox)
        .ok_or_else(|| Failure::Perm(format!("{mailbox}: not a valid mailbox")))?;
    if !dir.join("new").is_dir() {
        // Account added while the server ran without its Maildir: make it.
        crate::maildir::create_account(Path::new("."), mailbox, None).map_err(temp)?;
    }
    let name = unique_name(host);
    let tmp = dir.join("tmp").join(&name);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(temp)?;
    let mut w = BufWriter::with_capacity(64 * 1024, f);
    let write = (|| -> std::io::Result<File> {
        // Header lines only from values we checked; CR/LF cannot get in.
        let clean = |s: &str| s.replace(['\r', '\n'], "");
        write!(w, "Return-Path: <{}>\r\n", clean(return_path))?;
        write!(w, "Delivered-To: {}\r\n", clean(mailbox))?;
        if !original.eq_ignore_ascii_case(mailbox) {
            write!(w, "X-Original-To: {}\r\n", clean(original))?;
        }
        std::io::copy(&mut msg, &mut w)?;
        w.into_inner().map_err(|e| e.into_error())
    })();
    let f = match write {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(temp(e));
        }
    };
    let new = dir.join("new").join(&name);
    if let Err(e) = std::fs::rename(&tmp, &new) {
        let _ = std::fs::remove_file(&tmp);
        return Err(temp(e));
    }
    Ok((new, f))
}
