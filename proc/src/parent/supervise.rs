//! The parent's event loop: signals, child deaths, control requests.
//! A dead child is restarted alone: it gets fresh edges to every peer, and
//! each running peer is handed its end of them (`ParentToChild::NewEdge`), so
//! the sessions in the other processes go on. A child that keeps crashing is
//! restarted later and later (at most MAX_BACKOFF apart); the parent itself
//! never gives up while it can serve.

use super::broker;
use super::control::{self, ChildRpc, ControlHandle, Shared};
use super::listeners::Bound;
use super::prepare::{self, Prepared};
use super::spawn::{self, Spawned};
use crate::config::ServerConfig;
use ipc::messages::{ChildToParent, ParentToChild, Role};
use ipc::Rpc;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

/// Crashes of one role within this window count together for the backoff.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// The longest wait before a crashing role is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Running {
    set: Vec<Spawned>,
    rpcs: Vec<(Role, ChildRpc)>,
}

/// Watch one child's edge: when it closes, tell the loop (role, generation).
fn attach_one(
    s: &Spawned,
    death_tx: &mpsc::Sender<(Role, u64)>,
    generation: u64,
) -> Option<ChildRpc> {
    let fd = match s.edge.try_clone() {
        Ok(f) => f,
        Err(e) => {
            log::error!("dup edge of {}: {e}", s.role.title());
            return None;
        }
    };
    match ipc::Channel::new(fd) {
        Ok(ch) => {
            let (rpc, mut rx) = Rpc::start(ch, s.role.title());
            let tx = death_tx.clone();
            let role = s.role;
            tokio::spawn(async move {
                while rx.recv().await.is_some() {}
                // The edge closed: the child is gone (or going).
                let _ = tx.send((role, generation)).await;
            });
            Some(rpc)
        }
        Err(e) => {
            log::error!("edge of {}: {e}", s.role.title());
            None
        }
    }
}

/// What the broker may do follows the configuration in force.
fn set_allowed(allowed: &broker::Shared, cfg: &ServerConfig) {
    let now = broker::Settings::of(cfg);
    match allowed.write() {
        Ok(mut a) => *a = now,
        Err(p) => *p.into_inner() = now,
    }
}

/// Tell the control socket's side who is running now.
fn publish(run: &Running, shared: &Shared) {
    if let Ok(mut st) = shared.lock() {
        st.children = run.set.iter().map(|s| (s.role, s.child.id())).collect();
        let find = |role| {
            run.rpcs
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, r)| r.clone())
        };
        st.keyholder = find(Role::Keyholder);
        st.queue = find(Role::Queue);
        st.rpcs = run.rpcs.clone();
    }
}

/// Before the `n`th start within the window: none for the first restart, then
/// 0.25 s, 0.75 s, 1.75 s ... at most MAX_BACKOFF.
fn backoff(n: usize) -> Duration {
    let steps = n.saturating_sub(1).min(20) as u32;
    Duration::from_millis(250 * ((1u64 << steps) - 1)).min(MAX_BACKOFF)
}

fn describe_exit(s: &mut Spawned) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    match s.child.try_wait() {
        Ok(Some(st)) => Some(match (st.code(), st.signal()) {
            (Some(c), _) => format!(
                "{}[{}] exited with status {c}",
                s.role.title(),
                s.child.id()
            ),
            (_, Some(sig)) => format!(
                "{}[{}] killed by signal {sig}{}",
                s.role.title(),
                s.child.id(),
                signal_note(sig)
            ),
            _ => format!("{}[{}] exited", s.role.title(), s.child.id()),
        }),
        _ => None,
    }
}

/// The signal's name, and what SIGSYS means here.
fn signal_note(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(nix::sys::signal::Signal::SIGSYS) => " (SIGSYS): a system call outside its seccomp \
            allow-list; the kernel log names it (audit type 1326)"
            .to_string(),
        Ok(s) => format!(" ({})", s.as_str()),
        Err(_) => String::new(),
    }
}

/// The signals the parent acts on, registered before it reports ready: a SIGTERM
/// right after start-up (systemd stop, a script) must reach the loop below, not
/// the default action, which would leave the pid file behind.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    chld: Signal,
}

