//! Spawning the five children by re-exec (never fork a live runtime): the parent
//! edge is dup2'ed to fd 3 in pre_exec (nothing else runs there), and every other
//! fd (peer edges, signer edges, listeners, secrets) rides in the Start frame.

use super::listeners::Bound;
use super::prepare::Prepared;
use crate::config::ServerConfig;
use crate::startup::PARENT_FD;
use ipc::messages::{ChildStart, ChildToParent, FdName, ParentToChild, Role};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Peer edges of DESIGN.md §2 (each a request/reply socketpair).
const PEERS: [(Role, Role); 7] = [
    (Role::Smtp, Role::Queue),
    (Role::Smtp, Role::Imap),
    (Role::Smtp, Role::Keyholder),
    (Role::Imap, Role::Keyholder),
    (Role::Queue, Role::Delivery),
    (Role::Queue, Role::Keyholder),
    (Role::Delivery, Role::Imap),
];

/// Processes that terminate TLS and so get a blocking signer edge to keyholder.
const SIGNERS: [Role; 2] = [Role::Smtp, Role::Imap];

/// Set by a detached daemon: children must not hold the terminal (or a caller's
/// pipe) open as stderr; they log to syslog.
pub static CHILD_STDERR_NULL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub struct Spawned {
    pub role: Role,
    pub child: Child,
    /// Parent's end of the edge, still blocking.
    pub edge: OwnedFd,
    /// smtp only: the parent's end of the broker edge (`broker::serve`).
    pub broker: Option<OwnedFd>,
}

