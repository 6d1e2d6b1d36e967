//! imap — user `_sxmail` (EMAIL_USER_MAIL), chrooted in the Maildir root.
//!
//! May touch: the Maildir tree of the account a session logged in as (the IMAP
//! issue fills this in). Holds the listening sockets for 993 and 143, the public
//! certificate chain and a RemoteSigningKey (signatures by keyholder).
//!
//! Talks to: keyholder (TlsSign, CheckPassword); hears delivery's `Changed`.
//! Answers from the parent: Reload (new certificate), Ping, Shutdown.

mod session;

use crate::child::{self, ChildCtx};
use crate::net::{self, TlsState};
use ipc::messages::{DeliveryToImap, FdName, KeyReply, KeyRequest, ParentToChild, Role};
use ipc::Rpc;
use std::sync::Arc;

pub(crate) struct Shared {
    pub hostname: String,
    pub tls: Arc<TlsState>,
    pub keyholder: Rpc<KeyRequest, KeyReply>,
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
        Ok(c) => Rpc::start(c, "imap->keyholder").0,
        Err(code) => return code,
    };
    let delivery: ipc::Channel<(), DeliveryToImap> = match child::peer(&mut ctx, Role::Delivery) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tokio::spawn(async move {
        // Mailbox change notices; IDLE sessions subscribe to these in the IMAP issue.
        while delivery.recv_logged("delivery").await.is_some() {}
    });
    let shared = Arc::new(Shared {
        hostname: settings.hostname.clone(),
        tls: tls.clone(),
        keyholder,
    });
    let sh = shared.clone();
    let served = net::serve_listeners(
        ctx.take_listeners(),
        settings.max_connections as usize,
        b"* BYE Too many connections, try later\r\n",
        move |service, tcp, peer| session::run(sh.clone(), service, tcp, peer),
    );
    if let Err(code) = served {
        return code;
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
