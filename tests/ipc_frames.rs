//! IPC frame limits against a running server's control socket (same framing as
//! every edge): an oversize or undecodable frame is rejected and logged, and the
//! peer keeps serving on the same connection.

mod common;
use common::*;
use ipc::messages::{ControlReply, ControlRequest};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::AsRawFd;

#[test]
fn bad_frames_are_rejected_and_the_peer_survives() {
    let srv = Server::prepare("").start();
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::connect(
        fd.as_raw_fd(),
        &UnixAddr::new(&srv.path("control.sock")).unwrap(),
    )
    .unwrap();
    let raw = fd.as_raw_fd();

    // 1. Over the 64 KiB limit.
    ipc::frame::send_raw(raw, &vec![0x41; ipc::MAX_FRAME + 100], &[]).unwrap();
    let (_, r, _) = ipc::frame::recv::<ControlReply>(raw).unwrap();
    assert!(
        matches!(&r, ControlReply::Error(e) if e.contains("frame over")),
        "{r:?}"
    );
    // 2. Garbage that is not a ControlRequest.
    ipc::frame::send_raw(raw, &[0xff, 0xff, 0xff, 0x09, 0x42], &[]).unwrap();
    let (_, r, _) = ipc::frame::recv::<ControlReply>(raw).unwrap();
    assert!(
        matches!(&r, ControlReply::Error(e) if e.contains("undecodable")),
        "{r:?}"
    );
    // 3. The same connection still answers a good request.
    ipc::frame::send(raw, 7, &ControlRequest::Status, &[]).unwrap();
    let (id, r, _) = ipc::frame::recv::<ControlReply>(raw).unwrap();
    assert_eq!(id, 7);
    match r {
        ControlReply::Status(s) => assert_eq!(s.children.len(), 5),
        other => panic!("{other:?}"),
    }
    let log = srv.log();
    assert!(
        log.contains("control socket: frame over 65536 bytes rejected"),
        "{log}"
    );
    assert!(
        log.contains("control socket: undecodable frame rejected"),
        "{log}"
    );
}

#[test]
fn status_command_lists_the_children() {
    let srv = Server::prepare("").start();
    let o = srv.sx(&["--status"], "");
    assert_ok(&o, "--status");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("pid {}", srv.pid())), "{out}");
    for name in [
        "sx-keyholder",
        "sx-smtp",
        "sx-queue",
        "sx-delivery",
        "sx-imap",
    ] {
        assert!(out.contains(name), "{out}");
    }
    // Nobody listening: EX_UNAVAILABLE.
    let none = Server::prepare("");
    assert_eq!(none.sx(&["--status"], "").status.code(), Some(69));
}
