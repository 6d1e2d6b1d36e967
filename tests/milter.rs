//! Milters through EMAIL_MILTERS with a real rspamd (Debian's rspamd 3.4,
//! started by the test on loopback in milter mode, its own config, state and
//! log in a temp dir; DNS from a dnsmasq of the test's): GTUBE is refused
//! with rspamd's reply, a clean message gets rspamd's headers, and with
//! rspamd stopped fail=open delivers while fail=closed answers 451.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// rspamd, stopped by its pid when dropped.
struct Rspamd {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Rspamd {
    fn start(milter_port: u16, dns_port: u16) -> Rspamd {
        let dir = tempfile::Builder::new()
            .prefix("sx-rspamd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["override.d", "local.d", "db", "run", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let w = |name: &str, text: String| std::fs::write(d.join(name), text).unwrap();
        w(
            "override.d/worker-proxy.inc",
            format!(
                "bind_socket = \"127.0.0.1:{milter_port}\";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n\
                 upstream \"local\" {{\n  default = yes;\n  self_scan = yes;\n}}\n"
            ),
        );
        w(
            "override.d/worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{}\";\ncount = 1;\n", free_port()),
        );
        w(
            "override.d/worker-controller.inc",
            format!("bind_socket = \"127.0.0.1:{}\";\ncount = 1;\n", free_port()),
        );
        w(
            "override.d/worker-fuzzy.inc",
            format!(
                "bind_socket = \"127.0.0.1:{}\";\ncount = -1;\n",
                free_port()
            ),
        );
        w(
            "override.d/options.inc",
            format!(
                "dns {{\n  nameserver = [\"127.0.0.1:{dns_port}\"];\n  timeout = 1s;\n  retransmits = 1;\n}}\n"
            ),
        );
        let log = d.join("rspamd.log");
        w(
            "override.d/logging.inc",
            format!(
                "type = \"file\";\nfilename = \"{}\";\nlevel = \"info\";\n",
                log.display()
            ),
        );
        w(
            "local.d/milter_headers.conf",
            "use = [\"x-spamd-result\", \"x-rspamd-server\", \"x-rspamd-queue-id\"];\nskip_local = false;\nskip_authenticated = false;\n"
                .to_string(),
        );
        let child = Command::new("rspamd")
            .args(["-f", "-i", "-c", "/etc/rspamd/rspamd.conf"])
            .arg(format!("--var=LOCAL_CONFDIR={}", d.display()))
            .arg(format!("--var=DBDIR={}", d.join("db").display()))
            .arg(format!("--var=RUNDIR={}", d.join("run").display()))
            .arg(format!("--var=LOGDIR={}", d.join("log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rspamd (apt-get install rspamd)");
        let r = Rspamd {
            child: Some(child),
            _dir: dir,
            log,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", milter_port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "rspamd did not listen on {milter_port}: {}",
                std::fs::read_to_string(&r.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn send(srv: &Server, body: &str) -> Vec<String> {
    smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!(
                "From: alice@sender.test\r\nTo: bob@a.test\r\nSubject: milter test\r\nMessage-ID: <{}@sender.test>\r\n\r\n{body}\r\n.",
                free_port()
            ),
            "QUIT",
        ],
    )
}

fn inbox(srv: &Server) -> Vec<String> {
    std::fs::read_dir(srv.path("mail/a.test/bob/new"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_inbox(srv: &Server, n: usize) -> Vec<String> {
    let t = Instant::now();
    loop {
        let got = inbox(srv);
        if got.len() >= n {
            return got;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "{}", srv.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rspamd_as_a_milter_rejects_gtube_tags_clean_mail_and_fails_open_or_closed() {
    let dns_port = free_port();
    let _dns = dnsmasq("127.0.0.1", dns_port, &[]);
    let milter_port = free_port();
    let mut rspamd = Rspamd::start(milter_port, dns_port);
    let open = Server::prepare(&format!(
        "EMAIL_MILTERS=inet:127.0.0.1:{milter_port}?timeout=20s"
    ))
    .start();
    let closed = Server::prepare(&format!(
        "EMAIL_MILTERS=inet:127.0.0.1:{milter_port}?timeout=5s&fail=closed"
    ))
    .start();
    for s in [&open, &closed] {
        s.add_account("bob@a.test", "pw-bob-1");
        s.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    }

    let r = send(&open, GTUBE);
    // rspamd's own reply for its GTUBE rule, as it sent it.
    assert!(
        r[5].starts_with("554 5.7.1 Gtube pattern"),
        "GTUBE: {r:?}\n{}",
        std::fs::read_to_string(&rspamd.log).unwrap_or_default()
    );
    assert!(
        open.log()
            .contains("reject: END-OF-MESSAGE from [127.0.0.1]: 5"),
        "{}",
        open.log()
    );

    let r = send(
        &open,
        "A perfectly ordinary message about lunch on Tuesday.",
    );
    assert!(r[5].starts_with("250 "), "{r:?}\n{}", open.log());
    let got = wait_inbox(&open, 1);
    assert_eq!(got.len(), 1, "GTUBE must not have been delivered: {got:?}");
    assert!(
        got[0].contains("X-Spamd-Result:") && got[0].contains("X-Rspamd-Server:"),
        "rspamd's headers: {}",
        got[0]
    );

    rspamd.stop();
    let r = send(&open, "rspamd is gone: delivered anyway (fail=open)");
    assert!(r[5].starts_with("250 "), "{r:?}");
    wait_inbox(&open, 2);
    assert!(open.log().contains("skipped (fail=open)"), "{}", open.log());
    // The milter is asked from MAIL on: unreachable there, MAIL gets the 451.
    let r = send(&closed, "rspamd is gone: deferred (fail=closed)");
    assert!(r[2].starts_with("451 4.7.1 "), "{r:?}");
    assert!(inbox(&closed).is_empty());
}

/// Issue 17: a milter's word counts at the step it gives it: MAIL refused at
/// Start tests/checks/test_milter.py listening on `at` (a port or unix:/path)
/// and wait until `up` says it answers.
fn test_milter(at: &str, up: &dyn Fn() -> bool) -> std::process::Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/checks/test_milter.py");
    let mut milter = python_cmd()
        .arg(script)
        .arg(at)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 (apt-get install python3-milter)");
    let t = Instant::now();
    while !up() {
        if let Ok(Some(st)) = milter.try_wait() {
            panic!("test_milter.py exited {st} (apt-get install python3-milter)");
        }
        assert!(t.elapsed() < Duration::from_secs(20), "test milter on {at}");
        std::thread::sleep(Duration::from_millis(50));
    }
    milter
}

/// MAIL, one recipient refused at its RCPT while the other goes on, and the
/// end-of-message changes (a header field, the quarantine) applied. The
/// milter is Sendmail's libmilter, through Debian's python3-milter.
#[test]
fn a_libmilter_milter_is_answered_at_mail_rcpt_and_end_of_message() {
    let port = free_port();
    let mut milter = test_milter(&port.to_string(), &|| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let srv = Server::prepare(&format!("EMAIL_MILTERS=inet:127.0.0.1:{port}?fail=closed")).start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.add_account("carol@a.test", "pw-carol");
    srv.wait_log("directory: 2 account(s)", 1, Duration::from_secs(5));

    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            "MAIL FROM:<blocked@sender.test>",
            "QUIT",
        ],
    );
    assert!(
        r[2].starts_with("550 5.7.1 sender blocked by test milter"),
        "{r:?}"
    );

    let msg = |subject: &str| {
        format!("From: ok@sender.test\r\nTo: bob@a.test\r\nSubject: {subject}\r\n\r\nhello\r\n.")
    };
    let plain = msg("hello");
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            "MAIL FROM:<ok@sender.test>",
            "RCPT TO:<carol@a.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &plain,
            "QUIT",
        ],
    );
    assert!(
        r[3].starts_with("550 5.7.1 recipient refused by test milter"),
        "{r:?}"
    );
    assert!(r[4].starts_with("250 "), "{r:?}");
    assert!(r[6].starts_with("250 2.0.0 "), "{r:?}");
    let quarantined = msg("please quarantine me");
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            "MAIL FROM:<ok@sender.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &quarantined,
            "QUIT",
        ],
    );
    assert!(r[5].starts_with("250 2.0.0 "), "{r:?}");

    let got = wait_inbox(&srv, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("X-Test-Milter: seen"), "{}", got[0]);
    assert!(got[0].contains("Subject: hello"), "{}", got[0]);
    let t = Instant::now();
    let junk = loop {
        let j: Vec<String> = std::fs::read_dir(srv.path("mail/a.test/bob/.Junk/new"))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if !j.is_empty() {
            break j;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{}", srv.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(junk[0].contains("please quarantine me"), "{}", junk[0]);
    assert!(
        std::fs::read_dir(srv.path("mail/a.test/carol/new"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    let _ = milter.kill();
    let _ = milter.wait();
}

/// A milter on a unix socket outside smtp's empty chroot (as OpenDKIM's
/// `local:/run/opendkim/opendkim.sock`): the parent connects it for smtp.
/// The socket is root's (mode 0600), which the smtp user could not open even
/// without the chroot, so the delivered header shows the parent's connection.
#[test]
fn a_milter_on_a_unix_socket_is_reached_through_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("milter.sock");
    let at = format!("unix:{}", sock.display());
    let s2 = sock.clone();
    let mut milter = test_milter(&at, &move || {
        std::os::unix::net::UnixStream::connect(&s2).is_ok()
    });
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let srv = Server::prepare(&format!("EMAIL_MILTERS={at}?fail=closed")).start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            "MAIL FROM:<blocked@sender.test>",
            "MAIL FROM:<ok@sender.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            "From: ok@sender.test\r\nTo: bob@a.test\r\nSubject: over unix\r\n\r\nhello\r\n.",
            "QUIT",
        ],
    );
    assert!(
        r[2].starts_with("550 5.7.1 sender blocked by test milter"),
        "{r:?}\n{}",
        srv.log()
    );
    assert!(r[6].starts_with("250 2.0.0 "), "{r:?}");
    let got = wait_inbox(&srv, 1);
    assert!(got[0].contains("X-Test-Milter: seen"), "{}", got[0]);
    assert!(!srv.log().contains("broker:"), "{}", srv.log());
    let _ = milter.kill();
    let _ = milter.wait();
}
