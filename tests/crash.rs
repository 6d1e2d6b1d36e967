//! kill -9 of delivery, of queue, and of the whole daemon while mail flows:
//! everything acknowledged with 250 is delivered after restart, no spool file is
//! left over, and repeated deliveries are suppressed (Maildir names carry the
//! queue id).

mod common;
use common::*;
#[path = "crash/durability.rs"]
mod durability;
#[path = "crash/strace.rs"]
mod strace;
use std::io::BufRead;
use std::time::{Duration, Instant};

const CLIENT_PY: &str = r#"
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
i, s = 0, None
deadline = time.time() + 90
while i < n:
    if time.time() > deadline:
        print('gave up', flush=True)
        sys.exit(1)
    try:
        if s is None:
            s = smtplib.SMTP('127.0.0.1', port, timeout=10)
            s.ehlo()
        s.mail('alice@x.test'); s.rcpt('bob@a.test')
        code, msg = s.data(('Subject: m%d\r\n\r\nbody %d\r\n' % (i, i)).encode())
        if code == 250:
            print('ok m%d %s' % (i, msg.decode().split()[-1]), flush=True)
            i += 1
        else:
            print('tempfail m%d %d' % (i, code), flush=True)
            s.rset()
    except Exception as e:
        print('drop m%d %s' % (i, type(e).__name__), flush=True)
        s = None
        time.sleep(0.2)
print('done', flush=True)
"#;

