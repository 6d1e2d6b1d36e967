//! Greylisting state (smtp asks, queue keeps it: queue is the process that
//! may write files). A triplet (client network, sender, recipient) seen for
//! the first time is told to wait `delay`; a retry after that passes, and
//! from then on the triplet and the client network pass for `expire` after
//! their last use (auto-whitelist).
//!
//! On disk: `greylist` in queue's directory, our own versioned text format:
//! first line `SXGREY1`, then one `<first> <last> <passed 0|1> <key>` line
//! per change (seconds since the epoch; a later line for a key replaces an
//! earlier one). Rewritten compacted when it holds more than twice the live
//! entries. Not synced: a lost line costs one more deferral, never a message.
//! Bounded: at most MAX_ENTRIES keys, unpassed ones dropped after a day.

use std::collections::HashMap;
use std::io::Write;

/// The file's name in queue's directory.
pub const FILE: &str = "greylist";
const MAGIC: &str = "SXGREY1";
pub const MAX_ENTRIES: usize = 200_000;
/// An unpassed triplet not retried within a day is forgotten.
const UNPASSED_TTL: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    first: u64,
    last: u64,
    passed: bool,
}

pub struct Greylist {
    path: std::path::PathBuf,
    entries: HashMap<String, Entry>,
    /// Lines in the file (for compaction).
    lines: usize,
    file: Option<std::fs::File>,
    /// The file is another version's: kept as it is, state in memory only.
    frozen: bool,
}

impl Greylist {
    /// The state kept in `path` (queue's `greylist`), at time `now`.
    pub fn load(path: &std::path::Path, now: u64) -> Greylist {
        let mut g = Greylist {
            path: path.to_path_buf(),
            entries: HashMap::new(),
            lines: 0,
            file: None,
            frozen: false,
        };
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut lines = text.lines();
            match lines.next() {
                Some(MAGIC) => {
                    for l in lines {
                        if let Some((k, e)) = parse_line(l) {
                            g.entries.insert(k, e);
                        }
                        g.lines += 1;
                    }
                }
                Some(other) => {
                    // Another version: not ours to read or overwrite.
                    log::warn!(
                        "greylist: {} is {:?}, not {MAGIC}: starting empty, file kept",
                        path.display(),
                        crate::log::cut(other, 40)
                    );
                    g.frozen = true;
                    return g;
                }
                None => {}
            }
        }
        g.compact(now);
        g
    }

    /// Seconds the triplet must still wait; 0 when it passes (and is noted).
    pub fn check(&mut self, net: &str, triplet: &str, delay: u64, expire: u64, now: u64) -> u64 {
        let client = format!("c {net}");
        let key = format!("t {triplet}");
        if let Some(c) = self.entries.get(&client).copied() {
            if c.passed && now.saturating_sub(c.last) <= expire {
                self.put(&client, Entry { last: now, ..c });
                return 0;
            }
        }
        let wait = match self.entries.get(&key).copied() {
            Some(e) if e.passed && now.saturating_sub(e.last) <= expire => {
                self.put(&key, Entry { last: now, ..e });
                0
            }
            Some(e) if !e.passed && now.saturating_sub(e.first) <= UNPASSED_TTL => {
                let waited = now.saturating_sub(e.first);
                if waited >= delay {
                    self.put(
                        &key,
                        Entry {
                            last: now,
                            passed: true,
                            ..e
                        },
                    );
                    0
                } else {
                    delay - waited
                }
            }
            _ => {
                self.put(
                    &key,
                    Entry {
                        first: now,
                        last: now,
                        passed: false,
                    },
                );
                delay.max(1)
            }
        };
        if wait == 0 {
            self.put(
                &client,
                Entry {
                    first: now,
                    last: now,
                    passed: true,
                },
            );
        }
        wait
    }

    fn put(&mut self, key: &str, e: Entry) {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(key) {
            self.compact(e.last);
            if self.entries.len() >= MAX_ENTRIES {
                // Still full of live entries: the oldest tenth goes.
                let mut lasts: Vec<u64> = self.entries.values().map(|e| e.last).collect();
                lasts.sort_unstable();
                let cut = lasts.get(lasts.len() / 10).copied().unwrap_or(0);
                self.entries.retain(|_, e| e.last > cut);
                self.rewrite();
            }
        }
        self.entries.insert(key.to_string(), e);
        self.append(key, e);
        if self.lines > 2 * self.entries.len() + 1000 {
            self.rewrite();
        }
    }

    /// Drop what has lapsed and rewrite the file.
    fn compact(&mut self, now: u64) {
        self.entries.retain(|_, e| {
            if e.passed {
                // Passed entries lapse by their own expire, which we do not
                // know here: keep them up to the longest sensible one.
                now.saturating_sub(e.last) <= 400 * 86_400
            } else {
                now.saturating_sub(e.first) <= UNPASSED_TTL
            }
        });
        self.rewrite();
    }

    fn rewrite(&mut self) {
        if self.frozen {
            self.lines = self.entries.len();
            return;
        }
        let mut text = format!("{MAGIC}\n");
        for (k, e) in &self.entries {
            text.push_str(&line(k, *e));
        }
        let tmp = self.path.with_extension("tmp");
        let res = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &self.path));
        if let Err(e) = res {
            log::warn!("greylist: cannot write {}: {e}", self.path.display());
        }
        self.lines = self.entries.len();
        self.file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .ok();
    }

    fn append(&mut self, key: &str, e: Entry) {
        if let Some(f) = self.file.as_mut() {
            if f.write_all(line(key, e).as_bytes()).is_err() {
                self.file = None;
            }
        }
        self.lines += 1;
    }
}

