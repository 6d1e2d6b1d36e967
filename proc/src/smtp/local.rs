//! Local submission: `sendmail` on this host, with no password, TLS or
//! configuration, as OpenSMTPD's enqueuer does.
//! - The submit socket (EMAIL_SUBMIT_SOCKET, bound by the parent, mode 0666):
//!   an SMTP session whose user is the peer's uid (SO_PEERCRED, the kernel's
//!   word), named by the parent (smtp's chroot has no passwd file).
//! - The maildrop (EMAIL_MAILDROP_DIR): files sendmail left while the server
//!   was down, each handed over by the parent with its owner's uid, replayed
//!   here as such a session (so every rule of the socket applies), then
//!   removed, kept as `.bad` when refused for good, or left for later.
//!
//! Bounds: 100 local sessions at once, 20 per user; a maildrop envelope of at
//! most 1 MiB and 1,000 recipients; the session's own limits for the rest.

use super::session::{serve_local, LocalUser};
use super::Shared;
use crate::net::Conn;
use ipc::messages::{DropOutcome, Service};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const MAX_SESSIONS: usize = 100;
const MAX_PER_USER: u32 = 20;
/// How often the maildrop is looked at (and once at start).
const PICKUP_EVERY: Duration = Duration::from_secs(5);
const MAX_ENVELOPE: usize = 1 << 20;
const MAX_DROP_RCPTS: usize = 1000;
/// Names kept of uids seen (a table, not a cache that grows).
const MAX_NAMES: usize = 1024;

type Names = Arc<Mutex<HashMap<u32, String>>>;

/// Accept local submissions on the submit socket.
pub fn serve(fd: OwnedFd, sh: Arc<Shared>) -> Result<(), String> {
    let l = std::os::unix::net::UnixListener::from(fd);
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let l = tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string())?;
    tokio::spawn(accept_loop(l, sh));
    Ok(())
}

async fn accept_loop(l: tokio::net::UnixListener, sh: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    let per_user: Arc<crate::counter::Counter<u32>> = Arc::default();
    let names: Names = Arc::default();
    let drain = crate::drain::global();
    loop {
        let accepted = tokio::select! {
            a = l.accept() => a,
            _ = drain.reached(crate::drain::Phase::Draining) => return,
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                log::warn!("local: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(e) => {
                log::warn!("local: whose connection: {e}");
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            log::warn!("local: connection of uid {uid} refused: too many local sessions");
            let _ = stream.try_write(b"421 4.7.0 Too many local connections, try later\r\n");
            continue;
        };
        let (sh, per_user, names) = (sh.clone(), per_user.clone(), names.clone());
        let counted = crate::stats::connection(Service::Local);
        tokio::spawn(async move {
            let Ok(slot) = per_user.take(uid, MAX_PER_USER) else {
                log::warn!("local: connection of uid {uid} refused: too many of this user's");
                let _ = stream
                    .write_all(b"421 4.7.0 Too many of your connections, try later\r\n")
                    .await;
                return;
            };
            let name = user_name(&sh, &names, uid).await;
            serve_local(sh, Conn::Other(Box::new(stream)), LocalUser { uid, name }).await;
            drop(slot);
            drop(counted);
            drop(permit);
        });
    }
}

/// The login name of `uid`: the parent looks it up (no passwd file in our
/// chroot); in process (tests, no chroot) we do.
async fn user_name(sh: &Shared, names: &Names, uid: u32) -> String {
    if let Some(n) = names.lock().ok().and_then(|m| m.get(&uid).cloned()) {
        return n;
    }
    let name = match &sh.broker {
        Some(b) => b.user_name(uid).await.unwrap_or_else(|e| {
            log::warn!("local: no name for uid {uid}: {e}");
            format!("uid{uid}")
        }),
        None => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name,
            _ => format!("uid{uid}"),
        },
    };
    if let Ok(mut m) = names.lock() {
        if m.len() >= MAX_NAMES {
            m.clear();
        }
        m.insert(uid, name.clone());
    }
    name
}

/// Look at the maildrop now and every few seconds, until the stop.
pub fn pickup(sh: Arc<Shared>) {
    tokio::spawn(async move {
        let drain = crate::drain::global();
        loop {
            pickup_once(&sh).await;
            tokio::select! {
                _ = tokio::time::sleep(PICKUP_EVERY) => {}
                _ = drain.reached(crate::drain::Phase::Draining) => return,
            }
        }
    });
}

async fn pickup_once(sh: &Arc<Shared>) {
    let Some(b) = sh.broker.as_ref() else { return };
    loop {
        let d = match b.next_drop().await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                log::warn!("maildrop: {e}");
                return;
            }
        };
        let user = LocalUser {
            uid: d.uid,
            name: d.user,
        };
        // A panic while replaying one file ends only that file (kept as
        // `.bad`), not the pickup of all later ones.
        let outcome = match crate::contain::contain(replay(sh.clone(), d.fd, user.clone())).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                log::warn!("maildrop: {} of {}: {e}", d.file, user.name);
                DropOutcome::Refused
            }
            Err(()) => DropOutcome::Refused,
        };
        log::info!(
            "maildrop: {} of {} (uid {}): {}",
            d.file,
            user.name,
            user.uid,
            match outcome {
                DropOutcome::Queued => "queued",
                DropOutcome::Refused => "refused",
                DropOutcome::Later => "left for later",
            }
        );
        b.drop_done(&d.file, outcome).await;
        if outcome == DropOutcome::Later {
            return;
        }
    }
}

