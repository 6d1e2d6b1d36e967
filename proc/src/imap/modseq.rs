//! Mod-sequences (RFC 7162): when each message last changed, which messages
//! were expunged when, and the folder's HIGHESTMODSEQ, kept across restarts
//! in the folder's `sx-modseq` file (ours, versioned):
//!
//! ```text
//! SXMS 1                  first line: format version
//! <uid> <modseq> <flags> <saved>
//!                         a message's mod-sequence, its flag bits (hex) and
//!                         when it was saved to the folder (RFC 8514 SAVEDATE,
//!                         seconds; 0: not known), as of then
//! X <uid> <modseq>        expunged at that mod-sequence
//! F <modseq>              expunges before this one are no longer listed
//! ```
//!
//! Records are appended; the last one for a UID wins; the file is rewritten
//! (tmp, rename) when it holds many more records than the folder has messages.
//! New values are `max(highest + 1, now in microseconds)`: strictly increasing,
//! and above anything handed out before even when the end of the file was lost
//! in a crash, so a client can never miss a change by holding a value the
//! server has forgotten. The recorded flags let a restart see flag changes
//! made by other programs meanwhile; expunge records are synced, since a lost
//! one could hide an expunge from a resyncing client.

use super::flags::Bits;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const FILE: &str = "sx-modseq";
const HEAD: &str = "SXMS 1";
/// Expunge records kept; older ones raise the floor.
pub const MAX_EXPUNGED: usize = 10_000;

/// What is recorded of one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rec {
    pub modseq: u64,
    pub bits: Bits,
    /// Saved to the folder at, seconds since the epoch (0: not known).
    pub saved: i64,
}

