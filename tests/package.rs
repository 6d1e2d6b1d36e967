//! The Debian package built from the repository (etc/build-deb.sh): lintian has
//! no errors; it installs with dpkg, starts as root under the packaged defaults
//! with the unit's own command line (no systemd needed), takes mail on loopback,
//! and purges cleanly while keeping the mail.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command, what: &str) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn debian_package_installs_serves_mail_and_purges_keeping_mail() {
    if !is_root() || !have("dpkg-deb") {
        eprintln!("skipped: needs root and dpkg");
        return;
    }
    let _system = system_lock();
    if Command::new("dpkg")
        .args(["-s", "scorpiox-email"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: scorpiox-email is installed on this machine; not touching it");
        return;
    }
    // A purge keeps the mail (/var/lib/scorpiox, /var/spool/scorpiox): such
    // leftovers are normal; the test removes only what it made.
    assert!(
        !Path::new("/etc/scorpiox").exists(),
        "/etc/scorpiox exists but the package is not installed"
    );
    let made: Vec<&'static str> = [
        "/var/lib/scorpiox",
        "/var/spool/scorpiox",
        "/etc/scorpiox",
        "/run/scorpiox",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    // An account no earlier run can have left mail for.
    let user = format!("pkgtest{}", std::process::id());
    let sendmail_was_there = Path::new("/usr/sbin/sendmail").exists();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tempfile::Builder::new()
        .prefix("sx-deb-")
        .tempdir()
        .unwrap();
    let deb = run(
        Command::new(format!("{root}/etc/build-deb.sh"))
            .arg(SX)
            .arg(out.path()),
        "etc/build-deb.sh",
    );
    let deb = deb.trim();
    assert!(
        deb.ends_with("_amd64.deb") || deb.ends_with(".deb"),
        "{deb}"
    );
    if have("lintian") {
        run(
            Command::new("lintian").args(["--fail-on", "error", deb]),
            "lintian",
        );
    } else {
        panic!("lintian missing (apt-get install lintian)");
    }

    let installed = run(Command::new("dpkg").args(["-i", deb]), "dpkg -i");
    let mut cleanup = Cleanup {
        server: None,
        made,
        mailbox: None,
    };
    // Issue 18.7: the package makes a DKIM key and says what to publish.
    assert!(
        Path::new("/etc/scorpiox/dkim/default.key").exists(),
        "{installed}"
    );
    assert!(
        installed.contains("._domainkey.") && installed.contains("v=DKIM1"),
        "{installed}"
    );
    for p in [
        "/usr/bin/sx",
        "/usr/share/man/man1/sx-email.1.gz",
        "/usr/share/man/man8/sx-server-email.8.gz",
        "/usr/share/man/man5/scorpiox-env.txt.5.gz",
        "/lib/systemd/system/scorpiox-email.service",
        "/etc/scorpiox/tls/cert.pem",
        "/etc/scorpiox/tls/key.pem",
    ] {
        assert!(Path::new(p).exists(), "{p} not installed");
    }
    for (link, to) in [
        ("/usr/bin/scorpiox-email", "sx"),
        ("/usr/bin/scorpiox-server-email", "sx"),
    ] {
        assert_eq!(std::fs::read_link(link).unwrap(), Path::new(to));
    }
    if !sendmail_was_there {
        assert_eq!(
            std::fs::read_link("/usr/sbin/sendmail").unwrap(),
            Path::new("../bin/sx")
        );
    }
    let conffiles = run(
        Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "scorpiox-email"]),
        "dpkg-query",
    );
    assert!(
        conffiles.contains("/etc/scorpiox/scorpiox-env.txt"),
        "{conffiles}"
    );
    for u in ["_sxkey", "_sxsmtp", "_sxqueue", "_sxmail"] {
        assert!(
            nix::unistd::User::from_name(u).unwrap().is_some(),
            "user {u}"
        );
    }

    // Start as the unit does: its ExecStart and Environment, in the foreground.
    let unit = std::fs::read_to_string("/lib/systemd/system/scorpiox-email.service").unwrap();
    let exec: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .collect();
    let mut cmd = Command::new(exec[0]);
    cmd.args(&exec[1..]);
    for l in unit.lines().filter_map(|l| l.strip_prefix("Environment=")) {
        if let Some((k, v)) = l.split_once('=') {
            cmd.env(k, v);
        }
    }
    // The packaged defaults listen on every address, so port 25 checks who
    // sent each message: DNS for the test's sender domain comes from a
    // dnsmasq of its own (the machine may have no resolver that answers).
    let dns_port = free_port();
    let _dns = dnsmasq(
        "127.0.0.1",
        dns_port,
        &["--txt-record=b.test,v=spf1 ip4:127.0.0.1 -all".to_string()],
    );
    cmd.env("EMAIL_DNS_SERVER", format!("127.0.0.1:{dns_port}"));
    let log = out.path().join("server.log");
    let mut server = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    cleanup.server = Some(server.id() as i32);
    let t = Instant::now();
    while !smtp_greets(25) {
        if let Some(st) = server.try_wait().unwrap() {
            panic!(
                "server exited {st}: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The packaged defaults' domain, then an account and a message for it.
    let check = Command::new("sx")
        .args([
            "server-email",
            "--config",
            "/etc/scorpiox/scorpiox-env.txt",
            "--check-config",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    let domain = text
        .lines()
        .find_map(|l| l.split_once(". IN MX ").map(|(d, _)| d.to_string()))
        .unwrap_or_else(|| panic!("no MX line:\n{text}"));
    let mut add = Command::new("sx")
        .args(["server-email", "--config", "/etc/scorpiox/scorpiox-env.txt"])
        .args(["--add-account", &format!("{user}@{domain}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"pkg-password\n")
            .unwrap();
    }
    assert!(add.wait().unwrap().success(), "--add-account");
    let inbox = format!("/var/lib/scorpiox/mail/{domain}/{user}/new");
    cleanup.mailbox = Some(format!("/var/lib/scorpiox/mail/{domain}/{user}"));
    let t = Instant::now();
    let replies = loop {
        let r = smtp_dialog_at(
            "127.0.0.1",
            25,
            &[
                "EHLO client.test",
                "MAIL FROM:<x@b.test>",
                &format!("RCPT TO:<{user}@{domain}>"),
                "DATA",
                "Subject: packaged\r\n\r\nhello from the package test\r\n.",
                "QUIT",
            ],
        );
        // The account reaches smtp with the SIGHUP the add sent; retry until then.
        if r[3].starts_with("250") || t.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        replies[5].starts_with("250 2.0.0 Ok: queued as"),
        "{replies:?}"
    );
    let t = Instant::now();
    while std::fs::read_dir(&inbox).map(|d| d.count()).unwrap_or(0) < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not delivered to {inbox}: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = std::fs::read_dir(&inbox)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .next()
        .unwrap_or_default();
    assert!(
        delivered.contains("Authentication-Results: ") && delivered.contains("spf=pass"),
        "{delivered}"
    );
    // The file is in new/ a moment before delivery's report reaches the
    // counters: wait for the count, not a fixed time.
    let t = Instant::now();
    let status = loop {
        let status = run(
            Command::new("sx").args([
                "server-email",
                "--config",
                "/etc/scorpiox/scorpiox-env.txt",
                "--status",
            ]),
            "--status",
        );
        if status.contains("1 delivered") || t.elapsed() > Duration::from_secs(10) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("1 delivered"), "{status}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(server.wait().unwrap().code(), Some(0));
    cleanup.server = None;

    run(
        Command::new("dpkg").args(["--purge", "scorpiox-email"]),
        "dpkg --purge",
    );
    for p in [
        "/usr/bin/sx",
        "/etc/scorpiox",
        "/lib/systemd/system/scorpiox-email.service",
    ] {
        assert!(!Path::new(p).exists(), "{p} left after purge");
    }
    if !sendmail_was_there {
        assert!(std::fs::symlink_metadata("/usr/sbin/sendmail").is_err());
    }
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        1,
        "the mail must survive the purge"
    );
    drop(cleanup);
}

/// Whatever happens, leave the machine as it was: package gone, our
/// directories removed (the mail test data included).
struct Cleanup {
    /// The server the test started, stopped by its pid (never by a pattern,
    /// which could hit a real server on the machine).
    server: Option<i32>,
    /// Directories that were not there before the test.
    made: Vec<&'static str>,
    /// The test account's Maildir (in a mail tree kept from before).
    mailbox: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.server {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let alive = || {
                nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                    .is_ok_and(|s| s == nix::sys::wait::WaitStatus::StillAlive)
            };
            let t = Instant::now();
            while alive() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Not reaped yet, so the pid is still ours; its children die
            // with it (parent-death signal).
            if alive() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = Command::new("dpkg")
            .args(["--purge", "scorpiox-email"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(m) = &self.mailbox {
            let _ = std::fs::remove_dir_all(m);
            // Its domain's directory too, if nothing else is in it.
            if let Some(d) = Path::new(m).parent() {
                let _ = std::fs::remove_dir(d);
            }
        }
        for p in &self.made {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[test]
fn install_script_puts_everything_under_prefix() {
    let dest = tempfile::Builder::new()
        .prefix("sx-install-")
        .tempdir()
        .unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    run(
        Command::new(format!("{root}/etc/install.sh"))
            .arg(SX)
            .env("DESTDIR", dest.path())
            .env("PREFIX", "/opt/sx"),
        "etc/install.sh",
    );
    let d = dest.path();
    for p in [
        "opt/sx/bin/sx",
        "opt/sx/share/man/man1/sx-email.1",
        "opt/sx/share/man/man8/sx-server-email.8",
        "opt/sx/share/man/man5/scorpiox-env.txt.5",
        "etc/scorpiox/scorpiox-env.txt",
    ] {
        assert!(d.join(p).exists(), "{p} not installed");
    }
    assert_eq!(
        std::fs::read_link(d.join("opt/sx/sbin/sendmail")).unwrap(),
        Path::new("../bin/sx")
    );
    let unit =
        std::fs::read_to_string(d.join("etc/systemd/system/scorpiox-email.service")).unwrap();
    assert!(
        unit.contains(
            "ExecStart=/opt/sx/bin/sx server-email --config /etc/scorpiox/scorpiox-env.txt"
        ),
        "{unit}"
    );
    // The installed binary runs under its other names.
    let o = Command::new(d.join("opt/sx/bin/scorpiox-email"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("--queue-on-fail"));
}
