//! The embedded default: no config file anywhere, a normal user, `sx server-email`
//! starts on localhost with a self-signed certificate in ./scorpiox-data/.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `cmd` as a user with no configuration anywhere runs it from `d` (no
/// SCORPIOX_ENV, HOME and XDG there); with `ports`, SMTP and IMAPS on those
/// (so tests can run in parallel) and the other listeners off: every other
/// value is the embedded default.
fn no_config<'a>(
    cmd: &'a mut Command,
    d: &std::path::Path,
    ports: Option<(u16, u16)>,
) -> &'a mut Command {
    cmd.current_dir(d)
        .env_remove("SCORPIOX_ENV")
        .env("HOME", d)
        .env("XDG_CONFIG_HOME", d.join("xdg"));
    if let Some((smtp, imaps)) = ports {
        cmd.env("EMAIL_SMTP_PORT", smtp.to_string())
            .env("EMAIL_IMAP_PORT", imaps.to_string())
            .env("EMAIL_SUBMISSION_PORT", "0")
            .env("EMAIL_SUBMISSIONS_PORT", "0")
            .env("EMAIL_IMAP_STARTTLS_PORT", "0");
    }
    cmd
}

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
    cmd.arg("server-email");
    let mut child = no_config(&mut cmd, d, Some((smtp, imaps)))
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
        c.arg("server-email").args(args);
        no_config(&mut c, d, Some((smtp, imaps)))
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
        no_config(Command::new(SX).arg("server-email").args(args), d, None)
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

