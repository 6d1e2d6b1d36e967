//! One Maildir folder as the imap process sees it, shared by every session that
//! has it open: the uid list (stable UIDs and UIDVALIDITY, DESIGN.md §4), the
//! flags from the file names, the keywords file and a metadata cache.
//!
//! Files in a folder besides cur/ new/ tmp/: `sx-uidlist` (first line
//! `SXUID1 <uidvalidity> <uidnext>`, then `<uid> <base name>` per message, new
//! entries appended), `sx-uidlist.lock` (flock while assigning UIDs) and
//! `sx-keywords` (first line `%SXKW 1`, which no keyword can be, then one
//! keyword per line; keyword n is letter `a`+n in file names; release 0.1's
//! files have no first line and are read as they are).
//! `sx-modseq` holds the mod-sequences (modseq.rs); `sx-mailboxid` the
//! folder's MAILBOXID (RFC 8474), `SXMB 1 <id>`, made at first use and moved
//! with the folder by RENAME.
//! A folder is rescanned only when the mtime of new/, cur/ or the uid list moved.

use super::flags::{self, Bits};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

const UIDLIST: &str = "sx-uidlist";
const LOCK: &str = "sx-uidlist.lock";
const KEYWORDS: &str = "sx-keywords";
const MAILBOXID: &str = "sx-mailboxid";
/// First line of a keywords file: `%` and the space keep it from being a keyword.
const KEYWORDS_HEAD: &str = "%SXKW 1";

/// One message in a folder.
#[derive(Clone, Debug)]
pub struct Msg {
    pub uid: u32,
    /// File name in cur/ (with the `:2,` flags).
    pub file: Box<str>,
    pub flags: Bits,
    /// The session this message is \Recent for (0: none yet).
    pub recent_to: u64,
    /// When it last changed (RFC 7162 mod-sequence).
    pub modseq: u64,
    /// When it was saved to this folder (RFC 8514), seconds; 0: not known.
    pub saved: i64,
}

impl Msg {
    fn rec(&self) -> super::modseq::Rec {
        super::modseq::Rec {
            modseq: self.modseq,
            bits: self.flags,
            saved: self.saved,
        }
    }
}

/// Bytes of message metadata this process keeps (header blocks, ENVELOPE,
/// BODYSTRUCTURE, the searched fields), all folders together.
static CACHED: AtomicUsize = AtomicUsize::new(0);
/// Past this, what is made is used for the command and not kept: a big
/// folder searched through would otherwise keep every header block in memory.
pub const CACHE_BUDGET: usize = 256 << 20;

/// What a cached item costs.
pub trait CacheSize {
    fn cache_size(&self) -> usize;
}

impl CacheSize for [u8] {
    fn cache_size(&self) -> usize {
        self.len()
    }
}

impl CacheSize for super::header_text::HeaderText {
    fn cache_size(&self) -> usize {
        self.bytes()
    }
}

/// `cell`'s value; made if need be, and kept if the process's cache has room.
pub fn keep<T: CacheSize + ?Sized>(
    cell: &OnceLock<Arc<T>>,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    keep_in(cell, make, &CACHED, CACHE_BUDGET)
}

fn keep_in<T: CacheSize + ?Sized>(
    cell: &OnceLock<Arc<T>>,
    make: impl FnOnce() -> Arc<T>,
    counter: &AtomicUsize,
    budget: usize,
) -> Arc<T> {
    if let Some(v) = cell.get() {
        return v.clone();
    }
    let v = make();
    let n = v.cache_size();
    if counter.fetch_add(n, Ordering::Relaxed) + n > budget {
        counter.fetch_sub(n, Ordering::Relaxed);
        return v;
    }
    if cell.set(v.clone()).is_err() {
        // Another session made it meanwhile: theirs is kept.
        counter.fetch_sub(n, Ordering::Relaxed);
    }
    v
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn past_the_budget_items_are_made_but_not_kept() {
        let counter = AtomicUsize::new(0);
        let a: OnceLock<Arc<[u8]>> = OnceLock::new();
        let b: OnceLock<Arc<[u8]>> = OnceLock::new();
        let v = keep_in(&a, || Arc::from(&[1u8; 60][..]), &counter, 100);
        assert_eq!(v.len(), 60);
        assert!(a.get().is_some());
        assert_eq!(counter.load(Ordering::Relaxed), 60);
        // Made, used, not kept: 60 + 60 is over 100.
        let w = keep_in(&b, || Arc::from(&[2u8; 60][..]), &counter, 100);
        assert_eq!(w.len(), 60);
        assert!(b.get().is_none());
        assert_eq!(counter.load(Ordering::Relaxed), 60);
        // Kept ones are not made again.
        let again = keep_in(&a, || unreachable!(), &counter, 100);
        assert_eq!(again[0], 1);
    }
}

