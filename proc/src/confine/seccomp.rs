//! Per-role seccomp allow-lists. Installed after the privilege drop and before the
//! tokio runtime exists, so every thread the child ever has inherits the filter.
//! docs/SECURITY.md lists these sets; tests/docs.rs checks that it stays true.

use ipc::messages::{Role, SeccompMode};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

/// A system call and, for a few, the only argument values allowed.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub name: &'static str,
    pub nr: i64,
    /// `(argument index, allowed values)`; `None`: any arguments.
    pub only: Option<(u8, &'static [u64])>,
}

macro_rules! calls {
    ($($name:ident $(if $arg:literal in $vals:expr)?),* $(,)?) => {
        &[$(Call {
            name: stringify!($name),
            nr: nr::$name as i64,
            only: calls!(@only $($arg, $vals)?),
        }),*]
    };
    (@only) => { None };
    (@only $arg:literal, $vals:expr) => { Some(($arg, $vals)) };
}

// The numbers come from libc; `SYS_` is stripped so the lists read as names.
#[allow(non_upper_case_globals)]
mod nr {
    pub use libc::{
        SYS_accept4 as accept4, SYS_bind as bind, SYS_brk as brk, SYS_clock_getres as clock_getres,
        SYS_clock_gettime as clock_gettime, SYS_clock_nanosleep as clock_nanosleep,
        SYS_clone as clone, SYS_clone3 as clone3, SYS_close as close, SYS_connect as connect,
        SYS_copy_file_range as copy_file_range, SYS_dup as dup, SYS_dup3 as dup3,
        SYS_epoll_create1 as epoll_create1, SYS_epoll_ctl as epoll_ctl,
        SYS_epoll_pwait as epoll_pwait, SYS_epoll_pwait2 as epoll_pwait2, SYS_eventfd2 as eventfd2,
        SYS_exit as exit, SYS_exit_group as exit_group, SYS_faccessat as faccessat,
        SYS_faccessat2 as faccessat2, SYS_fallocate as fallocate, SYS_fchmod as fchmod,
        SYS_fchmodat as fchmodat, SYS_fcntl as fcntl, SYS_fdatasync as fdatasync,
        SYS_flock as flock, SYS_fstat as fstat, SYS_fstatfs as fstatfs, SYS_fsync as fsync,
        SYS_ftruncate as ftruncate, SYS_futex as futex, SYS_getdents64 as getdents64,
        SYS_getegid as getegid, SYS_geteuid as geteuid, SYS_getgid as getgid,
        SYS_getpeername as getpeername, SYS_getpid as getpid, SYS_getrandom as getrandom,
        SYS_getsockname as getsockname, SYS_getsockopt as getsockopt, SYS_gettid as gettid,
        SYS_gettimeofday as gettimeofday, SYS_getuid as getuid, SYS_ioctl as ioctl,
        SYS_linkat as linkat, SYS_lseek as lseek, SYS_madvise as madvise, SYS_mkdirat as mkdirat,
        SYS_mmap as mmap, SYS_mprotect as mprotect, SYS_mremap as mremap, SYS_munmap as munmap,
        SYS_nanosleep as nanosleep, SYS_newfstatat as newfstatat, SYS_openat as openat,
        SYS_pipe2 as pipe2, SYS_ppoll as ppoll, SYS_prctl as prctl, SYS_pread64 as pread64,
        SYS_pwrite64 as pwrite64, SYS_read as read, SYS_readlinkat as readlinkat,
        SYS_readv as readv, SYS_recvfrom as recvfrom, SYS_recvmsg as recvmsg,
        SYS_renameat as renameat, SYS_renameat2 as renameat2,
        SYS_restart_syscall as restart_syscall, SYS_rseq as rseq, SYS_rt_sigaction as rt_sigaction,
        SYS_rt_sigprocmask as rt_sigprocmask, SYS_rt_sigreturn as rt_sigreturn,
        SYS_sched_getaffinity as sched_getaffinity, SYS_sched_yield as sched_yield,
        SYS_sendfile as sendfile, SYS_sendmsg as sendmsg, SYS_sendto as sendto,
        SYS_set_robust_list as set_robust_list, SYS_setpriority as setpriority,
        SYS_setsockopt as setsockopt, SYS_shutdown as shutdown, SYS_sigaltstack as sigaltstack,
        SYS_socket as socket, SYS_socketpair as socketpair, SYS_statfs as statfs,
        SYS_statx as statx, SYS_sync_file_range as sync_file_range, SYS_tgkill as tgkill,
        SYS_unlinkat as unlinkat, SYS_utimensat as utimensat, SYS_write as write,
        SYS_writev as writev,
    };
    #[cfg(target_arch = "x86_64")]
    pub use libc::{
        SYS_access as access, SYS_epoll_wait as epoll_wait, SYS_getdents as getdents,
        SYS_link as link, SYS_lstat as lstat, SYS_mkdir as mkdir, SYS_open as open,
        SYS_poll as poll, SYS_readlink as readlink, SYS_rename as rename, SYS_rmdir as rmdir,
        SYS_stat as stat, SYS_unlink as unlink,
    };
}

// The request type differs between libcs.
#[allow(clippy::unnecessary_cast)]
const IOCTLS: &[u64] = &[
    libc::FIONBIO as u64,
    libc::FIOCLEX as u64,
    libc::FIONCLEX as u64,
];
const PRCTLS: &[u64] = &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64];
const UNIX: &[u64] = &[libc::AF_UNIX as u64];
const INET: &[u64] = &[libc::AF_INET as u64, libc::AF_INET6 as u64];
const PRIO: &[u64] = &[libc::PRIO_PROCESS as u64];

