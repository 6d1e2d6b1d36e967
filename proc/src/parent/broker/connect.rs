//! Connecting a unix: milter for smtp. Only a path of the parent's own
//! EMAIL_MILTERS is connected (a compromised smtp cannot reach any other
//! socket through root), and non-blocking: a milter with a full backlog is
//! refused at once, never waited on.

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsRawFd, OwnedFd};

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
