//! keyholder — user `_sxkey` (EMAIL_USER_KEYHOLDER), chrooted in an empty directory.
//!
//! May touch: nothing on disk. Holds in memory the TLS private keys, the DKIM keys
//! and the account password hashes, received from the parent as a sealed memfd.
//! Never sends key bytes anywhere.
//!
//! Answers:
//! - `KeyRequest::TlsSign` on the dedicated TlsSigner edges (smtp, imap);
//! - `KeyRequest::CheckPassword` from smtp and imap (and keeps the one table of
//!   failed logins per address and per account both services are held to);
//! - `KeyRequest::DkimSign` (+ message fd) from queue, and `ParentToChild::DkimSign`
//!   from the parent (control socket);
//! - `KeyRequest::ArcSeal` (+ message fd) from queue, for forwarded mail (arc.rs);
//! - `ParentToChild::Reload` (+ new Secrets fd) and `NewEdge` (a restarted
//!   peer's edge) from the parent.

mod arc;
mod dkim;
mod password;

use crate::startup::{self, ChildCtx};
use ipc::messages::{ChildToParent, FdName, KeyReply, KeyRequest, ParentToChild, Role};
use ipc::Channel;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock};

/// What one edge may ask for; anything else is refused and logged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Edge {
    TlsSigner,
    Smtp,
    Imap,
    Queue,
}

pub(crate) struct Keys {
    /// Current and previous TLS keys (the previous one finishes in-flight handshakes).
    tls: HashMap<u32, Arc<dyn rustls::sign::SigningKey>>,
    dkim: dkim::DkimKeys,
}

pub(crate) struct State {
    keys: RwLock<Keys>,
    passwords: password::Checker,
}

impl State {
    fn install(&self, s: ipc::messages::Secrets, ttl: u64) {
        let mut tls = HashMap::new();
        for k in &s.tls_keys {
            match crate::tls::signing_key(k) {
                Ok(sk) => {
                    tls.insert(k.key_id, sk);
                }
                Err(e) => log::error!("TLS key {} unusable: {e}", k.key_id),
            }
        }
        let dkim = dkim::DkimKeys::load(&s.dkim_keys);
        if let Ok(mut keys) = self.keys.write() {
            // Keep the newest previous key so handshakes started before a reload finish.
            let newest_old = keys.tls.keys().max().copied();
            if let Some(id) = newest_old {
                if let Some(old) = keys.tls.remove(&id) {
                    tls.entry(id).or_insert(old);
                }
            }
            keys.tls = tls;
            keys.dkim = dkim;
        }
        self.passwords.replace(s.accounts, ttl);
        log::info!(
            "keys loaded: {} TLS key(s), {} DKIM key(s), {} account(s)",
            s.tls_keys.len(),
            s.dkim_keys.len(),
            self.passwords.len()
        );
    }

    fn limits(&self, s: &ipc::messages::ChildSettings) {
        self.passwords
            .failures
            .set_limits(crate::login_failures::Limits {
                max_per_ip: s.auth_max_failures.max(1),
                max_per_account: s.auth_max_account_failures.max(1),
            });
    }

