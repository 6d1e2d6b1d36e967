//! What every child role is given at start and uses to talk to the parent:
//! the start frame's settings and named fds (`ChildCtx`), the parent edge, and
//! the helpers every role's loop shares (ready, next frame from the parent,
//! peer edges). `child.rs` builds this and dispatches to the role; the roles
//! use it and never import the dispatcher.

use ipc::messages::{ChildStart, ChildToParent, FdName, ParentToChild, Role};
use ipc::{Channel, Received};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The fd every child finds its parent edge on.
pub const PARENT_FD: i32 = 3;

pub type ParentChannel = Channel<ChildToParent, ParentToChild>;

/// What a child owns once started.
pub struct ChildCtx {
    pub start: ChildStart,
    pub parent: Arc<ParentChannel>,
    pub(crate) fds: Vec<(FdName, OwnedFd)>,
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
