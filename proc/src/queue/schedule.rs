//! Scheduling of queued messages. In this version: local recipients go to the
//! delivery process at once and are retried with a growing delay on temporary
//! failure; remote recipients stay queued for the outbound side (queue issue).

use super::spool;
use ipc::messages::{DeliveryToQueue, Dest, Envelope, QueueToDelivery, RcptState};
use ipc::Rpc;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    delivery: Rpc<QueueToDelivery, DeliveryToQueue>,
    /// Local deliveries running at once.
    slots: Semaphore,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 1, 2, 4 ... minutes, at most an hour.
fn retry_delay(attempts: u32) -> u64 {
    60u64.saturating_mul(1 << attempts.min(6)).min(3600)
}

impl Scheduler {
    pub fn start(delivery: Rpc<QueueToDelivery, DeliveryToQueue>, _hostname: String) -> Scheduler {
        Scheduler {
            inner: Arc::new(Inner {
                delivery,
                slots: Semaphore::new(8),
            }),
        }
    }

    /// Take charge of a committed (or recovered) message.
    pub fn submit(&self, env: Envelope) {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run(env).await });
    }
}

impl Inner {
    async fn run(&self, mut env: Envelope) {
        loop {
            let t = now();
            let mut changed = false;
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
                let state = self.deliver_local(&env, i, &mailbox).await;
                if state == RcptState::Delivered {
                    delivered.push(mailbox);
                }
                env.recipients[i].state = state;
                changed = true;
            }
            let done = env
                .recipients
                .iter()
                .all(|r| matches!(r.state, RcptState::Delivered | RcptState::Failed { .. }));
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
            if done {
                log::info!("{}: removed", env.id);
                return;
            }
            // Sleep until the next local retry; remote recipients wait for the outbound side.
            let next = env
                .recipients
                .iter()
                .filter(|r| matches!(r.dest, Dest::Local { .. }))
                .filter_map(|r| match r.state {
                    RcptState::Deferred { next_attempt, .. } => Some(next_attempt),
                    _ => None,
                })
                .min();
            match next {
                Some(n) => {
                    tokio::time::sleep(Duration::from_secs(n.saturating_sub(now()).max(1))).await
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
        };
        let reply = self.delivery.call(&req, &[file.as_fd()]).await;
        let delay = started.elapsed().as_secs_f64();
        match reply {
            Ok((DeliveryToQueue::Delivered, _)) => {
                log::info!(
                    "{}: to=<{}> orig_to=<{}> relay=local delay={delay:.2} dsn=2.0.0 status=sent (delivered to maildir)",
                    env.id,
                    mailbox,
                    r.address
                );
                RcptState::Delivered
            }
            Ok((DeliveryToQueue::PermFail(e), _)) => {
                log::info!(
                    "{}: to=<{}> relay=local dsn=5.0.0 status=bounced ({e})",
                    env.id,
                    r.address
                );
                RcptState::Failed { error: e }
            }
            Ok((DeliveryToQueue::TempFail(e), _)) => self.deferred(env, r, attempts, e),
            Err(e) => self.deferred(env, r, attempts, format!("delivery process: {e}")),
        }
    }

    fn deferred(
        &self,
        env: &Envelope,
        r: &ipc::messages::Recipient,
        attempts: u32,
        e: String,
    ) -> RcptState {
        log::info!(
            "{}: to=<{}> relay=local dsn=4.0.0 status=deferred ({e})",
            env.id,
            r.address
        );
        RcptState::Deferred {
            attempts: attempts + 1,
            next_attempt: now() + retry_delay(attempts),
            last_error: e,
        }
    }
}
