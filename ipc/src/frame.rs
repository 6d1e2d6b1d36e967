//! One frame = one SEQPACKET packet: bincode `(id, msg)` plus optional fds.
//! These functions are synchronous; [`crate::Channel`] drives them from tokio.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Largest frame accepted or sent (64 KiB).
pub const MAX_FRAME: usize = 64 * 1024;
/// Most fds carried by one frame.
pub const MAX_FDS: usize = 16;

#[derive(Debug)]
pub enum FrameError {
    /// The peer closed its end.
    Closed,
    /// Nothing to read right now (non-blocking socket).
    WouldBlock,
    /// The packet was larger than [`MAX_FRAME`]; it was discarded.
    Oversize,
    /// The packet did not decode as the edge's message type; it was discarded.
    Decode(String),
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "peer closed the channel"),
            FrameError::WouldBlock => write!(f, "no frame ready"),
            FrameError::Oversize => write!(f, "frame over {MAX_FRAME} bytes rejected"),
            FrameError::Decode(e) => write!(f, "undecodable frame rejected: {e}"),
            FrameError::Io(e) => write!(f, "ipc i/o error: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    /// True when the channel is still usable after this error (bad frame, not a dead peer).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FrameError::Oversize | FrameError::Decode(_))
    }
}

/// Decoding may claim at most this much memory for one frame. bincode counts
/// the in-memory size of what it decodes (a `Vec<T>` of n claims n x
/// size_of::<T>()), which is several times the frame's encoded size: 900
/// recipients fit a 64 KiB frame but claim about 150 KiB. Bounded all the same.
pub const MAX_DECODED: usize = 64 * MAX_FRAME;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED>()
}

/// Bytes `msg` takes in a frame (its part of it, without the request id), to
/// keep a message that grows (an envelope) within [`MAX_FRAME`].
pub fn encoded_len<T: Serialize>(msg: &T) -> usize {
    let mut counter = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(msg, &mut counter, bincode::config::standard()) {
        Ok(()) => counter.bytes_written,
        Err(_) => usize::MAX,
    }
}

pub fn encode<T: Serialize>(id: u64, msg: &T) -> Result<Vec<u8>, FrameError> {
    let buf = bincode::serde::encode_to_vec((id, msg), config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if buf.len() > MAX_FRAME {
        return Err(FrameError::Oversize);
    }
    Ok(buf)
}

pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<(u64, T), FrameError> {
    let ((id, msg), used): ((u64, T), usize) =
        bincode::serde::decode_from_slice(buf, decode_config())
            .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != buf.len() {
        return Err(FrameError::Decode(format!(
            "{} trailing bytes",
            buf.len() - used
        )));
    }
    Ok((id, msg))
}

/// Send raw bytes as one packet (also used by tests to inject bad frames).
pub fn send_raw(fd: RawFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), FrameError> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Err(FrameError::WouldBlock),
            Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => {
                return Err(FrameError::Closed)
            }
            Err(e) => return Err(FrameError::Io(e.into())),
        }
    }
}

pub fn send<T: Serialize>(
    fd: RawFd,
    id: u64,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), FrameError> {
    if fds.len() > MAX_FDS {
        return Err(FrameError::Oversize);
    }
    send_raw(fd, &encode(id, msg)?, fds)
}

thread_local! {
    /// One receive buffer per thread: a frame may be 64 KiB, most are tiny, and
    /// zeroing 64 KiB for every frame would cost more than the frame.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_FRAME + 1]);
}

/// Receive one packet. Fds that arrive with a bad frame are closed, not leaked.
pub fn recv_raw(fd: RawFd) -> Result<(Vec<u8>, Vec<OwnedFd>), FrameError> {
    RECV_BUF.with(|b| recv_into(fd, &mut b.borrow_mut()))
}

fn recv_into(fd: RawFd, buf: &mut [u8]) -> Result<(Vec<u8>, Vec<OwnedFd>), FrameError> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let res = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC);
        let msg = match res {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Err(FrameError::WouldBlock),
            Err(nix::errno::Errno::ECONNRESET) => return Err(FrameError::Closed),
            Err(e) => return Err(FrameError::Io(e.into())),
        };
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(list) = c {
                    // SAFETY: the kernel just installed these fds for us; we own them.
                    fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
        }
        let len = msg.bytes;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        if len == 0 && fds.is_empty() && !truncated {
            return Err(FrameError::Closed);
        }
        if truncated || len > MAX_FRAME {
            return Err(FrameError::Oversize);
        }
        return Ok((buf[..len].to_vec(), fds));
    }
}

pub fn recv<T: DeserializeOwned>(fd: RawFd) -> Result<(u64, T, Vec<OwnedFd>), FrameError> {
    let (buf, fds) = recv_raw(fd)?;
    let (id, msg) = decode(&buf)?;
    Ok((id, msg, fds))
}
