//! smtp — user `_sxsmtp` (EMAIL_USER_SMTP), chrooted in an empty directory.
//!
//! May touch: no files at all. Holds the listening sockets for 25, 587 and 465
//! and the local submit socket (handed down by the parent), maildrop files
//! the parent opens for it (`local.rs`), the public TLS certificate chain, a
//! RemoteSigningKey (signatures by keyholder) and the account directory (names and
//! aliases, no secrets). Message bodies are written into fds handed over by
//! queue, and on port 25 read back from them for the sender checks (`checks/`:
//! SPF, DKIM, DMARC, ARC over DNS).
//!
//! Talks to: keyholder (TlsSign on the signer edge, CheckPassword), queue (Create,
//! Commit, Abort, Greylist), imap (UrlFetch, for BURL), the parent (BrokerRequest:
//! the socket of a unix: milter); over the network to
//! other MTAs, the DNS servers and the milters of EMAIL_MILTERS. Answers queue's `Send` on the
//! outbound edge. Answers from the parent: Reload (certificate, directory),
//! NewEdge (queue, keyholder, imap, outbound or signer edge of a restarted
//! peer), Ping, Stats, Shutdown.

mod abuse;
mod auth;
mod broker;
mod checks;
mod data;
mod local;
mod milter;
mod outbound;
mod received;
mod route;

pub use received::rfc5322_date;
mod session;
mod spool_edit;
pub(crate) use session::serve_conn;

use crate::directory::Dir;
use crate::net::{self, TlsState};
use crate::startup::{self, ChildCtx};
use ipc::messages::{
    ChildSettings, FdName, ImapToSmtp, KeyReply, KeyRequest, ParentToChild, QueueToSmtp, Role,
    SmtpToImap, SmtpToQueue,
};
use ipc::PeerRpc;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub(crate) struct Shared {
    pub settings: RwLock<ChildSettings>,
    pub tls: Arc<TlsState>,
    pub keyholder: PeerRpc<KeyRequest, KeyReply>,
    pub queue: PeerRpc<SmtpToQueue, QueueToSmtp>,
    /// BURL (RFC 4468): what a URLAUTH URL names, from imap.
    pub imap: PeerRpc<SmtpToImap, ImapToSmtp>,
    pub dir: RwLock<Arc<Dir>>,
    /// DNS for MX lookups, rebuilt when the servers change on reload.
    pub resolver: RwLock<Option<Arc<hickory_resolver::TokioResolver>>>,
    /// Outbound connection slots per destination domain.
    pub domain_slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Outbound sessions kept open for the next message to the same address.
    pub idle: outbound::Pool,
    /// Rate limits (EMAIL_RATE_CLIENT, EMAIL_RATE_SENDER), new when they change.
    pub limits: RwLock<Arc<Limits>>,
    /// The parent, which connects unix: milters for us (None in process:
    /// no chroot there, smtp connects them itself).
    pub broker: Option<broker::Broker>,
}

/// Message counts per client address and per sender.
pub struct Limits {
    pub client: abuse::rate::Limiter,
    pub sender: abuse::rate::Limiter,
    /// The settings they were made from.
    made_of: ((u32, u64), (u32, u64)),
}

impl Limits {
    pub fn new(a: &ipc::messages::AbuseSettings) -> Limits {
        Limits {
            client: abuse::rate::Limiter::new(a.rate_client.0, a.rate_client.1),
            sender: abuse::rate::Limiter::new(a.rate_sender.0, a.rate_sender.1),
            made_of: (a.rate_client, a.rate_sender),
        }
    }
}

/// The resolver for these DNS servers (`ip:port`), as smtp builds it.
pub(crate) fn resolver_for(servers: &[String]) -> Option<hickory_resolver::TokioResolver> {
    route::resolver(servers)
}

impl Shared {
    pub fn settings(&self) -> ChildSettings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn resolver(&self) -> Option<Arc<hickory_resolver::TokioResolver>> {
        self.resolver.read().ok().and_then(|r| r.clone())
    }