    fn tls_sign(&self, key_id: u32, scheme: u16, data: &[u8]) -> KeyReply {
        let key = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.tls.get(&key_id).cloned());
        let Some(key) = key else {
            return KeyReply::Error(format!("no TLS key {key_id}"));
        };
        let scheme = rustls::SignatureScheme::from(scheme);
        match key.choose_scheme(&[scheme]) {
            Some(signer) => match signer.sign(data) {
                Ok(sig) => KeyReply::TlsSignature(sig),
                Err(e) => KeyReply::Error(format!("signing failed: {e}")),
            },
            None => KeyReply::Error(format!("key {key_id} cannot sign {scheme:?}")),
        }
    }

    fn dkim_sign(
        &self,
        domain: &str,
        fd: Option<OwnedFd>,
        max: u64,
        size: Option<u64>,
    ) -> KeyReply {
        self.with_message("DkimSign", fd, max, size, |k, msg| k.sign(domain, msg))
    }

    fn arc_seal(
        &self,
        domain: &str,
        authserv_id: &str,
        fd: Option<OwnedFd>,
        max: u64,
        size: Option<u64>,
    ) -> KeyReply {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.with_message("ArcSeal", fd, max, size, |k, msg| {
            k.arc_seal(domain, authserv_id, msg, now)
        })
    }

    /// Read the message of `fd` (at most `max` bytes) and make header fields
    /// for it with the DKIM keys.
    fn with_message(
        &self,
        what: &str,
        fd: Option<OwnedFd>,
        max: u64,
        size: Option<u64>,
        make: impl FnOnce(&dkim::DkimKeys, &[u8]) -> Result<String, String>,
    ) -> KeyReply {
        let Some(fd) = fd else {
            return KeyReply::Error(format!("{what} needs a message fd"));
        };
        let msg = match dkim::read_message(fd, max, size) {
            Ok(m) => m,
            Err(e) => return KeyReply::Error(e),
        };
        match self.keys.read() {
            Ok(k) => match make(&k.dkim, &msg) {
                Ok(h) => KeyReply::DkimHeader(h),
                Err(e) => KeyReply::Error(e),
            },
            Err(_) => KeyReply::Error("key store unavailable".into()),
        }
    }
}

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let settings = ctx.start.settings.clone();
    let state = Arc::new(State {
        keys: RwLock::new(Keys {
            tls: HashMap::new(),
            dkim: dkim::DkimKeys::default(),
        }),
        passwords: password::Checker::new(),
    });
    match ctx
        .take(&FdName::Secrets)
        .map(crate::blob::read::<ipc::messages::Secrets>)
    {
        Some(Ok(s)) => {
            state.install(s, settings.auth_cache_ttl);
            state.limits(&settings);
        }
        Some(Err(e)) => {
            log::error!("cannot read secrets: {e}");
            return 70;
        }
        None => {
            log::error!("no secrets were handed down");
            return 70;
        }
    }
    let mut edges: Vec<(Edge, OwnedFd)> = ctx
        .take_all(&FdName::TlsSigner)
        .into_iter()
        .map(|f| (Edge::TlsSigner, f))
        .collect();
    for (role, edge) in [
        (Role::Smtp, Edge::Smtp),
        (Role::Imap, Edge::Imap),
        (Role::Queue, Edge::Queue),
    ] {
        if let Some(f) = ctx.take(&FdName::Peer(role)) {
            edges.push((edge, f));
        }
    }
    let max = settings.max_message_size.saturating_add(1 << 20);
    for (edge, fd) in edges {
        let chan: Channel<KeyReply, KeyRequest> = match Channel::new(fd) {
            Ok(c) => c,
            Err(e) => {
                log::error!("edge {edge:?}: {e}");
                return 71;
            }
        };
        tokio::spawn(serve(edge, Arc::new(chan), state.clone(), max));
    }
    startup::ready(&ctx.parent).await;
    let parent = ctx.parent.clone();
    while let Some(r) = startup::next_from_parent(&parent).await {
        match r.msg {
            ParentToChild::Reload(s) => {
                let mut fds = r.fds;
                match fds.pop().map(crate::blob::read::<ipc::messages::Secrets>) {
                    Some(Ok(sec)) => {
                        state.install(sec, s.auth_cache_ttl);
                        state.limits(&s);
                    }
                    Some(Err(e)) => log::error!("reload: cannot read secrets: {e}"),
                    None => log::warn!("reload without secrets: keys unchanged"),
                }
                let _ = parent.send(r.id, &ChildToParent::Reloaded, &[]).await;
            }
            ParentToChild::DkimSign { domain } => {
                let st = state.clone();
                let fd = r.fds.into_iter().next();
                let reply =
                    tokio::task::spawn_blocking(move || st.dkim_sign(&domain, fd, max, None))
                        .await
                        .unwrap_or_else(|_| KeyReply::Error("signing task failed".into()));
                let out = match reply {
                    KeyReply::DkimHeader(h) => Ok(h),
                    KeyReply::Error(e) => Err(e),
                    _ => Err("unexpected".into()),
                };
                let _ = parent
                    .send(r.id, &ChildToParent::DkimSigned(out), &[])
                    .await;
            }
            ParentToChild::NewEdge(name) => {
                let edge = match name {
                    FdName::TlsSigner => Edge::TlsSigner,
                    FdName::Peer(Role::Smtp) => Edge::Smtp,
                    FdName::Peer(Role::Imap) => Edge::Imap,
                    FdName::Peer(Role::Queue) => Edge::Queue,
                    other => {
                        log::warn!("ipc parent: no use for a new {other:?} edge");
                        continue;
                    }
                };
                let Some(fd) = r.fds.into_iter().next() else {
                    continue;
                };
                match Channel::new(fd) {
                    Ok(c) => {
                        tokio::spawn(serve(edge, Arc::new(c), state.clone(), max));
                    }
                    Err(e) => log::error!("new {edge:?} edge: {e}"),
                }
            }
            other => log::warn!("ipc parent: unexpected {other:?}"),
        }
    }
    0
}

