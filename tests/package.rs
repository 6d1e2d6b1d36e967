//! The Debian package built from the repository (etc/build-deb.sh): lintian has
//! no errors; in a private root (the machine's own MTA untouched) it replaces
//! the other mail-transport-agent, installs with dpkg, starts as root under the
//! packaged defaults with the unit's own command line (no systemd needed),
//! takes mail on loopback and from `sendmail` with no configuration (as root
//! and as a user, the server up or down), and purges keeping the mail.

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

/// The host's part: build the .deb and run lintian, then everything else in
/// a private root (a new mount namespace, an overlay over `/` whose writes go
/// to a tmpfs), so the machine's own MTA (the tests' Postfix) stays as it is
/// while the package, which conflicts with every other mail-transport-agent,
/// replaces it there.
#[test]
fn debian_package_installs_serves_mail_and_purges_keeping_mail() {
    if !is_root() || !have("dpkg-deb") || !have("unshare") {
        eprintln!("skipped: needs root, dpkg and unshare");
        return;
    }
    // The package is made of the release build, as a release is.
    let sx = release::sx();
    let _system = system_lock();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tempfile::Builder::new()
        .prefix("sx-deb-")
        .tempdir()
        .unwrap();
    let deb = run(
        Command::new(format!("{root}/etc/build-deb.sh"))
            .arg(&sx)
            .arg(out.path()),
        "etc/build-deb.sh",
    );
    let deb = deb.trim().to_string();
    assert!(deb.ends_with(".deb"), "{deb}");
    if !have("lintian") {
        panic!("lintian missing (apt-get install lintian)");
    }
    run(
        Command::new("lintian").args(["--fail-on", "error", &deb]),
        "lintian",
    );
    let fields = run(
        Command::new("dpkg-deb").args(["-f", &deb, "Provides", "Conflicts", "Replaces"]),
        "dpkg-deb -f",
    );
    for f in ["Provides", "Conflicts", "Replaces"] {
        assert!(
            fields.contains(&format!("{f}: mail-transport-agent")),
            "{fields}"
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("sx-privroot-")
        .tempdir()
        .unwrap();
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "in_a_private_root", "--ignored", "--nocapture"])
        .env("SX_PRIVATE_ROOT", scratch.path())
        .env("SX_DEB", &deb)
        .env(
            "SX_HOST_MNT_NS",
            std::fs::read_link("/proc/self/ns/mnt").unwrap(),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "in the private root:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the private-root test did not run:\n{text}"
    );
}

