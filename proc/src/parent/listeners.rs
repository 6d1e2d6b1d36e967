//! Binding every configured listener (the parent keeps them across child restarts).

use crate::config::ServerConfig;
use ipc::messages::Service;
use std::net::{SocketAddr, TcpListener};

pub struct Bound {
    pub service: Service,
    pub addr: SocketAddr,
    pub listener: TcpListener,
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
                addr,
                listener,
            });
        }
    }
    Ok(out)
}
