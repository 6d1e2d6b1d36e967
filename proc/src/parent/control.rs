//! The control socket: SOCK_SEQPACKET at EMAIL_CONTROL_SOCKET, same framing as
//! every other edge. Only root, the daemon's own user and EMAIL_ADMIN_GROUP may
//! use it (file mode and SO_PEERCRED both checked).

use crate::config::ServerConfig;
use ipc::messages::{ChildToParent, ControlReply, ControlRequest, ParentToChild, Role, Status};
use ipc::{Channel, FrameError};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

/// The parent's request/reply edge to one child.
pub type ChildRpc = ipc::Rpc<ParentToChild, ChildToParent>;

pub struct State {
    pub started: Instant,
    pub restarts: u32,
    pub children: Vec<(Role, u32)>,
    pub keyholder: Option<ChildRpc>,
    pub queue: Option<ChildRpc>,
    /// Every child's edge, for Stats.
    pub rpcs: Vec<(Role, ChildRpc)>,
}

impl State {
    pub fn new() -> State {
        State {
            started: Instant::now(),
            restarts: 0,
            children: Vec::new(),
            keyholder: None,
            queue: None,
            rpcs: Vec::new(),
        }
    }
}

pub type Shared = Arc<Mutex<State>>;

/// Requests the supervisor loop itself must carry out.
pub enum ControlHandle {
    Reload(oneshot::Sender<Result<(), String>>),
}

pub struct Listener {
    fd: OwnedFd,
}

pub fn bind(cfg: &ServerConfig) -> Result<Listener, String> {
    let path = &cfg.control_socket;
    let err = |e: &dyn std::fmt::Display| format!("EMAIL_CONTROL_SOCKET: {}: {e}", path.display());
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| err(&e))?;
    }
    // A stale socket from a crashed run; the pid file check already ran.
    let _ = std::fs::remove_file(path);
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| err(&e))?;
    let addr = UnixAddr::new(path.as_path()).map_err(|e| err(&e))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| err(&e))?;
    socket::listen(&fd, socket::Backlog::new(16).map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    let mut mode = 0o600;
    if let Some(g) = admin_gid(cfg) {
        let _ = std::os::unix::fs::chown(path, None, Some(g));
        mode = 0o660;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| err(&e))?;
    Ok(Listener { fd })
}

fn admin_gid(cfg: &ServerConfig) -> Option<u32> {
    if cfg.admin_group.is_empty() {
        return None;
    }
    match nix::unistd::Group::from_name(&cfg.admin_group) {
        Ok(Some(g)) => Some(g.gid.as_raw()),
        _ => {
            log::warn!(
                "EMAIL_ADMIN_GROUP {:?} does not exist; control socket is root only",
                cfg.admin_group
            );
            None
        }
    }
}

pub fn serve(l: Listener, shared: Shared, tx: mpsc::Sender<ControlHandle>, cfg: &ServerConfig) {
    let admin = admin_gid(cfg);
    let me = nix::unistd::geteuid().as_raw();
    tokio::spawn(async move {
        // SAFETY: the OwnedFd stays open and keeps its number while AsyncFd owns it.
        let afd = match unsafe { AsyncFd::register(l.fd) } {
            Ok(a) => a,
            Err(e) => {
                log::error!("control socket: {}", e.into_parts().1);
                return;
            }
        };
        loop {
            let Ok(mut guard) = afd.readable().await else {
                return;
            };
            let conn = match socket::accept4(afd.get_ref().as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new fd that we now own.
                Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
                Err(nix::errno::Errno::EAGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => {
                    log::warn!("control socket: accept: {e}");
                    continue;
                }
            };
            let cred = socket::getsockopt(&conn, socket::sockopt::PeerCredentials);
            let allowed = match &cred {
                Ok(c) => c.uid() == 0 || c.uid() == me || admin.is_some_and(|g| g == c.gid()),
                Err(_) => false,
            };
            if !allowed {
                log::warn!(
                    "control socket: refused peer uid {:?}",
                    cred.map(|c| c.uid()).ok()
                );
                continue;
            }
            let (sh, tx) = (shared.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(ch) = Channel::<ControlReply, ControlRequest>::new(conn) {
                    handle(ch, sh, tx).await;
                }
            });
        }
    });
}

