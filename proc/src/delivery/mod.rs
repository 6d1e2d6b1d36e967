//! delivery — user `_sxmail` (EMAIL_USER_MAIL), chrooted in EMAIL_MAILDIR.
//!
//! May touch: the Maildir tree under its chroot. Writes each message to
//! `<domain>/<user>/tmp/`, fsyncs it, renames it into `new/` and fsyncs `new/`.
//!
//! Answers queue: `Deliver` (+ read-only body fd) with Delivered / TempFail /
//! PermFail. Tells imap `Changed`. Answers from the parent: Ping, Shutdown.

mod maildir_write;

use crate::child::{self, ChildCtx};
use ipc::messages::{DeliveryToImap, DeliveryToQueue, QueueToDelivery, Role};
use ipc::{Channel, FrameError};
use std::sync::Arc;

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let queue: Channel<DeliveryToQueue, QueueToDelivery> = match child::peer(&mut ctx, Role::Queue)
    {
        Ok(c) => c,
        Err(code) => return code,
    };
    let imap: Channel<DeliveryToImap, ()> = match child::peer(&mut ctx, Role::Imap) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (queue, imap) = (Arc::new(queue), Arc::new(imap));
    let hostname = Arc::new(ctx.start.settings.hostname.clone());
    tokio::spawn(async move {
        loop {
            let r = match queue.recv().await {
                Ok(r) => r,
                Err(e) if e.is_recoverable() => {
                    log::warn!("ipc queue: {e}");
                    continue;
                }
                Err(FrameError::Closed) => return,
                Err(e) => {
                    log::warn!("ipc queue: {e}");
                    return;
                }
            };
            let (queue, imap, host) = (queue.clone(), imap.clone(), hostname.clone());
            tokio::spawn(async move {
                let QueueToDelivery::Deliver {
                    id,
                    mailbox,
                    return_path,
                    original,
                } = r.msg;
                let Some(fd) = r.fds.into_iter().next() else {
                    let _ = queue
                        .send(
                            r.id,
                            &DeliveryToQueue::PermFail("no message fd".into()),
                            &[],
                        )
                        .await;
                    return;
                };
                let mb = mailbox.clone();
                let res = tokio::task::spawn_blocking(move || {
                    maildir_write::deliver(
                        &host,
                        &mb,
                        &return_path,
                        &original,
                        std::fs::File::from(fd),
                    )
                })
                .await
                .unwrap_or_else(|e| Err(maildir_write::Failure::Temp(e.to_string())));
                let reply = match res {
                    Ok(name) => {
                        log::info!("{id}: delivered to {mailbox} as {name}");
                        let _ = imap
                            .send(
                                0,
                                &DeliveryToImap::Changed {
                                    account: mailbox.clone(),
                                    mailbox: "INBOX".into(),
                                },
                                &[],
                            )
                            .await;
                        DeliveryToQueue::Delivered
                    }
                    Err(maildir_write::Failure::Temp(e)) => DeliveryToQueue::TempFail(e),
                    Err(maildir_write::Failure::Perm(e)) => DeliveryToQueue::PermFail(e),
                };
                let _ = queue.send(r.id, &reply, &[]).await;
            });
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
