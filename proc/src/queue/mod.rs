//! queue — user `_sxqueue` (EMAIL_USER_QUEUE), chrooted in EMAIL_QUEUE_DIR.
//!
//! May touch: the spool (msg/ env/ tmp/) under its chroot. Answers smtp's message
//! handoff and asks delivery, keyholder (DKIM) and smtp (outbound) to move mail on;
//! the queue issue fills these in. Answers from the parent: Ping, Shutdown.

use crate::child::{self, ChildCtx};
use ipc::messages::{
    DeliveryToQueue, KeyReply, KeyRequest, QueueToDelivery, QueueToSmtp, Role, SmtpToQueue,
};
use ipc::Channel;
use std::sync::Arc;

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let smtp: Channel<QueueToSmtp, SmtpToQueue> = match child::peer(&mut ctx, Role::Smtp) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let delivery: Channel<QueueToDelivery, DeliveryToQueue> =
        match child::peer(&mut ctx, Role::Delivery) {
            Ok(c) => c,
            Err(code) => return code,
        };
    let _keyholder: Channel<KeyRequest, KeyReply> = match child::peer(&mut ctx, Role::Keyholder) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for sub in ["msg", "env", "tmp"] {
        if let Err(e) = std::fs::create_dir_all(sub) {
            log::warn!("cannot create spool {sub}/: {e}");
        }
    }
    let smtp = Arc::new(smtp);
    tokio::spawn(async move {
        loop {
            match smtp.recv().await {
                Ok(r) => match r.msg {
                    SmtpToQueue::Ping => {
                        let _ = smtp.send(r.id, &QueueToSmtp::Pong, &[]).await;
                    }
                },
                Err(e) if e.is_recoverable() => log::warn!("ipc smtp: {e}"),
                Err(_) => return,
            }
        }
    });
    let _delivery = delivery;
    child::ready(&ctx.parent).await;
    while let Some(r) = child::next_from_parent(&ctx.parent).await {
        if let ipc::messages::ParentToChild::Reload(_) = r.msg {
            let _ = ctx
                .parent
                .send(r.id, &ipc::messages::ChildToParent::Reloaded, &[])
                .await;
        }
    }
    0
}
