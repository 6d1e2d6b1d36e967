//! The not-authenticated state (RFC 3501 6.2): STARTTLS, LOGIN, and
//! AUTHENTICATE PLAIN (RFC 4616) or LOGIN (for old clients). Passwords are
//! checked by keyholder, which counts failures for SMTP and IMAP alike and
//! answers a failure only after the guard's delay. Each returns false when the
//! session must end.

use crate::imap::io::{Io, PREAUTH_TIMEOUT};
use crate::imap::state::{Login, State};
use crate::net::Conn;
use ipc::messages::{KeyReply, KeyRequest};
use tokio::io::BufReader;

pub async fn starttls(io: &mut Io, tag: &str) -> std::io::Result<bool> {
    if io.tls() || io.sh.tls.acceptor().is_none() {
        io.tagged(tag, "BAD", "TLS already active or not available");
        return Ok(true);
    }
    io.tagged(tag, "OK", "Begin TLS negotiation now");
    io.flush().await?;
    let r = std::mem::replace(&mut io.r, BufReader::new(Conn::Closed));
    // Anything pipelined after STARTTLS is dropped with the buffer.
    let Conn::Plain(tcp) = r.into_inner() else {
        return Ok(false);
    };
    let conn = io.sh.tls.accept(tcp, PREAUTH_TIMEOUT).await?;
    io.r = BufReader::with_capacity(2048, conn);
    Ok(true)
}

pub async fn login(
    io: &mut Io,
    state: &mut State,
    tag: &str,
    user: String,
    pass: String,
) -> std::io::Result<bool> {
    if state.login().is_some() {
        io.tagged(tag, "BAD", "Already authenticated");
        return Ok(true);
    }
    if !io.tls() {
        io.tagged(tag, "NO", "[PRIVACYREQUIRED] Log in only after STARTTLS");
        return Ok(true);
    }
    let ip = io.peer.ip();
    let name = io.service.name();
    let req = KeyRequest::CheckPassword {
        user: user.clone(),
        password: pass,
        client: ip,
    };
    match io.sh.keyholder.call(&req, &[]).await {
        Ok((KeyReply::Password(Some(u)), _)) => {
            let slot = match io.sh.per_user.take(u.clone(), io.sh.max_per_user) {
                Ok(s) => s,
                Err(n) => {
                    log::warn!("{name}: login refused user={u} rip={ip}: {n} sessions already");
                    io.tagged(tag, "NO", "[LIMIT] Too many sessions for this user");
                    return Ok(true);
                }
            };
            let Some(dir) = crate::maildir::account_dir(std::path::Path::new(""), &u) else {
                io.tagged(tag, "NO", "[SERVERBUG] Account has no mailbox");
                return Ok(true);
            };
            let made = tokio::task::block_in_place(|| {
                if dir.join("cur").is_dir() {
                    Ok(())
                } else {
                    // Account added while nothing was delivered yet.
                    crate::maildir::create_account(std::path::Path::new("."), &u, None).map(|_| ())
                }
            });
            if let Err(e) = made {
                log::warn!("{name}: cannot create Maildir of {u}: {e}");
                io.tagged(tag, "NO", "[UNAVAILABLE] Mailbox not available");
                return Ok(true);
            }
            log::info!(
                "{name}: login user={u} rip={ip} method=LOGIN tls={}",
                io.r.get_ref().tls_info().unwrap_or_default()
            );
            *state = State::Authenticated(Login {
                user: u,
                account: dir,
                _slot: Some(slot),
            });
            let c = io.capability(true);
            io.tagged(tag, "OK", &format!("[CAPABILITY {c}] Logged in"));
        }
        Ok((KeyReply::Password(None), _)) => {
            log::info!(
                "{name}: login failed user={} rip={ip}",
                crate::log::cut(&user, 64)
            );
            io.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
        }
        Ok((KeyReply::LoginLocked, _)) => {
            log::info!(
                "{name}: login refused user={} rip={ip}: too many failures",
                crate::log::cut(&user, 64)
            );
            io.tagged(
                tag,
                "NO",
                "[UNAVAILABLE] Too many login failures, try later",
            );
            io.push("* BYE Too many login failures\r\n");
            return Ok(false);
        }
        Ok((other, _)) => {
            log::warn!("{name}: keyholder: {other:?}");
            io.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
        }
        Err(e) => {
            log::warn!("{name}: keyholder unavailable: {e}");
            io.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
        }
    }
    Ok(true)
}

/// One SASL challenge (`+ <base64 prompt>`) and the client's base64
/// answer. None when the exchange is over: the client cancelled (`*`) or
/// sent bad base64 (a tagged BAD is queued), or it hung up (nothing queued).
async fn sasl_step(io: &mut Io, tag: &str, prompt: &str) -> std::io::Result<Option<Vec<u8>>> {
    io.push(&format!("+ {prompt}\r\n"));
    io.flush().await?;
    let line = io.line(4096, PREAUTH_TIMEOUT).await?;
    if line.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&line).trim().to_string();
    if text == "*" {
        io.tagged(tag, "BAD", "Authentication cancelled");
        return Ok(None);
    }
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(d) => Ok(Some(d)),
        Err(_) => {
            io.tagged(tag, "BAD", "Invalid base64");
            Ok(None)
        }
    }
}

pub async fn authenticate(
    io: &mut Io,
    state: &mut State,
    tag: &str,
    mechanism: &str,
    initial: Option<Vec<u8>>,
) -> std::io::Result<bool> {
    if state.login().is_some() {
        io.tagged(tag, "BAD", "Already authenticated");
        return Ok(true);
    }
    if !io.tls() {
        io.tagged(
            tag,
            "NO",
            "[PRIVACYREQUIRED] Authenticate only after STARTTLS",
        );
        return Ok(true);
    }
    let plain = mechanism.eq_ignore_ascii_case("PLAIN");
    if !plain && !mechanism.eq_ignore_ascii_case("LOGIN") {
        io.tagged(tag, "NO", "[CANNOT] AUTHENTICATE PLAIN or LOGIN");
        return Ok(true);
    }
    // LOGIN: "Username:" then "Password:", each base64.
    if !plain {
        let user = match initial {
            Some(u) => u,
            None => match sasl_step(io, tag, "VXNlcm5hbWU6").await? {
                Some(u) => u,
                None => return Ok(!io.out.is_empty()),
            },
        };
        let Some(pass) = sasl_step(io, tag, "UGFzc3dvcmQ6").await? else {
            return Ok(!io.out.is_empty());
        };
        let user = String::from_utf8_lossy(&user).into_owned();
        let pass = String::from_utf8_lossy(&pass).into_owned();
        return login(io, state, tag, user, pass).await;
    }
    let data = match initial {
        Some(d) => d,
        None => match sasl_step(io, tag, "").await? {
            Some(d) => d,
            None => return Ok(!io.out.is_empty()),
        },
    };
    // authzid \0 authcid \0 password; authzid must be empty or the same user.
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let [authz, authc, pass] = parts.as_slice() else {
        io.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
        return Ok(true);
    };
    if !authz.is_empty() && authz != authc {
        io.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
        return Ok(true);
    }
    let user = String::from_utf8_lossy(authc).into_owned();
    let pass = String::from_utf8_lossy(pass).into_owned();
    login(io, state, tag, user, pass).await
}