async fn handle(
    ch: Channel<ControlReply, ControlRequest>,
    shared: Shared,
    tx: mpsc::Sender<ControlHandle>,
) {
    loop {
        let r = match ch.recv().await {
            Ok(r) => r,
            Err(e) if e.is_recoverable() => {
                log::warn!("control socket: {e}");
                let _ = ch.send(0, &ControlReply::Error(e.to_string()), &[]).await;
                continue;
            }
            Err(FrameError::Closed) | Err(_) => return,
        };
        let reply = match r.msg {
            ControlRequest::Status => {
                let st = shared.lock().ok().map(|s| {
                    let st = Status {
                        pid: std::process::id(),
                        uptime_secs: s.started.elapsed().as_secs(),
                        restarts: s.restarts,
                        children: s.children.clone(),
                        stats: Default::default(),
                    };
                    (st, s.rpcs.clone())
                });
                match st {
                    Some((mut st, rpcs)) => {
                        st.stats = child_stats(&rpcs).await;
                        ControlReply::Status(st)
                    }
                    None => ControlReply::Error("state unavailable".into()),
                }
            }
            ControlRequest::Reload => {
                let (done_tx, done_rx) = oneshot::channel();
                if tx.send(ControlHandle::Reload(done_tx)).await.is_err() {
                    ControlReply::Error("supervisor gone".into())
                } else {
                    match done_rx.await {
                        Ok(Ok(())) => ControlReply::Ok,
                        Ok(Err(e)) => ControlReply::Error(e),
                        Err(_) => ControlReply::Error("reload interrupted".into()),
                    }
                }
            }
            ControlRequest::Queue(cmd) => {
                let q = shared.lock().ok().and_then(|s| s.queue.clone());
                match q {
                    Some(q) => {
                        let req = ParentToChild::Queue(cmd);
                        match tokio::time::timeout(Duration::from_secs(30), q.call(&req, &[])).await
                        {
                            Ok(Ok((ChildToParent::Queue(r), _))) => ControlReply::Queue(r),
                            Ok(Ok(_)) => ControlReply::Error("unexpected answer from queue".into()),
                            Ok(Err(e)) => ControlReply::Error(e.to_string()),
                            Err(_) => ControlReply::Error("queue did not answer".into()),
                        }
                    }
                    None => ControlReply::Error("queue not running".into()),
                }
            }
            ControlRequest::DkimSign { domain } => {
                let kh = shared.lock().ok().and_then(|s| s.keyholder.clone());
                match (kh, r.fds.first()) {
                    (Some(kh), Some(fd)) => {
                        let req = ParentToChild::DkimSign { domain };
                        let fds = [fd.as_fd()];
                        let call = kh.call(&req, &fds);
                        match tokio::time::timeout(Duration::from_secs(30), call).await {
                            Ok(Ok((ChildToParent::DkimSigned(Ok(h)), _))) => {
                                ControlReply::DkimHeader(h)
                            }
                            Ok(Ok((ChildToParent::DkimSigned(Err(e)), _))) => {
                                ControlReply::Error(e)
                            }
                            Ok(Ok(_)) => {
                                ControlReply::Error("unexpected answer from keyholder".into())
                            }
                            Ok(Err(e)) => ControlReply::Error(e.to_string()),
                            Err(_) => ControlReply::Error("keyholder did not answer".into()),
                        }
                    }
                    (None, _) => ControlReply::Error("keyholder not running".into()),
                    (_, None) => ControlReply::Error("DkimSign needs a message fd".into()),
                }
            }
        };
        if ch.send(r.id, &reply, &[]).await.is_err() {
            return;
        }
    }
}

/// Ask every child for its counters at once; a child that doesn't answer within
/// two seconds (busy restarting) is left out rather than holding up --status.
async fn child_stats(rpcs: &[(Role, ChildRpc)]) -> ipc::messages::ChildStats {
    let asks: Vec<_> = rpcs
        .iter()
        .map(|(_, rpc)| {
            let rpc = rpc.clone();
            tokio::spawn(async move {
                let call = rpc.call(&ParentToChild::Stats, &[]);
                match tokio::time::timeout(Duration::from_secs(2), call).await {
                    Ok(Ok((ChildToParent::Stats(s), _))) => Some(s),
                    _ => None,
                }
            })
        })
        .collect();
    let mut total = ipc::messages::ChildStats::default();
    for a in asks {
        if let Ok(Some(s)) = a.await {
            total.merge(s);
        }
    }
    total
}
