//! What "on disk before it is acknowledged" means, checked on a system call
//! trace of the real processes: kill -9 keeps the page cache, so only the order
//! of write, fdatasync/fsync, rename and the acknowledgement itself can show
//! that a power loss after a `250` (or after Delivered, or after `sx email`'s
//! "queued as") would lose nothing.
//!
//! Rules, each a function below:
//! - spool: before smtp writes `250 ... queued as <id>`, `msg/<id>` had its data
//!   synced after its last write, and `msg/` was synced after the file was made;
//! - publish by rename (Maildir `tmp/`->`new/`, the queue's `env/`, the client's
//!   outbox): the file's data synced after its last write and before the rename,
//!   its directory synced after the rename and before the acknowledgement.

use super::strace::Call;
use std::collections::HashMap;

const SYNCS: [&str; 2] = ["fsync", "fdatasync"];
const WRITES: [&str; 5] = ["write", "pwrite64", "writev", "pwritev", "pwritev2"];
const SENDS: [&str; 5] = ["write", "writev", "sendto", "sendmsg", "send"];

/// The system calls a trace needs for these rules.
pub const TRACED: &str = "trace=openat,write,writev,pwrite64,pwritev,pwritev2,sendto,sendmsg,\
    fsync,fdatasync,sync_file_range,rename,renameat,renameat2,unlink,unlinkat,clone,clone3";

fn path_is(p: Option<&str>, want: &str) -> bool {
    p.is_some_and(|p| p == want)
}

/// `path`'s data is on disk before line `before`: a sync of it started after its
/// last write (before `before`) finished, and finished before `before`.
pub fn data_synced(calls: &[Call], path: &str, before: usize) -> Result<(), String> {
    let last_write = calls
        .iter()
        .filter(|c| c.end < before && WRITES.contains(&c.name.as_str()))
        .filter(|c| path_is(c.fd_path(), path))
        .map(|c| c.end)
        .max()
        .ok_or_else(|| format!("no write to {path} before line {before}"))?;
    synced_between(calls, path, last_write, before).ok_or_else(|| {
        format!("{path}: no fsync/fdatasync between its last write (line {last_write}) and line {before}")
    })
}

/// A successful fsync/fdatasync of `path` that started after line `after` and
/// finished before line `before`.
fn synced_between(calls: &[Call], path: &str, after: usize, before: usize) -> Option<()> {
    calls
        .iter()
        .find(|c| {
            SYNCS.contains(&c.name.as_str())
                && c.ok()
                && path_is(c.fd_path(), path)
                && c.start > after
                && c.end < before
        })
        .map(|_| ())
}

/// `dir`'s entries are on disk: a sync of it started after line `after` and
/// finished before line `before`.
pub fn dir_synced(calls: &[Call], dir: &str, after: usize, before: usize) -> Result<(), String> {
    synced_between(calls, dir, after, before)
        .ok_or_else(|| format!("directory {dir}: no fsync between lines {after} and {before}"))
}

/// Thread ids of each traced process: `initial` (tid -> pid, read from /proc
/// when strace attached), plus every thread a traced thread cloned.
pub fn processes(calls: &[Call], initial: &HashMap<u32, u32>) -> HashMap<u32, u32> {
    let mut of = initial.clone();
    for c in calls {
        if (c.name == "clone" || c.name == "clone3") && c.args.contains("CLONE_THREAD") {
            if let (Ok(tid), Some(&pid)) = (c.ret.trim().parse::<u32>(), of.get(&c.pid)) {
                of.insert(tid, pid);
            }
        }
    }
    of
}

/// The spool's promise for the message smtp answered `250 ... queued as <id>`.
pub fn spool(calls: &[Call], id: &str) -> Result<(), String> {
    let needle = format!("queued as {id}");
    let reply = calls
        .iter()
        .find(|c| {
            SENDS.contains(&c.name.as_str())
                && c.on_socket()
                && c.strings().iter().any(|s| s.contains(&needle))
        })
        .ok_or_else(|| format!("no 250 for {id} in the trace"))?;
    let made = calls
        .iter()
        .find(|c| {
            c.name == "openat"
                && c.ret_path()
                    .is_some_and(|p| p.ends_with(&format!("/msg/{id}")))
        })
        .ok_or_else(|| format!("msg/{id} was not created in the trace"))?;
    let file = made.ret_path().unwrap_or_default();
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    data_synced(calls, file, reply.start)?;
    dir_synced(calls, dir, made.end, reply.start)
}

/// Renames whose target ends with `suffix`-matching paths: (call, from, to).
pub fn renames(calls: &[Call], to_matches: impl Fn(&str) -> bool) -> Vec<(&Call, String, String)> {
    calls
        .iter()
        .filter(|c| c.name.starts_with("rename") && c.ok())
        .filter_map(|c| {
            let s = c.strings();
            let (from, to) = (s.first()?.clone(), s.get(1)?.clone());
            to_matches(&to).then_some((c, from, to))
        })
        .collect()
}

/// `rel` as the traced process saw it (relative to its chroot and directory)
/// -> the absolute path strace printed for a descriptor of it.
fn absolute<'a>(calls: &'a [Call], rel: &str) -> Option<&'a str> {
    let rel = rel.trim_start_matches("./");
    let tail = format!("/{}", rel.trim_start_matches('/'));
    calls
        .iter()
        .flat_map(|c| [c.fd_path(), c.ret_path()])
        .flatten()
        .find(|p| *p == rel || p.ends_with(&tail))
}

/// The publish-by-rename promise for one rename: data synced before it, the
/// target's directory synced after it and before line `ack`.
pub fn published(
    calls: &[Call],
    rename: &Call,
    from: &str,
    to: &str,
    ack: usize,
) -> Result<(), String> {
    let file =
        absolute(calls, from).ok_or_else(|| format!("{from}: never written in the trace"))?;
    data_synced(calls, file, rename.start)?;
    let to_dir = to.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
    let dir = absolute(calls, to_dir)
        .ok_or_else(|| format!("{to_dir}: never opened (so never synced) in the trace"))?;
    dir_synced(calls, dir, rename.end, ack)
}

/// Line of the first message a process (any of its threads) sent on a socket
/// after line `after`: for delivery, its answer to the queue.
pub fn first_send(
    calls: &[Call],
    pid_of: &HashMap<u32, u32>,
    pid: u32,
    after: usize,
) -> Option<usize> {
    calls
        .iter()
        .filter(|c| c.start > after && pid_of.get(&c.pid) == Some(&pid))
        .find(|c| SENDS.contains(&c.name.as_str()) && c.on_socket())
        .map(|c| c.start)
}
