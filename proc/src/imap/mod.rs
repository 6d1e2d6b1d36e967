//! imap — user `_sxmail` (EMAIL_USER_MAIL), chrooted in the Maildir root.
//!
//! May touch: the Maildir of the account a session logged in as (names.rs keeps
//! every mailbox name inside it): messages, uid lists, keywords and
//! subscriptions files. Holds the listening sockets for 993 and 143, the public
//! certificate chain and a RemoteSigningKey (signatures by keyholder).
//!
//! Talks to: keyholder (TlsSign, CheckPassword); hears delivery's `Changed`
//! and passes it to IDLE and NOTIFY sessions; answers smtp's `UrlFetch`
//! (BURL, burl.rs) with an unnamed file of the URL's bytes. Answers from the
//! parent: Reload (new certificate), NewEdge (keyholder, delivery, smtp or
//! signer edge of a restarted peer), Ping, Stats, Shutdown.

mod appends;
mod burl;
mod cmd;
mod ext;
pub mod flags;
mod folder;
#[doc(hidden)]
pub mod fuzz;
mod header_text;
mod io;
mod metadata;
pub mod mime;
mod modseq;
pub mod names;
mod notify;
mod parts;
mod respond;
mod search;
mod search_keys;
mod session;
mod sort;
mod thread;
mod tokens;
mod url;
mod urlauth;
mod utf8;
pub(crate) use session::serve_conn;
mod state;
mod view;

use crate::counter::Counter;
use crate::net::{self, TlsState};
use crate::startup::{self, ChildCtx};
use ipc::messages::{DeliveryToImap, FdName, KeyReply, KeyRequest, ParentToChild, Role};
use ipc::PeerRpc;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Shared {
    pub hostname: String,
    pub tls: Arc<TlsState>,
    pub keyholder: PeerRpc<KeyRequest, KeyReply>,
    /// Folder paths that changed (delivery, other sessions), for IDLE.
    pub changes: tokio::sync::broadcast::Sender<Arc<PathBuf>>,
    pub per_user: Arc<Counter<String>>,
    /// APPENDLIMIT: the largest literal accepted.
    pub max_literal: u64,
    pub max_per_user: u32,
    /// Folders one account may have (INBOX not counted).
    pub max_folders: usize,
    /// EMAIL_QUOTA in bytes (0: none), shown by QUOTA (RFC 9208).
    pub quota: u64,
}

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let settings = ctx.start.settings.clone();
    let Some(signer) = ctx.take(&FdName::TlsSigner) else {
        log::error!("no TLS signer edge");
        return 70;
    };
    let tls = match TlsState::new(signer, settings.tls.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            log::error!("TLS signer edge: {e}");
            return 71;
        }
    };
    let keyholder = match startup::peer(&mut ctx, Role::Keyholder) {
        Ok(c) => PeerRpc::new(c, "imap->keyholder", ipc::rpc::DEFAULT_TIMEOUT),
        Err(code) => return code,
    };
    let delivery: ipc::Channel<(), DeliveryToImap> = match startup::peer(&mut ctx, Role::Delivery) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match startup::peer(&mut ctx, Role::Smtp) {
        Ok(c) => {
            tokio::spawn(burl::serve(c));
        }
        Err(code) => return code,
    }
    let (changes, _) = tokio::sync::broadcast::channel(1024);
    tokio::spawn(hear_delivery(delivery, changes.clone()));
    let shared = Arc::new(Shared {
        hostname: settings.hostname.clone(),
        tls: tls.clone(),
        keyholder,
        changes,
        per_user: Arc::new(Counter::default()),
        max_literal: settings.max_message_size,
        max_per_user: settings.imap_max_user_connections,
        max_folders: settings.imap_max_folders as usize,
        quota: settings.quota,
    });
    let sh = shared.clone();
    let per_ip = settings.max_connections_per_ip;
    let adm = net::Admission {
        max: settings.max_connections as usize,
        max_per_ip: Arc::new(move || per_ip),
        refuse_busy: b"* BYE Too many connections, try later\r\n",
        refuse_ip: b"* BYE Too many connections from your address\r\n",
        tls: tls.clone(),
    };
    let served = net::serve_listeners(ctx.take_listeners(), adm, move |service, tcp, peer| {
        session::run(sh.clone(), service, tcp, peer)
    });
    if let Err(code) = served {
        return code;
    }
    startup::ready(&ctx.parent).await;
    let mut grace = settings.shutdown_timeout;
    while let Some(r) = startup::next_from_parent(&ctx.parent).await {
        match r.msg {
            ParentToChild::Reload(s) => {
                grace = s.shutdown_timeout;
                tls.update(s.tls.as_ref());
                log::info!("reloaded: new TLS certificate in use for new connections");
                let _ = ctx
                    .parent
                    .send(r.id, &ipc::messages::ChildToParent::Reloaded, &[])
                    .await;
            }
            ParentToChild::NewEdge(name) => {
                let Some(fd) = r.fds.into_iter().next() else {
                    continue;
                };
                match name {
                    FdName::Peer(Role::Keyholder) => match ipc::Channel::new(fd) {
                        Ok(c) => shared.keyholder.replace(c),
                        Err(e) => log::error!("new keyholder edge: {e}"),
                    },
                    FdName::Peer(Role::Delivery) => match ipc::Channel::new(fd) {
                        Ok(c) => {
                            tokio::spawn(hear_delivery(c, shared.changes.clone()));
                        }
                        Err(e) => log::error!("new delivery edge: {e}"),
                    },
                    FdName::Peer(Role::Smtp) => match ipc::Channel::new(fd) {
                        Ok(c) => {
                            tokio::spawn(burl::serve(c));
                        }
                        Err(e) => log::error!("new smtp edge: {e}"),
                    },
                    FdName::TlsSigner => tls.replace_signer(fd),
                    other => log::warn!("ipc parent: no use for a new {other:?} edge"),
                }
            }
            other => log::warn!("ipc parent: unexpected {other:?}"),
        }
    }
    crate::drain::global()
        .run_down("imap", std::time::Duration::from_secs(grace))
        .await;
    0
}

/// Pass delivery's `Changed` on to IDLE sessions, until that edge closes.
async fn hear_delivery(
    delivery: ipc::Channel<(), DeliveryToImap>,
    notify: tokio::sync::broadcast::Sender<Arc<PathBuf>>,
) {
    while let Some(r) = delivery.recv_logged("delivery").await {
        let DeliveryToImap::Changed { account, mailbox } = r.msg;
        let Some(mut dir) = crate::maildir::account_dir(Path::new(""), &account) else {
            continue;
        };
        if !names::is_inbox(&mailbox) {
            match names::folder(&dir, &mailbox) {
                Ok(p) => dir = p,
                Err(_) => continue,
            }
        }
        let _ = notify.send(Arc::new(dir));
    }
}

/// Drop the cached indexes of every folder under `dir` (an account reset
/// behind the server's back, in in-process tests and fuzzing).
#[doc(hidden)]
pub fn forget_folders(dir: &Path) {
    folder::Folder::forget(dir);
}

#[cfg(test)]
mod rfc_tests;