impl Drop for Meta {
    fn drop(&mut self) {
        let mut n = 0;
        for c in [&self.envelope, &self.structure, &self.body, &self.header] {
            n += c.get().map_or(0, |v| v.len());
        }
        n += self.header_text.get().map_or(0, |v| v.bytes());
        CACHED.fetch_sub(n.min(CACHED.load(Ordering::Relaxed)), Ordering::Relaxed);
    }
}

/// What FETCH needs besides the bytes, computed once per message.
#[derive(Default)]
pub struct Meta {
    pub size: u64,
    /// Internal date: the file's mtime (APPEND sets it), seconds since the epoch.
    pub internal: i64,
    pub envelope: OnceLock<Arc<[u8]>>,
    pub structure: OnceLock<Arc<[u8]>>,
    pub body: OnceLock<Arc<[u8]>>,
    /// The header block, for header searches.
    pub header: OnceLock<Arc<[u8]>>,
    /// Its most searched fields, decoded.
    pub header_text: OnceLock<Arc<super::header_text::HeaderText>>,
}

type Stamp = (i64, i64, i64, i64);

pub struct State {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub msgs: Vec<Msg>,
    pub keywords: Vec<String>,
    /// Bumped on every change; a session with the same number has nothing to sync.
    pub generation: u64,
    stamp: Option<Stamp>,
    meta: HashMap<u32, Arc<Meta>>,
    /// Mod-sequences, read at the first full scan.
    log: Option<super::modseq::Log>,
    /// RFC 8474 MAILBOXID, read or made at first use.
    mailbox_id: Option<String>,
}

impl State {
    /// HIGHESTMODSEQ (RFC 7162 3.1.2.1).
    pub fn highest_modseq(&self) -> u64 {
        self.log.as_ref().map(|l| l.highest).unwrap_or(1).max(1)
    }

    /// UIDs expunged after `since` that `range` accepts; None when the
    /// record does not reach back that far.
    pub fn vanished_since(&self, since: u64, range: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
        self.log.as_ref()?.vanished_since(since, range)
    }

    /// A new mod-sequence for a change about to be made.
    fn next_modseq(&mut self) -> u64 {
        match self.log.as_mut() {
            Some(l) => l.next(),
            None => 1,
        }
    }

    /// Write down changes and expunges (a failure only costs a client a
    /// refetch after a restart: the flags on disk are compared again then).
    fn record(&mut self, dir: &Path, changed: &[(u32, super::modseq::Rec)], gone: &[(u32, u64)]) {
        if let Some(l) = self.log.as_mut() {
            if let Err(e) = l.record(dir, changed, gone) {
                log::warn!("{}: cannot record mod-sequences: {e}", dir.display());
            }
        }
    }
}

pub struct Folder {
    /// Relative to the Maildir root (the imap process's working directory).
    pub path: PathBuf,
    state: Mutex<State>,
}