/// Every role: memory, threads, signals, clocks, the event loop (tokio's signal
/// driver makes a Unix socketpair), and I/O on the fds it already holds.
/// `openat` is here because the runtime probes cgroup files at start; what it
/// may open is limited by the chroot and Landlock, not here.
const BASE: &[Call] = calls![
    read, pread64, write, readv, writev, close, lseek, fcntl, dup, dup3,
    ioctl if 1 in IOCTLS,
    fstat, newfstatat, statx, openat,
    brk, mmap, munmap, mprotect, mremap, madvise,
    futex, clone, clone3, set_robust_list, rseq, sched_yield, sched_getaffinity,
    exit, exit_group, getpid, gettid, tgkill,
    prctl if 0 in PRCTLS,
    rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, restart_syscall,
    clock_gettime, clock_getres, gettimeofday, nanosleep, clock_nanosleep,
    getrandom, getuid, geteuid, getgid, getegid,
    epoll_create1, epoll_ctl, epoll_pwait, epoll_pwait2, eventfd2, pipe2, ppoll,
    socketpair if 0 in UNIX,
    recvfrom, recvmsg, sendto, sendmsg, shutdown,
    getsockopt, setsockopt, getsockname, getpeername,
];

#[cfg(target_arch = "x86_64")]
const BASE_X86: &[Call] = calls![epoll_wait, poll];
#[cfg(not(target_arch = "x86_64"))]
const BASE_X86: &[Call] = &[];

/// smtp and imap accept on the listeners the parent bound.
const SERVE: &[Call] = calls![accept4];

/// smtp's MTA side: TCP to other mail servers, UDP/TCP to the DNS servers.
const CONNECT: &[Call] = calls![socket if 0 in INET, connect, bind];

/// smtp shortens a spool file whose header it rewrote (a forged
/// Authentication-Results removed); the fd is queue's, handed over.
const SPOOL: &[Call] = calls![ftruncate];

/// queue, delivery and imap: their files under their chroot.
const FILES: &[Call] = calls![
    pwrite64,
    mkdirat,
    renameat,
    renameat2,
    unlinkat,
    linkat,
    readlinkat,
    fsync,
    fdatasync,
    ftruncate,
    fallocate,
    flock,
    getdents64,
    fchmod,
    fchmodat,
    utimensat,
    faccessat,
    faccessat2,
    fstatfs,
    statfs,
    copy_file_range,
    sendfile,
    sync_file_range,
];

#[cfg(target_arch = "x86_64")]
const FILES_X86: &[Call] =
    calls![open, stat, lstat, access, mkdir, rename, rmdir, unlink, link, readlink, getdents];
#[cfg(not(target_arch = "x86_64"))]
const FILES_X86: &[Call] = &[];

/// keyholder: its password threads lower their own priority (Linux nice is
/// per thread), so argon2 runs for a guessing flood never starve handshakes.
const NICE: &[Call] = calls![setpriority if 0 in PRIO];

/// A named set of calls and the roles that get it (docs/SECURITY.md has a row each).
pub struct Group {
    pub name: &'static str,
    pub roles: &'static [Role],
    pub calls: &'static [Call],
}

const ALL_ROLES: &[Role] = &Role::ALL;
const FILE_ROLES: &[Role] = &[Role::Queue, Role::Delivery, Role::Imap];

pub const GROUPS: &[Group] = &[
    Group {
        name: "base",
        roles: ALL_ROLES,
        calls: BASE,
    },
    Group {
        name: "base, x86_64 only",
        roles: ALL_ROLES,
        calls: BASE_X86,
    },
    Group {
        name: "serve",
        roles: &[Role::Smtp, Role::Imap],
        calls: SERVE,
    },
    Group {
        name: "connect",
        roles: &[Role::Smtp],
        calls: CONNECT,
    },
    Group {
        name: "spool",
        roles: &[Role::Smtp],
        calls: SPOOL,
    },
    Group {
        name: "files",
        roles: FILE_ROLES,
        calls: FILES,
    },
    Group {
        name: "files, x86_64 only",
        roles: FILE_ROLES,
        calls: FILES_X86,
    },
    Group {
        name: "nice",
        roles: &[Role::Keyholder],
        calls: NICE,
    },
];

/// The allow-list of one role.
pub fn allowed(role: Role) -> Vec<Call> {
    GROUPS
        .iter()
        .filter(|g| g.roles.contains(&role))
        .flat_map(|g| g.calls.iter().copied())
        .collect()
}

fn filter(role: Role, mode: SeccompMode) -> Result<BpfProgram, String> {
    let mismatch = match mode {
        SeccompMode::Kill => SeccompAction::KillProcess,
        SeccompMode::Log => SeccompAction::Log,
        SeccompMode::Off => return Ok(Vec::new()),
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for c in allowed(role) {
        let entry = rules.entry(c.nr).or_default();
        if let Some((arg, vals)) = c.only {
            for v in vals {
                let cond =
                    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *v)
                        .map_err(|e| e.to_string())?;
                entry.push(SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?);
            }
        }
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let f = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch)
        .map_err(|e| e.to_string())?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Install the role's filter on the calling thread (and so on every later thread).
pub fn install(role: Role, mode: SeccompMode) -> Result<(), String> {
    let prog = filter(role, mode)?;
    if prog.is_empty() {
        return Ok(());
    }
    seccompiler::apply_filter(&prog).map_err(|e| e.to_string())
}
