//! One IMAP session. In this version: greeting, CAPABILITY, NOOP, LOGOUT, STARTTLS
//! (143), LOGIN checked by keyholder (TLS only); mailbox commands come with the
//! IMAP issue.

use super::Shared;
use crate::net::{read_line, Conn, Line, Reader};
use ipc::messages::{KeyReply, KeyRequest, Service};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MAX_LINE: usize = 8192;
/// RFC 3501 §5.4: the autologout timer is at least 30 minutes.
const IDLE: Duration = Duration::from_secs(30 * 60);

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

fn capability(tls: bool, tls_available: bool) -> String {
    let mut c = String::from("IMAP4rev1");
    if !tls {
        if tls_available {
            c.push_str(" STARTTLS");
        }
        c.push_str(" LOGINDISABLED");
    } else {
        c.push_str(" AUTH=PLAIN");
    }
    c
}

/// Split IMAP arguments: atoms and quoted strings (with \" and \\ escapes).
fn args(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek() == Some(&' ') {
            it.next();
        }
        let Some(&c) = it.peek() else {
            return Some(out);
        };
        let mut a = String::new();
        if c == '"' {
            it.next();
            loop {
                match it.next()? {
                    '"' => break,
                    '\\' => a.push(it.next()?),
                    ch => a.push(ch),
                }
            }
        } else {
            while let Some(&ch) = it.peek() {
                if ch == ' ' {
                    break;
                }
                a.push(ch);
                it.next();
            }
        }
        out.push(a);
    }
}

async fn session(
    sh: &Shared,
    service: Service,
    conn: Conn,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut r: Reader = BufReader::new(conn);
    let mut user: Option<String> = None;
    let tls_ok = sh.tls.acceptor().is_some();
    let cap = capability(r.get_ref().is_tls(), tls_ok);
    send(
        &mut r,
        &format!(
            "* OK [CAPABILITY {cap}] {} IMAP4rev1 ready\r\n",
            sh.hostname
        ),
    )
    .await?;
    loop {
        let line = match read_line(&mut r, MAX_LINE, IDLE).await {
            Ok(Line::Ok(l)) => l,
            Ok(Line::TooLong) => {
                send(&mut r, "* BAD Command line too long\r\n").await?;
                continue;
            }
            Ok(Line::Eof) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let _ = send(&mut r, "* BYE Autologout; idle for too long\r\n").await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&line).to_string();
        let mut parts = text.splitn(3, ' ');
        let tag = parts.next().unwrap_or("*").to_string();
        let cmd = parts.next().unwrap_or("").to_ascii_uppercase();
        let rest = parts.next().unwrap_or("");
        if tag.is_empty() || tag == "*" || cmd.is_empty() {
            send(&mut r, "* BAD Missing tag or command\r\n").await?;
            continue;
        }
        let tls = r.get_ref().is_tls();
        match cmd.as_str() {
            "CAPABILITY" => {
                let cap = capability(tls, tls_ok);
                send(
                    &mut r,
                    &format!("* CAPABILITY {cap}\r\n{tag} OK CAPABILITY completed\r\n"),
                )
                .await?
            }
            "NOOP" => send(&mut r, &format!("{tag} OK NOOP completed\r\n")).await?,
            "LOGOUT" => {
                send(
                    &mut r,
                    &format!("* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n"),
                )
                .await?;
                if let Some(u) = &user {
                    log::info!("{}: logout user={u} rip={}", service.name(), peer.ip());
                }
                return Ok(());
            }
            "STARTTLS" if !tls && tls_ok => {
                send(&mut r, &format!("{tag} OK Begin TLS negotiation now\r\n")).await?;
                // Anything pipelined after STARTTLS is dropped with the buffer.
                let Conn::Plain(tcp) = r.into_inner() else {
                    return Ok(());
                };
                r = BufReader::new(sh.tls.accept(tcp).await?);
            }
            "LOGIN" if user.is_some() => {
                send(&mut r, &format!("{tag} BAD Already authenticated\r\n")).await?
            }
            "LOGIN" if !tls => {
                send(
                    &mut r,
                    &format!("{tag} NO [PRIVACYREQUIRED] LOGIN only after TLS\r\n"),
                )
                .await?
            }
            "LOGIN" => {
                let Some(a) = args(rest).filter(|a| a.len() == 2) else {
                    send(
                        &mut r,
                        &format!("{tag} BAD LOGIN needs user and password\r\n"),
                    )
                    .await?;
                    continue;
                };
                let req = KeyRequest::CheckPassword {
                    user: a[0].clone(),
                    password: a[1].clone(),
                };
                match sh.keyholder.call(&req, &[]).await {
                    Ok((KeyReply::Password(Some(u)), _)) => {
                        log::info!("{}: login user={u} rip={}", service.name(), peer.ip());
                        user = Some(u);
                        send(&mut r, &format!("{tag} OK LOGIN completed\r\n")).await?
                    }
                    Ok(_) => {
                        log::info!(
                            "{}: login failed user={} rip={}",
                            service.name(),
                            a[0],
                            peer.ip()
                        );
                        send(
                            &mut r,
                            &format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
                        )
                        .await?
                    }
                    Err(e) => {
                        log::warn!("{}: keyholder unavailable: {e}", service.name());
                        send(
                            &mut r,
                            &format!("{tag} NO [UNAVAILABLE] Try again later\r\n"),
                        )
                        .await?
                    }
                }
            }
            _ => {
                send(
                    &mut r,
                    &format!("{tag} BAD Unknown or unsupported command\r\n"),
                )
                .await?
            }
        }
    }
}

async fn send(r: &mut Reader, s: &str) -> std::io::Result<()> {
    let w = r.get_mut();
    w.write_all(s.as_bytes()).await?;
    w.flush().await
}
