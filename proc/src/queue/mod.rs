//! queue — user `_sxqueue` (EMAIL_USER_QUEUE), chrooted in EMAIL_QUEUE_DIR.
//!
//! May touch: the spool (tmp/ msg/ env/ corrupt/) and `greylist` under its
//! chroot, nothing else.
//!
//! Answers smtp: `Create` (a new O_EXCL spool file, fd handed back), `Commit`
//! (fsync body, write envelope, fsync dirs, then `Committed`), `Abort`,
//! `Greylist` (greylist.rs: the triplet state, kept in `greylist`).
//! Asks delivery to `Deliver` local recipients (read-only fd of the body),
//! keyholder to `DkimSign` (mail of our users) or `ArcSeal` (mail forwarded
//! by an alias), smtp's MTA side to `Send`. Answers from the parent:
//! Queue (admin commands), Reload (directory), NewEdge (an edge of a restarted
//! peer), Ping, Stats, Shutdown.

mod dsn;
pub mod envelope_file;
pub mod greylist;
mod schedule;
pub mod spool;

use crate::startup::{self, ChildCtx};
use ipc::messages::FdName;
use ipc::messages::{QueueToSmtp, Role, SmtpToQueue};
use ipc::{Channel, FrameError, PeerRpc};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Spool files smtp is writing, by id (bounded by smtp's connection limit).
type Open = Arc<Mutex<HashMap<String, std::fs::File>>>;

const MAX_OPEN: usize = 4096;

pub async fn run(mut ctx: ChildCtx) -> i32 {
    let smtp: Channel<QueueToSmtp, SmtpToQueue> = match startup::peer(&mut ctx, Role::Smtp) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let delivery = match startup::peer(&mut ctx, Role::Delivery) {
        // Writing and syncing a message of EMAIL_MAX_MESSAGE_SIZE.
        Ok(c) => Arc::new(PeerRpc::new(c, "queue->delivery", Duration::from_secs(600))),
        Err(code) => return code,
    };
    let keyholder = match startup::peer(&mut ctx, Role::Keyholder) {
        // Hashing a whole message for DKIM.
        Ok(c) => Arc::new(PeerRpc::new(
            c,
            "queue->keyholder",
            Duration::from_secs(300),
        )),
        Err(code) => return code,
    };
    let mta = match startup::edge(&mut ctx, &ipc::messages::FdName::Outbound) {
        // One remote delivery: every MX address, 600 s of work each at most.
        Ok(c) => Arc::new(PeerRpc::new(
            c,
            "queue->smtp (outbound)",
            Duration::from_secs(3600),
        )),
        Err(code) => return code,
    };
    let queued = match tokio::task::spawn_blocking(spool::init).await {
        Ok(Ok(q)) => q,
        Ok(Err(e)) => {
            log::error!("spool: {e}");
            return 74;
        }
        Err(_) => return 70,
    };
    if !queued.is_empty() {
        log::info!("{} message(s) in the queue", queued.len());
    }
    let st = ctx.start.settings.clone();
    let retry = if st.queue_retry.is_empty() {
        vec![60]
    } else {
        st.queue_retry.clone()
    };
    let directory = match ctx
        .take(&ipc::messages::FdName::Directory)
        .map(crate::blob::read::<ipc::messages::Directory>)
    {
        Some(Ok(d)) => crate::directory::Dir::new(d, &st.domains).with_host(&st.hostname),
        Some(Err(e)) => {
            log::error!("cannot read the account directory: {e}");
            return 70;
        }
        None => {
            log::error!("no account directory was handed down");
            return 70;
        }
    };
    let dir = Arc::new(std::sync::RwLock::new(Arc::new(directory)));
    let fs = match crate::fsworker::FsWorker::start("sx-queue-fs") {
        Ok(f) => f,
        Err(e) => {
            log::error!("cannot start the fs thread: {e}");
            return 71;
        }
    };
    let committer = match crate::groupsync::GroupSync::start("sx-queue-sync") {
        Ok(c) => c,
        Err(e) => {
            log::error!("cannot start the committer: {e}");
            return 71;
        }
    };
    let bounces = schedule::Bounces {
        dir: dir.clone(),
        fs: fs.clone(),
        sync: committer.clone(),
        hostname: st.hostname.clone(),
        domain: st
            .domains
            .first()
            .cloned()
            .unwrap_or_else(|| st.hostname.clone()),
        arc_authserv_id: st.checks.enabled.then(|| st.checks.authserv_id.clone()),
    };
    let sched = schedule::Scheduler::start(
        delivery.clone(),
        keyholder.clone(),
        mta.clone(),
        retry,
        st.queue_lifetime,
        st.queue_warn,
        bounces,
    );
    for q in queued {
        sched.submit_recovered(q.env);
    }
    let counted = sched.clone();
    crate::stats::gauges(move || counted.counts());
    let smtp = Arc::new(smtp);
    let open: Open = Arc::new(Mutex::new(HashMap::new()));
    let grey = Arc::new(Mutex::new(greylist::Greylist::load(
        std::path::Path::new(greylist::FILE),
        epoch_now(),
    )));
    tokio::spawn(serve_smtp(
        smtp,
        open.clone(),
        sched.clone(),
        committer.clone(),
        fs.clone(),
        grey.clone(),
    ));
    startup::ready(&ctx.parent).await;
    while let Some(r) = startup::next_from_parent(&ctx.parent).await {
        if let ipc::messages::ParentToChild::NewEdge(name) = r.msg {
            let Some(fd) = r.fds.into_iter().next() else {
                continue;
            };
            let installed = match name.clone() {
                FdName::Peer(Role::Smtp) => Channel::new(fd).map(|c| {
                    tokio::spawn(serve_smtp(
                        Arc::new(c),
                        open.clone(),
                        sched.clone(),
                        committer.clone(),
                        fs.clone(),
                        grey.clone(),
                    ));
                }),
                FdName::Peer(Role::Delivery) => Channel::new(fd).map(|c| delivery.replace(c)),
                FdName::Peer(Role::Keyholder) => Channel::new(fd).map(|c| keyholder.replace(c)),
                FdName::Outbound => Channel::new(fd).map(|c| mta.replace(c)),
                other => {
                    log::warn!("ipc parent: no use for a new {other:?} edge");
                    Ok(())
                }
            };
            if let Err(e) = installed {
                log::error!("new {name:?} edge: {e}");
            }
        } else if let ipc::messages::ParentToChild::Queue(cmd) = r.msg {
            let reply = sched.admin(cmd).await;
            let _ = ctx
                .parent
                .send(r.id, &ipc::messages::ChildToParent::Queue(reply), &[])
                .await;
        } else if let ipc::messages::ParentToChild::Reload(new) = r.msg {
            match r
                .fds
                .into_iter()
                .next()
                .map(crate::blob::read::<ipc::messages::Directory>)
            {
                Some(Ok(d)) => {
                    if let Ok(mut cur) = dir.write() {
                        *cur = Arc::new(
                            crate::directory::Dir::new(d, &new.domains).with_host(&new.hostname),
                        );
                    }
                }
                Some(Err(e)) => log::error!("reload: cannot read the account directory: {e}"),
                None => {}
            }
            let _ = ctx
                .parent
                .send(r.id, &ipc::messages::ChildToParent::Reloaded, &[])
                .await;
        }
    }
    0
}

/// Seconds since the epoch.
pub fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn serve_smtp(
    smtp: Arc<Channel<QueueToSmtp, SmtpToQueue>>,
    open: Open,
    sched: schedule::Scheduler,
    committer: crate::groupsync::GroupSync,
    fs: crate::fsworker::FsWorker,
    grey: Arc<Mutex<greylist::Greylist>>,
) {
    // Files this smtp process opened: when it dies they will never be
    // committed, so they are removed when its edge closes.
    let mine: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    loop {
        let Some(r) = smtp.recv_logged("smtp").await else {
            let left: Vec<String> = mine
                .lock()
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default();
            for id in left {
                if open.lock().is_ok_and(|mut m| m.remove(&id).is_some()) {
                    log::info!("{id}: smtp went away before the commit; spool file removed");
                    spool::abort(&id);
                }
            }
            return;
        };
        let (smtp, open, sched, committer, fs, mine, grey) = (
            smtp.clone(),
            open.clone(),
            sched.clone(),
            committer.clone(),
            fs.clone(),
            mine.clone(),
            grey.clone(),
        );
        tokio::spawn(async move {
            match r.msg {
                SmtpToQueue::Create => {
                    let too_many = open.lock().map(|m| m.len() >= MAX_OPEN).unwrap_or(true);
                    let made = if too_many {
                        Err(std::io::Error::other("too many messages in progress"))
                    } else {
                        let id = spool::new_id();
                        fs.run(move || spool::create(&id).map(|f| (id, f))).await
                    };
                    match made {
                        Ok((id, f)) => {
                            // Registered before smtp can possibly send the Commit.
                            let sent = match f.try_clone() {
                                Ok(dup) => {
                                    if let Ok(mut m) = open.lock() {
                                        m.insert(id.clone(), f);
                                    }
                                    if let Ok(mut m) = mine.lock() {
                                        m.insert(id.clone());
                                    }
                                    smtp.send(
                                        r.id,
                                        &QueueToSmtp::Created { id: id.clone() },
                                        &[dup.as_fd()],
                                    )
                                    .await
                                }
                                Err(e) => Err(FrameError::Io(e)),
                            };
                            if sent.is_err() {
                                if let Ok(mut m) = open.lock() {
                                    m.remove(&id);
                                }
                                spool::abort(&id);
                            }
                        }
                        Err(e) => {
                            log::error!("cannot create spool file: {e}");
                            let _ = smtp
                                .send(r.id, &QueueToSmtp::Error(e.to_string()), &[])
                                .await;
                        }
                    }
                }
                SmtpToQueue::Commit { envelope } => {
                    let id = envelope.id.clone();
                    if let Ok(mut m) = mine.lock() {
                        m.remove(&id);
                    }
                    let file = open.lock().ok().and_then(|mut m| m.remove(&id));
                    let reply = match file {
                        None => QueueToSmtp::Error(format!("no spool file {id} in progress")),
                        Some(file) => {
                            let env = envelope.clone();
                            let placed = fs
                                .run(move || spool::place(&file, &env).map(|_| file))
                                .await;
                            let durable = match placed {
                                Ok(file) => committer.sync(vec![file], spool::placed_dirs()).await,
                                Err(e) => Err(e),
                            };
                            match durable {
                                Ok(()) => QueueToSmtp::Committed { id: id.clone() },
                                Err(e) => {
                                    log::error!("{id}: cannot commit to the spool: {e}");
                                    spool::abort(&id);
                                    QueueToSmtp::Error(e.to_string())
                                }
                            }
                        }
                    };
                    let ok = matches!(reply, QueueToSmtp::Committed { .. });
                    let _ = smtp.send(r.id, &reply, &[]).await;
                    if ok {
                        sched.submit(envelope);
                    }
                }
                SmtpToQueue::Greylist {
                    net,
                    triplet,
                    delay,
                    expire,
                } => {
                    let now = epoch_now();
                    // Off the runtime threads: a compaction rewrites the file.
                    let wait = tokio::task::spawn_blocking(move || {
                        grey.lock()
                            .map(|mut g| g.check(&net, &triplet, delay, expire, now))
                            .unwrap_or(0)
                    })
                    .await
                    .unwrap_or(0);
                    let _ = smtp
                        .send(r.id, &QueueToSmtp::Greylisted { wait }, &[])
                        .await;
                }
                SmtpToQueue::Abort { id } => {
                    if let Ok(mut m) = mine.lock() {
                        m.remove(&id);
                    }
                    // Only a file still being written: one whose commit has
                    // begun (smtp gave up waiting) is left to that commit.
                    let was_open = spool::valid_id(&id)
                        && open.lock().is_ok_and(|mut m| m.remove(&id).is_some());
                    if was_open {
                        spool::abort(&id);
                    }
                }
            }
        });
    }
}
