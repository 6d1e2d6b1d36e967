//! Binding every configured listener (the parent keeps them across child
//! restarts): the TCP ports, and the local submission socket.

use crate::config::ServerConfig;
use ipc::messages::Service;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::Path;

pub struct Bound {
    pub service: Service,
    /// `ip:port`, or the socket's path.
    pub addr: String,
    pub listener: OwnedFd,
}

pub fn services(cfg: &ServerConfig) -> [(Service, u16, &'static str); 5] {
    [
        (Service::Smtp, cfg.ports.smtp, "EMAIL_SMTP_PORT"),
        (
            Service::Submission,
            cfg.ports.submission,
            "EMAIL_SUBMISSION_PORT",
        ),
        (
            Service::Submissions,
            cfg.ports.submissions,
            "EMAIL_SUBMISSIONS_PORT",
        ),
        (Service::Imaps, cfg.ports.imaps, "EMAIL_IMAP_PORT"),
        (Service::Imap, cfg.ports.imap, "EMAIL_IMAP_STARTTLS_PORT"),
    ]
}

pub fn bind_all(cfg: &ServerConfig) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for (service, port, key) in services(cfg) {
        if port == 0 {
            continue;
        }
        for ip in &cfg.listen {
            let addr = SocketAddr::new(*ip, port);
            let listener = TcpListener::bind(addr)
                .map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))?;
            out.push(Bound {
                service,
                addr: addr.to_string(),
                listener: listener.into(),
            });
        }
    }
    if let Some(path) = &cfg.submit_socket {
        out.push(Bound {
            service: Service::Local,
            addr: path.display().to_string(),
            listener: bind_local(path)
                .map_err(|e| format!("EMAIL_SUBMIT_SOCKET: {}: {e}", path.display()))?,
        });
    }
    Ok(out)
}

/// The local submission socket: anyone on the host may connect (mode 0666);
/// who did is what SO_PEERCRED says, not what the client claims.
fn bind_local(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    // A stale socket of a crashed run is replaced; one another server
    // answers on is not taken from it; any other kind of file there is left
    // alone and the bind fails.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another server answers on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    l.set_nonblocking(true)?;
    Ok(l.into())
}
