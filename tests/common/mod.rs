//! Test harness: runs the real `sx` binary as a daemon on free loopback ports in a
//! temp dir (with privilege drop when the tests run as root) and stops it.
#![allow(dead_code)]

pub mod postfix;
pub mod release;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `sx` under test: the one this `cargo test` built, or the one
/// SX_UNDER_TEST names (tests/release.rs runs suites against the release build).
pub const SX: SxBin = SxBin;

pub struct SxBin;

impl SxBin {
    pub fn path(&self) -> &'static str {
        static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PATH.get_or_init(|| {
            std::env::var("SX_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sx").into())
        })
    }
}

impl AsRef<std::ffi::OsStr> for SxBin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path().as_ref()
    }
}

impl AsRef<Path> for SxBin {
    fn as_ref(&self) -> &Path {
        self.path().as_ref()
    }
}

impl std::fmt::Display for SxBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}
pub const USERS: [&str; 4] = ["_sxkey", "_sxsmtp", "_sxqueue", "_sxmail"];

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Create the system users the server drops to (root only, idempotent, one at a time).
pub fn ensure_users() {
    if !is_root() {
        return;
    }
    let lock = std::fs::File::create("/tmp/.sx-test-users.lock").unwrap();
    let _g = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    for u in USERS {
        if nix::unistd::User::from_name(u).unwrap().is_none() {
            let st = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    u,
                ])
                .status()
                .unwrap();
            assert!(st.success(), "useradd {u}");
        }
    }
}

/// Held by tests that change or depend on system-wide files (the package test
/// installs /etc/scorpiox; the embedded-default test needs it absent).
pub fn system_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::File::create("/tmp/.sx-test-system.lock").unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap()
}

