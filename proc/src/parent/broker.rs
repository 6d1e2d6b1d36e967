//! The broker edge, parent side: smtp runs in an empty chroot, so the unix
//! sockets of EMAIL_MILTERS (`unix:/run/opendkim/opendkim.sock`) are out of
//! its reach; it asks here and gets the connected socket back as an fd, as
//! OpenSMTPD's parent opens what its unprivileged processes may not.
//!
//! Only a path in the parent's current configuration is connected (a
//! compromised smtp cannot reach any other socket through root), each connect
//! is non-blocking (a milter with a full backlog is refused at once, never
//! waited on) and requests are served one at a time per smtp process.

use ipc::messages::{BrokerReply, BrokerRequest, MilterAddress};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, RwLock};

/// The unix socket paths smtp may ask for, replaced on reload.
pub type Allowed = Arc<RwLock<Vec<String>>>;

/// The unix: milter paths of a configuration.
pub fn allowed_paths(a: &ipc::messages::AbuseSettings) -> Vec<String> {
    a.milters
        .iter()
        .filter_map(|m| match &m.address {
            MilterAddress::Unix(p) => Some(p.clone()),
            MilterAddress::Inet(_) => None,
        })
        .collect()
}

/// Serve one smtp process's broker edge until it closes (smtp exited).
pub fn serve(fd: OwnedFd, allowed: Allowed) {
    let chan = match ipc::Channel::<BrokerReply, BrokerRequest>::new(fd) {
        Ok(c) => c,
        Err(e) => {
            log::error!("broker edge: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        while let Some(r) = chan.recv_logged("broker").await {
            let BrokerRequest::ConnectUnix { path } = r.msg;
            let list = match allowed.read() {
                Ok(l) => l.clone(),
                Err(p) => p.into_inner().clone(),
            };
            let sent = match connect_unix(&path, &list) {
                Ok(s) => chan.send(r.id, &BrokerReply::Connected, &[s.as_fd()]).await,
                Err(e) => {
                    log::warn!("broker: unix:{}: {e}", crate::log::cut(&path, 120));
                    chan.send(r.id, &BrokerReply::Refused(e), &[]).await
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
}

/// A connected, non-blocking stream socket to `path`, if `path` is allowed.
pub fn connect_unix(path: &str, allowed: &[String]) -> Result<OwnedFd, String> {
    if !allowed.iter().any(|a| a == path) {
        return Err("not a milter of EMAIL_MILTERS".into());
    }
    let addr = UnixAddr::new(path).map_err(|e| e.to_string())?;
    let s = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    match connect(s.as_raw_fd(), &addr) {
        Ok(()) => Ok(s),
        // A unix stream connect does not go on in the background: EAGAIN
        // means the listener's backlog is full.
        Err(nix::errno::Errno::EAGAIN) => Err("busy (listen backlog full)".into()),
        Err(e) => Err(e.desc().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn only_configured_paths_are_connected() {
        let dir = std::env::temp_dir().join(format!("sx-broker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.sock").to_string_lossy().into_owned();
        let other = dir.join("other.sock").to_string_lossy().into_owned();
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let _o = std::os::unix::net::UnixListener::bind(&other).unwrap();
        let allowed = vec![path.clone()];

        let s = connect_unix(&path, &allowed).unwrap();
        let (mut a, _) = l.accept().unwrap();
        let mut s = std::os::unix::net::UnixStream::from(s);
        s.set_nonblocking(false).unwrap();
        s.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");

        let e = connect_unix(&other, &allowed).unwrap_err();
        assert!(e.contains("not a milter"), "{e}");
        let gone = dir.join("gone.sock").to_string_lossy().into_owned();
        let e = connect_unix(&gone, std::slice::from_ref(&gone)).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