/// keyholder's request loop for smtp (`imap` false) or imap on `fd`, inside
/// the calling process, holding `accounts` (address, argon2 hash): the peer
/// of sessions driven in-process by tests and the fuzz targets. Must be called
/// inside a tokio runtime.
#[doc(hidden)]
pub fn serve_in_process(
    fd: OwnedFd,
    imap: bool,
    accounts: Vec<(String, String)>,
) -> std::io::Result<()> {
    let state = Arc::new(State {
        keys: RwLock::new(Keys {
            tls: HashMap::new(),
            dkim: dkim::DkimKeys::default(),
        }),
        passwords: password::Checker::new(),
    });
    state.passwords.replace(accounts, 0);
    let edge = if imap { Edge::Imap } else { Edge::Smtp };
    tokio::spawn(serve(edge, Arc::new(Channel::new(fd)?), state, 0));
    Ok(())
}

async fn serve(edge: Edge, chan: Arc<Channel<KeyReply, KeyRequest>>, state: Arc<State>, max: u64) {
    let label = format!("{edge:?}");
    loop {
        let Some(r) = chan.recv_logged(&label).await else {
            return;
        };
        let (chan, state) = (chan.clone(), state.clone());
        tokio::spawn(async move {
            let reply = match (edge, r.msg) {
                (
                    Edge::TlsSigner,
                    KeyRequest::TlsSign {
                        key_id,
                        scheme,
                        data,
                    },
                ) => state.tls_sign(key_id, scheme, &data),
                (
                    Edge::Smtp | Edge::Imap,
                    KeyRequest::CheckPassword {
                        user,
                        password,
                        client,
                    },
                ) => match state.passwords.login(&user, &password, client).await {
                    password::Login::Ok(a) => KeyReply::Password(Some(a)),
                    password::Login::Failed => KeyReply::Password(None),
                    password::Login::Locked => KeyReply::LoginLocked,
                    password::Login::Busy => KeyReply::Error("busy".into()),
                },
                (Edge::Queue, KeyRequest::DkimSign { domain, size }) => {
                    let fd = r.fds.into_iter().next();
                    let st = state.clone();
                    tokio::task::spawn_blocking(move || st.dkim_sign(&domain, fd, max, size))
                        .await
                        .unwrap_or_else(|_| KeyReply::Error("signing task failed".into()))
                }
                (
                    Edge::Queue,
                    KeyRequest::ArcSeal {
                        domain,
                        authserv_id,
                        size,
                    },
                ) => {
                    let fd = r.fds.into_iter().next();
                    let st = state.clone();
                    tokio::task::spawn_blocking(move || {
                        st.arc_seal(&domain, &authserv_id, fd, max, size)
                    })
                    .await
                    .unwrap_or_else(|_| KeyReply::Error("sealing task failed".into()))
                }
                (edge, req) => {
                    // A request this edge has no business making: possibly a compromised peer.
                    log::warn!("ipc {edge:?}: refused request {}", request_name(&req));
                    KeyReply::Error("request not allowed on this edge".into())
                }
            };
            if let Err(e) = chan.send(r.id, &reply, &[]).await {
                log::warn!("ipc {edge:?}: cannot reply: {e}");
            }
        });
    }
}

fn request_name(r: &KeyRequest) -> &'static str {
    match r {
        KeyRequest::TlsSign { .. } => "TlsSign",
        KeyRequest::CheckPassword { .. } => "CheckPassword",
        KeyRequest::DkimSign { .. } => "DkimSign",
        KeyRequest::ArcSeal { .. } => "ArcSeal",
    }
}
