//! Request/reply on top of a [`Channel`]: many tasks may call at once; replies are
//! matched by request id. Frames nobody waits for go to the `unsolicited` stream.

use crate::channel::{Channel, Received};
use crate::frame::FrameError;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Pending<In> = Arc<Mutex<HashMap<u64, oneshot::Sender<Received<In>>>>>;

pub struct Rpc<Out, In> {
    chan: Arc<Channel<Out, In>>,
    pending: Pending<In>,
    /// How long `call` waits for a reply: a stuck peer must not hold a caller
    /// (and what the caller holds: a client connection, a spool file) for ever.
    timeout: Duration,
}

impl<Out, In> Clone for Rpc<Out, In> {
    fn clone(&self) -> Self {
        Rpc {
            chan: self.chan.clone(),
            pending: self.pending.clone(),
            timeout: self.timeout,
        }
    }
}

/// The reply wait of a new [`Rpc`]; [`Rpc::with_timeout`] sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum RpcError {
    Closed,
    /// No reply within the edge's timeout; a late reply is dropped.
    Timeout(Duration),
    Frame(FrameError),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Closed => write!(f, "peer process went away"),
            RpcError::Timeout(d) => write!(f, "peer process did not answer within {d:?}"),
            RpcError::Frame(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RpcError {}

impl<Out, In> Rpc<Out, In>
where
    Out: Serialize + Send + Sync + 'static,
    In: DeserializeOwned + Send + 'static,
{
    /// Start the reader task. `label` names the edge in log lines about bad frames.
    /// The returned receiver yields frames that are not replies, then `None` at EOF.
    pub fn start(
        chan: Channel<Out, In>,
        label: &'static str,
    ) -> (Self, mpsc::Receiver<Received<In>>) {
        let chan = Arc::new(chan);
        let pending: Pending<In> = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::channel(64);
        let (c, p) = (chan.clone(), pending.clone());
        tokio::spawn(async move {
            loop {
                match c.recv().await {
                    Ok(r) => {
                        let waiter = p.lock().ok().and_then(|mut m| m.remove(&r.id));
                        match waiter {
                            Some(w) => {
                                let _ = w.send(r);
                            }
                            None => {
                                if tx.send(r).await.is_err() {
                                    // Nobody reads unsolicited frames; keep serving replies.
                                }
                            }
                        }
                    }
                    Err(e) if e.is_recoverable() => {
                        log::warn!("ipc {label}: {e}");
                    }
                    Err(FrameError::Closed) => break,
                    Err(e) => {
                        log::warn!("ipc {label}: {e}");
                        break;
                    }
                }
            }
            // Wake every waiter with an error by dropping their senders.
            if let Ok(mut m) = p.lock() {
                m.clear();
            }
        });
        (
            Rpc {
                chan,
                pending,
                timeout: DEFAULT_TIMEOUT,
            },
            rx,
        )
    }

    /// The same edge with another reply wait (long jobs such as a remote
    /// delivery get more; a password check less).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub async fn call(
        &self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(In, Vec<OwnedFd>), RpcError> {
        let id = self.chan.next_id();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.pending.lock() {
            m.insert(id, tx);
        }
        if let Err(e) = self.chan.send(id, msg, fds).await {
            if let Ok(mut m) = self.pending.lock() {
                m.remove(&id);
            }
            return Err(match e {
                FrameError::Closed => RpcError::Closed,
                e => RpcError::Frame(e),
            });
        }
        let r = match tokio::time::timeout(self.timeout, rx).await {
            Ok(r) => r.map_err(|_| RpcError::Closed)?,
            Err(_) => {
                if let Ok(mut m) = self.pending.lock() {
                    m.remove(&id);
                }
                return Err(RpcError::Timeout(self.timeout));
            }
        };
        Ok((r.msg, r.fds))
    }

    /// Send without waiting for a reply.
    pub async fn notify(&self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), FrameError> {
        let id = self.chan.next_id();
        self.chan.send(id, msg, fds).await
    }

    /// Reply to a request received on the unsolicited stream.
    pub async fn reply(
        &self,
        id: u64,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), FrameError> {
        self.chan.send(id, msg, fds).await
    }
}

/// The client end of an edge to a peer the parent may restart: `replace` puts
/// the fresh edge in, and callers never hold on to a dead one. Between the
/// death and the replacement, calls fail at once with `Closed`.
pub struct PeerRpc<Out, In> {
    cur: std::sync::RwLock<Rpc<Out, In>>,
    label: &'static str,
    timeout: Duration,
}

impl<Out, In> PeerRpc<Out, In>
where
    Out: Serialize + Send + Sync + 'static,
    In: DeserializeOwned + Send + 'static,
{
    /// Start on `chan`; replies are awaited at most `timeout`.
    pub fn new(chan: Channel<Out, In>, label: &'static str, timeout: Duration) -> Self {
        PeerRpc {
            cur: std::sync::RwLock::new(Rpc::start(chan, label).0.with_timeout(timeout)),
            label,
            timeout,
        }
    }

    /// The peer was restarted: use its fresh edge from now on.
    pub fn replace(&self, chan: Channel<Out, In>) {
        let rpc = Rpc::start(chan, self.label).0.with_timeout(self.timeout);
        match self.cur.write() {
            Ok(mut c) => *c = rpc,
            Err(p) => *p.into_inner() = rpc,
        }
    }

    fn current(&self) -> Rpc<Out, In> {
        match self.cur.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub async fn call(
        &self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(In, Vec<OwnedFd>), RpcError> {
        self.current().call(msg, fds).await
    }

    pub async fn notify(&self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), FrameError> {
        self.current().notify(msg, fds).await
    }
}
