//! The spool under the queue's chroot.
//!
//! - `msg/<id>`: one file per message: the message as smtp wrote it, then, from
//!   the commit on, a trailer holding the envelope: `envelope bytes | u64 LE length
//!   | "SXENVT1\n"`. Created O_EXCL by queue; a file without a valid trailer was
//!   never acknowledged and is removed at start.
//! - `env/<id>`: the envelope again, written (tmp, fsync, rename) only when its
//!   state changes after the commit (deferrals); it then overrides the trailer.
//! - `corrupt/`: files that could not be read, kept for the operator.
//!
//! One file and no rename per accepted message keeps directory work (and ext4's
//! inode allocation) small; durability comes from the group sync of the file and
//! `msg/` before the 250.

use ipc::messages::Envelope;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

const MAGIC: &[u8] = b"SXENV1\n";
const TRAILER_MAGIC: &[u8; 8] = b"SXENVT1\n";
const MAX_ENVELOPE: usize = 16 << 20;

/// Unique, sortable: microseconds since the epoch, then a per-process counter
/// and randomness (hex, upper case, 20 characters).
pub fn new_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed) & 0xfff;
    let r: u16 = rand::random();
    format!("{us:013X}{n:03X}{r:04X}")
}

/// Ids come from us, but envelopes and peers are checked anyway.
pub fn valid_id(id: &str) -> bool {
    id.len() == 20
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// A queued message as found on disk.
pub struct Queued {
    pub env: Envelope,
    /// Bytes of message before the trailer.
    pub body_len: u64,
}

/// Create the directories, drop what was never acknowledged, and return the queue.
pub fn init() -> io::Result<Vec<Queued>> {
    for d in ["msg", "env", "corrupt", "hold"] {
        std::fs::create_dir_all(d)?;
    }
    for e in std::fs::read_dir("env")?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir("msg")?.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if !valid_id(&id) {
            continue;
        }
        match load(&id) {
            Ok(Some(q)) if q.env.id == id => out.push(q),
            Ok(Some(_)) => quarantine(&id, "envelope with a wrong id"),
            Ok(None) => {
                log::info!("{id}: removing a message that was never committed");
                let _ = std::fs::remove_file(e.path());
                let _ = std::fs::remove_file(format!("env/{id}"));
            }
            Err(err) => quarantine(&id, &err),
        }
    }
    out.sort_by(|a, b| a.env.id.cmp(&b.env.id));
    Ok(out)
}

/// The message's envelope (env/ override, else the trailer). `Ok(None)`: no
/// trailer, so never committed.
pub fn load(id: &str) -> Result<Option<Queued>, String> {
    let f = File::open(format!("msg/{id}")).map_err(|e| e.to_string())?;
    let trailer = read_trailer(&f)?;
    let Some((env, body_len)) = trailer else {
        return Ok(None);
    };
    let env = match std::fs::read(format!("env/{id}")) {
        Ok(bytes) => decode_env(&bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => env,
        Err(e) => return Err(e.to_string()),
    };
    Ok(Some(Queued { env, body_len }))
}

fn quarantine(id: &str, why: &str) {
    match std::fs::rename(format!("msg/{id}"), format!("corrupt/{id}.msg")) {
        Ok(()) => log::error!("{id}: unreadable queue file moved to corrupt/: {why}"),
        Err(e) => {
            log::error!("{id}: unreadable queue file ({why}); cannot move it to corrupt/: {e}")
        }
    }
    let _ = std::fs::rename(format!("env/{id}"), format!("corrupt/{id}.env"));
}

pub fn decode_env(bytes: &[u8]) -> Result<Envelope, String> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a version 1 envelope")?;
    let cfg = bincode::config::standard().with_limit::<MAX_ENVELOPE>();
    let (env, used): (Envelope, usize) =
        bincode::serde::decode_from_slice(body, cfg).map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(env)
}

