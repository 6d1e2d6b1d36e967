//! One SMTP session. In this version: greeting, EHLO/HELO, STARTTLS (RFC 3207,
//! pipelined bytes after STARTTLS are discarded), NOOP, RSET, QUIT; mail
//! transactions come with the SMTP issue.

use super::Shared;
use crate::net::{read_line, Conn, Line, Reader};
use ipc::messages::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// RFC 5321 §4.5.3.1.4: 512 octets for a command line; we allow the 1000 of a text line.
const MAX_LINE: usize = 998;
/// RFC 5321 §4.5.3.2.7: at least 5 minutes.
const IDLE: Duration = Duration::from_secs(300);

pub async fn run(sh: Arc<Shared>, service: Service, tcp: TcpStream, peer: SocketAddr) {
    let conn = if service.implicit_tls() {
        match sh.tls.accept(tcp).await {
            Ok(c) => c,
            Err(e) => {
                log::info!("{}: TLS handshake with {peer} failed: {e}", service.name());
                return;
            }
        }
    } else {
        Conn::Plain(tcp)
    };
    match session(&sh, service, conn, peer).await {
        Err(e) if !crate::net::is_disconnect(&e) => {
            log::info!("{}: session with {peer} ended: {e}", service.name())
        }
        _ => {}
    }
}

async fn session(
    sh: &Shared,
    service: Service,
    conn: Conn,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut r: Reader = BufReader::new(conn);
    let host = &sh.hostname;
    send(&mut r, &format!("220 {host} ESMTP scorpiox\r\n")).await?;
    loop {
        let line = match read_line(&mut r, MAX_LINE, IDLE).await {
            Ok(Line::Ok(l)) => l,
            Ok(Line::TooLong) => {
                send(&mut r, "500 5.5.6 Line too long\r\n").await?;
                continue;
            }
            Ok(Line::Eof) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let _ = send(&mut r, "421 4.4.2 Idle timeout, closing connection\r\n").await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&line);
        let verb = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                let tls = r.get_ref().is_tls();
                let mut reply = format!(
                    "250-{host} Hello {}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n",
                    peer.ip(),
                    sh.max_message_size
                );
                if !tls && sh.tls.acceptor().is_some() {
                    reply.push_str("250-STARTTLS\r\n");
                }
                reply.push_str("250 SMTPUTF8\r\n");
                send(&mut r, &reply).await?;
            }
            "HELO" => send(&mut r, &format!("250 {host}\r\n")).await?,
            "STARTTLS" => {
                if r.get_ref().is_tls() {
                    send(&mut r, "503 5.5.1 TLS already active\r\n").await?;
                    continue;
                }
                if sh.tls.acceptor().is_none() {
                    send(&mut r, "454 4.7.0 TLS not available\r\n").await?;
                    continue;
                }
                send(&mut r, "220 2.0.0 Ready to start TLS\r\n").await?;
                // into_inner drops whatever the client pipelined after STARTTLS.
                let Conn::Plain(tcp) = r.into_inner() else {
                    return Ok(());
                };
                let conn = sh.tls.accept(tcp).await?;
                log::info!(
                    "{}: STARTTLS with {peer}: {}",
                    service.name(),
                    conn.tls_info().unwrap_or_default()
                );
                r = BufReader::new(conn);
            }
            "NOOP" => send(&mut r, "250 2.0.0 OK\r\n").await?,
            "RSET" => send(&mut r, "250 2.0.0 OK\r\n").await?,
            "VRFY" | "EXPN" => send(&mut r, "252 2.5.2 Cannot VRFY user\r\n").await?,
            "QUIT" => {
                send(&mut r, &format!("221 2.0.0 {host} closing connection\r\n")).await?;
                return Ok(());
            }
            _ => send(&mut r, "502 5.5.2 Command not implemented\r\n").await?,
        }
    }
}

async fn send(r: &mut Reader, s: &str) -> std::io::Result<()> {
    let w = r.get_mut();
    w.write_all(s.as_bytes()).await?;
    w.flush().await
}
