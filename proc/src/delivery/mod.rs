//! delivery — user `_sxmail` (EMAIL_USER_MAIL), chrooted in EMAIL_MAILDIR.
//!
//! May touch: the Maildir tree under its chroot. Writes each message to
//! `<domain>/<user>/tmp/`, fsyncs it, renames it into `new/` and fsyncs `new/`.
//!
//! Answers queue: `Deliver` (+ read-only body fd) with Delivered / TempFail /
//! PermFail. Tells imap `Changed`. Answers from the parent: Reload, NewEdge
//! (queue's or imap's edge after a restart), Ping, Stats, Shutdown.

mod maildir_write;

use crate::startup::{self, ChildCtx};
use ipc::messages::{
    ChildToParent, DeliveryToImap, DeliveryToQueue, FdName, ParentToChild, QueueToDelivery, Role,
};
use ipc::Channel;
use std::sync::{Arc, RwLock};

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let queue: Channel<DeliveryToQueue, QueueToDelivery> =
        match startup::peer(&mut ctx, Role::Queue) {
            Ok(c) => c,
            Err(code) => return code,
        };
    let imap: Channel<DeliveryToImap, ()> = match startup::peer(&mut ctx, Role::Imap) {
        Ok(c) => c,
        Err(code) => return code,
    };
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
    let w = Arc::new(Workers {
        imap: RwLock::new(Arc::new(imap)),
        hostname,
        quota,
        fs,
        group,
    });
    tokio::spawn(serve_queue(Arc::new(queue), w.clone()));
    startup::ready(&ctx.parent).await;
    while let Some(r) = startup::next_from_parent(&ctx.parent).await {
        match r.msg {
            ParentToChild::Reload(_) => {
                let _ = ctx.parent.send(r.id, &ChildToParent::Reloaded, &[]).await;
            }
            ParentToChild::NewEdge(name) => {
                let Some(fd) = r.fds.into_iter().next() else {
                    continue;
                };
                let installed = match name.clone() {
                    FdName::Peer(Role::Queue) => Channel::new(fd).map(|c| {
                        tokio::spawn(serve_queue(Arc::new(c), w.clone()));
                    }),
                    FdName::Peer(Role::Imap) => Channel::new(fd).map(|c| {
                        if let Ok(mut i) = w.imap.write() {
                            *i = Arc::new(c);
                        }
                    }),
                    other => {
                        log::warn!("ipc parent: no use for a new {other:?} edge");
                        Ok(())
                    }
                };
                if let Err(e) = installed {
                    log::error!("new {name:?} edge: {e}");
                }
            }
            other => log::warn!("ipc parent: unexpected {other:?}"),
        }
    }
    0
}

/// What every delivery job shares.
struct Workers {
    /// Where `Changed` goes; replaced when imap is restarted.
    imap: RwLock<Arc<Channel<DeliveryToImap, ()>>>,
    hostname: Arc<String>,
    quota: u64,
    fs: crate::fsworker::FsWorker,
    group: crate::groupsync::GroupSync,
}

/// Answer queue's Deliver requests on one edge, until it closes.
async fn serve_queue(queue: Arc<Channel<DeliveryToQueue, QueueToDelivery>>, w: Arc<Workers>) {
    loop {
        let Some(r) = queue.recv_logged("queue").await else {
            return;
        };
        let imap = w.imap.read().map(|i| i.clone());
        let Ok(imap) = imap else {
            return;
        };
        let (queue, host, group, fs, quota) = (
            queue.clone(),
            w.hostname.clone(),
            w.group.clone(),
            w.fs.clone(),
            w.quota,
        );
        let (reply_to, rid) = (queue.clone(), r.id);
        let job = async move {
            let QueueToDelivery::Deliver {
                id,
                mailbox,
                return_path,
                original,
                size,
                junk,
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
                        junk,
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
                            let dirs = path.parent().map(|d| d.to_path_buf()).into_iter().collect();
                            group
                                .sync(vec![f], dirs)
                                .await
                                .map(|_| path)
                                .map_err(|e| maildir_write::Failure::Temp(format!("sync: {e}")))
                        }
                        Err(e) => Err(maildir_write::Failure::Temp(e.to_string())),
                    }
                }
                Ok(maildir_write::Delivered::Written(tmp, path, file)) => match group
                    .sync_then_rename(
                        vec![file],
                        vec![(tmp.clone(), path.clone())],
                        path.parent().map(|d| d.to_path_buf()).into_iter().collect(),
                    )
                    .await
                {
                    Ok(()) => Ok(path),
                    Err(e) => {
                        // Not known to be on disk: take it back, queue retries.
                        let _ = std::fs::remove_file(&tmp);
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
                    let folder = if junk { "Junk" } else { "INBOX" };
                    log::info!("{id}: delivered to {mailbox} folder={folder} as {name}");
                    // A hint for IDLE only (it also polls): a stuck imap must
                    // not hold up the delivery, so the wait is short.
                    let changed = DeliveryToImap::Changed {
                        account: mailbox.clone(),
                        mailbox: folder.into(),
                    };
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(1),
                        imap.send(0, &changed, &[]),
                    )
                    .await;
                    DeliveryToQueue::Delivered
                }
                Err(maildir_write::Failure::Temp(e)) => DeliveryToQueue::TempFail(e),
                Err(maildir_write::Failure::Perm(e)) => DeliveryToQueue::PermFail(e),
            };
            let _ = queue.send(r.id, &reply, &[]).await;
        };
        tokio::spawn(async move {
            // A panic in one delivery fails only it, temporarily: queue retries.
            if crate::contain::contain(job).await.is_err() {
                let reply = DeliveryToQueue::TempFail("internal error in delivery".into());
                let _ = reply_to.send(rid, &reply, &[]).await;
            }
        });
    }
}
