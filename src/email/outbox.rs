//! The offline queue of `sx email` (SMTP_QUEUE_DIR, mode 0700, owned by the
//! caller). One immutable file per message, `<id>.msg`: an envelope header
//! (`SXQ 1`, `date`, `from`, `to` lines, blank line) then the message. Written to a
//! temporary file, fsynced and renamed in (accounts::write_atomic), so a message
//! is either wholly queued or not at all. Attempts and the last error live beside it in `<id>.state`, replaced
//! atomically. `--flush` holds an flock on `.lock` for its whole run, so two
//! flushes never send the same message; a message file is removed only after
//! the server accepted it, so a crash mid-flush can at worst send it twice.

use super::{Envelope, Failure};
use crate::exit;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use sxproc::accounts::write_atomic;

/// The format this release writes and reads: `SXQ <VERSION>`.
const VERSION: u32 = 1;
const MAGIC: &str = "SXQ 1";
/// How much of a message `--list` reads to find its Subject.
const HEAD_BYTES: u64 = 64 * 1024;

pub struct Outbox {
    dir: PathBuf,
}

/// One queued message as `--list` shows it.
pub struct Entry {
    pub id: String,
    pub date: i64,
    pub from: String,
    pub rcpts: Vec<String>,
    pub subject: String,
    pub attempts: u32,
    pub error: String,
}

