//! Client side of the control socket: --status, --reload, --dkim-sign.

use crate::exit;
use ipc::messages::{ControlReply, ControlRequest};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use sxproc::config::ServerConfig;

pub fn call(
    cfg: &ServerConfig,
    req: &ControlRequest,
    fds: &[BorrowedFd<'_>],
) -> Result<ControlReply, i32> {
    let path = &cfg.control_socket;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| {
        eprintln!("sx server-email: socket: {e}");
        exit::SOFTWARE
    })?;
    let addr = UnixAddr::new(path.as_path()).map_err(|_| exit::CONFIG)?;
    if let Err(e) = socket::connect(fd.as_raw_fd(), &addr) {
        eprintln!(
            "sx server-email: server not reachable at {}: {e}",
            path.display()
        );
        return Err(match e {
            nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => exit::NOPERM,
            _ => exit::UNAVAILABLE,
        });
    }
    let tv = nix::sys::time::TimeVal::new(60, 0);
    let _ = socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv);
    ipc::frame::send(fd.as_raw_fd(), 1, req, fds).map_err(|e| {
        eprintln!("sx server-email: control socket: {e}");
        exit::UNAVAILABLE
    })?;
    match ipc::frame::recv::<ControlReply>(fd.as_raw_fd()) {
        Ok((_, r, _)) => Ok(r),
        Err(ipc::FrameError::Closed) => {
            eprintln!("sx server-email: the server closed the control connection (not allowed?)");
            Err(exit::NOPERM)
        }
        Err(e) => {
            eprintln!("sx server-email: control socket: {e}");
            Err(exit::UNAVAILABLE)
        }
    }
}

pub fn status(cfg: &ServerConfig) -> i32 {
    match call(cfg, &ControlRequest::Status, &[]) {
        Ok(ControlReply::Status(s)) => {
            println!(
                "sx server-email running: pid {} up {} s, {} restart(s)",
                s.pid, s.uptime_secs, s.restarts
            );
            for (role, pid) in s.children {
                println!("  {:<14} pid {pid}", role.title());
            }
            exit::OK
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn reload(cfg: &ServerConfig) -> i32 {
    match call(cfg, &ControlRequest::Reload, &[]) {
        Ok(ControlReply::Ok) => {
            println!("reloaded");
            exit::OK
        }
        Ok(ControlReply::Error(e)) => {
            eprintln!("sx server-email: reload failed: {e}");
            exit::CONFIG
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn queue(cfg: &ServerConfig, cmd: ipc::messages::QueueCmd) -> i32 {
    use ipc::messages::QueueReply;
    match call(cfg, &ControlRequest::Queue(cmd), &[]) {
        Ok(ControlReply::Queue(QueueReply::List(list))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if list.is_empty() {
                println!("queue is empty");
            }
            for e in &list {
                let age = now.saturating_sub(e.arrived);
                println!(
                    "{}  {:>6}  {:>8}  <{}>{}",
                    e.id,
                    format!("{}m", age / 60),
                    e.size,
                    e.from,
                    if e.held { "  HELD" } else { "" }
                );
                for (r, state) in &e.recipients {
                    println!("    {r}  {state}");
                }
                if let Some(err) = &e.last_error {
                    println!("    ({err})");
                }
            }
            if !list.is_empty() {
                println!("-- {} message(s)", list.len());
            }
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Show(text))) => {
            print!("{text}");
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Done(text))) => {
            println!("{text}");
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Error(e))) => {
            eprintln!("sx server-email: {e}");
            exit::NOINPUT
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn unexpected(r: ControlReply) -> i32 {
    match r {
        ControlReply::Error(e) => {
            eprintln!("sx server-email: {e}");
            exit::SOFTWARE
        }
        other => {
            eprintln!("sx server-email: unexpected answer {other:?}");
            exit::SOFTWARE
        }
    }
}