/// A new mount namespace's view of the machine: `/` under an overlay whose
/// changes live in a tmpfs, fresh /proc and /run, the host's /dev and /sys.
fn enter_private_root(scratch: &Path, deb: &Path) {
    use nix::mount::{mount, MsFlags};
    let none: Option<&str> = None;
    let layers = scratch.join("layers");
    let top = scratch.join("root");
    std::fs::create_dir_all(&layers).unwrap();
    std::fs::create_dir_all(&top).unwrap();
    mount(
        Some("tmpfs"),
        &layers,
        Some("tmpfs"),
        MsFlags::empty(),
        none,
    )
    .unwrap();
    for d in ["upper", "work"] {
        std::fs::create_dir_all(layers.join(d)).unwrap();
    }
    let opts = format!(
        "lowerdir=/,upperdir={},workdir={}",
        layers.join("upper").display(),
        layers.join("work").display()
    );
    mount(
        Some("overlay"),
        &top,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .unwrap();
    mount(
        Some("proc"),
        &top.join("proc"),
        Some("proc"),
        MsFlags::empty(),
        none,
    )
    .unwrap();
    for d in ["dev", "sys"] {
        mount(
            Some(Path::new("/").join(d).as_path()),
            &top.join(d),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .unwrap();
    }
    mount(
        Some("tmpfs"),
        &top.join("run"),
        Some("tmpfs"),
        MsFlags::empty(),
        none,
    )
    .unwrap();
    std::fs::copy(deb, top.join("tmp/sx.deb")).unwrap();
    nix::unistd::chroot(&top).unwrap();
    std::env::set_current_dir("/").unwrap();
}

/// Started as the unit starts it (its ExecStart and Environment), in the
/// foreground, with DNS from a dnsmasq of the test's: the packaged defaults
/// listen on every address, so port 25 checks who sent each message, and the
/// machine may have no resolver that answers.
fn start_packaged_server(dns_port: u16, log: &Path) -> std::process::Child {
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
    cmd.env("EMAIL_DNS_SERVER", format!("127.0.0.1:{dns_port}"));
    let mut server = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !(smtp_greets(25) && Path::new("/run/scorpiox/submit.sock").exists()) {
        if let Some(st) = server.try_wait().unwrap() {
            panic!(
                "server exited {st}: {}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn stop(server: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

/// `sendmail -t` as the packaged MTA's users call it: no configuration, no
/// environment beyond a PATH (and HOME), as root or as `nobody`.
fn sendmail(as_nobody: bool, message: &str) -> std::process::Output {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/sbin/sendmail",
        ]);
        c
    } else {
        Command::new("/usr/sbin/sendmail")
    };
    c.arg("-t")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", if as_nobody { "/nonexistent" } else { "/root" })
        .current_dir("/");
    output_with_input(c, Some(message.as_bytes()))
}

/// The messages in a Maildir's new/ and cur/.
fn mailbox(dir: &str) -> Vec<String> {
    ["new", "cur"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(Path::new(dir).join(d))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        })
        .collect()
}

fn wait_for(dir: &str, text: &str, log: &Path) -> String {
    let t = Instant::now();
    loop {
        if let Some(m) = mailbox(dir).into_iter().find(|m| m.contains(text)) {
            return m;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{text:?} not delivered to {dir}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the server the test started, by its pid, if a check fails first.
struct Stop(Option<i32>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Run by the test above in its private root (never on the host: it checks
/// it is in a mount namespace of its own): install, serve, local mail with
/// sendmail, purge.
#[test]
#[ignore = "run by debian_package_installs_serves_mail_and_purges_keeping_mail, in a private root"]
fn in_a_private_root() {
    let (Some(scratch), Some(deb)) = (
        std::env::var_os("SX_PRIVATE_ROOT"),
        std::env::var_os("SX_DEB"),
    ) else {
        eprintln!(
            "skipped: only run by debian_package_installs_serves_mail_and_purges_keeping_mail"
        );
        return;
    };
    // The outer test's mount namespace: ours must be another.
    let host_ns = std::env::var_os("SX_HOST_MNT_NS").unwrap_or_default();
    let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert!(
        !host_ns.is_empty() && ours.as_os_str() != host_ns,
        "not in a mount namespace of its own"
    );
    enter_private_root(Path::new(&scratch), Path::new(&deb));

    // Another MTA (the machine's Postfix) makes way, as apt would make it.
    let installed = run(
        Command::new("dpkg-query").args(["-W", "-f=${Package}\t${Status}\t${Provides}\n"]),
        "dpkg-query",
    );
    let mtas: Vec<&str> = installed
        .lines()
        .filter(|l| l.contains("install ok installed") && l.contains("mail-transport-agent"))
        .filter_map(|l| l.split('\t').next())
        .collect();
    if !mtas.is_empty() {
        run(
            Command::new("dpkg")
                .args(["--purge", "--force-depends"])
                .args(&mtas),
            "dpkg --purge (the other MTA)",
        );
    }
    let installed = run(Command::new("dpkg").args(["-i", "/tmp/sx.deb"]), "dpkg -i");
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
        ("/usr/sbin/sendmail", "../bin/sx"),
        ("/usr/lib/sendmail", "../sbin/sendmail"),
    ] {
        assert_eq!(std::fs::read_link(link).unwrap(), Path::new(to), "{link}");
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

    let dns_port = free_port();
    let _dns = dnsmasq(
        "127.0.0.1",
        dns_port,
        &["--txt-record=b.test,v=spf1 ip4:127.0.0.1 -all".to_string()],
    );
    let log = Path::new("/tmp/sx-server.log");
    let mut server = start_packaged_server(dns_port, log);
    let mut guard = Stop(Some(server.id() as i32));

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
        .args(["--add-account", &format!("pkgtest@{domain}")])
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
    let inbox = format!("/var/lib/scorpiox/mail/{domain}/pkgtest");
    let replies = smtp_dialog_at(
        "127.0.0.1",
        25,
        &[
            "EHLO client.test",
            "MAIL FROM:<x@b.test>",
            &format!("RCPT TO:<pkgtest@{domain}>"),
            "DATA",
            "Subject: packaged\r\n\r\nhello from the package test\r\n.",
            "QUIT",
        ],
    );
    assert!(
        replies[5].starts_with("250 2.0.0 Ok: queued as"),
        "{replies:?}"
    );
    let delivered = wait_for(&inbox, "hello from the package test", log);
    assert!(
        delivered.contains("Authentication-Results: ") && delivered.contains("spf=pass"),
        "{delivered}"
    );

    // Issue 18.2: local mail with no configuration, as root and as a user.
    let host = nix::unistd::gethostname()
        .unwrap()
        .into_string()
        .unwrap()
        .to_ascii_lowercase();
    let o = sendmail(
        false,
        "To: root\nSubject: from root's cron\n\nroot's job said hello\n",
    );
    assert!(o.status.success(), "sendmail as root: {o:?}");
    let m = wait_for(&inbox, "root's job said hello", log);
    assert!(m.contains(&format!("Return-Path: <root@{host}>")), "{m}");
    let to_user =
        format!("To: pkgtest@{domain}\nSubject: from nobody\n\nnobody's job said hello\n");
    let o = sendmail(true, &to_user);
    assert!(o.status.success(), "sendmail as nobody: {o:?}");
    let m = wait_for(&inbox, "nobody's job said hello", log);
    assert!(m.contains(&format!("Return-Path: <nobody@{host}>")), "{m}");
    assert!(m.contains("(local user nobody, uid 65534)"), "{m}");
    let o = sendmail(true, "To: root\nSubject: to root\n\nnobody to root\n");
    assert!(o.status.success(), "sendmail as nobody to root: {o:?}");
    wait_for(&inbox, "nobody to root", log);

    // The server stopped: the message waits in the maildrop, and arrives
    // once the server is back.
    stop(&mut server);
    guard.0 = None;
    let o = sendmail(
        true,
        "To: root\nSubject: while down\n\nsent while the server was down\n",
    );
    assert!(o.status.success(), "sendmail with the server down: {o:?}");
    let waiting = std::fs::read_dir("/var/lib/scorpiox/maildrop")
        .unwrap()
        .count();
    assert_eq!(waiting, 1, "the maildrop holds the message");
    let mut server = start_packaged_server(dns_port, log);
    guard.0 = Some(server.id() as i32);
    let m = wait_for(&inbox, "sent while the server was down", log);
    assert!(m.contains(&format!("Return-Path: <nobody@{host}>")), "{m}");
    let t = Instant::now();
    while std::fs::read_dir("/var/lib/scorpiox/maildrop")
        .unwrap()
        .count()
        > 0
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "maildrop not emptied"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

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
        if status.contains("delivered") || t.elapsed() > Duration::from_secs(10) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("delivered"), "{status}");
    stop(&mut server);
    guard.0 = None;

    run(
        Command::new("dpkg").args(["--purge", "scorpiox-email"]),
        "dpkg --purge",
    );
    for p in [
        "/usr/bin/sx",
        "/usr/sbin/sendmail",
        "/etc/scorpiox",
        "/lib/systemd/system/scorpiox-email.service",
    ] {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{p} left after purge"
        );
    }
    assert_eq!(mailbox(&inbox).len(), 5, "the mail must survive the purge");
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
    // sendmail is left to an MTA the machine has (it would come first in
    // PATH and hide it) unless asked for.
    if Path::new("/usr/sbin/sendmail").exists() {
        assert!(std::fs::symlink_metadata(d.join("opt/sx/sbin/sendmail")).is_err());
        run(
            Command::new(format!("{root}/etc/install.sh"))
                .arg(SX)
                .env("DESTDIR", d)
                .env("PREFIX", "/opt/sx")
                .env("SENDMAIL", "yes"),
            "etc/install.sh with SENDMAIL=yes",
        );
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
