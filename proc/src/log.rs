//! Logging: syslog (facility mail, ident per process, e.g. `sx-smtp[123]`) or
//! stderr in the same one-line format. The syslog socket is connected before the
//! process chroots, so logging keeps working inside the chroot.
//! Never pass a password or a message body to these functions.

use ipc::messages::LogTarget;
use std::io::Write;
use std::sync::Mutex;

/// Longest message logged (RFC 3164 relays may cut at 1024; ours stay whole
/// up to this, and an attacker's 5 MB name never reaches the log).
pub const MAX_LINE: usize = 2000;

/// A client-supplied value for a log line: control characters replaced, at
/// most `max` characters, marked when cut.
pub fn cut(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

struct Logger {
    ident: String,
    pid: u32,
    syslog: Option<Mutex<Syslog>>,
    /// Start each stderr line with the time (a log file).
    stamp: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // Dependencies (rustls) only get to say warnings and worse.
        m.level() <= log::Level::Info
            && (m.level() <= log::Level::Warn || !m.target().starts_with("rustls"))
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut msg = r.args().to_string();
        // One event, one line of bounded length, whatever a client put in it.
        if msg.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push_str(" [cut]");
        }
        // A stray newline must not forge a second log line.
        let msg = msg.replace(['\r', '\n'], " ");
        if let Some(s) = &self.syslog {
            if let Ok(mut s) = s.lock() {
                let _ = match r.level() {
                    log::Level::Error => s.err(&msg),
                    log::Level::Warn => s.warning(&msg),
                    _ => s.info(&msg),
                };
                return;
            }
        }
        // One write(2) per line so the processes sharing stderr never interleave.
        let line = if self.stamp {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let t = crate::date::iso8601(now);
            format!("{t} {}[{}]: {}\n", self.ident, self.pid, msg)
        } else {
            format!("{}[{}]: {}\n", self.ident, self.pid, msg)
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Install the process-wide logger. Falls back to stderr when syslog is unreachable.
pub fn init(ident: &str, target: LogTarget) {
    let pid = std::process::id();
    let syslog = match target {
        LogTarget::Stderr | LogTarget::LogFile => None,
        LogTarget::Syslog => syslog::unix(syslog::Formatter3164 {
            facility: syslog::Facility::LOG_MAIL,
            hostname: None,
            process: ident.to_string(),
            pid,
        })
        .ok()
        .map(Mutex::new),
    };
    let fell_back = target == LogTarget::Syslog && syslog.is_none();
    let logger = Logger {
        ident: ident.to_string(),
        pid,
        syslog,
        stamp: target == LogTarget::LogFile,
    };
    // A second init (tests, re-exec) keeps the first logger.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    if fell_back {
        log::warn!("syslog not reachable (/dev/log); logging to stderr");
    }
}
