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
use ipc::Channel;
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
    let quota = ctx.start.settings.quota;
    let fs = match crate::fsworker::FsWorker::start("sx-delivery-fs") {
        Ok(f) => f,
        Err(e) => {
            log::error!("cannot start the fs thread: {e}");
            return 71;
        }
    };
    let group = match crate::groupsync::GroupSync::start("sx-delivery-sync") {
        Ok(g) => g,
        Err(e) => {
            log::error!("cannot start the sync thread: {e}");
            return 71;
        }
    };
    tokio::spawn(async move {
        loop {
            let Some(r) = queue.recv_logged("queue").await else {
                return;
            };
            let (queue, imap, host, group, fs) = (
                queue.clone(),
                imap.clone(),
                hostname.clone(),
                group.clone(),
                fs.clone(),
            );
            tokio::spawn(async move {
                let QueueToDelivery::Deliver {
                    id,
                    mailbox,
                    return_path,
                    original,
                    size,
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
                // Maildir writes run one after another on the fs thread (see fsworker).
                let idc = id.clone();
                let res = fs
                    .run(move || {
                        let job = maildir_write::Job {
                            id: &idc,
                            host: &host,
                            mailbox: &mb,
                            return_path: &return_path,
                            original: &original,
                            size,
                            quota,
                        };
                        Ok(maildir_write::deliver(
                            &job,
                            std::io::Read::take(std::fs::File::from(fd), size),
                        ))
                    })
                    .await
                    .unwrap_or_else(|e| Err(maildir_write::Failure::Temp(e.to_string())));
                let res = match res {
                    Ok(maildir_write::Delivered::Duplicate(path)) => {
                        // Delivered before a crash; make sure that copy is on disk.
                        log::info!("{id}: already in {mailbox}'s INBOX: duplicate suppressed");
                        match std::fs::File::open(&path) {
                            Ok(f) => {
                                let dirs =
                                    path.parent().map(|d| d.to_path_buf()).into_iter().collect();
                                group
                                    .sync(vec![f], dirs)
                                    .await
                                    .map(|_| path)
                                    .map_err(|e| maildir_write::Failure::Temp(format!("sync: {e}")))
                            }
                            Err(e) => Err(maildir_write::Failure::Temp(e.to_string())),
                        }
                    }
                    Ok(maildir_write::Delivered::New(path, file)) => match group
                        .sync(
                            vec![file],
                            path.parent().map(|d| d.to_path_buf()).into_iter().collect(),
                        )
                        .await
                    {
                        Ok(()) => Ok(path),
                        Err(e) => {
                            // Not known to be on disk: take it back, queue retries.
                            let _ = std::fs::remove_file(&path);
                            Err(maildir_write::Failure::Temp(format!("sync: {e}")))
                        }
                    },
                    Err(e) => Err(e),
                };
                let reply = match res {
                    Ok(path) => {
                        let name = path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
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
