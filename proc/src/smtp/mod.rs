//! smtp — user `_sxsmtp` (EMAIL_USER_SMTP), chrooted in an empty directory.
//!
//! May touch: no files at all. Holds the listening sockets for 25, 587 and 465
//! (handed down by the parent), the public TLS certificate chain, and a
//! RemoteSigningKey whose signatures come from keyholder.
//!
//! Talks to: keyholder (TlsSign on the signer edge, CheckPassword), queue (message
//! handoff). Answers from the parent: Reload (new certificate), Ping, Shutdown.

mod session;

use crate::child::{self, ChildCtx};
use crate::net::{self, TlsState};
use ipc::messages::{FdName, KeyReply, KeyRequest, ParentToChild, QueueToSmtp, Role, SmtpToQueue};
use ipc::Rpc;
use std::sync::Arc;

pub(crate) struct Shared {
    pub hostname: String,
    pub max_message_size: u64,
    pub tls: Arc<TlsState>,
    #[allow(dead_code)] // used by AUTH (SMTP issue)
    pub keyholder: Rpc<KeyRequest, KeyReply>,
    #[allow(dead_code)] // used by the message handoff (queue issue)
    pub queue: Rpc<SmtpToQueue, QueueToSmtp>,
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
    let keyholder = match child::peer(&mut ctx, Role::Keyholder) {
        Ok(c) => Rpc::start(c, "smtp->keyholder").0,
        Err(code) => return code,
    };
    let queue = match child::peer(&mut ctx, Role::Queue) {
        Ok(c) => Rpc::start(c, "smtp->queue").0,
        Err(code) => return code,
    };
    let shared = Arc::new(Shared {
        hostname: settings.hostname.clone(),
        max_message_size: settings.max_message_size,
        tls: tls.clone(),
        keyholder,
        queue,
    });
    for (service, fd) in ctx.take_listeners() {
        let l = match net::listener(fd) {
            Ok(l) => l,
            Err(e) => {
                log::error!("{}: {e}", service.name());
                return 71;
            }
        };
        let sh = shared.clone();
        tokio::spawn(net::accept_loop(
            service,
            l,
            settings.max_connections as usize,
            b"421 4.7.0 Too many connections, try later\r\n",
            move |tcp, peer| session::run(sh.clone(), service, tcp, peer),
        ));
    }
    child::ready(&ctx.parent).await;
    while let Some(r) = child::next_from_parent(&ctx.parent).await {
        match r.msg {
            ParentToChild::Reload(s) => {
                tls.update(s.tls.as_ref());
                log::info!("reloaded: new TLS certificate in use for new connections");
                let _ = ctx
                    .parent
                    .send(r.id, &ipc::messages::ChildToParent::Reloaded, &[])
                    .await;
            }
            other => log::warn!("ipc parent: unexpected {other:?}"),
        }
    }
    0
}
