//! Start-up shared by every child: read the Start frame from fd 3, take the named
//! fds, connect logging, drop privileges, and only then build the tokio runtime.

use ipc::messages::{ChildStart, ChildToParent, FdName, ParentToChild, Role};
use ipc::{Channel, Received};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// The fd every child finds its parent edge on.
pub const PARENT_FD: i32 = 3;

pub type ParentChannel = Channel<ChildToParent, ParentToChild>;

/// What a child owns once started.
pub struct ChildCtx {
    pub start: ChildStart,
    pub parent: Arc<ParentChannel>,
    fds: Vec<(FdName, OwnedFd)>,
}

impl ChildCtx {
    /// Take the (first) fd of that name.
    pub fn take(&mut self, name: &FdName) -> Option<OwnedFd> {
        let i = self.fds.iter().position(|(n, _)| n == name)?;
        Some(self.fds.remove(i).1)
    }

    /// Take every fd of that name.
    pub fn take_all(&mut self, name: &FdName) -> Vec<OwnedFd> {
        let mut out = Vec::new();
        while let Some(f) = self.take(name) {
            out.push(f);
        }
        out
    }

    /// Every listener fd handed down, with its service.
    pub fn take_listeners(&mut self) -> Vec<(ipc::messages::Service, OwnedFd)> {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for (n, f) in self.fds.drain(..) {
            match n {
                FdName::Listener(s) => out.push((s, f)),
                other => rest.push((other, f)),
            }
        }
        self.fds = rest;
        out
    }
}

/// Entry point of `sx __child <role>`: never returns.
pub fn main(role: Role) -> ! {
    crate::sandbox::set_process_name(role.title());
    // SAFETY: the parent placed our edge at fd 3 in pre_exec; nothing else owns it.
    let parent_fd = unsafe { OwnedFd::from_raw_fd(PARENT_FD) };
    let (start, fds) = match ipc::frame::recv::<ParentToChild>(PARENT_FD) {
        Ok((_, ParentToChild::Start(s), fds)) if s.role == role && fds.len() == s.fds.len() => {
            (s, fds)
        }
        Ok(_) => {
            eprintln!(
                "{}: first frame from parent was not a matching Start",
                role.title()
            );
            std::process::exit(70);
        }
        Err(e) => {
            eprintln!("{}: cannot read start frame: {e}", role.title());
            std::process::exit(70);
        }
    };
    crate::log::init(role.title(), start.log);
    crate::contain::install_hook();
    if let Err(e) = crate::sandbox::enter(start.sandbox.as_ref()) {
        log::error!("cannot drop privileges: {e}");
        std::process::exit(71);
    }
    // Without a chroot, relative paths still mean the same directory.
    if start.sandbox.is_none() {
        if let Err(e) = std::env::set_current_dir(&start.workdir) {
            log::error!("cannot enter {}: {e}", start.workdir);
            std::process::exit(71);
        }
    }
    match crate::confine::enter(role, start.seccomp) {
        Ok(line) => log::info!("{line}"),
        Err(e) => {
            log::error!("cannot confine: {e}");
            std::process::exit(71);
        }
    }
    let fds = start.fds.iter().cloned().zip(fds).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start runtime: {e}");
            std::process::exit(71);
        }
    };
    let code = rt.block_on(async move {
        let parent = match Channel::new(parent_fd) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                log::error!("parent edge: {e}");
                return 71;
            }
        };
        let ctx = ChildCtx { start, parent, fds };
        match role {
            Role::Keyholder => crate::keyholder::run(ctx).await,
            Role::Smtp => crate::smtp::run(ctx).await,
            Role::Queue => crate::queue::run(ctx).await,
            Role::Delivery => crate::delivery::run(ctx).await,
            Role::Imap => crate::imap::run(ctx).await,
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code)
}

/// Tell the parent we are serving.
pub async fn ready(parent: &ParentChannel) {
    if let Err(e) = parent.send(0, &ChildToParent::Ready, &[]).await {
        log::warn!("cannot report ready: {e}");
    }
}

/// Next frame from the parent that the role must handle. Answers Ping itself.
/// `None` means stop: Shutdown, or the parent went away.
pub async fn next_from_parent(parent: &ParentChannel) -> Option<Received<ParentToChild>> {
    loop {
        match parent.recv().await {
            Ok(r) => match r.msg {
                ParentToChild::Ping => {
                    let _ = parent.send(r.id, &ChildToParent::Pong, &[]).await;
                }
                ParentToChild::Stats => {
                    let s = ChildToParent::Stats(crate::stats::snapshot());
                    let _ = parent.send(r.id, &s, &[]).await;
                }
                ParentToChild::Shutdown => return None,
                ParentToChild::Start(_) => {
                    log::warn!("ipc parent: unexpected second Start ignored")
                }
                _ => return Some(r),
            },
            Err(e) if e.is_recoverable() => log::warn!("ipc parent: {e}"),
            Err(_) => return None,
        }
    }
}

/// A peer edge as an async channel, or an error line and exit code.
pub fn peer<Out, In>(ctx: &mut ChildCtx, role: Role) -> Result<Channel<Out, In>, i32>
where
    Out: serde::Serialize,
    In: serde::de::DeserializeOwned,
{
    edge(ctx, &FdName::Peer(role))
}

/// Any named edge as an async channel, or an error line and exit code.
pub fn edge<Out, In>(ctx: &mut ChildCtx, name: &FdName) -> Result<Channel<Out, In>, i32>
where
    Out: serde::Serialize,
    In: serde::de::DeserializeOwned,
{
    let Some(fd) = ctx.take(name) else {
        log::error!("no {name:?} edge was handed down");
        return Err(70);
    };
    Channel::new(fd).map_err(|e| {
        log::error!("{name:?} edge: {e}");
        71
    })
}