    pub fn limits(&self) -> Arc<Limits> {
        match self.limits.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn dir(&self) -> Arc<Dir> {
        self.dir.read().map(|d| d.clone()).unwrap_or_default()
    }
}

fn load_dir(fd: Option<OwnedFd>, settings: &ChildSettings) -> Option<Dir> {
    match fd.map(crate::blob::read::<ipc::messages::Directory>) {
        Some(Ok(d)) => {
            log::info!(
                "directory: {} account(s), {} alias(es)",
                d.accounts.len(),
                d.aliases.len()
            );
            Some(Dir::new(d, &settings.domains).with_host(&settings.hostname))
        }
        Some(Err(e)) => {
            log::error!("cannot read the account directory: {e}");
            None
        }
        None => None,
    }
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
        Ok(c) => PeerRpc::new(c, "smtp->keyholder", ipc::rpc::DEFAULT_TIMEOUT),
        Err(code) => return code,
    };
    let queue = match startup::peer(&mut ctx, Role::Queue) {
        // A commit waits for a group fsync; a slow disk gets a minute.
        Ok(c) => PeerRpc::new(c, "smtp->queue", Duration::from_secs(60)),
        Err(code) => return code,
    };
    let imap = match startup::peer(&mut ctx, Role::Imap) {
        Ok(c) => PeerRpc::new(c, "smtp->imap", Duration::from_secs(60)),
        Err(code) => return code,
    };
    let Some(dir) = load_dir(ctx.take(&FdName::Directory), &settings) else {
        log::error!("no account directory was handed down");
        return 70;
    };
    let broker = match startup::edge(&mut ctx, &FdName::Broker) {
        Ok(ch) => Some(broker::Broker::new(ch)),
        Err(code) => return code,
    };
    let shared = Arc::new(Shared {
        settings: RwLock::new(settings.clone()),
        tls: tls.clone(),
        keyholder,
        queue,
        imap,
        dir: RwLock::new(Arc::new(dir)),
        resolver: RwLock::new(route::resolver(&settings.dns_servers).map(Arc::new)),
        domain_slots: Mutex::new(HashMap::new()),
        idle: Mutex::new(HashMap::new()),
        limits: RwLock::new(Arc::new(Limits::new(&settings.abuse))),
        broker,
    });
    match startup::edge(&mut ctx, &FdName::Outbound) {
        Ok(ch) => {
            tokio::spawn(outbound::serve(ch, shared.clone()));
        }
        Err(code) => return code,
    }
    let sh = shared.clone();
    let limits = shared.clone();
    let adm = net::Admission {
        max: settings.max_connections as usize,
        max_per_ip: Arc::new(move || limits.settings().max_connections_per_ip),
        refuse_busy: b"421 4.7.0 Too many connections, try later\r\n",
        refuse_ip: b"421 4.7.0 Too many connections from your address\r\n",
        tls: tls.clone(),
    };
    let (local_socket, tcp): (Vec<_>, Vec<_>) = ctx
        .take_listeners()
        .into_iter()
        .partition(|(s, _)| *s == ipc::messages::Service::Local);
    for (_, fd) in local_socket {
        if let Err(e) = local::serve(fd, shared.clone()) {
            log::error!("local submission socket: {e}");
            return 71;
        }
    }
    local::pickup(shared.clone());
    let served = net::serve_listeners(tcp, adm, move |service, tcp, peer| {
        session::run(sh.clone(), service, tcp, peer)
    });
    if let Err(code) = served {
        return code;
    }
    startup::ready(&ctx.parent).await;
    while let Some(r) = startup::next_from_parent(&ctx.parent).await {
        match r.msg {
            ParentToChild::Reload(s) => {
                tls.update(s.tls.as_ref());
                if let Some(d) = load_dir(r.fds.into_iter().next(), &s) {
                    if let Ok(mut cur) = shared.dir.write() {
                        *cur = Arc::new(d);
                    }
                }
                if let Ok(mut r) = shared.resolver.write() {
                    *r = route::resolver(&s.dns_servers).map(Arc::new);
                }
                if let Ok(mut l) = shared.limits.write() {
                    // Counts so far stay unless the limits themselves changed.
                    if l.made_of != (s.abuse.rate_client, s.abuse.rate_sender) {
                        *l = Arc::new(Limits::new(&s.abuse));
                    }
                }
                if let Ok(mut cur) = shared.settings.write() {
                    *cur = s;
                }
                log::info!("reloaded: certificate, directory and limits for new sessions");
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
                    FdName::Peer(Role::Queue) => match ipc::Channel::new(fd) {
                        Ok(c) => shared.queue.replace(c),
                        Err(e) => log::error!("new queue edge: {e}"),
                    },
                    FdName::Peer(Role::Keyholder) => match ipc::Channel::new(fd) {
                        Ok(c) => shared.keyholder.replace(c),
                        Err(e) => log::error!("new keyholder edge: {e}"),
                    },
                    FdName::Peer(Role::Imap) => match ipc::Channel::new(fd) {
                        Ok(c) => shared.imap.replace(c),
                        Err(e) => log::error!("new imap edge: {e}"),
                    },
                    FdName::Outbound => match ipc::Channel::new(fd) {
                        Ok(c) => {
                            tokio::spawn(outbound::serve(c, shared.clone()));
                        }
                        Err(e) => log::error!("new outbound edge: {e}"),
                    },
                    FdName::TlsSigner => tls.replace_signer(fd),
                    other => log::warn!("ipc parent: no use for a new {other:?} edge"),
                }
            }
            other => log::warn!("ipc parent: unexpected {other:?}"),
        }
    }
    let grace = std::time::Duration::from_secs(shared.settings().shutdown_timeout);
    crate::drain::global().run_down("smtp", grace).await;
    0
}
