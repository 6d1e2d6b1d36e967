//! The parent's event loop: signals, child deaths, control requests.
//! A dead child takes the whole set down and a new set is started (peer edges
//! connect every child, so they are replaced together); 5 crashes within a
//! minute and the parent gives up.

use super::control::{self, ControlHandle, Shared};
use super::listeners::Bound;
use super::prepare::{self, Prepared};
use super::spawn::{self, Spawned};
use crate::config::ServerConfig;
use ipc::messages::{ChildToParent, ParentToChild, Role};
use ipc::Rpc;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

const MAX_CRASHES: usize = 5;
const CRASH_WINDOW: Duration = Duration::from_secs(60);

pub type ChildRpc = Rpc<ParentToChild, ChildToParent>;

struct Running {
    set: Vec<Spawned>,
    rpcs: Vec<(Role, ChildRpc)>,
}

fn attach(
    set: Vec<Spawned>,
    shared: &Shared,
    death_tx: &mpsc::Sender<u64>,
    generation: u64,
) -> Running {
    let mut rpcs = Vec::new();
    for s in &set {
        let fd = match s.edge.try_clone() {
            Ok(f) => f,
            Err(e) => {
                log::error!("dup edge of {}: {e}", s.role.title());
                continue;
            }
        };
        match ipc::Channel::new(fd) {
            Ok(ch) => {
                let (rpc, mut rx) = Rpc::start(ch, s.role.title());
                let tx = death_tx.clone();
                tokio::spawn(async move {
                    while rx.recv().await.is_some() {}
                    // The edge closed: the child is gone (or going).
                    let _ = tx.send(generation).await;
                });
                rpcs.push((s.role, rpc));
            }
            Err(e) => log::error!("edge of {}: {e}", s.role.title()),
        }
    }
    if let Ok(mut st) = shared.lock() {
        st.children = set.iter().map(|s| (s.role, s.child.id())).collect();
        st.keyholder = rpcs
            .iter()
            .find(|(r, _)| *r == Role::Keyholder)
            .map(|(_, r)| r.clone());
        st.queue = rpcs
            .iter()
            .find(|(r, _)| *r == Role::Queue)
            .map(|(_, r)| r.clone());
        st.rpcs = rpcs.clone();
    }
    Running { set, rpcs }
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
    cfg_path: Option<PathBuf>,
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
    let (death_tx, mut death_rx) = mpsc::channel::<u64>(16);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlHandle>(16);
    control::serve(control_listener, shared.clone(), ctl_tx, &cfg);
    let mut generation = 1u64;
    let mut run = attach(set, &shared, &death_tx, generation);
    let mut crashes: Vec<Instant> = Vec::new();
    let mut key_id = 1u32;
    log::info!("started: {} processes serving", run.set.len());

    loop {
        let mut crashed = false;
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                key_id += 1;
                let _ = reload(&mut cfg, cfg_path.as_deref(), &mut prep, &run, key_id).await;
            }
            _ = chld.recv() => crashed = true,
            Some(g) = death_rx.recv() => crashed = g == generation,
            Some(h) = ctl_rx.recv() => match h {
                ControlHandle::Reload(done) => {
                    key_id += 1;
                    let r = reload(&mut cfg, cfg_path.as_deref(), &mut prep, &run, key_id).await;
                    let _ = done.send(r);
                }
            },
        }
        if !crashed {
            continue;
        }
        // SIGCHLD or a closed edge: find who died (give the kernel a moment to reap).
        let mut died: Vec<String> = Vec::new();
        for _ in 0..10 {
            died = run.set.iter_mut().filter_map(describe_exit).collect();
            if !died.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if died.is_empty() {
            continue;
        }
        for d in &died {
            log::error!("{d}; restarting all processes");
        }
        spawn::stop_set(&mut run.set, Duration::from_millis(500));
        let now = Instant::now();
        crashes.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
        crashes.push(now);
        if crashes.len() >= MAX_CRASHES {
            log::error!(
                "{} crashes within {} s: giving up",
                crashes.len(),
                CRASH_WINDOW.as_secs()
            );
            return super::EX_SOFTWARE;
        }
        // Back off a little more on each crash in the window; the first restart is immediate.
        let delay = Duration::from_millis(250 * ((1u64 << (crashes.len() - 1)) - 1));
        tokio::time::sleep(delay).await;
        generation += 1;
        loop {
            match spawn::spawn_set(&cfg, &prep, &bound) {
                Ok(set) => {
                    run = attach(set, &shared, &death_tx, generation);
                    if let Ok(mut st) = shared.lock() {
                        st.restarts += 1;
                    }
                    log::info!("restarted: {} processes serving", run.set.len());
                    break;
                }
                Err(e) => {
                    log::error!("restart failed: {e}");
                    crashes.push(Instant::now());
                    if crashes.len() >= MAX_CRASHES {
                        log::error!("giving up");
                        return super::EX_SOFTWARE;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    log::info!("stopping");
    spawn::stop_set(&mut run.set, Duration::from_secs(5));
    log::info!("stopped");
    0
}

/// SIGHUP: re-read config, certificate, DKIM keys and accounts; push to children.
/// A bad new config is logged and the running one kept.
async fn reload(
    cfg: &mut ServerConfig,
    path: Option<&std::path::Path>,
    prep: &mut Prepared,
    run: &Running,
    key_id: u32,
) -> Result<(), String> {
    let new_cfg = match ServerConfig::load(path.or(cfg.raw.file.as_deref())) {
        Ok(c) => c,
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
