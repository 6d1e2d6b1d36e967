//! delivery — user `_sxmail` (EMAIL_USER_MAIL), chrooted in EMAIL_MAILDIR.
//!
//! May touch: the Maildir tree under its chroot (tmp -> fsync -> new/). Answers
//! queue's Deliver requests and tells imap `Changed{mailbox}`; the queue issue
//! fills these in. Answers from the parent: Ping, Shutdown.

use crate::child::{self, ChildCtx};
use ipc::messages::{DeliveryToImap, DeliveryToQueue, QueueToDelivery, Role};
use ipc::Channel;
use std::sync::Arc;

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let queue: Channel<DeliveryToQueue, QueueToDelivery> = match child::peer(&mut ctx, Role::Queue)
    {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _imap: Channel<DeliveryToImap, ()> = match child::peer(&mut ctx, Role::Imap) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let queue = Arc::new(queue);
    tokio::spawn(async move {
        loop {
            match queue.recv().await {
                Ok(r) => match r.msg {
                    QueueToDelivery::Ping => {
                        let _ = queue.send(r.id, &DeliveryToQueue::Pong, &[]).await;
                    }
                },
                Err(e) if e.is_recoverable() => log::warn!("ipc queue: {e}"),
                Err(_) => return,
            }
        }
    });
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
