//! The README's set-up and usage commands, run as written and in order, on
//! the embedded default, in a directory standing for a fresh checkout: the
//! server in the foreground (`cargo run --release -- server-email`, where a
//! `cargo` on PATH runs the binary under test, so the test need not build a
//! release), the commands of "another terminal", the client examples, then
//! the detached server. Each result is checked: mail delivered, IMAP login,
//! the client's messages arriving.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The ```sh blocks of the README, in order.
fn sh_blocks() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
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
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
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
