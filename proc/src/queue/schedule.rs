//! Scheduling of queued messages: local recipients go to the delivery process,
//! remote ones, grouped by domain, are DKIM-signed by keyholder (sender's domain,
//! when it has a key) and handed to smtp's MTA side. Temporary failures retry with
//! a growing delay; permanent ones are logged (bounces come with the DSN work).

use super::{dsn, spool};
use ipc::messages::{
    DeliveryToQueue, Dest, Envelope, KeyReply, KeyRequest, MtaToQueue, Outcome, QueueToDelivery,
    QueueToMta, RcptState,
};
use ipc::PeerRpc;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

/// The domain a message is DKIM-signed for, or "" for none. Only what this
/// server can vouch for: mail an account submitted (its sender address was
/// checked against the account, and so was the header From) signs with the
/// sender's domain; mail generated here (bounces, DSNs, From MAILER-DAEMON@
/// `local`) with `local`. Anything else, such as mail from port 25 forwarded by an
/// alias, goes out as it came, unsigned.
pub fn dkim_domain(env: &Envelope, local: &str) -> String {
    match env.auth.as_deref() {
        Some(ipc::messages::LOCAL_ORIGIN) => local.to_string(),
        // A local submission: nobody checked its header From.
        Some(a) if a.starts_with(ipc::messages::LOCAL_USER) => String::new(),
        Some(_) => env
            .from
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default(),
        None => String::new(),
    }
}

const NOTIFY_SUCCESS: u64 = smtp_proto::RCPT_NOTIFY_SUCCESS;
const NOTIFY_FAILURE: u64 = smtp_proto::RCPT_NOTIFY_FAILURE;
const NOTIFY_DELAY: u64 = smtp_proto::RCPT_NOTIFY_DELAY;
const NOTIFY_NEVER: u64 = smtp_proto::RCPT_NOTIFY_NEVER;

/// Which report `notify_sender` writes.
#[derive(Clone, Copy)]
enum Notice<'a> {
    Failure,
    Delay,
    /// NOTIFY=SUCCESS; per recipient index, whether it went to a hop
    /// without DSN (relayed) rather than into a mailbox here (delivered).
    Success(&'a [bool]),
}

/// What the queue needs to write bounces.
pub struct Bounces {
    pub dir: Arc<std::sync::RwLock<Arc<crate::directory::Dir>>>,
    pub fs: crate::fsworker::FsWorker,
    pub sync: crate::groupsync::GroupSync,
    pub hostname: String,
    pub domain: String,
    /// Our authserv-id when port 25 checks are on: forwarded mail carrying
    /// our Authentication-Results leaves ARC-sealed (RFC 8617) by `domain`.
    pub arc_authserv_id: Option<String>,
}

/// One queued message's handle, for the admin commands.
struct Ctl {
    /// The envelope as of the last round.
    env: std::sync::Mutex<Envelope>,
    held: std::sync::atomic::AtomicBool,
    removed: std::sync::atomic::AtomicBool,
    flush: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

struct Inner {
    tasks: std::sync::Mutex<std::collections::HashMap<String, Arc<Ctl>>>,
    bounces: Bounces,
    /// EMAIL_QUEUE_RETRY: seconds between attempts, the last repeating.
    retry: Vec<u64>,
    /// EMAIL_QUEUE_LIFETIME in seconds.
    lifetime: u64,
    /// EMAIL_QUEUE_WARN in seconds, 0 for never.
    warn: u64,
    delivery: Arc<PeerRpc<QueueToDelivery, DeliveryToQueue>>,
    keyholder: Arc<PeerRpc<KeyRequest, KeyReply>>,
    mta: Arc<PeerRpc<QueueToMta, MtaToQueue>>,
    /// Local deliveries running at once.
    slots: Semaphore,
}

/// Seconds before a recipient is tried again after one of our own processes
/// failed it (the parent restarts a dead process at once).
const PEER_RETRY: u64 = 2;

use super::epoch_now as now;

impl Scheduler {
    pub fn start(
        delivery: Arc<PeerRpc<QueueToDelivery, DeliveryToQueue>>,
        keyholder: Arc<PeerRpc<KeyRequest, KeyReply>>,
        mta: Arc<PeerRpc<QueueToMta, MtaToQueue>>,
        retry: Vec<u64>,
        lifetime: u64,
        warn: u64,
        bounces: Bounces,
    ) -> Scheduler {
        Scheduler {
            inner: Arc::new(Inner {
                tasks: std::sync::Mutex::new(std::collections::HashMap::new()),
                bounces,
                retry,
                lifetime,
                warn,
                delivery,
                keyholder,
                mta,
                slots: Semaphore::new(8),
            }),
        }
    }