impl Signals {
    /// Must run inside the runtime that will run `supervise`.
    pub fn register() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            chld: signal(SignalKind::child())?,
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn supervise(
    mut cfg: ServerConfig,
    mut prep: Prepared,
    bound: Vec<Bound>,
    set: Vec<Spawned>,
    control_listener: control::Listener,
    signals: Signals,
) -> i32 {
    let Signals {
        mut term,
        mut int,
        mut hup,
        mut chld,
    } = signals;
    let shared: Shared = Arc::new(Mutex::new(control::State::new()));
    let (death_tx, mut death_rx) = mpsc::channel::<(Role, u64)>(16);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlHandle>(16);
    control::serve(control_listener, shared.clone(), ctl_tx, &cfg);
    let mut generation: HashMap<Role, u64> = HashMap::new();
    let mut run = Running {
        rpcs: Vec::new(),
        set: Vec::new(),
    };
    let allowed: broker::Shared = Arc::new(std::sync::RwLock::new(broker::Settings::of(&cfg)));
    for mut s in set {
        if let Some(b) = s.broker.take() {
            broker::serve(b, allowed.clone());
        }
        generation.insert(s.role, 1);
        if let Some(rpc) = attach_one(&s, &death_tx, 1) {
            run.rpcs.push((s.role, rpc));
        }
        run.set.push(s);
    }
    publish(&run, &shared);
    let mut crashes: HashMap<Role, Vec<Instant>> = HashMap::new();
    // Roles waiting to be started again, and when.
    let mut pending: Vec<(Role, tokio::time::Instant)> = Vec::new();
    let mut key_id = 1u32;
    if crate::fault::armed() {
        log::warn!(
            "{}=1: fault points armed (EHLO sx-fault-panic.invalid and IMAP tag sx-fault-panic panic their session); for tests only",
            crate::fault::VAR
        );
    }
    log::info!("started: {} processes serving", run.set.len());

    loop {
        let mut check = false;
        let next_due = pending.iter().map(|(_, t)| *t).min();
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                key_id += 1;
                let _ = reload(&mut cfg, &mut prep, &run, key_id).await;
                set_allowed(&allowed, &cfg);
            }
            _ = chld.recv() => check = true,
            Some((role, g)) = death_rx.recv() => check = generation.get(&role) == Some(&g),
            Some(h) = ctl_rx.recv() => match h {
                ControlHandle::Reload(done) => {
                    key_id += 1;
                    let r = reload(&mut cfg, &mut prep, &run, key_id).await;
                    set_allowed(&allowed, &cfg);
                    let _ = done.send(r);
                }
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)), if next_due.is_some() => {}
        }
        if check {
            // SIGCHLD or a closed edge: find who died (give the kernel a moment to reap).
            let mut died: Vec<(Role, String)> = Vec::new();
            for _ in 0..10 {
                died = run
                    .set
                    .iter_mut()
                    .filter_map(|s| describe_exit(s).map(|d| (s.role, d)))
                    .collect();
                if !died.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for (role, what) in died {
                run.set.retain(|s| s.role != role);
                run.rpcs.retain(|(r, _)| *r != role);
                let now = Instant::now();
                let list = crashes.entry(role).or_default();
                list.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
                list.push(now);
                let delay = backoff(list.len());
                if delay.is_zero() {
                    log::error!("{what}; restarting it");
                } else {
                    log::error!(
                        "{what}; {} crashes within {} s: restarting it in {:.2} s",
                        list.len(),
                        CRASH_WINDOW.as_secs(),
                        delay.as_secs_f64()
                    );
                }
                pending.push((role, tokio::time::Instant::now() + delay));
            }
            publish(&run, &shared);
        }
        let now = tokio::time::Instant::now();
        let due: Vec<Role> = pending
            .iter()
            .filter(|(_, t)| *t <= now)
            .map(|(r, _)| *r)
            .collect();
        if due.is_empty() {
            continue;
        }
        pending.retain(|(r, _)| !due.contains(r));
        match spawn::spawn_roles(&cfg, &prep, &bound, &due) {
            Ok((set, peer_ends)) => {
                for mut s in set {
                    if let Some(b) = s.broker.take() {
                        broker::serve(b, allowed.clone());
                    }
                    let g = generation.entry(s.role).or_insert(0);
                    *g += 1;
                    if let Some(rpc) = attach_one(&s, &death_tx, *g) {
                        run.rpcs.push((s.role, rpc));
                    }
                    log::info!("restarted: {}[{}] serving", s.role.title(), s.child.id());
                    run.set.push(s);
                }
                for (role, name, fd) in peer_ends {
                    // A peer that is itself down gets its end when it restarts.
                    if let Some((_, rpc)) = run.rpcs.iter().find(|(r, _)| *r == role) {
                        let msg = ParentToChild::NewEdge(name);
                        if let Err(e) = rpc.notify(&msg, &[fd.as_fd()]).await {
                            log::warn!("new edge for {}: {e}", role.title());
                        }
                    }
                }
                if let Ok(mut st) = shared.lock() {
                    st.restarts += 1;
                }
                publish(&run, &shared);
            }
            Err(e) => {
                // A start that fails counts as a crash of the role, so a role
                // that cannot start backs off like one that keeps dying
                // (at least 1 s, at most MAX_BACKOFF) instead of looping.
                let now = Instant::now();
                let mut delay = Duration::from_secs(1);
                for r in &due {
                    let list = crashes.entry(*r).or_default();
                    list.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
                    list.push(now);
                    delay = delay.max(backoff(list.len()));
                }
                log::error!(
                    "restart failed: {e}; trying again in {:.2} s",
                    delay.as_secs_f64()
                );
                let at = tokio::time::Instant::now() + delay;
                pending.extend(due.into_iter().map(|r| (r, at)));
            }
        }
    }
    log::info!("stopping");
    spawn::stop_in_order(&mut run.set, Duration::from_secs(cfg.shutdown_timeout));
    log::info!("stopped");
    0
}

