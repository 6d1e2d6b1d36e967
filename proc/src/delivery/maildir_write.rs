//! Writing one message into a Maildir (relative to the delivery chroot):
//! unique name, write in tmp/. The caller then has the group sync
//! (crate::groupsync) sync its data, rename it into new/ and sync new/ before
//! reporting it delivered: a file in new/ was complete and on disk when renamed
//! there, so neither a reader nor a power loss ever leaves half of it (an
//! empty file in new/ after a crash would pass for a delivered duplicate).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub enum Failure {
    Temp(String),
    Perm(String),
}

fn temp(e: impl std::fmt::Display) -> Failure {
    Failure::Temp(e.to_string())
}

/// `<secs>.Q<queue id>.<host>`: unique (queue ids are, and a message reaches a
/// mailbox once) and deterministic, so a delivery repeated after a crash finds
/// the first copy in new/ instead of making a second one.
fn message_name(id: &str, host: &str) -> String {
    let secs = u64::from_str_radix(id.get(..13).unwrap_or("0"), 16).unwrap_or(0) / 1_000_000;
    let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!("{secs}.Q{id}.{host}")
}

/// Bytes in an account's Maildir (INBOX and folders, new/ and cur/), cached for a
/// minute and kept current by the deliveries made meanwhile.
type UsageCache =
    std::sync::Mutex<Option<std::collections::HashMap<String, (u64, std::time::Instant)>>>;
static CACHE: UsageCache = std::sync::Mutex::new(None);

fn usage(dir: &Path, mailbox: &str) -> u64 {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    if let Ok(mut c) = CACHE.lock() {
        if let Some((u, t)) = c.get_or_insert_with(HashMap::new).get(mailbox) {
            if t.elapsed() < Duration::from_secs(60) {
                return *u;
            }
        }
    }
    let total = crate::maildir::usage(dir);
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new)
            .insert(mailbox.to_string(), (total, Instant::now()));
    }
    total
}

/// A delivery just added `n` bytes (the figure is recomputed from disk when it expires).
fn add_usage(mailbox: &str, n: u64) {
    if let Ok(mut c) = CACHE.lock() {
        if let Some((u, _)) = c
            .get_or_insert_with(std::collections::HashMap::new)
            .get_mut(mailbox)
        {
            *u += n;
        }
    }
}

pub enum Delivered {
    /// Written in tmp/ (the path), to be synced and renamed to new/ (the second).
    Written(std::path::PathBuf, std::path::PathBuf, File),
    /// Already in new/ from an attempt the queue did not hear about.
    Duplicate(std::path::PathBuf),
}

/// One delivery: which message, to whom, with what limits.
pub struct Job<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub mailbox: &'a str,
    pub return_path: &'a str,
    pub original: &'a str,
    pub size: u64,
    pub quota: u64,
    /// Into the Junk folder rather than INBOX.
    pub junk: bool,
}

/// Write `msg` for `mailbox`'s INBOX (or Junk folder) into tmp/; returns its
/// path there, its path to be in new/ and the open file.
pub fn deliver(job: &Job<'_>, mut msg: impl std::io::Read) -> Result<Delivered, Failure> {
    let Job {
        id,
        host,
        mailbox,
        return_path,
        original,
        size,
        quota,
        junk,
    } = *job;
    let account = crate::maildir::account_dir(Path::new("."), mailbox)
        .ok_or_else(|| Failure::Perm(format!("{mailbox}: not a valid mailbox")))?;
    let dir = if junk {
        account.join(".Junk")
    } else {
        account.clone()
    };
    if !dir.join("new").is_dir() {
        // Account added while the server ran without its Maildir, or its
        // Junk folder deleted: make what is missing.
        crate::maildir::create_account(Path::new("."), mailbox, None).map_err(temp)?;
    }
    if quota > 0 && usage(&account, mailbox).saturating_add(size) > quota {
        return Err(Failure::Temp(format!(
            "4.2.2 mailbox full: {mailbox} is over its quota of {quota} bytes"
        )));
    }
    let name = message_name(id, host);
    let new = dir.join("new").join(&name);
    if new.exists() {
        return Ok(Delivered::Duplicate(new));
    }
    let tmp = dir.join("tmp").join(&name);
    // A leftover of an attempt that died half way.
    let _ = std::fs::remove_file(&tmp);
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
    add_usage(mailbox, size);
    Ok(Delivered::Written(tmp, new, f))
}
