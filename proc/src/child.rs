//! Start-up of every child (`sx __child <role>`): read the Start frame from
//! fd 3, take the named fds, connect logging, drop privileges, confine, and only
//! then build the tokio runtime and hand over to the role.

use crate::startup::{ChildCtx, PARENT_FD};
use ipc::messages::{ParentToChild, Role};
use ipc::Channel;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

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
    // Buffers over 1 MiB (literals, message reads, argon2's 19 MiB) are mapped
    // and unmapped on their own: glibc's moving threshold would otherwise keep
    // them in per-thread arenas, and a burst would stay resident for good.
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
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
