//! The embedded default: no config file anywhere, a normal user, `sx server-email`
//! starts on localhost with a self-signed certificate in ./scorpiox-data/.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn starts_with_no_config_as_a_normal_user() {
    let _system = system_lock();
    if std::path::Path::new("/etc/scorpiox/scorpiox-env.txt").exists() {
        eprintln!("skipped: /etc/scorpiox/scorpiox-env.txt exists on this machine");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("sx-embedded-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let (smtp, imaps) = (free_port(), free_port());
    let mut cmd = if is_root() {
        // Run as nobody, as a developer would run it: no privilege drop, no chroot.
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        std::os::unix::fs::chown(d, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).unwrap();
        // A copy nobody can reach whatever the checkout's path permissions are.
        let bin = d.join("sx");
        std::fs::copy(SX, &bin).unwrap();
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", nobody.uid))
            .arg(format!("--regid={}", nobody.gid))
            .arg("--clear-groups")
            .arg(&bin);
        c
    } else {
        Command::new(SX)
    };
    let out = std::fs::File::create(d.join("out.log")).unwrap();
    let err = std::fs::File::create(d.join("err.log")).unwrap();
    // Ports come from the environment so tests can run in parallel; every other
    // value is the embedded default.
    let mut child = cmd
        .arg("server-email")
        .current_dir(d)
        .env_remove("SCORPIOX_ENV")
        .env("HOME", d)
        .env("XDG_CONFIG_HOME", d.join("xdg"))
        .env("EMAIL_SMTP_PORT", smtp.to_string())
        .env("EMAIL_IMAP_PORT", imaps.to_string())
        .env("EMAIL_SUBMISSION_PORT", "0")
        .env("EMAIL_SUBMISSIONS_PORT", "0")
        .env("EMAIL_IMAP_STARTTLS_PORT", "0")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let t = Instant::now();
    let announce = loop {
        let s = std::fs::read_to_string(d.join("out.log")).unwrap_or_default();
        if s.contains("control socket") && smtp_greets(smtp) {
            break s;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "exited {st}: {}",
                std::fs::read_to_string(d.join("err.log")).unwrap()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(d.join("err.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(announce.contains("embedded default"), "{announce}");
    assert!(
        announce.contains(&format!("127.0.0.1:{smtp}")),
        "{announce}"
    );
    let cert = d.join("scorpiox-data/tls/cert.pem");
    assert!(cert.exists());
    assert_eq!(served_cert_fingerprint(imaps), file_fingerprint(&cert));
    let log = std::fs::read_to_string(d.join("err.log")).unwrap();
    assert!(log.contains("not running as root"), "{log}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Issue 18.1: `--daemon` on the embedded default used to change to `/` and
/// then read and make `/scorpiox-data` on reload (accounts, a new
/// certificate) while admin commands used `./scorpiox-data`, with its log
/// in /dev/null. Now every path stays where the first load found it and the
/// daemon logs to `scorpiox-data/sx-server-email.log`.
#[test]
fn a_daemon_on_the_embedded_default_keeps_its_directory_and_logs_to_a_file() {
    let _system = system_lock();
    if std::path::Path::new("/etc/scorpiox/scorpiox-env.txt").exists() {
        eprintln!("skipped: /etc/scorpiox/scorpiox-env.txt exists on this machine");
        return;
    }
    let had_root_data = std::path::Path::new("/scorpiox-data").exists();
    let dir = tempfile::Builder::new()
        .prefix("sx-embedded-daemon-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    // As root the children run as their own users: they must reach ./scorpiox-data.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (smtp, imaps) = (free_port(), free_port());
    let sx = |args: &[&str], stdin: &str| {
        let mut c = Command::new(SX);
        c.arg("server-email")
            .args(args)
            .current_dir(d)
            .env_remove("SCORPIOX_ENV")
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("xdg"))
            .env("EMAIL_SMTP_PORT", smtp.to_string())
            .env("EMAIL_IMAP_PORT", imaps.to_string())
            .env("EMAIL_SUBMISSION_PORT", "0")
            .env("EMAIL_SUBMISSIONS_PORT", "0")
            .env("EMAIL_IMAP_STARTTLS_PORT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        let _ = ch.stdin.take().unwrap().write_all(stdin.as_bytes());
        ch.wait_with_output().unwrap()
    };
    let o = sx(&["--daemon"], "");
    assert_ok(&o, "--daemon");
    let data = d.join("scorpiox-data");
    let log_path = data.join("sx-server-email.log");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&log_path.display().to_string()),
        "{o:?}"
    );
    let pid: i32 = std::fs::read_to_string(data.join("sx-server-email.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let cmd =
                std::fs::read_to_string(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
            if cmd.contains("server-email") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.0),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
    let stop = Stop(pid);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The account is picked up live (SIGHUP: the daemon reloads ./scorpiox-data).
    assert_ok(
        &sx(&["--add-account", "a@localhost"], "pw-a-123456\n"),
        "--add-account",
    );
    let t = Instant::now();
    while !log().contains("1 account(s)") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = smtp_dialog_at(
        "127.0.0.1",
        smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<friend@example.org>",
            "RCPT TO:<a@localhost>",
            "DATA",
            "Subject: hi\r\n\r\nhello\r\n.",
            "QUIT",
        ],
    );
    assert!(r[3].starts_with("250 "), "{r:?}\n{}", log());
    let new = data.join("mail/localhost/a/new");
    let t = Instant::now();
    while std::fs::read_dir(&new).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The certificate clients are told to trust is the one served.
    assert_eq!(
        served_cert_fingerprint(imaps),
        file_fingerprint(&data.join("tls/cert.pem"))
    );
    assert_ok(&sx(&["--status"], ""), "--status");
    assert_eq!(
        std::path::Path::new("/scorpiox-data").exists(),
        had_root_data,
        "the daemon made /scorpiox-data"
    );
    // Each line of the log file starts with the time.
    let text = log();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.len() > 21 && first.as_bytes()[4] == b'-' && &first[19..21] == "Z ",
        "{text}"
    );
    assert!(text.contains("sx-smtp["), "children log there too:\n{text}");
    drop(stop);
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(log().contains("stopped"), "{}", log());
}

/// Issue 18.5: a `./scorpiox-env.txt` with only client keys (what `sx email`
/// reads) no longer switches server commands run beside it to the packaged
/// defaults; they say the file was skipped, and a failure names the
/// configuration in use.
#[test]
fn a_client_config_file_does_not_move_the_server() {
    let _system = system_lock();
    if std::path::Path::new("/etc/scorpiox/scorpiox-env.txt").exists() {
        eprintln!("skipped: /etc/scorpiox/scorpiox-env.txt exists on this machine");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("sx-client-cfg-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("scorpiox-env.txt"),
        "SMTP_HOST=mail.example.org\nSMTP_FROM=me@example.org\n",
    )
    .unwrap();
    let sx = |args: &[&str]| {
        Command::new(SX)
            .arg("server-email")
            .args(args)
            .current_dir(d)
            .env_remove("SCORPIOX_ENV")
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("xdg"))
            .output()
            .unwrap()
    };
    let o = sx(&["--check-config"]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("no configuration file: embedded defaults"),
        "{out}"
    );
    assert!(
        out.contains("only client (SMTP_*) keys, so not the server's configuration: skipped"),
        "{out}"
    );
    let o = sx(&["--status"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(69), "{err}");
    assert!(
        err.contains(&d.join("scorpiox-data/control.sock").display().to_string())
            && err.contains("embedded defaults"),
        "{err}"
    );
}
