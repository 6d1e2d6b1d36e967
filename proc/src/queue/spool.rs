//! The spool under the queue's chroot: `tmp/` (being written), `msg/<id>` (bodies),
//! `env/<id>` (envelopes), `corrupt/`. Every write that must survive a crash is
//! tmp -> fsync -> rename -> fsync(dir).

use ipc::messages::Envelope;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

const MAGIC: &[u8] = b"SXENV1\n";
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

fn sync_dir(d: &str) -> io::Result<()> {
    File::open(d)?.sync_all()
}

/// Create the directories, drop half-written files, and return the queued envelopes.
pub fn init() -> io::Result<Vec<Envelope>> {
    for d in ["tmp", "msg", "env", "corrupt"] {
        std::fs::create_dir_all(d)?;
    }
    // Nothing in tmp/ was acknowledged: a crash mid-DATA leaves it behind.
    for e in std::fs::read_dir("tmp")?.flatten() {
        let _ = std::fs::remove_file(e.path());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir("env")?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !valid_id(&name) {
            continue;
        }
        match read_env(&name) {
            Ok(env) if env.id == name && PathBuf::from(format!("msg/{name}")).exists() => {
                out.push(env)
            }
            Ok(_) => quarantine(&name, "envelope without message or with a wrong id"),
            Err(err) => quarantine(&name, &err),
        }
    }
    // A message whose envelope never made it to disk was never acknowledged.
    for e in std::fs::read_dir("msg")?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !PathBuf::from(format!("env/{name}")).exists() {
            log::info!("{name}: removing message without envelope (not acknowledged)");
            let _ = std::fs::remove_file(e.path());
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn quarantine(id: &str, why: &str) {
    log::error!("{id}: corrupt envelope moved to corrupt/: {why}");
    let _ = std::fs::rename(format!("env/{id}"), format!("corrupt/{id}.env"));
    let _ = std::fs::rename(format!("msg/{id}"), format!("corrupt/{id}.msg"));
}

pub fn read_env(id: &str) -> Result<Envelope, String> {
    let bytes = std::fs::read(format!("env/{id}")).map_err(|e| e.to_string())?;
    decode_env(&bytes)
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

/// A new spool file for smtp to write into.
pub fn create(id: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("tmp/{id}"))
}

/// Write the envelope to a temporary name; `durable` also fsyncs it.
fn write_env_tmp(env: &Envelope, durable: bool) -> io::Result<String> {
    let tmp = format!("env/.{}.tmp", env.id);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&encode_env(env)?)?;
    if durable {
        f.sync_data()?;
    }
    Ok(tmp)
}

fn put_env(env: &Envelope) -> io::Result<()> {
    let tmp = write_env_tmp(env, true)?;
    std::fs::rename(&tmp, format!("env/{}", env.id))
}

/// One message of a commit batch: its body is complete in tmp/<id>.
pub struct Pending {
    pub file: File,
    pub env: Envelope,
}

/// Group commit: move every message of the batch into place (body to msg/,
/// envelope to env/), then make the whole batch durable with one syncfs(2) of the
/// spool's filesystem (file data, the new directory entries and the journal)
/// instead of four fsyncs per message. Only after this may smtp say 250 for any
/// of them. Returns one result per message.
pub fn commit_batch(batch: &[Pending]) -> Vec<io::Result<()>> {
    let mut results: Vec<io::Result<()>> = batch
        .iter()
        .map(|p| {
            let tmp = write_env_tmp(&p.env, false)?;
            std::fs::rename(format!("tmp/{}", p.env.id), format!("msg/{}", p.env.id))?;
            std::fs::rename(&tmp, format!("env/{}", p.env.id))
        })
        .collect();
    let synced = batch
        .first()
        .map(|p| nix::unistd::syncfs(&p.file).map_err(io::Error::from))
        .unwrap_or(Ok(()));
    if let Err(e) = synced {
        // Not known to be on disk: refuse them all (smtp answers 451) and undo.
        for (p, r) in batch.iter().zip(results.iter_mut()) {
            if r.is_ok() {
                let _ = std::fs::remove_file(format!("env/{}", p.env.id));
                let _ = std::fs::remove_file(format!("msg/{}", p.env.id));
            }
            *r = Err(io::Error::new(e.kind(), e.to_string()));
        }
    }
    results
}

/// Rewrite the envelope after a delivery attempt.
pub fn update(env: &Envelope) -> io::Result<()> {
    put_env(env)?;
    sync_dir("env")
}

/// Done with a message: envelope first, so a crash never leaves an envelope
/// pointing to nothing. Not fsynced: a crash just after may deliver the message
/// again (a duplicate), never lose it.
pub fn remove(id: &str) -> io::Result<()> {
    std::fs::remove_file(format!("env/{id}"))?;
    let _ = std::fs::remove_file(format!("msg/{id}"));
    Ok(())
}

pub fn abort(id: &str) {
    let _ = std::fs::remove_file(format!("tmp/{id}"));
}

pub fn open_msg(id: &str) -> io::Result<File> {
    File::open(format!("msg/{id}"))
}
