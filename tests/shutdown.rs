//! A stop (SIGTERM, as systemctl sends) drains: SMTP transactions in progress
//! finish within EMAIL_SHUTDOWN_TIMEOUT and get their 250 (the message is
//! delivered, after a restart if need be) or, when later, 421 4.3.2; idle
//! sessions get 421 / BYE at once; nobody is cut without a reply; the daemon
//! exits 0 within the timeout.

mod common;
use common::*;
use std::time::{Duration, Instant};

const CLIENTS_PY: &str = r#"
import socket, ssl, sys, threading, time, os
port, imaps, cafile, n, ready_file, go_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
results = {}

def reply(f):
    while True:
        l = f.readline()
        if not l:
            return 'EOF'
        if l[3:4] != b'-':
            return l.decode().strip()

def client(i):
    s = socket.create_connection(('127.0.0.1', port), timeout=30); f = s.makefile('rb')
    reply(f)
    s.sendall(b'EHLO c%d.test\r\n' % i); reply(f)
    s.sendall(b'MAIL FROM:<c%d@remote.test>\r\n' % i); reply(f)
    s.sendall(b'RCPT TO:<bob@a.test>\r\n'); reply(f)
    s.sendall(b'DATA\r\n'); reply(f)
    s.sendall(b'Subject: drain %d\r\n\r\n' % i + b'x' * 1000 + b'\r\n')
    results[i] = 'in DATA'
    while not os.path.exists(go_file):
        time.sleep(0.01)
    try:
        if i % 2 == 0:
            # Finishes at once: must be accepted.
            s.sendall(b'more\r\n.\r\n')
        else:
            # Still sending when the deadline comes: must be told 421.
            s.settimeout(0.3)
            got = b''
            while b'\n' not in got:
                try:
                    s.sendall(b'y\r\n')
                except OSError:
                    pass
                try:
                    d = s.recv(1000)
                except (socket.timeout, TimeoutError):
                    continue
                if not d:
                    break
                got += d
            results[i] = got.decode().strip() or 'EOF'
            return
        results[i] = reply(f)
    except OSError as e:
        results[i] = 'error ' + repr(e)

def idle_smtp():
    s = socket.create_connection(('127.0.0.1', port), timeout=30); f = s.makefile('rb')
    reply(f); s.sendall(b'EHLO idle.test\r\n'); reply(f)
    while not os.path.exists(go_file):
        time.sleep(0.01)
    t = time.time()
    results['idle-smtp'] = '%s %.1f' % (reply(f), time.time() - t)

def idle_imap():
    ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', imaps), timeout=30)); f = s.makefile('rb')
    f.readline()
    s.sendall(b'a LOGIN bob@a.test pw-bob-1\r\n'); f.readline()
    s.sendall(b'b SELECT INBOX\r\n')
    while not f.readline().startswith(b'b '): pass
    s.sendall(b'c IDLE\r\n'); f.readline()
    while not os.path.exists(go_file):
        time.sleep(0.01)
    t = time.time()
    l = f.readline().decode().strip()
    results['idle-imap'] = '%s %.1f' % (l, time.time() - t)

ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
ts += [threading.Thread(target=idle_smtp), threading.Thread(target=idle_imap)]
[t.start() for t in ts]
while sum(1 for v in results.values() if v == 'in DATA') < n:
    time.sleep(0.01)
time.sleep(0.3)
open(ready_file, 'w').close()
[t.join() for t in ts]
for k in sorted(results, key=str):
    print(k, results[k])
"#;

#[test]
fn sigterm_during_20_transfers_drains_and_exits_0() {
    let mut srv = Server::prepare("EMAIL_SHUTDOWN_TIMEOUT=3").start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let (ready, go) = (srv.path("ready"), srv.path("go"));
    let py = python_cmd()
        .args(["-c", CLIENTS_PY])
        .arg(srv.ports.smtp.to_string())
        .arg(srv.ports.imaps.to_string())
        .arg(&srv.cert)
        .arg("20")
        .arg(&ready)
        .arg(&go)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !ready.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "clients not in DATA:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM, and let the clients go on.
    let stopped = Instant::now();
    srv.signal(nix::sys::signal::Signal::SIGTERM);
    std::fs::write(&go, b"").unwrap();
    let mut child = srv.child.take().unwrap();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "still running:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = stopped.elapsed();
    let out = py.wait_with_output().unwrap();
    let results = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(code, Some(0), "exit code; log:\n{}", srv.log());
    // Within the timeout (3 s), plus the parent's staged stop of the others.
    assert!(
        took < Duration::from_secs(8),
        "took {took:?}\n{}",
        srv.log()
    );
    let mut accepted = 0;
    for i in 0..20 {
        let line = results
            .lines()
            .find(|l| l.starts_with(&format!("{i} ")))
            .unwrap_or_else(|| panic!("no result for {i}:\n{results}"));
        if i % 2 == 0 {
            assert!(
                line.contains(" 250 2.0.0 Ok: queued"),
                "{line}\n{results}\n{}",
                srv.log()
            );
            accepted += 1;
        } else {
            assert!(
                line.contains(" 421 4.3.2 "),
                "{line}\n{results}\n{}",
                srv.log()
            );
        }
    }
    let idle = results
        .lines()
        .find(|l| l.starts_with("idle-smtp "))
        .unwrap_or("");
    assert!(idle.contains("421 4.3.2"), "{results}");
    let bye = results
        .lines()
        .find(|l| l.starts_with("idle-imap "))
        .unwrap_or("");
    assert!(bye.contains("* BYE"), "{results}");
    // What got 250 is delivered once the server is back.
    srv.launch();
    let inbox = srv.path("mail/a.test/bob/new");
    let t = Instant::now();
    while std::fs::read_dir(&inbox).unwrap().count() < accepted {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "not delivered:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.wait_spool(0);
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), accepted);
}