fn mtime(p: &Path) -> io::Result<(i64, i64)> {
    match fs::metadata(p) {
        Ok(m) => Ok((m.mtime(), m.mtime_nsec())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Folders open in this process, so that sessions share one index and cache.
static REGISTRY: Mutex<Option<HashMap<PathBuf, Arc<Folder>>>> = Mutex::new(None);
/// Folders kept cached when no session has them open.
const KEEP_FOLDERS: usize = 512;

impl Folder {
    /// The shared index of the folder at `path` (which must be a Maildir).
    pub fn open(path: &Path) -> io::Result<Arc<Folder>> {
        if !path.join("cur").is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such mailbox"));
        }
        let mut reg = REGISTRY.lock().map_err(|_| io::Error::other("poisoned"))?;
        let reg = reg.get_or_insert_with(HashMap::new);
        if let Some(f) = reg.get(path) {
            return Ok(f.clone());
        }
        if reg.len() >= KEEP_FOLDERS {
            // Drop the folders nobody has open; their caches go with them.
            reg.retain(|_, f| Arc::strong_count(f) > 1);
        }
        let f = Arc::new(Folder {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                uidvalidity: 0,
                uidnext: 1,
                msgs: Vec::new(),
                keywords: Vec::new(),
                generation: 0,
                stamp: None,
                meta: HashMap::new(),
                log: None,
                mailbox_id: None,
            }),
        });
        reg.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    /// Forget folders under `path` (after DELETE or RENAME).
    pub fn forget(path: &Path) {
        if let Ok(mut reg) = REGISTRY.lock() {
            if let Some(reg) = reg.as_mut() {
                reg.retain(|p, _| !p.starts_with(path) && p != path);
            }
        }
    }

    /// The current state, rescanned from disk if anything moved.
    pub fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| io::Error::other("folder state poisoned"))?;
        self.refresh(&mut st)?;
        Ok(st)
    }

    /// mtimes of cur/ and the uid list: what changes when anyone but delivery
    /// changes the folder (delivery only adds to new/, which is listed each time).
    fn stamp(&self) -> io::Result<Stamp> {
        let (c, d) = mtime(&self.path.join("cur"))?;
        let (e, f) = mtime(&self.path.join(UIDLIST))?;
        Ok((c, d, e, f))
    }

    /// Whether the state matches the disk, checked before one of our own
    /// changes so that afterwards we know whether we may remember the new stamp.
    fn current(&self, st: &State) -> bool {
        st.stamp.is_some() && st.stamp == self.stamp().ok()
    }

    fn restamp(&self, st: &mut State, was_current: bool) {
        st.stamp = if was_current { self.stamp().ok() } else { None };
    }

    fn list_new(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.path.join("new"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Only new mail arrived: move it to cur/ and number it, without a rescan.
    fn take_new(&self, st: &mut State, names: Vec<String>) -> io::Result<()> {
        let _lock = self.flock()?;
        let mut appended = Vec::new();
        let modseq = st.next_modseq();
        let mut changed = Vec::new();
        for name in names {
            let target = if name.contains(":2,") {
                name.clone()
            } else {
                format!("{name}:2,")
            };
            if fs::rename(
                self.path.join("new").join(&name),
                self.path.join("cur").join(&target),
            )
            .is_err()
            {
                continue;
            }
            let uid = st.uidnext;
            st.uidnext += 1;
            appended.push((uid, flags::base(&target).to_string()));
            let m = Msg {
                uid,
                flags: flags::from_name(&target),
                file: target.into(),
                recent_to: 0,
                modseq,
                saved: now_secs(),
            };
            changed.push((uid, m.rec()));
            st.msgs.push(m);
        }
        st.record(&self.path, &changed, &[]);
        if self.path.join(UIDLIST).exists() {
            append_uidlist(&self.path, st.uidnext, &appended)?;
        } else {
            write_uidlist(&self.path, st.uidvalidity, st.uidnext, &st.msgs)?;
        }
        st.generation += 1;
        st.stamp = Some(self.stamp()?);
        Ok(())
    }

    fn flock(&self) -> io::Result<nix::fcntl::Flock<File>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.path.join(LOCK))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))
    }

    fn refresh(&self, st: &mut State) -> io::Result<()> {
        let before = self.stamp()?;
        let new = self.list_new();
        if st.stamp == Some(before) {
            if new.is_empty() {
                return Ok(());
            }
            return self.take_new(st, new);
        }
        if !self.path.join("cur").is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "mailbox is gone"));
        }
        let _lock = self.flock()?;
        if st.log.is_none() {
            st.log = Some(super::modseq::Log::read(&self.path)?);
        }
        let (mut validity, mut next, known) = read_uidlist(&self.path.join(UIDLIST))?;
        let mut rewrite = validity == 0;
        if validity == 0 {
            validity = next_uidvalidity(&self.path)?;
            st.log = Some(super::modseq::Log::reset(&self.path)?);
        }
        // Mail delivered to new/ moves to cur/ once a session has seen it.
        if let Ok(rd) = fs::read_dir(self.path.join("new")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let target = if name.contains(":2,") {
                    name.clone()
                } else {
                    format!("{name}:2,")
                };
                let _ = fs::rename(
                    self.path.join("new").join(&name),
                    self.path.join("cur").join(target),
                );
            }
        }
        let old: HashMap<u32, u64> = st.msgs.iter().map(|m| (m.uid, m.recent_to)).collect();
        let mut msgs = Vec::new();
        let mut fresh = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in fs::read_dir(self.path.join("cur"))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let base = flags::base(&name).to_string();
            if !seen.insert(base.clone()) {
                continue;
            }
            let bits = flags::from_name(&name);
            match known.get(&base) {
                Some(&uid) => msgs.push(Msg {
                    uid,
                    file: name.into(),
                    flags: bits,
                    recent_to: old.get(&uid).copied().unwrap_or(0),
                    modseq: 0,
                    saved: 0,
                }),
                None => fresh.push((base, name, bits)),
            }
        }
        if msgs.len() != known.len() {
            rewrite = true;
        }
        fresh.sort();
        let mut appended = Vec::new();
        for (base, name, bits) in fresh {
            msgs.push(Msg {
                uid: next,
                file: name.into(),
                flags: bits,
                recent_to: 0,
                modseq: 0,
                // New to the uid list: saved here now, as far as we know.
                saved: now_secs(),
            });
            appended.push((next, base));
            next += 1;
        }
        msgs.sort_by_key(|m| m.uid);
        self.compare_modseqs(st, &mut msgs);
        if rewrite {
            write_uidlist(&self.path, validity, next, &msgs)?;
        } else if !appended.is_empty() {
            append_uidlist(&self.path, next, &appended)?;
        }
        st.meta
            .retain(|uid, _| msgs.binary_search_by_key(uid, |m| m.uid).is_ok());
        st.uidvalidity = validity;
        st.uidnext = next;
        st.msgs = msgs;
        st.keywords = read_keywords(&self.path)?;
        st.generation += 1;
        st.stamp = Some(self.stamp()?);
        Ok(())
    }

    /// Give each scanned message its recorded mod-sequence, or a new one when
    /// it is new or its flags moved since (changed by another program); and
    /// record as expunged what was recorded but is gone. One new value serves
    /// the whole scan.
    fn compare_modseqs(&self, st: &mut State, msgs: &mut [Msg]) {
        let Some(log) = st.log.as_ref() else {
            return;
        };
        let mut changed = Vec::new();
        for m in msgs.iter_mut() {
            let rec = log.recorded.get(&m.uid);
            if let Some(r) = rec.filter(|r| r.saved != 0) {
                m.saved = r.saved;
            }
            match rec {
                Some(r) if r.bits == m.flags => m.modseq = r.modseq,
                _ => changed.push(m.uid),
            }
        }
        let gone: Vec<u32> = log
            .recorded
            .keys()
            .copied()
            .filter(|u| msgs.binary_search_by_key(u, |m| m.uid).is_err())
            .collect();
        if changed.is_empty() && gone.is_empty() {
            return;
        }
        let modseq = st.next_modseq();
        let mut records = Vec::new();
        for m in msgs.iter_mut() {
            if changed.binary_search(&m.uid).is_ok() {
                m.modseq = modseq;
                records.push((m.uid, m.rec()));
            }
        }
        let gone: Vec<(u32, u64)> = gone.into_iter().map(|u| (u, modseq)).collect();
        st.record(&self.path, &records, &gone);
    }

    /// The MAILBOXID recorded in `folder`, read without opening it (None
    /// when none is recorded yet).
    pub fn recorded_mailbox_id(folder: &Path) -> Option<String> {
        let t = fs::read_to_string(folder.join(MAILBOXID)).ok()?;
        let id = t.lines().next()?.strip_prefix("SXMB 1 ")?;
        is_object_id(id).then(|| id.to_string())
    }

    /// RFC 8474 MAILBOXID: `F` and 24 random hex digits, kept in the folder.
    pub fn mailbox_id(&self, st: &mut State) -> io::Result<String> {
        if let Some(id) = &st.mailbox_id {
            return Ok(id.clone());
        }
        let path = self.path.join(MAILBOXID);
        let id = match fs::read_to_string(&path) {
            Ok(t) => {
                let line = t.lines().next().unwrap_or("");
                match line.strip_prefix("SXMB 1 ") {
                    Some(id) if is_object_id(id) => id.to_string(),
                    _ if line.starts_with("SXMB ") => {
                        log::error!("{}: written by a newer release; kept", path.display());
                        return Err(io::Error::other("mailbox id of a newer release"));
                    }
                    _ => new_mailbox_id(&self.path)?,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => new_mailbox_id(&self.path)?,
            Err(e) => return Err(e),
        };
        st.mailbox_id = Some(id.clone());
        Ok(id)
    }

    pub fn file_path(&self, m: &Msg) -> PathBuf {
        self.path.join("cur").join(&*m.file)
    }

    /// Size and internal date of a message, cached.
    pub fn meta(&self, st: &mut State, i: usize) -> io::Result<Arc<Meta>> {
        let m = &st.msgs[i];
        if let Some(x) = st.meta.get(&m.uid) {
            return Ok(x.clone());
        }
        let md = fs::metadata(self.file_path(m))?;
        let mut meta = Meta::default();
        meta.size = md.len();
        meta.internal = md.mtime();
        let meta = Arc::new(meta);
        st.meta.insert(m.uid, meta.clone());
        Ok(meta)
    }

    /// Give message `i` the flags `bits` (a rename within cur/).
    pub fn set_flags(&self, st: &mut State, i: usize, bits: Bits) -> io::Result<()> {
        let m = &st.msgs[i];
        if m.flags == bits {
            return Ok(());
        }
        let name = flags::file_name(flags::base(&m.file), bits);
        let was = self.current(st);
        let m = &st.msgs[i];
        fs::rename(self.file_path(m), self.path.join("cur").join(&name))?;
        let modseq = st.next_modseq();
        let m = &mut st.msgs[i];
        m.file = name.into();
        m.flags = bits;
        m.modseq = modseq;
        let (uid, rec) = (m.uid, m.rec());
        st.record(&self.path, &[(uid, rec)], &[]);
        st.generation += 1;
        self.restamp(st, was);
        Ok(())
    }

    /// The keyword bit for `name`, adding it to the keywords file if new.
    pub fn keyword(&self, st: &mut State, name: &str) -> io::Result<Option<Bits>> {
        if let Some(i) = st
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
        {
            return Ok(Some(flags::keyword_bit(i)));
        }
        if st.keywords.len() >= flags::MAX_KEYWORDS {
            return Ok(None);
        }
        let _lock = self.flock()?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.path.join(KEYWORDS))?;
        if f.metadata()?.len() == 0 {
            writeln!(f, "{KEYWORDS_HEAD}")?;
        }
        writeln!(f, "{name}")?;
        st.keywords.push(name.to_string());
        Ok(Some(flags::keyword_bit(st.keywords.len() - 1)))
    }

    /// Make the renames into cur/ durable; called after `add`, outside the
    /// folder lock, before APPENDUID/COPYUID is reported.
    pub fn sync_cur(&self) -> io::Result<()> {
        File::open(self.path.join("cur"))?.sync_all()
    }

    /// Move a complete file (in this folder's tmp/ or elsewhere on the same
    /// filesystem) into cur/ with `bits`, and give it the next UID.
    pub fn add(&self, st: &mut State, from: &Path, base: &str, bits: Bits) -> io::Result<u32> {
        let _lock = self.flock()?;
        let was = self.current(st);
        let uid = st.uidnext;
        let name = flags::file_name(base, bits);
        fs::rename(from, self.path.join("cur").join(&name))?;
        if st.uidvalidity == 0 {
            st.uidvalidity = next_uidvalidity(&self.path)?;
            st.log = Some(super::modseq::Log::reset(&self.path)?);
        }
        st.uidnext = uid + 1;
        let modseq = st.next_modseq();
        let m = Msg {
            uid,
            file: name.into(),
            flags: bits,
            recent_to: 0,
            modseq,
            saved: now_secs(),
        };
        let rec = m.rec();
        st.msgs.push(m);
        st.record(&self.path, &[(uid, rec)], &[]);
        if self.path.join(UIDLIST).exists() {
            append_uidlist(&self.path, st.uidnext, &[(uid, base.to_string())])?;
        } else {
            write_uidlist(&self.path, st.uidvalidity, st.uidnext, &st.msgs)?;
        }
        st.generation += 1;
        self.restamp(st, was);
        Ok(uid)
    }

    /// Remove the messages at `idx` (ascending); returns their UIDs.
    pub fn remove(&self, st: &mut State, idx: &[usize]) -> Vec<u32> {
        let was = self.current(st);
        let mut gone = Vec::new();
        for &i in idx.iter().rev() {
            let m = &st.msgs[i];
            match fs::remove_file(self.file_path(m)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    log::warn!("expunge {}: {e}", self.file_path(m).display());
                    continue;
                }
            }
            let m = st.msgs.remove(i);
            st.meta.remove(&m.uid);
            gone.push(m.uid);
        }
        if !gone.is_empty() {
            let modseq = st.next_modseq();
            let records: Vec<(u32, u64)> = gone.iter().map(|u| (*u, modseq)).collect();
            st.record(&self.path, &[], &records);
            st.generation += 1;
            self.restamp(st, was);
        }
        gone.reverse();
        gone
    }
}