fn command(role: Role) -> Command {
    // /proc/self/exe re-execs this very binary even if the file was replaced.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(role.title())
        .arg("__child")
        .arg(role.name())
        .env_clear()
        .stdin(Stdio::null());
    if crate::fault::armed() {
        cmd.env(crate::fault::VAR, "1");
    }
    if CHILD_STDERR_NULL.load(std::sync::atomic::Ordering::Relaxed) {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd
}

fn spawn_one(role: Role, child_end: &OwnedFd) -> std::io::Result<Child> {
    let raw = child_end.as_raw_fd();
    let mut cmd = command(role);
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if raw == PARENT_FD {
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, PARENT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Kill what was started so far (start-up failed half way).
pub fn kill_all(set: &mut [Spawned]) {
    for s in set.iter_mut() {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
}

/// Every edge between two children: each side's role and its name for it.
fn edges() -> Vec<(Role, FdName, Role, FdName)> {
    let mut v: Vec<(Role, FdName, Role, FdName)> = PEERS
        .iter()
        .map(|(a, b)| (*a, FdName::Peer(*b), *b, FdName::Peer(*a)))
        .collect();
    // queue asks smtp's MTA side to send: a second edge, so each side of each
    // edge has one direction of requests.
    v.push((Role::Queue, FdName::Outbound, Role::Smtp, FdName::Outbound));
    for r in SIGNERS {
        v.push((r, FdName::TlsSigner, Role::Keyholder, FdName::TlsSigner));
    }
    v
}

/// The ends of fresh edges that belong to children still running: each is sent
/// to its child as `ParentToChild::NewEdge`.
pub type PeerEnds = Vec<(Role, FdName, OwnedFd)>;

/// Start the whole set and wait until each child says Ready.
pub fn spawn_set(
    cfg: &ServerConfig,
    prep: &Prepared,
    listeners: &[Bound],
) -> Result<Vec<Spawned>, String> {
    spawn_roles(cfg, prep, listeners, &Role::ALL).map(|(set, _)| set)
}

/// Start `roles` (the whole set, or the ones that died) with fresh edges to
/// every peer, and wait until each says Ready. The other ends of edges to
/// peers not in `roles` are returned for those peers.
pub fn spawn_roles(
    cfg: &ServerConfig,
    prep: &Prepared,
    listeners: &[Bound],
    roles: &[Role],
) -> Result<(Vec<Spawned>, PeerEnds), String> {
    let pair = || ipc::seqpacket_pair().map_err(|e| format!("socketpair: {e}"));
    // Per role: the fds to hand down, with their names.
    let mut handed: Vec<(Role, Vec<(FdName, OwnedFd)>)> =
        roles.iter().map(|r| (*r, Vec::new())).collect();
    let mut peers: PeerEnds = Vec::new();
    let mut place = |r: Role, n: FdName, f: OwnedFd| match handed.iter_mut().find(|(x, _)| *x == r)
    {
        Some((_, v)) => v.push((n, f)),
        None => peers.push((r, n, f)),
    };
    for (a, na, b, nb) in edges() {
        if !roles.contains(&a) && !roles.contains(&b) {
            continue;
        }
        let (fa, fb) = pair()?;
        place(a, na, fa);
        place(b, nb, fb);
    }
    let blob = |what: &str, r: Result<OwnedFd, std::io::Error>| {
        r.map_err(|e| format!("{what} memfd: {e}"))
    };
    let mut brokers: Vec<(Role, OwnedFd)> = Vec::new();
    for (role, fds) in handed.iter_mut() {
        if *role == Role::Smtp {
            let (ours, theirs) = pair()?;
            fds.push((FdName::Broker, theirs));
            brokers.push((*role, ours));
        }
        match role {
            Role::Keyholder => fds.push((
                FdName::Secrets,
                blob("secrets", crate::blob::write(&prep.secrets()))?,
            )),
            // smtp checks recipients; queue resolves where bounces go.
            Role::Smtp | Role::Queue => fds.push((
                FdName::Directory,
                blob("directory", crate::blob::write(&prep.directory()))?,
            )),
            _ => {}
        }
    }

    let mut set: Vec<Spawned> = Vec::new();
    for (role, fds) in handed {
        let (parent_end, child_end) = match pair() {
            Ok(p) => p,
            Err(e) => {
                kill_all(&mut set);
                return Err(e);
            }
        };
        let child = match spawn_one(role, &child_end) {
            Ok(c) => c,
            Err(e) => {
                kill_all(&mut set);
                return Err(format!("cannot start {}: {e}", role.title()));
            }
        };
        drop(child_end);
        let mut names: Vec<FdName> = fds.iter().map(|(n, _)| n.clone()).collect();
        let mut borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|(_, f)| f.as_fd()).collect();
        for l in listeners.iter().filter(|l| l.service.owner() == role) {
            names.push(FdName::Listener(l.service));
            borrowed.push(l.listener.as_fd());
        }
        let start = ChildStart {
            role,
            workdir: Prepared::workdir(cfg, role),
            log: cfg.log,
            sandbox: prep.sandbox(role),
            seccomp: cfg.seccomp,
            settings: prep.settings(cfg, role),
            fds: names,
        };
        let sent = ipc::frame::send(
            parent_end.as_raw_fd(),
            0,
            &ParentToChild::Start(start),
            &borrowed,
        );
        let broker = brokers
            .iter()
            .position(|(r, _)| *r == role)
            .map(|i| brokers.swap_remove(i).1);
        set.push(Spawned {
            role,
            child,
            edge: parent_end,
            broker,
        });
        if let Err(e) = sent {
            kill_all(&mut set);
            return Err(format!(
                "cannot hand start-up data to {}: {e}",
                role.title()
            ));
        }
    }
    // Our copies of the children's fds close here; only the children hold them now.
    for s in &set {
        if let Err(e) = wait_ready(s) {
            let msg = format!("{} did not start: {e}", s.role.title());
            kill_all(&mut set);
            return Err(msg);
        }
    }
    Ok((set, peers))
}

fn wait_ready(s: &Spawned) -> Result<(), String> {
    let tv = nix::sys::time::TimeVal::new(10, 0);
    nix::sys::socket::setsockopt(&s.edge, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
        .map_err(|e| e.to_string())?;
    let r = match ipc::frame::recv::<ChildToParent>(s.edge.as_raw_fd()) {
        Ok((_, ChildToParent::Ready, _)) => Ok(()),
        Ok((_, other, _)) => Err(format!("unexpected {other:?}")),
        Err(ipc::FrameError::WouldBlock) => Err("no answer within 10 s".into()),
        Err(ipc::FrameError::Closed) => {
            Err("exited during start-up (see its log line above)".into())
        }
        Err(e) => Err(e.to_string()),
    };
    let zero = nix::sys::time::TimeVal::new(0, 0);
    let _ = nix::sys::socket::setsockopt(&s.edge, nix::sys::socket::sockopt::ReceiveTimeout, &zero);
    r
}

/// A draining stop, front to back: smtp and imap first (they finish the
/// transactions in progress within `shutdown`, committing through a queue that
/// is still there), then queue and delivery (their writes in flight), then
/// keyholder.
pub fn stop_in_order(set: &mut [Spawned], shutdown: Duration) {
    let stages: [(&[Role], Duration); 3] = [
        (&[Role::Smtp, Role::Imap], shutdown + Duration::from_secs(3)),
        (&[Role::Queue, Role::Delivery], Duration::from_secs(5)),
        (&[Role::Keyholder], Duration::from_secs(5)),
    ];
    for (roles, grace) in stages {
        let mut stage: Vec<&mut Spawned> =
            set.iter_mut().filter(|s| roles.contains(&s.role)).collect();
        for s in stage.iter() {
            let _ = ipc::frame::send(s.edge.as_raw_fd(), 0, &ParentToChild::Shutdown, &[]);
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline
            && stage
                .iter_mut()
                .any(|s| matches!(s.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in stage.iter_mut() {
            if matches!(s.child.try_wait(), Ok(None)) {
                log::warn!("{} did not stop within {grace:?}: killed", s.role.title());
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}