/// A free port below the kernel's ephemeral range (32768+), so that client
/// sockets of parallel tests cannot take it between this check and the server's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread processes (test binaries) apart, then walk upwards within one.
    if NEXT.load(Ordering::Relaxed) == 0 {
        let start = 20_000 + (std::process::id() % 600) as u16 * 20;
        let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = if p >= 32_000 { 20_000 + p % 12_000 } else { p };
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

pub struct Ports {
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imaps: u16,
    pub imap: u16,
}

/// A self-signed RSA certificate made by openssl (a real, independent tool).
pub fn make_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.cert.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-addext")
        .arg(format!(
            "subjectAltName=DNS:{cn},DNS:localhost,IP:127.0.0.1"
        ))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

/// A test CA and a server certificate it signed (CN and SANs as make_cert), for
/// clients that verify like browsers do (rustls refuses a self-signed CA as a leaf).
/// Returns (ca.pem, cert.pem, key.pem).
pub fn make_ca_cert(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let subj = format!("/CN={cn}");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=scorpiox test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", "leaf.key", "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName=DNS:{cn},DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        "leaf.pem",
        "-extfile",
        "leaf.ext",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("leaf.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

pub struct Server {
    /// Address the SMTP listener is on (127.0.0.1 unless a test moves it).
    pub host: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub ports: Ports,
    pub child: Option<Child>,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The test kills children or injects panics itself: their deaths and
    /// panics in the log are not failures.
    crashes_expected: std::sync::atomic::AtomicBool,
}

impl Server {
    /// Config only (not started), with `extra` KEY=VALUE lines appended.
    pub fn prepare(extra: &str) -> Server {
        ensure_users();
        let dir = tempfile::Builder::new()
            .prefix("sx-test-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let (cert, key) = make_cert(d, "tls", "mail.a.test");
        let ports = Ports {
            smtp: free_port(),
            submission: free_port(),
            submissions: free_port(),
            imaps: free_port(),
            imap: free_port(),
        };
        let config = d.join("scorpiox-env.txt");
        let text = format!(
            "# test server\nEMAIL_LISTEN_ADDR=127.0.0.1\nEMAIL_HOSTNAME=mail.a.test\nEMAIL_DOMAIN=a.test\n\
             EMAIL_SMTP_PORT={}\nEMAIL_SUBMISSION_PORT={}\nEMAIL_SUBMISSIONS_PORT={}\nEMAIL_IMAP_PORT={}\n\
             EMAIL_IMAP_STARTTLS_PORT={}\nEMAIL_DATA_DIR={d}/data\nEMAIL_MAILDIR={d}/mail\nEMAIL_QUEUE_DIR={d}/queue\n\
             EMAIL_TLS_CERT={}\nEMAIL_TLS_KEY={}\nEMAIL_ACCOUNTS_FILE={d}/accounts\nEMAIL_ALIASES_FILE={d}/aliases\n\
             EMAIL_DKIM_KEY={d}/dkim.key\nEMAIL_PID_FILE={d}/sx.pid\nEMAIL_CONTROL_SOCKET={d}/control.sock\n\
             EMAIL_SUBMIT_SOCKET={d}/submit.sock\nEMAIL_MAILDROP_DIR={d}/maildrop\nEMAIL_DOMAINS_FILE={d}/domains\n\
             EMAIL_LOG=stderr\nEMAIL_DNS_SERVER=127.0.0.1:9\n{extra}\n",
            ports.smtp,
            ports.submission,
            ports.submissions,
            ports.imaps,
            ports.imap,
            cert.display(),
            key.display(),
            d = d.display()
        );
        std::fs::write(&config, text).unwrap();
        Server {
            host: "127.0.0.1".into(),
            dir,
            config,
            ports,
            child: None,
            cert,
            key,
            crashes_expected: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This test kills children or makes them panic on purpose.
    pub fn expect_crashes(&self) {
        self.crashes_expected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Fails the test (from Drop) when the daemon died on its own, or, unless
    /// the test caused it, when a child panicked or died: a test can pass on a
    /// restarted child while the server had a bug.
    fn check_health(&self, died: Option<std::process::ExitStatus>) {
        if let Some(st) = died {
            panic!("the daemon exited on its own ({st}):\n{}", self.log());
        }
        if self
            .crashes_expected
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let log = self.log();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| {
                // parent/supervise.rs's words for a child's death.
                l.contains("panic at ")
                    || l.contains("] exited with status ")
                    || l.contains("] killed by signal ")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "a child panicked or died:\n{}\n\nwhole log:\n{log}",
            bad.join("\n")
        );
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Start in the foreground (stdout/stderr to files) and wait until it serves.
    pub fn start(mut self) -> Server {
        self.launch();
        self
    }

    /// (Re)start the daemon with the same configuration; the log is appended to.
    pub fn launch(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("stdout.log"))
            .unwrap();
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("stderr.log"))
            .unwrap();
        let child = Command::new(SX)
            .args(["server-email", "--config"])
            .arg(&self.config)
            // isolation.rs's panic test uses them (proc/src/fault.rs).
            .env("SX_FAULT_INJECTION", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let started = self.log().matches("processes serving").count();
        self.child = Some(child);
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {st}:\n{}", self.log());
            }
            if self.log().matches("processes serving").count() > started
                && smtp_greets_at(&self.host, self.ports.smtp)
            {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (n times), or panic with the log.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        self.wait_log_or(needle, n, timeout, "");
    }

    /// `wait_log`, with `context` added to the panic message.
    pub fn wait_log_or(&self, needle: &str, n: usize, timeout: Duration, context: &str) {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.log().matches(needle).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "log never showed {needle:?} x{n}:\n{}\n{context}",
            self.log()
        );
    }

    /// Wait until the spool holds exactly `n` messages: every other message
    /// it accepted has been delivered, bounced or sent on. What a test then
    /// counts in a mailbox is final (no fixed sleep stands in for this).
    pub fn wait_spool(&self, n: usize) {
        let t = Instant::now();
        loop {
            let now = std::fs::read_dir(self.path("queue/msg"))
                .map(|d| d.count())
                .unwrap_or(0);
            if now == n {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the spool holds {now} messages, not {n}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_serving(&mut self, timeout: Duration) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {st}:\n{}", self.log());
            }
            if self.log().contains("processes serving") && smtp_greets(self.ports.smtp) {
                return;
            }
            assert!(
                t.elapsed() < timeout,
                "server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `sx server-email --config <ours> args...` with `stdin` fed in.
    pub fn sx(&self, args: &[&str], stdin: &str) -> Output {
        sx_with_config(&self.config, args, stdin)
    }

    pub fn add_account(&self, addr: &str, pw: &str) {
        let o = self.sx(&["--add-account", addr], &format!("{pw}\n"));
        assert!(
            o.status.success(),
            "add-account: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Pids of the children, by process name (`sx-smtp`, ...).
    pub fn children(&self) -> Vec<(String, i32)> {
        children_of(self.pid())
    }

    pub fn child_pid(&self, name: &str) -> i32 {
        self.children()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} child:\n{}", self.log()))
            .1
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let kids = children_of(child.id() as i32);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t = Instant::now();
        let code = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.code();
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for (_, pid) in kids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        code
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped first: a failed check must not leave the daemon running.
        let died = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        self.stop();
        if !std::thread::panicking() {
            self.check_health(died);
        }
    }
}

/// Run `c` with `input` on its stdin (or /dev/null there), capturing stdout
/// and stderr.
pub fn output_with_input(mut c: Command, input: Option<&[u8]>) -> Output {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(i) = input {
        let _ = child.stdin.take().unwrap().write_all(i);
    }
    child.wait_with_output().unwrap()
}

pub fn sx_with_config(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(SX)
        .args(["server-email", "--config"])
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading its input (EPIPE is fine).
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    c.wait_with_output().unwrap()
}

/// (comm, pid) of every process whose parent is `ppid`.
/// Wait until none of `pids` runs any more (a zombie counts as gone).
#[allow(dead_code)]
pub fn wait_exited(pids: &[i32]) {
    let t = Instant::now();
    let running = |p: &i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    while pids.iter().any(running) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn children_of(ppid: i32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm is in parentheses and may contain spaces; fields after it are fixed.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').unwrap() + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        if rest.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(ppid) && rest[0] != "Z" {
            out.push((comm, pid));
        }
    }
    out.sort();
    out
}

pub fn proc_status(pid: i32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

pub fn smtp_greets(port: u16) -> bool {
    smtp_greets_at("127.0.0.1", port)
}

pub fn smtp_greets_at(host: &str, port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((host, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    matches!(s.read(&mut buf), Ok(n) if n > 4 && buf.starts_with(b"220 "))
}

/// Run a Python 3 script (Debian's interpreter, where python3-dkim lives).
/// Debian's python3 (where python3-dkim, aiosmtpd & co. are installed), else
/// whatever python3 is on the PATH.
pub fn python_cmd() -> Command {
    Command::new(if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    })
}

pub fn python(script: &str, args: &[&str]) -> Output {
    python_cmd()
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3")
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// IMAP LOGIN over implicit TLS with Python's imaplib: "OK", "NO <the
/// server's text>" for a refusal, "BAD ..." for a protocol error, and
/// "DROPPED ..." when the connection broke (never mistaken for a refusal).
pub const IMAP_LOGIN_PY: &str = r#"
import imaplib, ssl, sys
port, cafile, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
try:
    m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=10)
    typ, _ = m.login(user, pw)
    print(typ)
    m.logout()
except imaplib.IMAP4.abort as e:
    print('DROPPED', e)
except imaplib.IMAP4.error as e:
    print(('BAD ' if 'command error: BAD' in str(e) else 'NO ') + str(e))
except OSError as e:
    print('DROPPED', e)
"#;

pub fn imap_login(srv: &Server, user: &str, pw: &str) -> String {
    let o = python(
        IMAP_LOGIN_PY,
        &[
            &srv.ports.imaps.to_string(),
            &srv.cert.to_string_lossy(),
            user,
            pw,
        ],
    );
    assert_ok(&o, "imap login");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// SHA-256 fingerprint (hex, lower case) of the certificate a TLS server presents,
/// as seen by openssl s_client.
pub fn served_cert_fingerprint(port: u16) -> String {
    let sc = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "mail.a.test",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let pem = String::from_utf8_lossy(&sc.stdout).to_string();
    let start = pem
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no cert from s_client:\n{pem}"));
    let end = pem.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    pem_fingerprint(&pem[start..end])
}

pub fn pem_fingerprint(pem: &str) -> String {
    let mut c = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_lowercase()
}

pub fn file_fingerprint(p: &Path) -> String {
    pem_fingerprint(&std::fs::read_to_string(p).unwrap())
}

/// A plain SMTP dialog: the greeting, then one reply per command (none for a
/// DATA that got no 354-worthy 250 before it). Commands are sent one at a time.
#[allow(dead_code)]
pub fn smtp_dialog_at(host: &str, port: u16, cmds: &[&str]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect((host, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    let mut out = vec![reply()];
    for c in cmds {
        w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        if *c != "DATA" || out.last().is_some_and(|l| l.starts_with("250")) {
            out.push(reply());
        }
    }
    out
}

/// bob@a.test (password pw-bob-1) submits `message` to `rcpts` on the submission
/// port with STARTTLS and AUTH; returns the queue id from the 250 reply.
#[allow(dead_code)]
pub fn submit_as_bob(srv: &Server, rcpts: &[&str], message: &str) -> String {
    const PY: &str = r#"
import smtplib, ssl, sys
port, cafile, message, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
s.mail('bob@a.test')
for r in rcpts:
    code, msg = s.rcpt(r)
    assert code == 250, (r, code, msg)
code, msg = s.data(message.encode())
assert code == 250, (code, msg)
print(msg.decode().split()[-1])
s.quit()
"#;
    let port = srv.ports.submission.to_string();
    let cert = srv.cert.to_string_lossy().into_owned();
    let mut args = vec![port.as_str(), cert.as_str(), message];
    args.extend_from_slice(rcpts);
    let o = python(PY, &args);
    assert_ok(&o, "submit as bob");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Wait until `victim` (a role's process name) runs again with a new pid while
/// the other four kept theirs (only the dead child is restarted), and SMTP and
/// IMAP logins for bob@a.test (password pw-bob-1) are served; panics after `limit`.
#[allow(dead_code)]
pub fn wait_replaced(srv: &Server, before: &[(String, i32)], victim: &str, limit: Duration) {
    let t = Instant::now();
    loop {
        let now = srv.children();
        let replaced = now.len() == 5
            && now.iter().all(|(n, p)| {
                let old = before.iter().find(|(m, _)| m == n).map(|(_, q)| *q);
                if n == victim {
                    old != Some(*p)
                } else {
                    old == Some(*p)
                }
            });
        if replaced
            && smtp_greets(srv.ports.smtp)
            && imap_login(srv, "bob@a.test", "pw-bob-1") == "OK"
        {
            return;
        }
        assert!(
            t.elapsed() < limit,
            "{victim}: not replaced alone after {limit:?} (before {before:?}, now {now:?}):\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// dkimpy verifies `msg`'s DKIM signature, the key taken from the record
/// `--dkim-keygen` printed into `record` (no DNS asked).
pub fn dkimpy_verifies(record: &Path, msg: &Path) -> bool {
    const PY: &str = r#"
import dkim, re, sys
record_line = open(sys.argv[1]).read()
name = record_line.split()[0].rstrip('.')
value = ''.join(re.findall(r'"([^"]*)"', record_line))
msg = open(sys.argv[2], 'rb').read()
def dns(qname, timeout=5):
    q = qname.decode() if isinstance(qname, bytes) else qname
    return value.encode() if q.rstrip('.') == name else None
print('verified' if dkim.verify(msg, dnsfunc=dns) else 'FAILED')
"#;
    let v = python(PY, &[&record.to_string_lossy(), &msg.to_string_lossy()]);
    assert_ok(&v, "dkimpy");
    String::from_utf8_lossy(&v.stdout).trim() == "verified"
}

/// A child process killed and reaped when dropped (also when a test fails).
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq answering for `.test` only, on `addr:port`, with `records`
/// (`--mx-host=...`, `--host-record=...`, `--txt-record=...`), nothing else
/// asked or forwarded. Ready when this returns.
/// The first message file to appear in Maildir `new` of `b`'s carol (B as the
/// outbound tests set it up), as text and path; fails after 15 s with both logs.
pub fn first_at_b(a: &Server, b: &Server) -> (String, PathBuf) {
    let inbox = b.path("mail/b.test/carol/new");
    let t = Instant::now();
    loop {
        if let Some(f) = std::fs::read_dir(&inbox)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
        {
            return (
                std::fs::read_to_string(f.path()).unwrap_or_default(),
                f.path(),
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "nothing at B:\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn dnsmasq(addr: &str, port: u16, records: &[String]) -> Reap {
    let child = Command::new("/usr/sbin/dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &format!("--listen-address={addr}"),
            &format!("--port={port}"),
            "--local=/test/",
            "--pid-file",
        ])
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq");
    let dns = Reap(child);
    let t = Instant::now();
    while std::net::UdpSocket::bind((addr, port)).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "dnsmasq on {addr}:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    dns
}
