//! Runs every fuzz target in fuzz/ (libFuzzer through libfuzzer-sys, our crates
//! built with the coverage flags cargo-fuzz uses, on stable Rust: see
//! fuzz/instrument.sh) for FUZZ_SECONDS (default 8) each, two at a time, from
//! the committed seeds plus seeds made here from real encodings. A crash, a
//! panic, a timeout or a leak of memory past the RSS limit fails the test and
//! leaves the input in the run's directory.
//!
//! It lives in scorpiox-proc's tests so it runs after the top package's
//! suites, during which tests/build.rs had the release build (whose
//! dependencies the fuzz targets share) and this build run in the background.

#[path = "../../tests/common/release.rs"]
#[allow(dead_code)]
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const TARGETS: [&str; 8] = [
    "smtp_session",
    "imap_command",
    "imap_message",
    "config",
    "accounts",
    "aliases",
    "queue_envelope",
    "ipc_frame",
];

fn fuzz_dir() -> PathBuf {
    release::workspace().join("fuzz")
}

/// Seeds that must be real encodings: written from the types themselves.
fn encoded_seeds(target: &str, dir: &Path) {
    use ipc::messages::*;
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    match target {
        "queue_envelope" => {
            let env = Envelope {
                id: "0123456789ABCDEF0000".into(),
                from: "alice@b.test".into(),
                recipients: vec![
                    Recipient {
                        address: "bob@a.test".into(),
                        orcpt: Some("bob@a.test".into()),
                        notify: 0,
                        dest: Dest::Local {
                            mailbox: "bob@a.test".into(),
                        },
                        state: RcptState::Pending,
                        remote_mta: None,
                    },
                    Recipient {
                        address: "x@c.test".into(),
                        orcpt: None,
                        notify: 0,
                        dest: Dest::Remote {
                            address: "x@c.test".into(),
                        },
                        state: RcptState::Deferred {
                            attempts: 2,
                            next_attempt: 1_700_000_600,
                            last_error: "451 4.3.0 try later".into(),
                        },
                        remote_mta: Some("mx.c.test".into()),
                    },
                ],
                arrived: 1_700_000_000,
                size: 1234,
                ret_full: Some(false),
                envid: Some("e1".into()),
                body_8bit: true,
                smtputf8: false,
                helo: "client.test".into(),
                client_ip: "192.0.2.1".into(),
                auth: None,
                warned: false,
                junk: false,
            };
            write("env", sxproc::queue::envelope_file::encode(&env));
            // Release 0.1's bincode form, as its spool holds it.
            let v1 = release::workspace().join("tests/data/spool-v1/env/0640A1B2C3D4E0020002");
            write("env-v1", std::fs::read(v1).unwrap());
        }
        "ipc_frame" => {
            write("ping", ipc::frame::encode(1, &ParentToChild::Ping).unwrap());
            write(
                "stats",
                ipc::frame::encode(2, &ParentToChild::Stats).unwrap(),
            );
            let q = ControlRequest::Queue(QueueCmd::List);
            write("control", ipc::frame::encode(3, &q).unwrap());
            let k = KeyRequest::CheckPassword {
                user: "bob@a.test".into(),
                password: "pw".into(),
                client: std::net::Ipv4Addr::LOCALHOST.into(),
            };
            write("key", ipc::frame::encode(4, &k).unwrap());
        }
        _ => {}
    }
}

struct Run {
    target: &'static str,
    execs: u64,
    new_units: u64,
    ok: bool,
    log: String,
}

fn run(bin: &Path, target: &'static str, secs: u64, work: &Path) -> Run {
    let corpus = work.join(target);
    std::fs::create_dir_all(&corpus).unwrap();
    encoded_seeds(target, &corpus);
    let seeds = fuzz_dir().join("corpus").join(target);
    let mut cmd = Command::new(bin.join(target));
    cmd.arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    let o = cmd
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-artifact_prefix={}/{target}-", work.display()))
        .args([
            "-print_final_stats=1",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-max_len=65536",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let stat = |k: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{k}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Run {
        target,
        execs: stat("number_of_executed_units"),
        new_units: stat("new_units_added"),
        ok: o.status.success(),
        log,
    }
}

#[test]
fn every_fuzz_target_runs_without_a_crash() {
    let secs: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let bin = release::fuzz_targets();
    let work = tempfile::Builder::new()
        .prefix("sx-fuzz-")
        .tempdir()
        .unwrap();
    let todo = Mutex::new(TARGETS.to_vec());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(t) = todo.lock().unwrap().pop() else {
                    return;
                };
                let r = run(&bin, t, secs, work.path());
                done.lock().unwrap().push(r);
            });
        }
    });
    let done = done.into_inner().unwrap();
    for r in &done {
        eprintln!(
            "fuzz {:<15} {secs:>4} s {:>10} execs {:>6} new units  {}",
            r.target,
            r.execs,
            r.new_units,
            if r.ok { "ok" } else { "FAILED" }
        );
    }
    for r in &done {
        let tail: Vec<&str> = r.log.lines().rev().take(40).collect();
        assert!(
            r.ok,
            "fuzz target {} failed (input kept in {}):\n{}",
            r.target,
            work.keep().display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        assert!(r.execs > 1000, "{} ran only {} inputs", r.target, r.execs);
    }
}
