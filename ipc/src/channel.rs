//! Async wrapper: a SEQPACKET fd registered with tokio, typed per direction.

use crate::frame::{self, FrameError};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One frame as received.
pub struct Received<T> {
    pub id: u64,
    pub msg: T,
    pub fds: Vec<OwnedFd>,
}

/// One end of an edge: sends `Out`, receives `In`.
pub struct Channel<Out, In> {
    fd: AsyncFd<OwnedFd>,
    next_id: AtomicU64,
    _p: PhantomData<fn(Out) -> In>,
}

impl<Out: Serialize, In: DeserializeOwned> Channel<Out, In> {
    /// Takes ownership of a SEQPACKET socket; must be called inside a tokio runtime.
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(std::io::Error::from)?;
        Ok(Channel {
            // SAFETY: an OwnedFd stays open and keeps its number while the AsyncFd owns it.
            fd: unsafe {
                AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| e.into_parts().1)?
            },
            next_id: AtomicU64::new(1),
            _p: PhantomData,
        })
    }

    /// A fresh request id for this channel.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub async fn send(&self, id: u64, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), FrameError> {
        let bytes = frame::encode(id, msg)?;
        self.send_raw(&bytes, fds).await
    }

    pub async fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), FrameError> {
        loop {
            let mut guard = self.fd.writable().await.map_err(FrameError::Io)?;
            match frame::send_raw(self.fd.get_ref().as_raw_fd(), bytes, fds) {
                Err(FrameError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Next frame. `Oversize`/`Decode` errors mean that one frame was dropped and
    /// the channel is still good: log and call again.
    pub async fn recv(&self) -> Result<Received<In>, FrameError> {
        loop {
            let mut guard = self.fd.readable().await.map_err(FrameError::Io)?;
            match frame::recv_raw(self.fd.get_ref().as_raw_fd()) {
                Err(FrameError::WouldBlock) => guard.clear_ready(),
                Err(e) => return Err(e),
                Ok((buf, fds)) => {
                    let (id, msg) = frame::decode(&buf)?;
                    return Ok(Received { id, msg, fds });
                }
            }
        }
    }

    /// Next good frame for a serving loop: bad frames are logged (naming `edge`)
    /// and skipped; `None` once the peer is gone.
    pub async fn recv_logged(&self, edge: &str) -> Option<Received<In>> {
        loop {
            match self.recv().await {
                Ok(r) => return Some(r),
                Err(e) if e.is_recoverable() => log::warn!("ipc {edge}: {e}"),
                Err(FrameError::Closed) => return None,
                Err(e) => {
                    log::warn!("ipc {edge}: {e}");
                    return None;
                }
            }
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}