    /// Take charge of a committed message.
    pub fn submit(&self, env: Envelope) {
        spawn_job(self.inner.clone(), env, false);
    }

    /// Take charge of a message found in the spool at start: try it at once, as
    /// its last failure may have been our own crash.
    pub fn submit_recovered(&self, env: Envelope) {
        spawn_job(self.inner.clone(), env, true);
    }
}

impl Scheduler {
    /// Messages in the queue and how many of them are held, for --status.
    pub fn counts(&self) -> Vec<(String, u64)> {
        use std::sync::atomic::Ordering::SeqCst;
        let (n, held) = match self.inner.tasks.lock() {
            Ok(t) => (
                t.len() as u64,
                t.values().filter(|c| c.held.load(SeqCst)).count() as u64,
            ),
            Err(_) => (0, 0),
        };
        vec![("queue_messages".into(), n), ("queue_held".into(), held)]
    }

    /// The admin commands of the control socket.
    pub async fn admin(&self, cmd: ipc::messages::QueueCmd) -> ipc::messages::QueueReply {
        use ipc::messages::{QueueCmd, QueueEntry, QueueReply};
        use std::sync::atomic::Ordering::SeqCst;
        let get = |id: &str| {
            self.inner
                .tasks
                .lock()
                .ok()
                .and_then(|t| t.get(id).cloned())
        };
        let valid = |id: &str| spool::valid_id(id);
        match cmd {
            QueueCmd::List => {
                let tasks: Vec<Arc<Ctl>> = match self.inner.tasks.lock() {
                    Ok(t) => t.values().cloned().collect(),
                    Err(_) => Vec::new(),
                };
                let mut out: Vec<QueueEntry> = tasks
                    .iter()
                    .filter_map(|c| {
                        let e = c.env.lock().ok()?.clone();
                        let last_error = e.recipients.iter().find_map(|r| match &r.state {
                            RcptState::Deferred { last_error, .. } => Some(last_error.clone()),
                            _ => None,
                        });
                        Some(QueueEntry {
                            recipients: e
                                .recipients
                                .iter()
                                .map(|r| (r.address.clone(), state_name(&r.state).into()))
                                .collect(),
                            id: e.id,
                            arrived: e.arrived,
                            size: e.size,
                            from: e.from,
                            held: c.held.load(SeqCst),
                            last_error,
                        })
                    })
                    .collect();
                out.sort_by(|a, b| a.id.cmp(&b.id));
                QueueReply::List(out)
            }
            QueueCmd::Show { id } if valid(&id) => match get(&id) {
                Some(c) => {
                    let e = c.env.lock().map(|e| e.clone());
                    let Ok(e) = e else {
                        return QueueReply::Error("busy".into());
                    };
                    let mut text = format!(
                        "id: {}\nfrom: <{}>\narrived: {}\nsize: {}\nheld: {}\nclient: [{}] helo={}\nauth: {}\n",
                        e.id,
                        e.from,
                        crate::smtp::rfc5322_date(e.arrived),
                        e.size,
                        c.held.load(SeqCst),
                        e.client_ip,
                        e.helo,
                        e.auth.as_deref().unwrap_or("-")
                    );
                    for r in &e.recipients {
                        let extra = match &r.state {
                            RcptState::Deferred {
                                attempts,
                                last_error,
                                ..
                            } => format!(" after {attempts} attempt(s): {last_error}"),
                            RcptState::Failed { error } => format!(": {error}"),
                            _ => String::new(),
                        };
                        text.push_str(&format!(
                            "to: <{}> {}{extra}\n",
                            r.address,
                            state_name(&r.state)
                        ));
                    }
                    let idc = id.clone();
                    let headers = self
                        .inner
                        .bounces
                        .fs
                        .run(move || {
                            let (f, size) = spool::open_msg(&idc)?;
                            let mut buf = vec![0u8; size.min(16 * 1024) as usize];
                            std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 0)?;
                            Ok(buf)
                        })
                        .await
                        .unwrap_or_default();
                    text.push('\n');
                    text.push_str(&String::from_utf8_lossy(dsn::headers_of(&headers)));
                    QueueReply::Show(text)
                }
                None => QueueReply::Error(format!("no message {id} in the queue")),
            },
            QueueCmd::Flush { id: None } => {
                let tasks: Vec<Arc<Ctl>> = self
                    .inner
                    .tasks
                    .lock()
                    .map(|t| t.values().cloned().collect())
                    .unwrap_or_default();
                for c in &tasks {
                    c.flush.store(true, SeqCst);
                    c.wake.notify_one();
                }
                QueueReply::Done(format!(
                    "{} message(s) scheduled for delivery now",
                    tasks.len()
                ))
            }
            QueueCmd::Flush { id: Some(id) } if valid(&id) => match get(&id) {
                Some(c) => {
                    c.flush.store(true, SeqCst);
                    c.wake.notify_one();
                    QueueReply::Done(format!("{id} scheduled for delivery now"))
                }
                None => QueueReply::Error(format!("no message {id} in the queue")),
            },
            QueueCmd::Remove { id } if valid(&id) => match get(&id) {
                Some(c) => {
                    c.removed.store(true, SeqCst);
                    c.held.store(false, SeqCst);
                    c.wake.notify_one();
                    QueueReply::Done(format!("{id} removed"))
                }
                None => QueueReply::Error(format!("no message {id} in the queue")),
            },
            QueueCmd::Hold { id } if valid(&id) => match get(&id) {
                Some(c) => {
                    c.held.store(true, SeqCst);
                    let m = id.clone();
                    let _ = self
                        .inner
                        .bounces
                        .fs
                        .run(move || std::fs::write(format!("hold/{m}"), b""))
                        .await;
                    log::info!("{id}: held by the administrator");
                    QueueReply::Done(format!("{id} held"))
                }
                None => QueueReply::Error(format!("no message {id} in the queue")),
            },
            QueueCmd::Release { id } if valid(&id) => match get(&id) {
                Some(c) => {
                    let m = id.clone();
                    let _ = self
                        .inner
                        .bounces
                        .fs
                        .run(move || std::fs::remove_file(format!("hold/{m}")))
                        .await;
                    c.held.store(false, SeqCst);
                    c.flush.store(true, SeqCst);
                    c.wake.notify_one();
                    log::info!("{id}: released by the administrator");
                    QueueReply::Done(format!("{id} released"))
                }
                None => QueueReply::Error(format!("no message {id} in the queue")),
            },
            _ => QueueReply::Error("not a queue id".into()),
        }
    }
}