/// SIGHUP: re-read config, certificate, DKIM keys and accounts; push to children.
/// A bad new config is logged and the running one kept.
async fn reload(
    cfg: &mut ServerConfig,
    prep: &mut Prepared,
    run: &Running,
    key_id: u32,
) -> Result<(), String> {
    let new_cfg = match cfg.reload() {
        // Where logs go is set at start (a daemon's log file) and kept.
        Ok(c) => ServerConfig { log: cfg.log, ..c },
        Err(e) => {
            log::error!("reload: {e}; keeping the running configuration");
            return Err(e.to_string());
        }
    };
    let new_prep = match prepare::load(&new_cfg, key_id) {
        Ok(p) => p,
        Err(e) => {
            log::error!("reload: {e}; keeping the running configuration");
            return Err(e);
        }
    };
    if new_cfg.listen != cfg.listen
        || super::listeners::services(&new_cfg).map(|s| s.1)
            != super::listeners::services(cfg).map(|s| s.1)
    {
        log::warn!("reload: listening addresses or ports changed; they take effect on restart");
    }
    *cfg = new_cfg;
    *prep = new_prep;
    for (role, rpc) in &run.rpcs {
        let settings = prep.settings(cfg, *role);
        let blob = match role {
            Role::Keyholder => Some(crate::blob::write(&prep.secrets())),
            Role::Smtp | Role::Queue => Some(crate::blob::write(&prep.directory())),
            _ => None,
        };
        let secrets = if let Some(blob) = blob {
            match blob {
                Ok(f) => Some(f),
                Err(e) => {
                    log::error!("reload: memfd for {}: {e}", role.title());
                    return Err(e.to_string());
                }
            }
        } else {
            None
        };
        let fds: Vec<_> = secrets.iter().map(|f| f.as_fd()).collect();
        let req = ParentToChild::Reload(settings);
        let call = rpc.call(&req, &fds);
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok((ChildToParent::Reloaded, _))) => {}
            Ok(Ok((other, _))) => log::warn!("reload: {} answered {other:?}", role.title()),
            Ok(Err(e)) => log::warn!("reload: {}: {e}", role.title()),
            Err(_) => log::warn!("reload: {} did not answer", role.title()),
        }
    }
    log::info!(
        "reloaded configuration, certificate, {} DKIM key(s), {} account(s)",
        prep.dkim.len(),
        prep.accounts.len()
    );
    Ok(())
}