#[derive(Default, Debug)]
pub struct Log {
    pub highest: u64,
    /// Expunges with a mod-sequence at or below this are not all listed.
    pub floor: u64,
    /// uid -> what was last recorded of it.
    pub recorded: HashMap<u32, Rec>,
    /// (uid, modseq) of expunges, in the order they happened.
    pub expunged: Vec<(u32, u64)>,
    lines: usize,
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Log {
    /// The folder's log, or a fresh one (every message then gets a new value).
    pub fn read(dir: &Path) -> io::Result<Log> {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut log = Log::default();
        if text.is_empty() {
            // Nothing known: expunges before now cannot be listed.
            log.floor = now_micros();
            log.highest = log.floor;
            return Ok(log);
        }
        for l in super::names::versioned_lines(&text, "SXMS ", &path)? {
            log.lines += 1;
            let mut f = l.split(' ');
            match (f.next(), f.next(), f.next(), f.next()) {
                (Some("X"), Some(uid), Some(m), None) => {
                    if let (Ok(uid), Ok(m)) = (uid.parse(), m.parse::<u64>()) {
                        log.recorded.remove(&uid);
                        log.expunged.push((uid, m));
                        log.highest = log.highest.max(m);
                    }
                }
                (Some("F"), Some(m), None, None) => {
                    if let Ok(m) = m.parse::<u64>() {
                        log.floor = log.floor.max(m);
                        log.highest = log.highest.max(m);
                    }
                }
                (Some(uid), Some(m), Some(bits), saved) => {
                    if let (Ok(uid), Ok(m), Ok(bits)) =
                        (uid.parse(), m.parse::<u64>(), u64::from_str_radix(bits, 16))
                    {
                        let saved = saved.and_then(|v| v.parse().ok()).unwrap_or(0);
                        log.recorded.insert(
                            uid,
                            Rec {
                                modseq: m,
                                bits,
                                saved,
                            },
                        );
                        log.highest = log.highest.max(m);
                    }
                }
                _ => {}
            }
        }
        if log.lines == 0 {
            log.floor = now_micros();
            log.highest = log.highest.max(log.floor);
        }
        Ok(log)
    }

    /// A new start, for a folder given a new UIDVALIDITY: UIDs recorded
    /// under the old one mean nothing now.
    pub fn reset(dir: &Path) -> io::Result<Log> {
        match fs::remove_file(dir.join(FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Log::read(dir)
    }

    /// A new mod-sequence, greater than every one before.
    pub fn next(&mut self) -> u64 {
        self.highest = self.highest.saturating_add(1).max(now_micros());
        self.highest
    }

    /// Record changed messages and expunges `(uid, modseq)`.
    pub fn record(
        &mut self,
        dir: &Path,
        changed: &[(u32, Rec)],
        gone: &[(u32, u64)],
    ) -> io::Result<()> {
        if changed.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let mut s = String::new();
        for &(uid, r) in changed {
            self.recorded.insert(uid, r);
            s.push_str(&line(uid, &r));
        }
        for &(uid, m) in gone {
            self.recorded.remove(&uid);
            self.expunged.push((uid, m));
            s.push_str(&format!("X {uid} {m}\n"));
        }
        self.lines += changed.len() + gone.len();
        if self.expunged.len() > MAX_EXPUNGED {
            let drop = self.expunged.len() - MAX_EXPUNGED;
            self.floor = self.expunged[..drop]
                .iter()
                .map(|e| e.1)
                .max()
                .unwrap_or(self.floor)
                .max(self.floor);
            self.expunged.drain(..drop);
        }
        if self.lines > 2 * (self.recorded.len() + self.expunged.len()) + 1000 {
            return self.rewrite(dir);
        }
        let path = dir.join(FILE);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        if f.metadata()?.len() == 0 {
            s = format!("{HEAD}\nF {}\n{s}", self.floor);
        }
        f.write_all(s.as_bytes())?;
        if !gone.is_empty() {
            f.sync_data()?;
        }
        Ok(())
    }

    /// The file again with one record per message and expunge.
    fn rewrite(&mut self, dir: &Path) -> io::Result<()> {
        let mut s = format!("{HEAD}\nF {}\n", self.floor);
        let mut uids: Vec<_> = self.recorded.iter().collect();
        uids.sort_by_key(|(u, _)| **u);
        for (uid, r) in uids {
            s.push_str(&line(*uid, r));
        }
        for (uid, m) in &self.expunged {
            s.push_str(&format!("X {uid} {m}\n"));
        }
        crate::accounts::write_atomic(&dir.join(FILE), s.as_bytes(), 0o600)?;
        self.lines = 2 + self.recorded.len() + self.expunged.len();
        Ok(())
    }

    /// UIDs expunged after `since`, in `range`; None when some may be
    /// missing (`since` is below the floor: the caller lists every UID it
    /// cannot find instead).
    pub fn vanished_since(&self, since: u64, range: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
        if since < self.floor {
            return None;
        }
        let mut v: Vec<u32> = self
            .expunged
            .iter()
            .filter(|(u, m)| *m > since && range(*u))
            .map(|e| e.0)
            .collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }
}

fn line(uid: u32, r: &Rec) -> String {
    format!("{uid} {} {:x} {}\n", r.modseq, r.bits, r.saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reread_and_only_grows() {
        let d = std::env::temp_dir().join(format!("sx-modseq-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let mut log = Log::read(&d).unwrap();
        let floor = log.floor;
        let a = log.next();
        let b = log.next();
        assert!(a > floor && b > a);
        let rec = |modseq, bits| Rec {
            modseq,
            bits,
            saved: 1_800_000_000,
        };
        log.record(&d, &[(1, rec(a, 0)), (2, rec(b, 4))], &[])
            .unwrap();
        let c = log.next();
        log.record(&d, &[], &[(1, c)]).unwrap();
        let again = Log::read(&d).unwrap();
        assert_eq!(again.highest, c);
        assert_eq!(again.floor, floor);
        assert_eq!(again.recorded.get(&2), Some(&rec(b, 4)));
        assert!(!again.recorded.contains_key(&1));
        assert_eq!(again.vanished_since(a, |_| true), Some(vec![1]));
        assert_eq!(again.vanished_since(c, |_| true), Some(vec![]));
        assert_eq!(again.vanished_since(floor - 1, |_| true), None);
        let text = fs::read_to_string(d.join(FILE)).unwrap();
        assert!(text.starts_with("SXMS 1\nF "), "{text}");
        fs::remove_dir_all(&d).unwrap();
    }
}