/// The README's set-up and usage commands, run as written and in order, on
/// the embedded default, in a directory standing for a fresh checkout: the
/// server in the foreground (`cargo run --release -- server-email`, where a
/// `cargo` on PATH runs the binary under test, so the test need not build a
/// release), the commands of "another terminal", the client examples, then
/// the detached server. Each result is checked: mail delivered, IMAP login,
/// the client's messages arriving.
mod readme {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    /// The ```sh blocks of the README, in order.
    fn sh_blocks() -> Vec<String> {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("```sh\n") {
            rest = &rest[i + 6..];
            let end = rest.find("```").expect("unclosed block");
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
        out
    }

    fn block(blocks: &[String], has: &str) -> String {
        blocks
            .iter()
            .find(|b| b.contains(has))
            .unwrap_or_else(|| panic!("no README block with {has:?}"))
            .clone()
    }

    /// A directory that looks like a checkout after `cargo build --release`.
    struct Checkout {
        dir: tempfile::TempDir,
    }

    impl Drop for Checkout {
        fn drop(&mut self) {
            self.stop();
        }
    }

    impl Checkout {
        fn new() -> Checkout {
            let dir = tempfile::Builder::new()
                .prefix("sx-readme-")
                .tempdir()
                .unwrap();
            let d = dir.path();
            use std::os::unix::fs::PermissionsExt;
            // As root the children run as their own users and must reach ./scorpiox-data.
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::create_dir_all(d.join("target/release")).unwrap();
            std::fs::copy(SX, d.join("target/release/sx")).unwrap();
            std::fs::create_dir_all(d.join("bin")).unwrap();
            let shim = d.join("bin/cargo");
            std::fs::write(
                &shim,
                format!(
                    "#!/bin/sh\n# `cargo run --release -- ARGS` of the README: the binary under test.\n\
                     [ \"$1 $2 $3\" = \"run --release --\" ] || {{ echo \"cargo shim: $*\" >&2; exit 99; }}\n\
                     shift 3\nexec {}/target/release/sx \"$@\"\n",
                    d.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
            Checkout { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// `bash` running `script` here, as a user's shell would (no config).
        fn bash(&self, script: &str) -> Command {
            let mut c = Command::new("bash");
            let path = format!(
                "{}:{}",
                self.path().join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            c.args(["-c", script])
                .current_dir(self.path())
                .env("PATH", path)
                .env("HOME", self.path())
                .env("XDG_CONFIG_HOME", self.path().join("xdg"))
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env_remove("SCORPIOX_ENV");
            for (k, _) in std::env::vars() {
                if k.starts_with("EMAIL_") || k.starts_with("SMTP_") {
                    c.env_remove(k);
                }
            }
            c
        }

        /// Run a block as one script that stops at the first failing command.
        fn run(&self, what: &str, script: &str) -> String {
            let o: Output = self
                .bash(&format!("set -eo pipefail\n{script}"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "{what} failed ({}):\n{text}", o.status);
            text
        }

        /// The INBOX's messages: in new/, or cur/ once an IMAP client saw them.
        fn messages(&self) -> Vec<std::path::PathBuf> {
            ["new", "cur"]
                .iter()
                .flat_map(|d| {
                    std::fs::read_dir(self.path().join("scorpiox-data/mail/localhost/you").join(d))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path())
                })
                .collect()
        }

        fn inbox(&self) -> usize {
            self.messages().len()
        }

        fn wait_inbox(&self, n: usize, log: &dyn Fn() -> String) {
            let t = Instant::now();
            while self.inbox() < n {
                assert!(
                    t.elapsed() < Duration::from_secs(15),
                    "{} of {n} messages delivered\n{}",
                    self.inbox(),
                    log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Stop a server still running from this checkout (a failed assertion).
        fn stop(&self) {
            if let Some(pid) = self.pid() {
                let cmd =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if cmd.contains("server-email") {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    let t = Instant::now();
                    while Path::new(&format!("/proc/{pid}")).exists()
                        && t.elapsed() < Duration::from_secs(10)
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }

        fn pid(&self) -> Option<i32> {
            std::fs::read_to_string(self.path().join("scorpiox-data/sx-server-email.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        }
    }

    #[test]
    fn the_readme_commands_work_as_written_in_order() {
        if !is_root() {
            eprintln!("skipped: the README's apt-get needs root");
            return;
        }
        let _system = system_lock();
        if Path::new("/etc/scorpiox/scorpiox-env.txt").exists() {
            eprintln!("skipped: /etc/scorpiox/scorpiox-env.txt exists on this machine");
            return;
        }
        for port in [2525, 2587, 2465, 2993, 2143] {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} of the embedded default is in use on this machine"
            );
        }
        let blocks = sh_blocks();
        let start = block(&blocks, "cargo run --release -- server-email");
        let terminal = block(&blocks, "--add-account you@localhost");
        let detached = block(&blocks, "server-email --daemon");
        let client = block(&blocks, "export SMTP_HOST=");
        let co = Checkout::new();

        // The foreground server, its output in a file as a terminal would show it.
        let out = co.path().join("terminal-1.txt");
        let mut server = co
            .bash(&start)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(co.path().join("terminal-1.err")).unwrap())
            .spawn()
            .unwrap();
        let log = || {
            format!(
                "{}{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(co.path().join("terminal-1.err")).unwrap_or_default()
            )
        };
        let t = Instant::now();
        while !(log().contains("control socket") && smtp_greets(2525)) {
            if let Some(st) = server.try_wait().unwrap() {
                panic!("the server exited {st}:\n{}", log());
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{}", log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let said = std::fs::read_to_string(&out).unwrap();
        for want in ["2525", "2587", "2465", "2993", "2143"] {
            assert!(
                said.contains(want),
                "the start does not name {want}:\n{said}"
            );
        }

        // "In another terminal": account, status, MTA, submission, IMAP.
        let text = co.run("the second terminal's commands", &terminal);
        co.wait_inbox(2, &log);
        assert!(text.contains("added you@localhost"), "{text}");
        assert!(text.contains("sx-smtp"), "--status: {text}");
        assert!(text.contains("a OK"), "IMAP LOGIN: {text}");
        assert!(text.contains("EXISTS"), "IMAP SELECT: {text}");

        // The client examples (Usage).
        let text = co.run("the client examples", &client);
        assert!(text.contains("250"), "--test shows the replies: {text}");
        co.wait_inbox(5, &log);
        let html = co
            .messages()
            .into_iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .find(|m| m.contains("Subject: report"))
            .expect("the --html message");
        assert!(html.contains("os-release"), "the attachment: {html}");
        // Issue 18.8: the text alternative keeps the blocks apart.
        assert!(
            html.contains("Weekly report\r\nUptime: 99.9%"),
            "the text part: {html}"
        );

        // Stop it (Ctrl-C in the terminal).
        let pid = co.pid().expect("pid file");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let t = Instant::now();
        while server.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "did not stop: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        // Detached, status, stopped by its pid file.
        let text = co.run("the detached server's commands", &detached);
        assert!(text.contains("sx-server-email.log"), "{text}");
        assert!(text.contains("sx-delivery"), "--status: {text}");
        let t = Instant::now();
        while co.pid().is_some() || smtp_greets(2525) {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "the daemon did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let daemon_log =
            std::fs::read_to_string(co.path().join("scorpiox-data/sx-server-email.log")).unwrap();
        assert!(daemon_log.contains("stopped"), "{daemon_log}");
    }
}