/// The account's last UIDVALIDITY, `SXUV1 <n>`, in its directory: a folder
/// deleted and created again within one second (or after a clock step back)
/// must not get its old UIDVALIDITY, or UID 1 would name another message
/// under the same UIDVALIDITY (RFC 3501 2.3.1.1).
const UIDVALIDITY: &str = "sx-uidvalidity";

/// A new UIDVALIDITY for a folder: the time, or one more than the account's
/// last one if that is not less; recorded (and synced) before it is used.
fn next_uidvalidity(folder: &Path) -> io::Result<u32> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let account = match folder
        .file_name()
        .map(|n| n.as_encoded_bytes().first() == Some(&b'.'))
    {
        Some(true) => folder.parent().unwrap_or(folder),
        _ => folder,
    };
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(account.join(UIDVALIDITY))?;
    let f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;
    let mut text = String::new();
    (&*f).read_to_string(&mut text)?;
    let last: u32 = text
        .strip_prefix("SXUV1 ")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let next = (now_secs() as u32).max(last.saturating_add(1));
    let line = format!("SXUV1 {next}\n");
    f.set_len(0)?;
    f.write_all_at(line.as_bytes(), 0)?;
    f.sync_data()?;
    Ok(next)
}

/// (uidvalidity, uidnext, base -> uid); zeros and empty when missing or
/// unreadable. A uid list of a later release (`SXUID2` and up) is an error: the
/// folder is not served rather than its UIDs rewritten.
fn read_uidlist(p: &Path) -> io::Result<(u32, u32, HashMap<String, u32>)> {
    let Ok(text) = fs::read_to_string(p) else {
        return Ok((0, 1, HashMap::new()));
    };
    let mut lines = text.lines();
    let mut head = lines.next().unwrap_or("").split(' ');
    match head.next() {
        Some("SXUID1") => {}
        Some(v)
            if v.strip_prefix("SXUID")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some() =>
        {
            log::error!(
                "{}: written by a newer release ({v}); folder not served, file kept",
                p.display()
            );
            return Err(io::Error::other("uid list of a newer release"));
        }
        _ => {
            log::warn!("{}: not a uid list, starting a new one", p.display());
            return Ok((0, 1, HashMap::new()));
        }
    }
    let validity = head.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut next: u32 = head.next().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut map = HashMap::new();
    for l in lines {
        if let Some(n) = l.strip_prefix("N ") {
            next = next.max(n.parse().unwrap_or(0));
            continue;
        }
        if let Some((uid, base)) = l.split_once(' ') {
            if let Ok(uid) = uid.parse::<u32>() {
                next = next.max(uid.saturating_add(1));
                map.insert(base.to_string(), uid);
            }
        }
    }
    Ok((validity, next.max(1), map))
}

