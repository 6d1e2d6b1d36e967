//! The group committer: one thread that takes every commit waiting, makes the
//! batch durable with one syncfs (spool::commit_batch), and answers each. While
//! one batch is being synced the next one gathers, so the cost of a disk flush is
//! shared by all sessions that finished DATA meanwhile.

use super::spool::{self, Pending};
use std::io;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = (Pending, oneshot::Sender<io::Result<()>>);

const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    pub fn start() -> io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sx-queue-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (pending, replies): (Vec<Pending>, Vec<_>) = jobs.into_iter().unzip();
                    let results = spool::commit_batch(&pending);
                    for (r, reply) in results.into_iter().zip(replies) {
                        let _ = reply.send(r);
                    }
                }
            })?;
        Ok(Committer { tx })
    }

    /// Durable when this returns Ok.
    pub async fn commit(&self, p: Pending) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((p, tx))
            .map_err(|_| io::Error::other("committer stopped"))?;
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("committer stopped")))
    }
}
