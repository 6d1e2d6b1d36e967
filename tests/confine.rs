//! seccomp and Landlock, for real: every child runs under its filter, and a child
//! made (through gdb, as an attacker with code execution in it would) to call
//! something outside its allow-list dies with SIGSYS, is logged and restarted,
//! while mail keeps flowing.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILDREN: [&str; 5] = [
    "sx-delivery",
    "sx-imap",
    "sx-keyholder",
    "sx-queue",
    "sx-smtp",
];

/// Landlock ABI of the running kernel (0: none).
fn landlock_abi() -> i64 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attr only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// gdb can attach to the (non-dumpable, other-uid) children only as root.
fn gdb_usable() -> bool {
    if !is_root() {
        eprintln!("not root: cannot ptrace the children; skipped");
        return false;
    }
    let ok = Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "gdb is missing (the README's test command installs it)");
    true
}

/// Make process `pid` evaluate `exprs` (C calls, in one stop) and return gdb's output.
fn call_in(pid: i32, exprs: &[&str]) -> String {
    let mut gdb = Command::new("gdb");
    // gdb may hit an internal error when its target dies under it; no core file.
    gdb.current_dir(std::env::temp_dir());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        gdb.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    gdb.args(["-p", &pid.to_string(), "-batch", "-nx"]);
    for e in exprs {
        gdb.arg("-ex").arg(format!("call {e}"));
    }
    let o = gdb.output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn delivered(srv: &Server, user: &str) -> usize {
    std::fs::read_dir(srv.path(&format!("mail/a.test/{user}/new")))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn send_to_bob(srv: &Server, n: usize) {
    let reply = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<alice@elsewhere.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("Subject: after kill {n}\r\n\r\nstill served\r\n."),
            "QUIT",
        ],
    );
    assert!(
        reply[5].starts_with("250 2.0.0 Ok: queued"),
        "message {n}: {reply:?}"
    );
}

#[test]
fn every_child_runs_under_its_seccomp_filter_and_landlock() {
    let srv = Server::prepare("").start();
    let kids = srv.children();
    assert_eq!(kids.len(), 5, "{kids:?}");
    for (name, pid) in &kids {
        assert_eq!(proc_status(*pid, "Seccomp"), "2", "{name}: filter mode");
        assert_eq!(proc_status(*pid, "NoNewPrivs"), "1", "{name}");
    }
    // The parent is not filtered: it must be able to exec the children again.
    assert_eq!(proc_status(srv.pid(), "Seccomp"), "0");
    let landlock = match landlock_abi() {
        0 => "landlock not supported by this kernel",
        1..=6 => "landlock partly enforced",
        _ => "landlock enforced",
    };
    let log = srv.log();
    for name in CHILDREN {
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("{name}[")) && l.contains("confined:"))
            .unwrap_or_else(|| panic!("no confined line for {name}:\n{log}"));
        assert!(line.contains("others kill"), "{line}");
        assert!(line.contains(landlock), "{line}");
    }
}

#[test]
fn forbidden_system_calls_kill_the_child_which_is_logged_and_restarted() {
    if !gdb_usable() {
        return;
    }
    let srv = Server::prepare("").start();
    srv.expect_crashes();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    send_to_bob(&srv, 0);
    // Each is something an exploit would want and the role never needs.
    let attempts = [
        (
            "sx-smtp",
            format!("(long)syscall({}L, 0L, 0L, 0L, 0L, 0L)", libc::SYS_mount),
        ),
        // imap holds sockets but may not make one: no calling out with stolen mail.
        (
            "sx-imap",
            format!("(long)syscall({}L, 2L, 1L, 0L)", libc::SYS_socket),
        ),
        // keyholder, which holds the keys, may not run anything.
        (
            "sx-keyholder",
            format!("(long)syscall({}L, 0L, 0L, 0L)", libc::SYS_execve),
        ),
    ];
    for (n, (name, call)) in attempts.iter().enumerate() {
        let before = srv.children();
        let victim = srv.child_pid(name);
        let out = call_in(victim, &[call]);
        srv.wait_log_or(
            &format!("{name}[{victim}] killed by signal 31 (SIGSYS): a system call outside its seccomp allow-list"),
            1,
            Duration::from_secs(5),
            &format!("gdb said:\n{out}"),
        );
        // A fresh set serves again.
        wait_replaced(&srv, &before, name, Duration::from_secs(10));
        send_to_bob(&srv, n + 1);
    }
    // Every acknowledged message arrived, once.
    let t = Instant::now();
    while delivered(&srv, "bob") < 4 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(delivered(&srv, "bob"), 4, "{}", srv.log());
}

#[test]
fn landlock_denies_smtp_its_own_empty_root_which_the_chroot_alone_would_not() {
    if !gdb_usable() || landlock_abi() == 0 {
        return;
    }
    let srv = Server::prepare("").start();
    // Opening a directory is within smtp's seccomp list (openat); Landlock refuses.
    let out = call_in(
        srv.child_pid("sx-smtp"),
        &["(int)open(\"/\", 0)", "(int)*(int*)__errno_location()"],
    );
    assert!(out.contains("$1 = -1"), "{out}");
    assert!(out.contains(&format!("$2 = {}", libc::EACCES)), "{out}");
    // queue may open its own directory.
    let out = call_in(srv.child_pid("sx-queue"), &["(int)open(\".\", 0)"]);
    let fd: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("$1 = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(fd >= 0, "{out}");
    // Nobody died of this.
    assert!(!srv.log().contains("killed by"), "{}", srv.log());
}