fn write_uidlist(dir: &Path, validity: u32, next: u32, msgs: &[Msg]) -> io::Result<()> {
    let mut s = format!("SXUID1 {validity} {next}\n");
    for m in msgs {
        s.push_str(&format!("{} {}\n", m.uid, flags::base(&m.file)));
    }
    crate::accounts::write_atomic(&dir.join(UIDLIST), s.as_bytes(), 0o600)
}

/// New entries go at the end, with a `N <uidnext>` line so that UIDs of
/// expunged last messages are never reused.
fn append_uidlist(dir: &Path, next: u32, entries: &[(u32, String)]) -> io::Result<()> {
    let mut s = String::new();
    for (uid, base) in entries {
        s.push_str(&format!("{uid} {base}\n"));
    }
    s.push_str(&format!("N {next}\n"));
    // Not synced: like Dovecot's index, a uid list is cheap to lose (the
    // messages are synced); after a crash the entry is rebuilt on rescan.
    let mut f = OpenOptions::new().append(true).open(dir.join(UIDLIST))?;
    f.write_all(s.as_bytes())
}

/// The folder's keywords in letter order. A file of a later release (`%SXKW 2`
/// and up) is an error: the folder is not served rather than misread.
fn read_keywords(dir: &Path) -> io::Result<Vec<String>> {
    let path = dir.join(KEYWORDS);
    let Ok(t) = fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let keywords = super::names::versioned_lines(&t, "%SXKW ", &path)?
        .filter(|l| !l.is_empty())
        .take(flags::MAX_KEYWORDS)
        .map(str::to_string)
        .collect();
    Ok(keywords)
}

