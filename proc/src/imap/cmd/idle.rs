//! IDLE (RFC 2177): the selected mailbox's changes as they happen. Sessions
//! hear of changes made here (delivery, other sessions) at once; changes made
//! by other programs are noticed by a poll every few seconds, which keeps its
//! own beat however often other folders' news wakes the session.

use crate::imap::io::{Io, AUTOLOGOUT};
use crate::imap::state::Login;
use crate::imap::view::Selected;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// How often IDLE looks for changes nobody announced.
const POLL: Duration = Duration::from_secs(5);

pub async fn idle(
    io: &mut Io,
    login: Option<&Login>,
    sel: Option<&mut Selected>,
    tag: &str,
) -> std::io::Result<()> {
    // With NOTIFY on, IDLE tells what NOTIFY asked for (RFC 5465 4), from
    // the same receiver, which is handed back after.
    let notifying = io.notify.is_some();
    let fresh = io.sh.changes.subscribe();
    let mut changes = match io.notify.as_mut() {
        Some(w) => std::mem::replace(&mut w.rx, fresh),
        None => fresh,
    };
    let r = idle_on(io, login, sel, tag, &mut changes, notifying).await;
    if let Some(w) = io.notify.as_mut() {
        w.rx = changes;
    }
    r
}

async fn idle_on(
    io: &mut Io,
    login: Option<&Login>,
    mut sel: Option<&mut Selected>,
    tag: &str,
    changes: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<std::path::PathBuf>>,
    notifying: bool,
) -> std::io::Result<()> {
    io.push("+ idling\r\n");
    if let Some(s) = sel.as_deref_mut() {
        let updates = s.sync(io.enabled, true);
        io.push(&updates);
    }
    io.flush().await?;
    let deadline = tokio::time::Instant::now() + AUTOLOGOUT;
    let watching = sel.as_ref().map(|s| s.folder.path.clone());
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + POLL, POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let look = tokio::select! {
            r = io.r.fill_buf() => {
                if r?.is_empty() {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let line = io.line(1024, AUTOLOGOUT).await?;
                if String::from_utf8_lossy(&line).trim().eq_ignore_ascii_case("DONE") {
                    io.tagged(tag, "OK", "IDLE terminated");
                } else {
                    io.tagged(tag, "BAD", "Expected DONE");
                }
                return Ok(());
            }
            c = changes.recv() => match c {
                Ok(p) if notifying => {
                    if let Some(login) = login {
                        Box::pin(super::notify::deliver(io, login, sel.as_deref_mut(), &[p], false)).await?;
                        io.flush().await?;
                    }
                    false
                }
                Ok(p) => Some(p.as_path()) == watching.as_deref(),
                // Missed some: any of them may have been ours.
                Err(_) => true,
            },
            _ = poll.tick() => true,
            _ = crate::drain::global().reached(crate::drain::Phase::Draining) => {
                io.push("* BYE Server shutting down\r\n");
                io.flush().await?;
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
            _ = tokio::time::sleep_until(deadline) => {
                io.push("* BYE Autologout; idle for too long\r\n");
                io.flush().await?;
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        };
        if look && notifying {
            if let Some(login) = login {
                Box::pin(super::notify::deliver(
                    io,
                    login,
                    sel.as_deref_mut(),
                    &[],
                    true,
                ))
                .await?;
                io.flush().await?;
            }
        } else if let (true, Some(s)) = (look, sel.as_deref_mut()) {
            let en = io.enabled;
            let updates = tokio::task::block_in_place(|| s.sync(en, true));
            io.push(&updates);
            tokio::task::block_in_place(|| super::context::updates(io, s));
            io.flush().await?;
        }
    }
}
