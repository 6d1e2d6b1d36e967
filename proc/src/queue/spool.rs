//! The spool under the queue's chroot.
//!
//! - `msg/<id>`: one file per message: the message as smtp wrote it, then, from
//!   the commit on, a trailer holding the envelope: `envelope bytes | u64 LE length
//!   | "SXENVT1\n"` (the framing's version 1; the envelope has its own, see
//!   envelope_file.rs). Created O_EXCL by queue; a file without a trailer was
//!   never acknowledged and is removed at start.
//! - `env/<id>`: the envelope again, written (tmp, fsync, rename) only when its
//!   state changes after the commit (deferrals); it then overrides the trailer.
//! - `corrupt/`: files that could not be read, kept for the operator.
//! - `hold/<id>`: empty; the operator held the message.
//!
//! A file whose framing or envelope comes from a newer release is left where it
//! is, with a log line at every start: never read, never deleted.
//!
//! One file and no rename per accepted message keeps directory work (and ext4's
//! inode allocation) small; durability comes from the group sync of the file and
//! `msg/` before the 250.

use super::envelope_file::{self, Decoded};
use ipc::messages::Envelope;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The trailer's last 8 bytes: `SXENVT`, the framing version, LF.
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

/// What a message file holds.
pub enum Found {
    Queued(Queued),
    /// No trailer: never committed.
    Uncommitted,
    /// Framing or envelope of a newer release (its version).
    Future(u32),
}

/// A trailer as read from a message file.
pub enum Trailer {
    Envelope(Envelope, u64),
    None,
    Future(u32),
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
            Ok(Found::Queued(q)) if q.env.id == id => out.push(q),
            Ok(Found::Queued(_)) => quarantine(&id, "envelope with a wrong id"),
            Ok(Found::Future(v)) => log::warn!(
                "{id}: written by a newer release (format version {v}): left in msg/, not delivered"
            ),
            Ok(Found::Uncommitted) => {
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

/// The message's envelope (env/ override, else the trailer).
pub fn load(id: &str) -> Result<Found, String> {
    let f = File::open(format!("msg/{id}")).map_err(|e| e.to_string())?;
    let (env, body_len) = match read_trailer(&f)? {
        Trailer::Envelope(env, len) => (env, len),
        Trailer::None => return Ok(Found::Uncommitted),
        Trailer::Future(v) => return Ok(Found::Future(v)),
    };
    let env = match std::fs::read(format!("env/{id}")) {
        Ok(bytes) => match envelope_file::decode(&bytes)? {
            Decoded::Envelope(env) => env,
            Decoded::Future(v) => return Ok(Found::Future(v)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => env,
        Err(e) => return Err(e.to_string()),
    };
    Ok(Found::Queued(Queued { env, body_len }))
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

/// (envelope, body length) from a message file's trailer.
pub fn read_trailer(f: &File) -> Result<Trailer, String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len < 16 {
        return Ok(Trailer::None);
    }
    let mut tail = [0u8; 16];
    f.read_exact_at(&mut tail, len - 16)
        .map_err(|e| e.to_string())?;
    let magic = &tail[8..];
    if magic != TRAILER_MAGIC {
        // `SXENVT<digit>\n` of a later framing. A message body cannot end so:
        // smtp stores lines ending in CRLF.
        return Ok(match (magic.strip_prefix(b"SXENVT"), magic.last()) {
            (Some([d, b'\n']), _) if d.is_ascii_digit() => Trailer::Future(u32::from(d - b'0')),
            _ => Trailer::None,
        });
    }
    let env_len = u64::from_le_bytes(tail[..8].try_into().map_err(|_| "bad trailer")?);
    if env_len > MAX_ENVELOPE as u64 || env_len + 16 > len {
        return Err("trailer length out of range".into());
    }
    let mut buf = vec![0u8; env_len as usize];
    f.read_exact_at(&mut buf, len - 16 - env_len)
        .map_err(|e| e.to_string())?;
    Ok(match envelope_file::decode(&buf)? {
        Decoded::Envelope(env) => Trailer::Envelope(env, len - 16 - env_len),
        Decoded::Future(v) => Trailer::Future(v),
    })
}

/// Read a whole message file (tests, admin): envelope and body.
pub fn read_message(path: &std::path::Path) -> Result<(Envelope, Vec<u8>), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let Trailer::Envelope(env, body_len) = read_trailer(&f)? else {
        return Err("no envelope trailer of a known version".into());
    };
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
    let mut t = envelope_file::encode(env);
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
    f.write_all(&envelope_file::encode(env))?;
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
        Ok(Trailer::Envelope(_, body_len)) => Ok((f, body_len)),
        Ok(_) => Err(io::Error::other("message has no envelope trailer")),
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
        assert!(matches!(read_trailer(&f).unwrap(), Trailer::None));
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
            junk: false,
        };
        place(&f, &env).unwrap();
        let (e, body) = read_message(&p).unwrap();
        assert_eq!(e, env);
        assert_eq!(body, b"Subject: x\r\n\r\nbody\r\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A later framing (`SXENVT<n>`) or envelope version is Future: left alone.
    #[test]
    fn later_versions_are_not_read_and_not_uncommitted() {
        let dir = std::env::temp_dir().join(format!("sx-spool-future-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m");
        let with_tail = |tail: &[u8]| {
            let mut bytes = b"Subject: x\r\n\r\nbody\r\n".to_vec();
            bytes.extend_from_slice(tail);
            std::fs::write(&p, &bytes).unwrap();
            read_trailer(&File::open(&p).unwrap()).unwrap()
        };
        assert!(matches!(
            with_tail(b"\x05\0\0\0\0\0\0\0SXENVT7\n"),
            Trailer::Future(7)
        ));
        let env = b"SXENV9\nwhatever\n";
        let mut tail = env.to_vec();
        tail.extend_from_slice(&(env.len() as u64).to_le_bytes());
        tail.extend_from_slice(TRAILER_MAGIC);
        assert!(matches!(with_tail(&tail), Trailer::Future(9)));
        assert!(matches!(with_tail(b""), Trailer::None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