/// The most of a message read as its header block when it has no empty line
/// (APPEND stores anything): ENVELOPE and header fetches need no more.
const MAX_HEADER_READ: usize = 1 << 20;

/// The header block only, read without the body where possible. Each chunk
/// is searched once (from just before it, for a line end split between reads).
pub fn read_header(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(buf);
        }
        let from = buf.len().saturating_sub(2);
        buf.extend_from_slice(&chunk[..n]);
        let end = from + super::mime::header_block(&buf[from..]).len();
        if end < buf.len() {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() >= MAX_HEADER_READ {
            buf.truncate(MAX_HEADER_READ);
            return Ok(buf);
        }
    }
}

/// A unique base name for a message made here (APPEND, COPY).
pub fn unique_base(host: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!(
        "{}.M{}P{}Q{n}R{:08x}.{host}",
        d.as_secs(),
        d.subsec_micros(),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// RFC 8474 objectid: 1 to 255 of `A-Za-z0-9_-`.
fn is_object_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A new MAILBOXID, on disk before it is handed out.
fn new_mailbox_id(dir: &Path) -> io::Result<String> {
    let id = format!(
        "F{:012x}{:012x}",
        rand::random::<u64>() & 0xffff_ffff_ffff,
        rand::random::<u64>() & 0xffff_ffff_ffff
    );
    crate::accounts::write_atomic(
        &dir.join(MAILBOXID),
        format!("SXMB 1 {id}\n").as_bytes(),
        0o600,
    )?;
    Ok(id)
}

/// RFC 8474 EMAILID: from the message's base name, which delivery and
/// APPEND make unique and COPY and MOVE keep, so copies share it.
pub fn email_id(file: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, flags::base(file).as_bytes());
    let hex: String = d
        .as_ref()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("M{hex}")
}