/// A maildrop file's envelope: `SXDROP1`, `from <addr>`, `rcpt <addr>`...,
/// an empty line; what follows is the message (CRLF lines).
#[derive(Debug, PartialEq, Eq)]
pub struct DropEnvelope {
    pub from: String,
    pub rcpts: Vec<String>,
}

fn address_ok(a: &str) -> bool {
    a.len() <= 512 && !a.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// Read the envelope lines; the reader is left at the message.
pub async fn read_envelope<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Result<(DropEnvelope, usize), String> {
    let mut used = 0usize;
    let mut line = Vec::new();
    let mut from = None;
    let mut rcpts = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = (&mut *r)
            .take((MAX_ENVELOPE - used) as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| e.to_string())?;
        used += n;
        if n == 0 || used > MAX_ENVELOPE || line.last() != Some(&b'\n') {
            return Err("envelope cut short or too long".into());
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| "envelope is not UTF-8".to_string())?
            .trim_end_matches(['\r', '\n']);
        if first {
            if text != "SXDROP1" {
                return Err(format!(
                    "not a maildrop file of this version ({:?})",
                    crate::log::cut(text, 20)
                ));
            }
            first = false;
            continue;
        }
        if text.is_empty() {
            break;
        }
        match text.split_once(' ') {
            Some(("from", a)) if from.is_none() && address_ok(a) => from = Some(a.to_string()),
            Some(("rcpt", a)) if !a.is_empty() && address_ok(a) => {
                if rcpts.len() >= MAX_DROP_RCPTS {
                    return Err("too many recipients".into());
                }
                rcpts.push(a.to_string());
            }
            _ => return Err(format!("bad envelope line {:?}", crate::log::cut(text, 40))),
        }
    }
    if rcpts.is_empty() {
        return Err("no recipient".into());
    }
    Ok((
        DropEnvelope {
            from: from.unwrap_or_default(),
            rcpts,
        },
        used,
    ))
}

/// Submit a maildrop file as its owner would have over the socket: the
/// session's replies say what became of it.
async fn replay(sh: Arc<Shared>, fd: OwnedFd, user: LocalUser) -> Result<DropOutcome, String> {
    let file = std::fs::File::from(fd);
    let total = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::new(tokio::fs::File::from_std(file));
    let (env, used) = read_envelope(&mut r).await?;
    let size = total.saturating_sub(used as u64);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(serve_local(sh, Conn::Other(Box::new(theirs)), user));
    let (mut rd, mut wr) = tokio::io::split(ours);
    let utf8 = env.rcpts.iter().chain([&env.from]).any(|a| !a.is_ascii());
    let mut script = format!(
        "EHLO localhost\r\nMAIL FROM:<{}> SIZE={size} BODY=8BITMIME{}\r\n",
        env.from,
        if utf8 { " SMTPUTF8" } else { "" }
    );
    for a in &env.rcpts {
        script.push_str(&format!("RCPT TO:<{a}>\r\n"));
    }
    script.push_str(&format!("BDAT {size} LAST\r\n"));
    let writer = tokio::spawn(async move {
        // A session that ended early (a refusal, 421) stops reading: the
        // replies below say why; write errors say nothing more.
        if wr.write_all(script.as_bytes()).await.is_ok()
            && tokio::io::copy(&mut (&mut r).take(size), &mut wr)
                .await
                .is_ok()
        {
            let _ = wr.write_all(b"QUIT\r\n").await;
        }
        let _ = wr.shutdown().await;
    });
    let mut replies = Vec::new();
    let mut lines = BufReader::new(&mut rd).take(1 << 20);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // The last line of a reply: code and a space.
                if line.as_bytes().get(3) != Some(&b'-') {
                    replies.push(line.trim_end().to_string());
                }
            }
        }
    }
    let _ = writer.await;
    let _ = session.await;
    // 220, EHLO, MAIL, each RCPT, then BDAT's answer.
    let bdat = replies.get(3 + env.rcpts.len());
    Ok(match bdat.and_then(|r| r.as_bytes().first()) {
        Some(b'2') => DropOutcome::Queued,
        Some(b'5') => {
            log::info!(
                "maildrop: refused: {}",
                crate::log::cut(&replies.join(" | "), 300)
            );
            DropOutcome::Refused
        }
        _ => DropOutcome::Later,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn envelopes() {
        let mut r =
            BufReader::new(&b"SXDROP1\nfrom \nrcpt root\nrcpt a@b.test\n\nSubject: x\r\n"[..]);
        let (e, used) = read_envelope(&mut r).await.unwrap();
        assert_eq!(e.from, "");
        assert_eq!(e.rcpts, ["root", "a@b.test"]);
        assert_eq!(used, 39);
        let mut rest = String::new();
        r.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "Subject: x\r\n");
        for bad in [
            &b"SXDROP2\nrcpt a\n\n"[..],
            b"SXDROP1\n\n",
            b"SXDROP1\nrcpt a\n",
            b"SXDROP1\nrcpt <a>\n\n",
            b"SXDROP1\nhelo x\nrcpt a\n\n",
            b"SXDROP1\nfrom a\nfrom b\nrcpt a\n\n",
        ] {
            assert!(
                read_envelope(&mut BufReader::new(bad)).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