fn io_fail(code: i32, what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new(code, format!("{what} {}: {e}", path.display()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Outbox {
    /// Open (creating when `create`) the queue directory.
    pub fn open(dir: &Path, create: bool) -> Result<Outbox, Failure> {
        if create && !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_fail(exit::CANTCREAT, "cannot create queue directory", dir, e))?;
        }
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }

    fn new_id() -> String {
        let t = chrono::Utc::now();
        format!(
            "{}-{:06}-{:04x}",
            t.format("%Y%m%dT%H%M%S"),
            t.timestamp_subsec_micros(),
            rand::random::<u16>()
        )
    }

    /// Store a message; returns its id.
    pub fn store(&self, env: &Envelope) -> Result<String, Failure> {
        let id = Self::new_id();
        let mut data = format!("{MAGIC}\ndate {}\nfrom {}\n", now(), env.from);
        for r in &env.rcpts {
            data.push_str(&format!("to {r}\n"));
        }
        data.push('\n');
        let mut data = data.into_bytes();
        data.extend_from_slice(&env.message);
        write_atomic(&self.msg_path(&id), &data, 0o600)
            .map_err(|e| io_fail(exit::CANTCREAT, "cannot queue into", &self.dir, e))?;
        Ok(id)
    }

    /// Queued ids, oldest first.
    pub fn ids(&self) -> Result<Vec<String>, Failure> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_fail(exit::NOINPUT, "cannot read", &self.dir, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                let id = n.strip_suffix(".msg")?;
                (!id.starts_with('.')).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn msg_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    /// Parse the envelope at the top of a queue file; `None` if it isn't one of ours.
    fn parse(data: &[u8]) -> Option<(i64, String, Vec<String>, usize)> {
        let end = data.windows(2).position(|w| w == b"\n\n")?;
        let head = std::str::from_utf8(&data[..end]).ok()?;
        let mut lines = head.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut date, mut from, mut rcpts) = (0, None, Vec::new());
        for l in lines {
            match l.split_once(' ') {
                Some(("date", v)) => date = v.parse().ok()?,
                Some(("from", v)) => from = Some(v.to_string()),
                Some(("to", v)) => rcpts.push(v.to_string()),
                _ => return None,
            }
        }
        Some((date, from?, rcpts, end + 2))
    }

    /// Why a file is not read. A later release's format (`SXQ 2` and up) is
    /// named as such; either way the file stays where it is.
    fn bad(&self, id: &str, data: &[u8]) -> Failure {
        let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
        let newer = std::str::from_utf8(first)
            .ok()
            .and_then(|l| l.strip_prefix("SXQ "))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&v| v > VERSION);
        let why = match newer {
            Some(v) => format!("written by a newer release (format SXQ {v}); kept, not sent"),
            None => "not a queue file; kept, not sent".to_string(),
        };
        Failure::new(
            exit::DATAERR,
            format!("{}: {why}", self.msg_path(id).display()),
        )
    }

    /// The whole message and envelope.
    pub fn load(&self, id: &str) -> Result<Option<Envelope>, Failure> {
        let path = self.msg_path(id);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_fail(exit::NOINPUT, "cannot read", &path, e)),
        };
        let (_, from, rcpts, at) = Self::parse(&data).ok_or_else(|| self.bad(id, &data))?;
        Ok(Some(Envelope {
            from,
            rcpts,
            message: data[at..].to_vec(),
        }))
    }

    fn state(&self, id: &str) -> (u32, String) {
        let text = fs::read_to_string(self.dir.join(format!("{id}.state"))).unwrap_or_default();
        let mut attempts = 0;
        let mut error = String::new();
        for l in text.lines() {
            match l.split_once(' ') {
                Some(("attempts", v)) => attempts = v.parse().unwrap_or(0),
                Some(("error", v)) => error = v.to_string(),
                _ => {}
            }
        }
        (attempts, error)
    }

    pub fn entry(&self, id: &str) -> Result<Option<Entry>, Failure> {
        let path = self.msg_path(id);
        let mut head = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                f.take(HEAD_BYTES)
                    .read_to_end(&mut head)
                    .map_err(|e| io_fail(exit::NOINPUT, "cannot read", &path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_fail(exit::NOINPUT, "cannot read", &path, e)),
        }
        let (date, from, rcpts, at) = Self::parse(&head).ok_or_else(|| self.bad(id, &head))?;
        let subject = mail_parser::MessageParser::new()
            .parse_headers(&head[at..])
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default();
        let (attempts, error) = self.state(id);
        Ok(Some(Entry {
            id: id.to_string(),
            date,
            from,
            rcpts,
            subject,
            attempts,
            error,
        }))
    }

    /// Record a failed attempt.
    pub fn failed(&self, id: &str, error: &str) {
        let (attempts, _) = self.state(id);
        // `SXQS 1`: the state file's version (release 0.1 wrote none; its
        // lines are read the same way, unknown lines are skipped).
        let text = format!(
            "SXQS 1\nattempts {}\nlast {}\nerror {}\n",
            attempts + 1,
            now(),
            error.replace(['\r', '\n'], " ")
        );
        let _ = write_atomic(
            &self.dir.join(format!("{id}.state")),
            text.as_bytes(),
            0o600,
        );
    }

    /// Remove a message that was sent (message first: that is the commit point).
    pub fn remove(&self, id: &str) -> Result<(), Failure> {
        let path = self.msg_path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_fail(exit::CANTCREAT, "cannot remove", &path, e)),
        }
        let _ = fs::remove_file(self.dir.join(format!("{id}.state")));
        fsync_dir(&self.dir);
        Ok(())
    }

    /// Take the queue lock (waits for another `--flush` or `--clear` to finish).
    pub fn lock(&self) -> Result<Flock<File>, Failure> {
        let path = self.dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_fail(exit::CANTCREAT, "cannot open", &path, e))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| {
            Failure::new(
                exit::CANTCREAT,
                format!("cannot lock {}: {e}", path.display()),
            )
        })
    }

    /// Remove leftovers of writers that died before their rename, and state files
    /// whose message is gone. Only call with the lock held.
    pub fn tidy(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let day = std::time::Duration::from_secs(86_400);
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale_tmp = name.contains(".tmp.")
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > day);
            let orphan = name
                .strip_suffix(".state")
                .is_some_and(|id| !self.msg_path(id).exists());
            if stale_tmp || orphan {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