fn line(key: &str, e: Entry) -> String {
    format!("{} {} {} {key}\n", e.first, e.last, u8::from(e.passed))
}

fn parse_line(l: &str) -> Option<(String, Entry)> {
    let mut it = l.splitn(4, ' ');
    let first = it.next()?.parse().ok()?;
    let last = it.next()?.parse().ok()?;
    let passed = match it.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let key = it.next()?;
    // Keys are `c <net>` or `t <net> <sender> <recipient>`.
    (key.starts_with("c ") || key.starts_with("t ")).then(|| {
        (
            key.to_string(),
            Entry {
                first,
                last,
                passed,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own, removed on drop.
    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    impl Dir {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    fn dir() -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("sx-greylist-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    #[test]
    fn first_waits_retry_passes_then_the_client_passes_and_it_survives_a_reload() {
        let d = dir();
        let p = d.path().join(FILE);
        let mut g = Greylist::load(&p, 1000);
        let t = "192.0.2.0/24 a@b.test bob@a.test";
        assert_eq!(g.check("192.0.2.0/24", t, 300, 86_400, 1000), 300);
        assert_eq!(
            g.check("192.0.2.0/24", t, 300, 86_400, 1100),
            200,
            "too early"
        );
        // State kept across a restart (a new load of the file).
        let mut g = Greylist::load(&p, 1200);
        assert_eq!(g.check("192.0.2.0/24", t, 300, 86_400, 1200), 100);
        assert_eq!(
            g.check("192.0.2.0/24", t, 300, 86_400, 1300),
            0,
            "retried after the delay"
        );
        // The client network is now known: another triplet passes at once.
        let other = "192.0.2.0/24 c@d.test bob@a.test";
        assert_eq!(g.check("192.0.2.0/24", other, 300, 86_400, 1301), 0);
        let mut g = Greylist::load(&p, 1400);
        assert_eq!(g.check("192.0.2.0/24", other, 300, 86_400, 1400), 0);
        // Past expire, it waits again.
        let late = 1400 + 86_400 + 1;
        assert_eq!(g.check("192.0.2.0/24", t, 300, 86_400, late), 300);
    }

    #[test]
    fn another_version_is_kept_and_damage_skipped() {
        let d = dir();
        let p = d.path().join(FILE);
        std::fs::write(&p, "SXGREY9\nwhatever\n").unwrap();
        let mut g = Greylist::load(&p, 10);
        assert!(g.entries.is_empty());
        for i in 0..3000 {
            g.check("n", &format!("n s{i} r"), 60, 600, 10);
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "SXGREY9\nwhatever\n");
        std::fs::write(&p, "SXGREY1\n1 2 x t k\nbad\n5 5 1 c 10.0.0.0/24\n").unwrap();
        let g = Greylist::load(&p, 10);
        assert_eq!(g.entries.len(), 1);
    }
}
