//! Group commit of durability. Callers that have written their files hand in
//! the files, the renames that publish them (done here, only once the file's
//! data is on disk: a name in Maildir's new/ must never point at data a power
//! loss can take back) and the directories whose entries changed; one thread
//! takes every request waiting, starts write-back of all their data at once
//! (sync_file_range), fdatasyncs each file, makes each job's renames, then
//! fsyncs each distinct directory. On a journaling filesystem the first
//! fdatasync commits one journal transaction holding the block allocations of
//! the whole batch, and the first directory fsync one holding all its renames,
//! so the rest return almost at once: the disk flushes are shared by every
//! session that finished meanwhile, instead of several per message. queue
//! waits for it before `Committed` (and so before smtp's 250), delivery before
//! `Delivered`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

struct Job {
    files: Vec<File>,
    renames: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
    reply: oneshot::Sender<io::Result<()>>,
}

const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub struct GroupSync {
    tx: mpsc::Sender<Job>,
}

fn sync_batch(jobs: Vec<Job>) {
    for j in &jobs {
        for f in &j.files {
            // SAFETY: plain syscall on an fd we own; only a hint, errors surface below.
            unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
        }
    }
    let mut dir_results: BTreeMap<PathBuf, Result<(), String>> = BTreeMap::new();
    for j in &jobs {
        for d in &j.dirs {
            dir_results.entry(d.clone()).or_insert(Ok(()));
        }
    }
    let mut file_results: Vec<io::Result<()>> = jobs
        .iter()
        .map(|j| {
            j.files.iter().try_for_each(|f| f.sync_data())?;
            j.renames
                .iter()
                .try_for_each(|(from, to)| std::fs::rename(from, to))
        })
        .collect();
    for (d, r) in dir_results.iter_mut() {
        *r = File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("{}: {e}", d.display()));
    }
    for (j, fr) in jobs.into_iter().zip(file_results.iter_mut()) {
        let mut res = std::mem::replace(fr, Ok(()));
        if res.is_ok() {
            if let Some(Err(e)) = j.dirs.iter().map(|d| &dir_results[d]).find(|r| r.is_err()) {
                res = Err(io::Error::other(e.clone()));
            }
        }
        let _ = j.reply.send(res);
    }
}

impl GroupSync {
    pub fn start(name: &str) -> io::Result<GroupSync> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    sync_batch(jobs);
                }
            })?;
        Ok(GroupSync { tx })
    }

    /// Returns once `files`' data and `dirs`' entries are on disk.
    pub async fn sync(&self, files: Vec<File>, dirs: Vec<PathBuf>) -> io::Result<()> {
        self.sync_then_rename(files, Vec::new(), dirs).await
    }

    /// Sync `files`' data, then make `renames` (each only if every file synced),
    /// then sync `dirs`; returns once all of it is on disk. An error leaves the
    /// renames not made or not known to be durable: the caller cleans up.
    pub async fn sync_then_rename(
        &self,
        files: Vec<File>,
        renames: Vec<(PathBuf, PathBuf)>,
        dirs: Vec<PathBuf>,
    ) -> io::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                files,
                renames,
                dirs,
                reply,
            })
            .map_err(|_| io::Error::other("sync thread stopped"))?;
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("sync thread stopped")))
    }
}