pub fn encode_env(env: &Envelope) -> io::Result<Vec<u8>> {
    let cfg = bincode::config::standard().with_limit::<MAX_ENVELOPE>();
    let mut out = MAGIC.to_vec();
    out.extend(bincode::serde::encode_to_vec(env, cfg).map_err(io::Error::other)?);
    Ok(out)
}

/// (envelope, body length) from a message file's trailer; None if it has none.
pub fn read_trailer(f: &File) -> Result<Option<(Envelope, u64)>, String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len < 16 {
        return Ok(None);
    }
    let mut tail = [0u8; 16];
    f.read_exact_at(&mut tail, len - 16)
        .map_err(|e| e.to_string())?;
    if &tail[8..] != TRAILER_MAGIC {
        return Ok(None);
    }
    let env_len = u64::from_le_bytes(tail[..8].try_into().map_err(|_| "bad trailer")?);
    if env_len > MAX_ENVELOPE as u64 || env_len + 16 > len {
        return Err("trailer length out of range".into());
    }
    let mut buf = vec![0u8; env_len as usize];
    f.read_exact_at(&mut buf, len - 16 - env_len)
        .map_err(|e| e.to_string())?;
    Ok(Some((decode_env(&buf)?, len - 16 - env_len)))
}

/// Read a whole message file (tests, admin): envelope and body.
pub fn read_message(path: &std::path::Path) -> Result<(Envelope, Vec<u8>), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let (env, body_len) = read_trailer(&f)?.ok_or("no envelope trailer")?;
    let mut body = Vec::new();
    (&f).take(body_len)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok((env, body))
}

/// A new spool file for smtp to write the message into.
pub fn create(id: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("msg/{id}"))
}

/// Append the envelope trailer. Not yet durable: the caller syncs the file and
/// `msg/` (crate::groupsync) before anyone is told the message is queued.
pub fn place(file: &File, env: &Envelope) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut t = encode_env(env)?;
    let n = t.len() as u64;
    t.extend_from_slice(&n.to_le_bytes());
    t.extend_from_slice(TRAILER_MAGIC);
    file.write_all_at(&t, len)
}

/// The directories whose entries a commit depends on.
pub fn placed_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("msg")]
}

/// Drop a message that was not (or could not be) committed.
pub fn abort(id: &str) {
    let _ = std::fs::remove_file(format!("msg/{id}"));
}

/// Record a changed envelope (tmp, fsync, rename, fsync dir); it overrides the trailer.
pub fn update(env: &Envelope) -> io::Result<()> {
    let tmp = format!("env/.{}.tmp", env.id);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&encode_env(env)?)?;
    f.sync_data()?;
    std::fs::rename(&tmp, format!("env/{}", env.id))?;
    File::open("env")?.sync_all()
}

/// Done with a message. Not fsynced: a crash just after may deliver it again (a
/// duplicate), never lose it.
pub fn remove(id: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(format!("env/{id}"));
    std::fs::remove_file(format!("msg/{id}"))
}

/// The message file, read-only, and how many bytes of it are the message.
pub fn open_msg(id: &str) -> io::Result<(File, u64)> {
    let f = File::open(format!("msg/{id}"))?;
    match read_trailer(&f) {
        Ok(Some((_, body_len))) => Ok((f, body_len)),
        Ok(None) => Err(io::Error::other("message has no envelope trailer")),
        Err(e) => Err(io::Error::other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trip() {
        let dir = std::env::temp_dir().join(format!("sx-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        assert!(read_trailer(&f).unwrap().is_none());
        let env = Envelope {
            id: new_id(),
            from: "a@b.test".into(),
            recipients: vec![],
            arrived: 1,
            size: 20,
            ret_full: None,
            envid: None,
            body_8bit: false,
            smtputf8: false,
            helo: "h".into(),
            client_ip: "127.0.0.1".into(),
            auth: None,
            warned: false,
        };
        place(&f, &env).unwrap();
        let (e, body) = read_message(&p).unwrap();
        assert_eq!(e, env);
        assert_eq!(body, b"Subject: x\r\n\r\nbody\r\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