fn state_name(s: &RcptState) -> &'static str {
    match s {
        RcptState::Pending => "pending",
        RcptState::Delivered => "sent",
        RcptState::Deferred { .. } => "deferred",
        RcptState::Failed { .. } => "failed",
    }
}

/// A plain function, so that the bounce path (inside `run`) can start another
/// `run` without making the future's type recursive.
fn spawn_run(inner: Arc<Inner>, env: Envelope) {
    spawn_job(inner, env, false);
}

/// One message's job, its panic contained: the message stays in the spool (on
/// disk as it was) and is taken up again when queue next starts.
fn spawn_job(inner: Arc<Inner>, env: Envelope, now: bool) {
    let id = env.id.clone();
    tokio::spawn(async move {
        if crate::contain::contain(inner.clone().run(env, now))
            .await
            .is_err()
        {
            log::error!(
                "{id}: its queue job panicked; the message stays in the spool until queue restarts"
            );
            if let Ok(mut t) = inner.tasks.lock() {
                t.remove(&id);
            }
        }
    });
}

impl Inner {
    async fn run(self: Arc<Self>, mut env: Envelope, now_please: bool) {
        let ctl = Arc::new(Ctl {
            env: std::sync::Mutex::new(env.clone()),
            held: std::sync::atomic::AtomicBool::new(
                std::path::Path::new(&format!("hold/{}", env.id)).exists(),
            ),
            removed: std::sync::atomic::AtomicBool::new(false),
            flush: std::sync::atomic::AtomicBool::new(now_please),
            wake: tokio::sync::Notify::new(),
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.insert(env.id.clone(), ctl.clone());
        }
        self.run_ctl(&mut env, &ctl).await;
        if let Ok(mut t) = self.tasks.lock() {
            t.remove(&env.id);
        }
    }

    async fn run_ctl(self: &Arc<Self>, env: &mut Envelope, ctl: &Ctl) {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            if ctl.removed.load(SeqCst) {
                let id = env.id.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = std::fs::remove_file(format!("hold/{id}"));
                    spool::remove(&id)
                })
                .await;
                log::info!("{}: removed by the administrator", env.id);
                return;
            }
            if ctl.held.load(SeqCst) {
                ctl.wake.notified().await;
                continue;
            }
            let t = if ctl.flush.swap(false, SeqCst) {
                u64::MAX
            } else {
                now()
            };
            let mut changed = false;
            let failed_before: Vec<bool> = env
                .recipients
                .iter()
                .map(|r| matches!(r.state, RcptState::Failed { .. }))
                .collect();
            let delivered_before: Vec<bool> = env
                .recipients
                .iter()
                .map(|r| r.state == RcptState::Delivered)
                .collect();
            // One copy per mailbox, however many addresses (aliases, +tags) led there.
            let mut delivered: Vec<String> = env
                .recipients
                .iter()
                .filter(|r| r.state == RcptState::Delivered)
                .filter_map(|r| match &r.dest {
                    Dest::Local { mailbox } => Some(mailbox.clone()),
                    _ => None,
                })
                .collect();
            for i in 0..env.recipients.len() {
                let due = match &env.recipients[i].state {
                    RcptState::Pending => true,
                    RcptState::Deferred { next_attempt, .. } => *next_attempt <= t,
                    _ => false,
                };
                let Dest::Local { mailbox } = env.recipients[i].dest.clone() else {
                    continue;
                };
                if !due {
                    continue;
                }
                if delivered.contains(&mailbox) {
                    env.recipients[i].state = RcptState::Delivered;
                    changed = true;
                    continue;
                }
                let state = self.deliver_local(env, i, &mailbox).await;
                if state == RcptState::Delivered {
                    delivered.push(mailbox);
                }
                env.recipients[i].state = state;
                changed = true;
            }
            // Remote recipients, one transaction per domain.
            let mut domains: Vec<String> = Vec::new();
            for r in &env.recipients {
                let due = match &r.state {
                    RcptState::Pending => true,
                    RcptState::Deferred { next_attempt, .. } => *next_attempt <= t,
                    _ => false,
                };
                if let (true, Dest::Remote { address }) = (due, &r.dest) {
                    let d = address
                        .rsplit_once('@')
                        .map(|(_, d)| d.to_string())
                        .unwrap_or_default();
                    if !domains.contains(&d) {
                        domains.push(d);
                    }
                }
            }
            let mut relayed = vec![false; env.recipients.len()];
            for d in domains {
                for i in self.deliver_remote(env, &d, t).await {
                    if let Some(r) = relayed.get_mut(i) {
                        *r = true;
                    }
                }
                changed = true;
            }
            // RFC 3461 NOTIFY=SUCCESS: delivered here, or handed to a hop that
            // took no NOTIFY (a hop that did reports itself).
            let succeeded: Vec<usize> = (0..env.recipients.len())
                .filter(|&i| {
                    let r = &env.recipients[i];
                    !delivered_before[i]
                        && r.state == RcptState::Delivered
                        && r.notify & NOTIFY_SUCCESS != 0
                        && (matches!(r.dest, Dest::Local { .. }) || relayed[i])
                })
                .collect();
            if !succeeded.is_empty() {
                self.notify_sender(env, &succeeded, Notice::Success(&relayed))
                    .await;
            }
            let done = env
                .recipients
                .iter()
                .all(|r| matches!(r.state, RcptState::Delivered | RcptState::Failed { .. }));
            let newly_failed: Vec<usize> = (0..env.recipients.len())
                .filter(|&i| {
                    !failed_before[i] && matches!(env.recipients[i].state, RcptState::Failed { .. })
                })
                .collect();
            if !newly_failed.is_empty() {
                self.bounce(env, &newly_failed).await;
            }
            // Late: warn the sender once (RFC 3464 Action: delayed).
            if !done
                && !env.warned
                && self.warn > 0
                && now().saturating_sub(env.arrived) >= self.warn
            {
                let late: Vec<usize> = (0..env.recipients.len())
                    .filter(|&i| matches!(env.recipients[i].state, RcptState::Deferred { .. }))
                    .collect();
                if !late.is_empty() {
                    self.notify_sender(env, &late, Notice::Delay).await;
                    env.warned = true;
                    changed = true;
                }
            }
            let e = env.clone();
            let res = tokio::task::spawn_blocking(move || {
                if done {
                    spool::remove(&e.id)
                } else if changed {
                    spool::update(&e)
                } else {
                    Ok(())
                }
            })
            .await;
            if let Ok(Err(err)) | Err(err) = res.map_err(std::io::Error::other) {
                log::error!("{}: cannot update the spool: {err}", env.id);
            }
            if let Ok(mut snap) = ctl.env.lock() {
                *snap = env.clone();
            }
            if done {
                log::info!("{}: removed", env.id);
                return;
            }
            // Sleep until the next retry.
            let next = env
                .recipients
                .iter()
                .filter_map(|r| match r.state {
                    RcptState::Deferred { next_attempt, .. } => Some(next_attempt),
                    _ => None,
                })
                .min();
            match next {
                Some(n) => {
                    let wait = Duration::from_secs(n.saturating_sub(now()).max(1));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = ctl.wake.notified() => {}
                    }
                }
                None => return,
            }
        }
    }

    async fn deliver_local(&self, env: &Envelope, i: usize, mailbox: &str) -> RcptState {
        let r = &env.recipients[i];
        let attempts = match &r.state {
            RcptState::Deferred { attempts, .. } => *attempts,
            _ => 0,
        };
        let _slot = self.slots.acquire().await;
        let started = std::time::Instant::now();
        let file = {
            let id = env.id.clone();
            tokio::task::spawn_blocking(move || spool::open_msg(&id)).await
        };
        let (file, size) = match file {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                return self.deferred(env, r, attempts, format!("cannot open message: {e}"))
            }
            Err(e) => return self.deferred(env, r, attempts, e.to_string()),
        };
        let req = QueueToDelivery::Deliver {
            id: env.id.clone(),
            mailbox: mailbox.to_string(),
            return_path: env.from.clone(),
            original: r.address.clone(),
            size,
            junk: env.junk,
        };
        let reply = self.delivery.call(&req, &[file.as_fd()]).await;
        let delay = started.elapsed().as_secs_f64();
        match reply {
            Ok((DeliveryToQueue::Delivered, _)) => {
                crate::stats::count(ipc::messages::Event::Delivered);
                log::info!(
                    "{}: to=<{}> orig_to=<{}> relay=local delay={delay:.2} dsn=2.0.0 status=sent (delivered to maildir)",
                    env.id,
                    mailbox,
                    r.address
                );
                RcptState::Delivered
            }
            Ok((DeliveryToQueue::PermFail(e), _)) => {
                crate::stats::count(ipc::messages::Event::Bounced);
                log::info!(
                    "{}: to=<{}> relay=local dsn=5.0.0 status=bounced ({e})",
                    env.id,
                    r.address
                );
                RcptState::Failed { error: e }
            }
            Ok((DeliveryToQueue::TempFail(e), _)) => self.deferred(env, r, attempts, e),
            Err(e) => {
                let e = format!("delivery process: {e}");
                log::info!(
                    "{}: to=<{}> relay=local dsn=4.3.0 status=deferred ({e}; retry in {PEER_RETRY} s)",
                    env.id,
                    r.address
                );
                RcptState::Deferred {
                    attempts,
                    next_attempt: now() + PEER_RETRY,
                    last_error: e,
                }
            }
        }
    }

    /// Send to every due recipient in `domain` in one transaction.
    /// One transaction for the due recipients of `domain`. Returns those that
    /// were relayed to a hop without DSN (their success notice is ours).
    async fn deliver_remote(&self, env: &mut Envelope, domain: &str, t: u64) -> Vec<usize> {
        let idx: Vec<usize> = (0..env.recipients.len())
            .filter(|&i| {
                let r = &env.recipients[i];
                let due = match &r.state {
                    RcptState::Pending => true,
                    RcptState::Deferred { next_attempt, .. } => *next_attempt <= t,
                    _ => false,
                };
                due && matches!(&r.dest, Dest::Remote { address }
                    if address.rsplit_once('@').map(|(_, d)| d) == Some(domain))
            })
            .collect();
        let rcpts: Vec<String> = idx
            .iter()
            .filter_map(|&i| match &env.recipients[i].dest {
                Dest::Remote { address } => Some(address.clone()),
                _ => None,
            })
            .collect();
        let started = std::time::Instant::now();
        let opened = {
            let id = env.id.clone();
            tokio::task::spawn_blocking(move || spool::open_msg(&id)).await
        };
        let (file, size) = match opened {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                self.defer_all(env, &idx, format!("cannot open message: {e}"));
                return Vec::new();
            }
            Err(e) => {
                self.defer_all(env, &idx, e.to_string());
                return Vec::new();
            }
        };
        let sender_domain = dkim_domain(env, &self.bounces.domain);
        let sign = match (&self.bounces.arc_authserv_id, sender_domain.is_empty()) {
            (_, false) => Some(KeyRequest::DkimSign {
                domain: sender_domain,
                size: Some(size),
            }),
            // Arrived on port 25 and leaves again: an alias forwards it.
            (Some(id), true) if env.auth.is_none() => Some(KeyRequest::ArcSeal {
                domain: self.bounces.domain.clone(),
                authserv_id: id.clone(),
                size: Some(size),
            }),
            _ => None,
        };
        let dkim = if let Some(req) = sign {
            // A file of its own: readers never share an offset.
            let own = spool::open_msg(&env.id).map(|(f, _)| f);
            let Ok(own) = own else {
                {
                    self.defer_all(env, &idx, "cannot reopen message".into());
                    return Vec::new();
                };
            };
            match self.keyholder.call(&req, &[own.as_fd()]).await {
                Ok((KeyReply::DkimHeader(h), _)) => Some(h),
                Ok((KeyReply::Error(e), _)) => {
                    log::info!("{}: not signed: {e}", env.id);
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    self.peer_down(env, &idx, format!("keyholder: {e}"));
                    return Vec::new();
                }
            }
        } else {
            None
        };
        let rcpt_dsn = idx
            .iter()
            .map(|&i| {
                let r = &env.recipients[i];
                (
                    r.notify,
                    Some(r.orcpt.clone().unwrap_or_else(|| r.address.clone())),
                )
            })
            .collect();
        let req = QueueToMta::Send {
            id: env.id.clone(),
            domain: domain.to_string(),
            from: env.from.clone(),
            rcpts: rcpts.clone(),
            rcpt_dsn,
            size,
            dkim,
            ret_full: env.ret_full,
            envid: env.envid.clone(),
            body_8bit: env.body_8bit,
            smtputf8: env.smtputf8,
        };
        let reply = self.mta.call(&req, &[file.as_fd()]).await;
        let delay = started.elapsed().as_secs_f64();
        let (relay, outcomes, hop_dsn) = match reply {
            Ok((
                MtaToQueue::Result {
                    relay,
                    outcomes,
                    dsn,
                },
                _,
            )) if outcomes.len() == idx.len() => (relay, outcomes, dsn),
            Ok(_) => {
                self.defer_all(env, &idx, "bad answer from the MTA side".into());
                return Vec::new();
            }
            Err(e) => {
                self.peer_down(env, &idx, format!("smtp process: {e}"));
                return Vec::new();
            }
        };
        let remote_mta = dsn::mta_of(&relay);
        let mut relayed = Vec::new();
        for ((&i, addr), o) in idx.iter().zip(&rcpts).zip(outcomes) {
            if remote_mta.is_some() {
                env.recipients[i].remote_mta = remote_mta.clone();
            }
            let attempts = match &env.recipients[i].state {
                RcptState::Deferred { attempts, .. } => *attempts,
                _ => 0,
            };
            let id = &env.id;
            env.recipients[i].state = match o {
                Outcome::Sent { reply } => {
                    crate::stats::count(ipc::messages::Event::Relayed);
                    log::info!("{id}: to=<{addr}> relay={relay} delay={delay:.2} dsn=2.0.0 status=sent ({reply})");
                    if !hop_dsn {
                        relayed.push(i);
                    }
                    RcptState::Delivered
                }
                Outcome::Failed { reply } => {
                    crate::stats::count(ipc::messages::Event::Bounced);
                    let dsn = dsn::status(&reply);
                    log::info!("{id}: to=<{addr}> relay={relay} delay={delay:.2} dsn={dsn} status=bounced ({reply})");
                    RcptState::Failed { error: reply }
                }
                Outcome::Deferred { reply } => {
                    self.next_state(env.id.as_str(), env.arrived, addr, &relay, attempts, reply)
                }
            };
        }
        relayed
    }

    /// Tell the sender about recipients that failed (RFC 3464), unless the sender
    /// is `<>` or asked for no notice (NOTIFY=NEVER, or NOTIFY without FAILURE).
    async fn bounce(self: &Arc<Self>, env: &Envelope, idx: &[usize]) {
        self.notify_sender(env, idx, Notice::Failure).await;
    }

    /// Failure report, or (`delayed`) a warning that delivery is late: RFC 3464.
    /// Returns true when a report was queued.
    async fn notify_sender(
        self: &Arc<Self>,
        env: &Envelope,
        idx: &[usize],
        notice: Notice<'_>,
    ) -> bool {
        let delayed = matches!(notice, Notice::Delay);
        let success = matches!(notice, Notice::Success(_));
        let wanted = match notice {
            Notice::Failure => NOTIFY_FAILURE,
            Notice::Delay => NOTIFY_DELAY,
            Notice::Success(_) => NOTIFY_SUCCESS,
        };
        if env.from.is_empty() {
            log::info!(
                "{}: not bounced: null sender <> ({} recipient(s) to report)",
                env.id,
                idx.len()
            );
            return false;
        }
        let failed: Vec<dsn::Failed<'_>> = idx
            .iter()
            .map(|&i| &env.recipients[i])
            .filter(|r| {
                r.notify & NOTIFY_NEVER == 0
                    && ((r.notify == 0 && !success) || r.notify & wanted != 0)
            })
            .filter_map(|r| match &r.state {
                RcptState::Delivered if success => Some(dsn::Failed { rcpt: r, error: "" }),
                RcptState::Failed { error } if !delayed && !success => {
                    Some(dsn::Failed { rcpt: r, error })
                }
                RcptState::Deferred { last_error, .. } if delayed => Some(dsn::Failed {
                    rcpt: r,
                    error: last_error,
                }),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            return false;
        }
        let b = &self.bounces;
        let dir = b.dir.read().map(|d| d.clone()).unwrap_or_default();
        let dests = match dir.resolve_sender(&env.from) {
            Ok(d) => d,
            Err(crate::directory::Refusal::Relay) => vec![Dest::Remote {
                address: env.from.clone(),
            }],
            Err(e) => {
                log::info!(
                    "{}: not bounced: sender <{}> cannot receive mail here ({e:?})",
                    env.id,
                    env.from
                );
                return false;
            }
        };
        let full = env.ret_full == Some(true);
        let src = env.id.clone();
        let original =
            b.fs.run(move || {
                let (f, size) = spool::open_msg(&src)?;
                let limit = if full {
                    size.min(16 << 20)
                } else {
                    size.min(64 * 1024)
                };
                let mut buf = vec![0u8; limit as usize];
                std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 0)?;
                Ok(buf)
            })
            .await;
        let original = match original {
            Ok(o) => o,
            Err(e) => {
                log::error!("{}: cannot read the message for its bounce: {e}", env.id);
                return false;
            }
        };
        let id = spool::new_id();
        let t = now();
        let relayed_of_report: Vec<bool> = match notice {
            Notice::Success(relayed) => failed
                .iter()
                .map(|f| {
                    env.recipients
                        .iter()
                        .position(|r| std::ptr::eq(r, f.rcpt))
                        .and_then(|i| relayed.get(i).copied())
                        .unwrap_or(false)
                })
                .collect(),
            _ => Vec::new(),
        };
        let kind = match notice {
            Notice::Failure => dsn::Kind::Failure,
            Notice::Delay => dsn::Kind::Delay {
                until: env.arrived + self.lifetime,
            },
            Notice::Success(_) => dsn::Kind::Success {
                relayed: &relayed_of_report,
            },
        };
        let rep = dsn::Reporter {
            hostname: &b.hostname,
            postmaster_domain: &b.domain,
            id: &id,
            now: t,
        };
        let body = dsn::build(&rep, env, &failed, &original, kind);
        let benv = Envelope {
            id: id.clone(),
            from: String::new(),
            recipients: dests
                .into_iter()
                .map(|dest| ipc::messages::Recipient {
                    address: env.from.clone(),
                    orcpt: None,
                    notify: 0,
                    dest,
                    state: RcptState::Pending,
                    remote_mta: None,
                })
                .collect(),
            arrived: t,
            size: body.len() as u64,
            ret_full: None,
            envid: None,
            body_8bit: false,
            smtputf8: false,
            helo: b.hostname.clone(),
            client_ip: "127.0.0.1".into(),
            auth: Some(ipc::messages::LOCAL_ORIGIN.into()),
            warned: false,
            junk: false,
        };
        let e2 = benv.clone();
        let written =
            b.fs.run(move || {
                use std::io::Write;
                let mut f = spool::create(&e2.id)?;
                f.write_all(&body)?;
                spool::place(&f, &e2)?;
                Ok(f)
            })
            .await;
        let durable = match written {
            Ok(f) => b.sync.sync(vec![f], spool::placed_dirs()).await,
            Err(e) => Err(e),
        };
        match durable {
            Ok(()) => {
                let what = match notice {
                    Notice::Delay => "delay warning",
                    Notice::Success(_) => "delivery status notification",
                    Notice::Failure => "non-delivery notification",
                };
                log::info!("{}: sender {what}: {id}", env.id);
                spawn_run(self.clone(), benv);
                true
            }
            Err(e) => {
                spool::abort(&id);
                log::error!("{}: cannot queue the bounce: {e}", env.id);
                false
            }
        }
    }

    /// One of our own processes failed (died and is being restarted, or did
    /// not answer): not the recipient's fault, so no attempt is counted and
    /// the next one comes in PEER_RETRY seconds.
    fn peer_down(&self, env: &mut Envelope, idx: &[usize], e: String) {
        for &i in idx {
            let r = &mut env.recipients[i];
            let attempts = match &r.state {
                RcptState::Deferred { attempts, .. } => *attempts,
                _ => 0,
            };
            log::info!(
                "{}: to=<{}> dsn=4.3.0 status=deferred ({e}; retry in {PEER_RETRY} s)",
                env.id,
                r.address
            );
            r.state = RcptState::Deferred {
                attempts,
                next_attempt: now() + PEER_RETRY,
                last_error: e.clone(),
            };
        }
    }

    fn defer_all(&self, env: &mut Envelope, idx: &[usize], e: String) {
        for &i in idx {
            let r = env.recipients[i].clone();
            let attempts = match &r.state {
                RcptState::Deferred { attempts, .. } => *attempts,
                _ => 0,
            };
            env.recipients[i].state = self.deferred(env, &r, attempts, e.clone());
        }
    }

    fn deferred(
        &self,
        env: &Envelope,
        r: &ipc::messages::Recipient,
        attempts: u32,
        e: String,
    ) -> RcptState {
        let relay = if matches!(r.dest, Dest::Local { .. }) {
            "local"
        } else {
            "none"
        };
        self.next_state(&env.id, env.arrived, &r.address, relay, attempts, e)
    }

    /// After a temporary failure: retry later, or give up once the message is
    /// older than EMAIL_QUEUE_LIFETIME.
    fn next_state(
        &self,
        id: &str,
        arrived: u64,
        addr: &str,
        relay: &str,
        attempts: u32,
        e: String,
    ) -> RcptState {
        let t = now();
        if t.saturating_sub(arrived) >= self.lifetime {
            crate::stats::count(ipc::messages::Event::Bounced);
            // `attempts` counts the earlier ones; this one failed too.
            let made = attempts + 1;
            log::info!("{id}: to=<{addr}> relay={relay} dsn=4.4.7 status=expired (gave up after {made} attempts: {e})");
            return RcptState::Failed {
                error: format!("{}{e}", dsn::EXPIRED),
            };
        }
        let base = self.retry[(attempts as usize).min(self.retry.len() - 1)];
        // Up to 10% jitter so retries of many messages do not all fire at once.
        let jitter = if base >= 10 {
            rand::random::<u64>() % (base / 10)
        } else {
            0
        };
        crate::stats::count(ipc::messages::Event::Deferred);
        let dsn = match dsn::status(&e) {
            s if s.starts_with('4') => s,
            _ => "4.0.0".into(),
        };
        log::info!("{id}: to=<{addr}> relay={relay} dsn={dsn} status=deferred ({e})");
        RcptState::Deferred {
            attempts: attempts + 1,
            next_attempt: t + base + jitter,
            last_error: e,
        }
    }
}