/// Wait (10 s at most) until no message is left in the server's spool.
fn wait_spool_empty(srv: &Server) {
    let t = Instant::now();
    while std::fs::read_dir(srv.path("queue/msg")).unwrap().count() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "spool files left over:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn kill9_of_delivery_queue_and_daemon_loses_nothing() {
    const N: usize = 60;
    let mut srv = Server::prepare("").start();
    srv.expect_crashes();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let mut client = python_cmd()
        .args(["-c", CLIENT_PY, &srv.ports.smtp.to_string(), &N.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let (mut ok, mut retried) = (0usize, 0usize);
    for line in lines {
        let line = line.unwrap();
        if line.starts_with("ok ") {
            ok += 1;
        } else if line.starts_with("drop ") || line.starts_with("tempfail ") {
            retried += 1;
        }
        match ok {
            10 if line.starts_with("ok ") => kill(srv.child_pid("sx-delivery")),
            25 if line.starts_with("ok ") => kill(srv.child_pid("sx-queue")),
            40 if line.starts_with("ok ") => {
                // The whole daemon: the children die with the parent (PDEATHSIG).
                let kids: Vec<i32> = srv.children().into_iter().map(|(_, p)| p).collect();
                let mut parent = srv.child.take().unwrap();
                let _ = parent.kill();
                let _ = parent.wait();
                wait_exited(&kids);
                srv.launch();
            }
            _ => {}
        }
        if line == "done" {
            break;
        }
    }
    assert!(client.wait().unwrap().success());
    assert_eq!(ok, N);
    // Every acknowledged message arrives.
    let inbox = srv.path("mail/a.test/bob/new");
    let t = Instant::now();
    let copies = loop {
        let mut counts = vec![0usize; N];
        for f in std::fs::read_dir(&inbox).unwrap().flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            if let Some(i) = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: m"))
                .and_then(|n| n.trim().parse::<usize>().ok())
            {
                if i < N {
                    counts[i] += 1;
                }
            }
        }
        if counts.iter().all(|c| *c >= 1) {
            break counts;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "missing after restart: {:?}\n{}",
            counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == 0)
                .map(|(i, _)| i)
                .collect::<Vec<_>>(),
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // At most one extra copy per message the client had to send again.
    let extra: usize = copies.iter().map(|c| c - 1).sum();
    assert!(
        extra <= retried,
        "{extra} duplicates for {retried} retried sends: {copies:?}"
    );
    // Nothing left in the spool once all is delivered.
    wait_spool_empty(&srv);
    let log = srv.log();
    assert!(
        log.contains("sx-delivery[") && log.contains("killed by signal 9"),
        "{log}"
    );
}

/// At start, a spool file with an unreadable envelope is moved to corrupt/ and
/// logged, a file that was never committed is removed, and the server serves.
#[test]
fn corrupt_and_uncommitted_spool_files_at_start() {
    let srv = Server::prepare("");
    let msg = srv.path("queue/msg");
    std::fs::create_dir_all(&msg).unwrap();
    let mut bad = b"Subject: x\r\n\r\nbody\r\n".to_vec();
    bad.extend_from_slice(b"SXENV1\ngarbage");
    bad.extend_from_slice(&14u64.to_le_bytes());
    bad.extend_from_slice(b"SXENVT1\n");
    std::fs::write(msg.join("0123456789ABCDEF0123"), &bad).unwrap();
    std::fs::write(
        msg.join("0123456789ABCDEF0124"),
        b"Subject: half\r\n\r\nwritten",
    )
    .unwrap();
    if is_root() {
        // As the queue process would have made them.
        let q = nix::unistd::User::from_name("_sxqueue").unwrap().unwrap();
        for p in [
            msg.clone(),
            msg.join("0123456789ABCDEF0123"),
            msg.join("0123456789ABCDEF0124"),
        ] {
            std::os::unix::fs::chown(&p, Some(q.uid.as_raw()), Some(q.gid.as_raw())).unwrap();
        }
    }
    let srv = srv.start();
    srv.wait_log(
        "0123456789ABCDEF0123: unreadable queue file moved to corrupt/",
        1,
        Duration::from_secs(5),
    );
    srv.wait_log(
        "0123456789ABCDEF0124: removing a message that was never committed",
        1,
        Duration::from_secs(5),
    );
    assert!(srv.path("queue/corrupt/0123456789ABCDEF0123.msg").exists());
    assert!(!msg.join("0123456789ABCDEF0124").exists());
    assert!(smtp_greets(srv.ports.smtp));
}

/// IMAP readers that keep logging in, selecting and counting INBOX, coming back
/// after any error, until told to stop; prints the last count and the number of
/// reconnections.
const READER_PY: &str = r#"
import imaplib, ssl, sys, time, os
port, stopfile, progress = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
count, reconnects = 0, 0
while not os.path.exists(stopfile):
    try:
        m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=10)
        m.login('bob@a.test', 'pw-bob-1')
        while not os.path.exists(stopfile):
            typ, data = m.select('INBOX', readonly=True)
            count = int(data[0])
            open(progress + '.tmp', 'w').write(str(count))
            os.rename(progress + '.tmp', progress)
            m.noop(); time.sleep(0.05)
        m.logout()
    except Exception:
        reconnects += 1
        time.sleep(0.2)
print(count, reconnects, flush=True)
"#;

#[test]
fn kill9_of_smtp_and_imap_under_load_loses_nothing() {
    const CLIENTS: usize = 4;
    const PER: usize = 25;
    let srv = Server::prepare("").start();
    srv.expect_crashes();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let stop = srv.path("stop-readers");
    let progress = |i: usize| srv.path(&format!("reader-{i}"));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            python_cmd()
                .args(["-c", READER_PY, &srv.ports.imaps.to_string()])
                .arg(&stop)
                .arg(progress(i))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Senders report "ok m<i> <queue id>" per acknowledged message.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut senders = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = python_cmd()
            .args([
                "-c",
                CLIENT_PY,
                &srv.ports.smtp.to_string(),
                &PER.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = c.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        senders.push(c);
    }
    drop(tx);
    let mut acked: Vec<String> = Vec::new();
    let mut retried = 0usize;
    let mut killed = Vec::new();
    for line in rx {
        if let Some(rest) = line.strip_prefix("ok ") {
            acked.push(rest.split_whitespace().nth(1).unwrap_or("").to_string());
        } else if line.starts_with("drop ") || line.starts_with("tempfail ") {
            retried += 1;
        }
        if acked.len() == 20 && !killed.contains(&"smtp") {
            kill(srv.child_pid("sx-smtp"));
            killed.push("smtp");
        }
        if acked.len() == 50 && !killed.contains(&"imap") {
            kill(srv.child_pid("sx-imap"));
            killed.push("imap");
        }
    }
    for mut s in senders {
        assert!(
            s.wait().unwrap().success(),
            "a sender gave up:\n{}",
            srv.log()
        );
    }
    assert_eq!(acked.len(), CLIENTS * PER);
    assert_eq!(killed, ["smtp", "imap"]);

    // Every acknowledged queue id is in exactly one Maildir file (new/ or cur/:
    // the readers' sessions may have moved them).
    let dirs = [
        srv.path("mail/a.test/bob/new"),
        srv.path("mail/a.test/bob/cur"),
    ];
    let t = Instant::now();
    loop {
        let names: Vec<String> = dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| !names.iter().any(|n| n.contains(id.as_str())))
            .collect();
        if missing.is_empty() {
            for id in &acked {
                let copies = names.iter().filter(|n| n.contains(id.as_str())).count();
                assert_eq!(copies, 1, "{id} delivered {copies} times");
            }
            assert!(
                names.len() <= acked.len() + retried,
                "{} files",
                names.len()
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "acknowledged but missing: {missing:?}\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The readers came back after the imap restart and see every message.
    let t = Instant::now();
    let seen = |i: usize| -> usize {
        std::fs::read_to_string(progress(i))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    while (0..3).any(|i| seen(i) < acked.len()) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "readers saw {:?} of {}",
            (0..3).map(seen).collect::<Vec<_>>(),
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&stop, "").unwrap();
    for r in readers {
        let o = r.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let count: usize = text
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!(
            count >= acked.len(),
            "a reader saw {count} of {}: {text}",
            acked.len()
        );
    }
    // Both deaths were logged by the parent, and the set was restarted each time.
    let log = srv.log();
    for who in ["sx-smtp[", "sx-imap["] {
        assert!(
            log.lines()
                .any(|l| l.contains(who) && l.contains("killed by signal 9")),
            "{who} death not logged:\n{log}"
        );
    }
    assert!(log.matches("restarted:").count() >= 2, "{log}");
}

/// bob submits n messages to carol@b.test over 587 (STARTTLS + AUTH), one
/// session, reconnecting when it drops; prints "ok m<i>" per 250.
const SUBMIT_REMOTE_PY: &str = r#"
import smtplib, ssl, sys, time
port, cafile, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
i, s = 0, None
deadline = time.time() + 90
while i < n:
    if time.time() > deadline:
        print('gave up', flush=True)
        sys.exit(1)
    try:
        if s is None:
            s = smtplib.SMTP('127.0.0.1', port, timeout=10)
            s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
        s.mail('bob@a.test'); s.rcpt('carol@b.test')
        code, msg = s.data(('Subject: m%d\r\n\r\nbody %d\r\n' % (i, i)).encode())
        if code == 250:
            print('ok m%d' % i, flush=True)
            i += 1
            time.sleep(0.01)
        else:
            s.rset()
    except Exception as e:
        print('drop m%d %s' % (i, type(e).__name__), flush=True)
        s = None
        time.sleep(0.2)
print('done', flush=True)
"#;

/// Subjects of the messages in a Maildir's new/.
fn subjects(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill9_of_the_outbound_side_under_load_loses_nothing() {
    const N: usize = 120;
    let b = Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test").start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    // A relays b.test to B; its MTA side lives in sx-smtp.
    let a = Server::prepare(&format!(
        "EMAIL_ROUTES=b.test=127.0.0.1:{}\nEMAIL_QUEUE_RETRY=1s",
        b.ports.smtp
    ))
    .start();
    a.expect_crashes();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let inbox = b.path("mail/b.test/carol/new");
    let mut c = python_cmd()
        .args(["-c", SUBMIT_REMOTE_PY, &a.ports.submission.to_string()])
        .arg(&a.cert)
        .arg(N.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut killed = None;
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(m) = line.strip_prefix("ok ") {
            acked.push(m.to_string());
        }
        // Kill while messages are both arriving and going out to B.
        if killed.is_none() && acked.len() >= 20 && !subjects(&inbox).is_empty() {
            let pid = a.child_pid("sx-smtp");
            kill(pid);
            killed = Some(pid);
        }
    }
    assert!(
        c.wait().unwrap().success(),
        "the submitter gave up:\n{}",
        a.log()
    );
    assert_eq!(acked.len(), N);
    let pid = killed.expect("sx-smtp was never killed");
    // Everything acknowledged reaches B: at least once (SMTP may duplicate a
    // message whose remote 250 was lost with the process), never lost.
    let t = Instant::now();
    loop {
        let got = subjects(&inbox);
        let missing: Vec<&String> = acked.iter().filter(|m| !got.contains(m)).collect();
        if missing.is_empty() {
            let dups: Vec<&String> = acked
                .iter()
                .filter(|m| got.iter().filter(|g| g == m).count() > 1)
                .collect();
            // Only what was in flight when smtp died can be sent twice.
            assert!(dups.len() <= 4, "duplicated: {dups:?}");
            eprintln!(
                "{} delivered to B, {} duplicated: {dups:?}",
                got.len(),
                dups.len()
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "acknowledged by A but never at B: {missing:?}\nA:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A's queue drains, and the death was logged and the set restarted.
    wait_spool_empty(&a);
    let log = a.log();
    assert!(
        log.contains(&format!("sx-smtp[{pid}] killed by signal 9")),
        "{log}"
    );
    assert!(log.contains("restarted:"), "{log}");
}

/// strace attached to every thread of `pids`, writing `out`.
struct Tracer {
    child: std::process::Child,
    /// Thread id -> process id of the threads there were when it attached.
    initial: std::collections::HashMap<u32, u32>,
}

fn tasks(pid: i32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn tracer_of(tid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()
}

impl Tracer {
    fn attach(pids: &[i32], out: &std::path::Path) -> Tracer {
        let mut c = std::process::Command::new("strace");
        c.args(["-f", "-ttt", "-yy", "-s", "300", "-qq", "-e"])
            .arg(durability::TRACED)
            .args(["-e", "signal=none", "-o"])
            .arg(out);
        for p in pids {
            c.arg("-p").arg(p.to_string());
        }
        let child = c
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("strace (apt install strace)");
        let me = child.id();
        let mut tracer = Tracer {
            child,
            initial: Default::default(),
        };
        let t = Instant::now();
        loop {
            let all: Vec<(u32, u32)> = pids
                .iter()
                .flat_map(|&p| tasks(p).into_iter().map(move |t| (t, p as u32)))
                .collect();
            if !all.is_empty() && all.iter().all(|(t, _)| tracer_of(*t) == Some(me)) {
                tracer.initial = all.into_iter().collect();
                return tracer;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "strace did not attach"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Detach and wait for the trace to be complete.
    fn finish(self) {
        drop(self);
    }
}

impl Drop for Tracer {
    /// SIGINT makes strace detach (the server goes on) and flush its output.
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
    }
}

/// Wait until `path`'s text satisfies `ok` (the trace shows an event).
fn wait_text(path: &std::path::Path, what: &str, ok: impl Fn(&str) -> bool) {
    let t = Instant::now();
    while !ok(&std::fs::read_to_string(path).unwrap_or_default()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "never saw {what}:\n{}",
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("env") || l.contains("rename"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every acknowledgement the server and the client give follows the syncs
/// that make it true (durability.rs has the rules). Red when any one of the
/// spool's, the Maildir's, the envelope update's or the outbox's fdatasync or
/// directory fsync is removed: the page cache would still hold the mail for
/// every kill -9 test, but a power loss would not.
#[test]
fn every_acknowledgement_follows_the_syncs_that_make_it_true() {
    if !is_root() {
        eprintln!("skipped: tracing the server's unprivileged children needs root");
        return;
    }
    // remote.test goes to a closed port: refused at once, deferred.
    let srv = Server::prepare(&format!(
        "EMAIL_ROUTES=remote.test=127.0.0.1:{}",
        free_port()
    ))
    .start();
    srv.add_account("bob@a.test", "pw-bob-1");
    let pids: Vec<i32> = ["sx-smtp", "sx-queue", "sx-delivery"]
        .iter()
        .map(|n| srv.child_pid(n))
        .collect();
    let delivery = pids[2] as u32;
    let out = srv.path("server.trace");
    let tracer = Tracer::attach(&pids, &out);

    // Three messages on port 25, each delivered before the next is sent.
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = format!("Subject: d{i}\r\n\r\nbody {i}\r\n.");
        let r = smtp_dialog_at(
            "127.0.0.1",
            srv.ports.smtp,
            &[
                "EHLO x.test",
                "MAIL FROM:<alice@x.test>",
                "RCPT TO:<bob@a.test>",
                "DATA",
                &body,
                "QUIT",
            ],
        );
        let id = r[5]
            .trim()
            .strip_prefix("250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("{r:?}"))
            .to_string();
        srv.wait_log(
            &format!("{id}: delivered to bob@a.test"),
            1,
            Duration::from_secs(10),
        );
        ids.push(id);
    }
    // One for bob and for a remote address that cannot be reached yet: the
    // queue records the deferral in env/<id>.
    let id = submit_as_bob(
        &srv,
        &["bob@a.test", "carol@remote.test"],
        "Subject: e\r\n\r\nx\r\n",
    );
    srv.wait_log(
        &format!("{id}: delivered to bob@a.test"),
        1,
        Duration::from_secs(10),
    );
    wait_text(&out, "the deferral recorded in env/", |t| {
        t.contains(&format!("\"env/{id}\""))
    });
    // Then its directory's sync, which the rules below insist on.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3)
        && !std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("/queue/env>) = 0")
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let initial = tracer.initial.clone();
    tracer.finish();

    let text = std::fs::read_to_string(&out).unwrap();
    let calls = strace::parse(&text);
    let pid_of = durability::processes(&calls, &initial);
    let mut failures = Vec::new();
    for id in &ids {
        if let Err(e) = durability::spool(&calls, id) {
            failures.push(format!("spool: {e}"));
        }
    }
    let into_new = durability::renames(&calls, |to| to.contains("/new/"));
    assert_eq!(
        into_new.len(),
        4,
        "Maildir renames into new/: {:?}",
        into_new.iter().map(|(_, _, to)| to).collect::<Vec<_>>()
    );
    for (rename, from, to) in &into_new {
        let Some(ack) = durability::first_send(&calls, &pid_of, delivery, rename.end) else {
            failures.push(format!(
                "Maildir: delivery never answered after renaming {to}"
            ));
            continue;
        };
        if let Err(e) = durability::published(&calls, rename, from, to, ack) {
            failures.push(format!("Maildir: {e}"));
        }
    }
    let env = durability::renames(&calls, |to| to == format!("env/{id}"));
    assert!(!env.is_empty(), "no env/{id} rename:\n{text}");
    for (rename, from, to) in &env {
        if let Err(e) = durability::published(&calls, rename, from, to, usize::MAX) {
            failures.push(format!("envelope update: {e}"));
        }
    }

    // The client's offline queue: "queued as" only once the file is there for good.
    let dir = tempfile::tempdir().unwrap();
    let client_trace = dir.path().join("client.trace");
    let o = std::process::Command::new("strace")
        .args(["-f", "-ttt", "-yy", "-s", "300", "-qq", "-e"])
        .arg(durability::TRACED)
        .arg("-o")
        .arg(&client_trace)
        .arg(SX)
        .args([
            "email",
            "--queue",
            "-v",
            "--from",
            "me@a.test",
            "--to",
            "you@b.test",
        ])
        .args(["--subject", "later", "--body", "b"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("SMTP_QUEUE_DIR", dir.path().join("outbox"))
        .env("SMTP_LOG", "none")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ok(&o, "sx email --queue under strace");
    let ctext = std::fs::read_to_string(&client_trace).unwrap();
    let ccalls = strace::parse(&ctext);
    let said = ccalls
        .iter()
        .find(|c| c.name == "write" && c.strings().iter().any(|s| s.contains("queued as")))
        .unwrap_or_else(|| panic!("no \"queued as\" in the client's trace:\n{ctext}"))
        .start;
    let queued = durability::renames(&ccalls, |to| to.ends_with(".msg"));
    assert_eq!(queued.len(), 1, "outbox renames:\n{ctext}");
    for (rename, from, to) in &queued {
        if let Err(e) = durability::published(&ccalls, rename, from, to, said) {
            failures.push(format!("client outbox: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "acknowledged before on disk:\n{}",
        failures.join("\n")
    );
}
