//! The broker edge, parent side: what smtp's empty chroot keeps from it, done
//! by the parent (root, no chroot) as OpenSMTPD's parent opens what its
//! unprivileged processes may not:
//! - the socket of a unix: milter (`connect.rs`);
//! - the login name of a local submission's peer uid (getpwuid);
//! - the files sendmail left in the maildrop while the server was down
//!   (`maildrop.rs`), opened and handed over one at a time, removed once
//!   smtp has them in the queue.
//!
//! Requests are served one at a time per smtp process, each quickly (no
//! blocking connect, bounded directory reads).

mod connect;
mod maildrop;

use ipc::messages::{BrokerReply, BrokerRequest, DropOutcome, MilterAddress};
use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// What the broker may do, from the configuration in force (replaced on reload).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The unix: milter paths smtp may ask for.
    pub milters: Vec<String>,
    pub maildrop: Option<PathBuf>,
    /// Largest maildrop file handed over (the message size limit plus room
    /// for the envelope).
    pub max_drop: u64,
}

pub type Shared = Arc<RwLock<Settings>>;

impl Settings {
    pub fn of(cfg: &crate::config::ServerConfig) -> Settings {
        Settings {
            milters: cfg
                .abuse
                .milters
                .iter()
                .filter_map(|m| match &m.address {
                    MilterAddress::Unix(p) => Some(p.clone()),
                    MilterAddress::Inet(_) => None,
                })
                .collect(),
            maildrop: cfg.maildrop_dir.clone(),
            max_drop: cfg.max_message_size.saturating_add(maildrop::MAX_ENVELOPE),
        }
    }
}

/// Serve one smtp process's broker edge until it closes (smtp exited).
pub fn serve(fd: OwnedFd, settings: Shared) {
    let chan = match ipc::Channel::<BrokerReply, BrokerRequest>::new(fd) {
        Ok(c) => c,
        Err(e) => {
            log::error!("broker edge: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        // Maildrop files handed to this smtp and not yet done with.
        let mut out: HashSet<String> = HashSet::new();
        while let Some(r) = chan.recv_logged("broker").await {
            let now = match settings.read() {
                Ok(s) => s.clone(),
                Err(p) => p.into_inner().clone(),
            };
            let (reply, fd) = answer(r.msg, &now, &mut out);
            let fds: Vec<_> = fd.iter().map(|f| f.as_fd()).collect();
            if chan.send(r.id, &reply, &fds).await.is_err() {
                break;
            }
        }
    });
}

fn answer(
    req: BrokerRequest,
    s: &Settings,
    out: &mut HashSet<String>,
) -> (BrokerReply, Option<OwnedFd>) {
    match req {
        BrokerRequest::ConnectUnix { path } => match connect::connect_unix(&path, &s.milters) {
            Ok(fd) => (BrokerReply::Connected, Some(fd)),
            Err(e) => {
                log::warn!("broker: unix:{}: {e}", crate::log::cut(&path, 120));
                (BrokerReply::Refused(e), None)
            }
        },
        BrokerRequest::UserName { uid } => (BrokerReply::User(user_name(uid)), None),
        BrokerRequest::NextDrop => match &s.maildrop {
            Some(dir) => match maildrop::next(dir, s.max_drop, out) {
                Some(d) => {
                    out.insert(d.file.clone());
                    let user = user_name(d.uid);
                    (
                        BrokerReply::Drop {
                            file: d.file,
                            uid: d.uid,
                            user,
                        },
                        Some(d.fd),
                    )
                }
                None => (BrokerReply::NoDrop, None),
            },
            None => (BrokerReply::NoDrop, None),
        },
        BrokerRequest::DropDone { file, outcome } => {
            // Only a file this smtp was given: never a name it made up.
            if out.remove(&file) {
                if let Some(dir) = &s.maildrop {
                    match outcome {
                        DropOutcome::Queued => maildrop::done(dir, &file, true),
                        DropOutcome::Refused => maildrop::done(dir, &file, false),
                        DropOutcome::Later => {}
                    }
                }
            }
            (BrokerReply::Done, None)
        }
    }
}

/// The login name of `uid`, or `uid<N>` for a uid with no name.
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid{uid}"),
    }
}
