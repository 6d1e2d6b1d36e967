//! A draining stop for the processes that hold client sessions (smtp, imap).
//! On the parent's Shutdown the role calls [`Drain::run_down`]: accept loops
//! stop, sessions between commands (or transactions) end with their protocol's
//! goodbye, sessions in the middle of one go on; at the deadline
//! (EMAIL_SHUTDOWN_TIMEOUT) whatever is left is told 421 4.3.2 / BYE and cut.
//! One per process (a process serves one role), so accept loops and sessions
//! reach it without plumbing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// No new sessions; idle ones end; work in progress finishes.
    Draining,
    /// The deadline passed: every session ends now.
    Stop,
}

pub struct Drain {
    phase: watch::Sender<Phase>,
    sessions: AtomicUsize,
    gone: tokio::sync::Notify,
}

/// Counts a session while it lives.
pub struct Session(());

impl Drop for Session {
    fn drop(&mut self) {
        let d = global();
        if d.sessions.fetch_sub(1, Ordering::SeqCst) == 1 {
            d.gone.notify_waiters();
        }
    }
}

pub fn global() -> &'static Drain {
    static D: OnceLock<Drain> = OnceLock::new();
    D.get_or_init(|| Drain {
        phase: watch::Sender::new(Phase::Serving),
        sessions: AtomicUsize::new(0),
        gone: tokio::sync::Notify::new(),
    })
}

/// A session's work, contained (a panic ends only it: `Some(Err(()))`) and
/// cut at the stop's deadline (`None`).
pub async fn contained<T>(
    work: impl std::future::Future<Output = T> + Send,
) -> Option<Result<T, ()>> {
    tokio::select! {
        r = crate::contain::contain(work) => Some(r),
        _ = global().reached(Phase::Stop) => None,
    }
}

impl Drain {
    pub fn session(&self) -> Session {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        Session(())
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub fn draining(&self) -> bool {
        self.phase() >= Phase::Draining
    }

    /// Resolves once the phase is at least `p` (never, while serving, for
    /// Draining: the future is meant for `select!`).
    pub async fn reached(&self, p: Phase) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|now| *now >= p).await;
    }

    /// Stop accepting, let sessions finish until `timeout`, then end the rest.
    /// Returns how many had to be cut.
    pub async fn run_down(&self, what: &str, timeout: Duration) -> usize {
        let n = self.sessions.load(Ordering::SeqCst);
        log::info!("{what}: stopping: no new connections, {n} session(s) finishing");
        self.phase.send_replace(Phase::Draining);
        let all_gone = async {
            loop {
                let wait = self.gone.notified();
                if self.sessions.load(Ordering::SeqCst) == 0 {
                    return;
                }
                wait.await;
            }
        };
        if tokio::time::timeout(timeout, all_gone).await.is_ok() {
            log::info!("{what}: every session finished");
            return 0;
        }
        let late = self.sessions.load(Ordering::SeqCst);
        log::warn!("{what}: {late} session(s) still busy after {timeout:?}: closing them");
        self.phase.send_replace(Phase::Stop);
        // Time for their 421 / BYE to be written.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let wait = self.gone.notified();
                if self.sessions.load(Ordering::SeqCst) == 0 {
                    return;
                }
                wait.await;
            }
        })
        .await;
        late
    }
}
