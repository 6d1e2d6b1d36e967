//! IPC between the processes of `sx server-email`.
//!
//! Every edge is one `socketpair(AF_UNIX, SOCK_SEQPACKET)`. A frame is one packet:
//! a bincode-encoded `(request id, message)` of the edge's typed enum, at most
//! [`MAX_FRAME`] bytes. File descriptors ride along as SCM_RIGHTS; bulk data
//! (message bodies, secrets) always travels as an fd, never inside a frame.

pub mod channel;
pub mod frame;
pub mod messages;
pub mod rpc;

pub use channel::{Channel, Received};
pub use frame::{FrameError, MAX_FDS, MAX_FRAME};
pub use rpc::{PeerRpc, Rpc, RpcError};

use std::os::fd::OwnedFd;

/// A connected SOCK_SEQPACKET pair, both ends close-on-exec.
pub fn seqpacket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}
