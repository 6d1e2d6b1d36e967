//! A private Postfix instance for interoperability tests: its own config,
//! queue, data and mail directories in a temp dir, one smtpd on a loopback
//! address and port, every local domain delivered to one Maildir
//! (`mail/box/`), the log in `maillog`. Needs root (Postfix's master runs as
//! root) and the Debian package; `start` returns None otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Postfix {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub port: u16,
}

impl Postfix {
    /// Postfix for `domains` (space separated) on host:port, with `extra`
    /// main.cf lines (e.g. `transport_maps`, `smtputf8_enable = no`).
    pub fn start(host: &str, port: u16, domains: &str, extra: &str) -> Option<Postfix> {
        // The package's stock services (present whatever debconf chose).
        let master = std::fs::read_to_string("/usr/share/postfix/master.cf.dist")
            .or_else(|_| std::fs::read_to_string("/etc/postfix/master.cf"))
            .ok()?;
        if !super::is_root() || !Path::new("/usr/sbin/postfix").exists() {
            return None;
        }
        let pf = nix::unistd::User::from_name("postfix").ok()??;
        let dir = tempfile::Builder::new()
            .prefix("sx-postfix-")
            .tempdir()
            .ok()?;
        let d = dir.path();
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir(d.join(sub)).ok()?;
        }
        for sub in ["data", "mail"] {
            nix::unistd::chown(&d.join(sub), Some(pf.uid), Some(pf.gid)).ok()?;
        }
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).ok()?;
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = loopback-only\n\
             inet_protocols = ipv4\nmyhostname = postfix.{first}\nmydomain = {first}\nmydestination =\n\
             virtual_mailbox_domains = {domains}\nvirtual_mailbox_base = {d}/mail\n\
             virtual_mailbox_maps = static:box/\nvirtual_uid_maps = static:{uid}\n\
             virtual_gid_maps = static:{gid}\nmaillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n\
             mynetworks = 127.0.0.0/8\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n\
             alias_maps =\nalias_database =\nsmtp_dns_support_level = disabled\n\
             smtp_tls_security_level = none\nsmtpd_tls_security_level = none\n\
             delay_warning_time = 0\n{extra}\n",
            d = d.display(),
            first = domains.split_whitespace().next().unwrap_or("pf.test"),
            uid = pf.uid,
            gid = pf.gid,
        );
        std::fs::write(d.join("conf/main.cf"), main).ok()?;
        // The stock services, with smtpd moved to our address and unchrooted.
        let master: String = master
            .lines()
            .map(|l| {
                if l.split_whitespace().take(2).eq(["smtp", "inet"]) {
                    format!("{host}:{port} inet n - n - - smtpd")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(d.join("conf/master.cf"), master + "\n").ok()?;
        let p = Postfix {
            dir,
            host: host.to_string(),
            port,
        };
        let out = p.postfix("start");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            p.log()
        );
        let t = Instant::now();
        while !super::smtp_greets_at(host, port) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "postfix does not greet on {host}:{port}:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(p)
    }

    fn postfix(&self, what: &str) -> std::process::Output {
        Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg(what)
            .output()
            .expect("run postfix")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Wait until the log has `needle` n times, or panic with it.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        let t = Instant::now();
        while self.log().matches(needle).count() < n {
            assert!(
                t.elapsed() < timeout,
                "{needle:?} not {n} times in the Postfix log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where everything Postfix delivers lands.
    pub fn inbox(&self) -> PathBuf {
        self.dir.path().join("mail/box/new")
    }

    /// The delivered messages, as text.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.inbox())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait for n delivered messages.
    pub fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<String> {
        let t = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                t.elapsed() < timeout,
                "{} of {n} messages at Postfix:\n{}",
                m.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.postfix("stop").status.success() {
            self.postfix("abort");
        }
    }
}
