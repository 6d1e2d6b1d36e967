//! `sx server-email --tui` in a real terminal: tmux at 80x24, keys sent with
//! send-keys, the screen read with capture-pane. The queue tab shows a deferred
//! message, which is then held and removed; the accounts tab adds an account.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(st.success(), "tmux new-session");
        Tmux {
            name: name.to_string(),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success(), "tmux send-keys");
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Wait (10 s) until the screen shows `text`; returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "screen never showed {text:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_gone(&self, text: &str) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if !s.contains(text) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "screen still shows {text:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn tui_shows_the_queue_and_holds_and_removes_a_message() {
    let b_port = free_port();
    let srv = Server::prepare(&format!(
        "EMAIL_ROUTES=b.test=127.0.0.1:{b_port}\nEMAIL_QUEUE_RETRY=1h"
    ))
    .start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let id = submit_as_bob(&srv, &["carol@b.test"], "Subject: stuck\r\n\r\nbody\r\n");
    srv.wait_log("status=deferred ([127.0.0.1]:", 1, Duration::from_secs(10));

    let name = format!("sx-tui-{}", std::process::id());
    let cmd = format!("{SX} server-email --config {} --tui", srv.config.display());
    let t = Tmux::start(&name, &cmd);
    let s = t.wait_for("1 Overview");
    assert!(s.contains(&format!("pid {}", srv.pid())), "{s}");
    t.wait_for("sx-keyholder");
    t.wait_for("Queue        1 message(s), 0 held");
    // All eight counters fit the 80x24 screen with the footer's keys below
    // them (tmux cuts the pane at 24 lines: what does not fit is missing).
    let s = t.wait_for("login_failures");
    const FOOTER: &str = "1-4/Tab switch  r refresh  ? help  q quit";
    assert!(s.contains(FOOTER), "{s}");

    t.keys(&["2"]);
    let s = t.wait_for(&id);
    assert!(s.contains("carol@b.test"), "{s}");
    assert!(s.contains("1 message(s)"), "{s}");

    // Hold it: the screen and the CLI agree.
    t.keys(&["h"]);
    t.wait_for("HELD");
    let q = srv.sx(&["--queue"], "");
    assert!(String::from_utf8_lossy(&q.stdout).contains("HELD"), "{q:?}");

    // Show it, close the window.
    t.keys(&["Enter"]);
    t.wait_for("Queued message");
    t.keys(&["Escape"]);
    t.wait_gone("Queued message");

    // Remove it after confirming.
    t.keys(&["d"]);
    t.wait_for("(y/n)");
    t.keys(&["y"]);
    t.wait_for("The queue is empty.");
    let q = srv.sx(&["--queue"], "");
    assert!(
        String::from_utf8_lossy(&q.stdout).contains("queue is empty"),
        "{q:?}"
    );

    // Accounts: add one with a password typed (and hidden).
    t.keys(&["3"]);
    t.wait_for("1 account(s)");
    t.keys(&["a"]);
    t.wait_for("New account address:");
    t.keys(&["-l", "dave@a.test"]);
    t.keys(&["Enter"]);
    t.wait_for("Password for dave@a.test:");
    t.keys(&["-l", "secret-pw"]);
    let s = t.wait_for("*********");
    assert!(!s.contains("secret-pw"), "password shown:\n{s}");
    t.keys(&["Enter"]);
    t.wait_for("2 account(s)");
    let l = srv.sx(&["--list-accounts"], "");
    assert!(String::from_utf8_lossy(&l.stdout).contains("dave@a.test"));

    // Log: a server logging to stderr has its lines in its data directory's
    // log file (as a daemon does); a line longer than the screen is wrapped,
    // not cut at column 80 (issue 18.8).
    let long = format!(
        "2026-12-01T00:00:00Z sx-smtp[1]: {} END-OF-A-LONG-LINE",
        "x".repeat(120)
    );
    std::fs::write(srv.path("data/sx-server-email.log"), format!("{long}\n")).unwrap();
    t.keys(&["4"]);
    // The line's start and its end (past column 150) are both on screen.
    let s = t.wait_for("END-OF-A-LONG-LINE");
    assert!(s.contains("2026-12-01T00:00:00Z sx-smtp[1]: xxx"), "{s}");
    assert!(s.contains(FOOTER), "{s}");

    // Help, then quit: the session ends.
    t.keys(&["?"]);
    t.wait_for("Keys (any key closes)");
    t.keys(&["q"]);
    t.wait_gone("Keys (any key closes)");
    t.keys(&["q"]);
    let start = Instant::now();
    while Command::new("tmux")
        .args(["has-session", "-t", &name])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "--tui did not quit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
