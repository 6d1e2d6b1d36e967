//! The client's settings: the `SMTP_*` keys of scorpiox-env.txt (same file and
//! lookup as the server, environment overrides), typed and checked up front so a
//! bad value fails before anything is sent, naming its file, line and key.

use super::Failure;
use crate::exit;
use std::path::{Path, PathBuf};
use std::time::Duration;
use sxproc::config::{ConfigError, RawConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS; refusing to go on without it.
    StartTls,
    /// TLS from the first byte (port 465, RFC 8314).
    Implicit,
    /// No TLS at all.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    Syslog,
    Stderr,
    Nowhere,
}

/// The server on this host, reached with no password, TLS or CA: its submit
/// socket (the kernel tells it who we are) or, when it is down, its maildrop.
pub struct Local {
    pub socket: Option<PathBuf>,
    pub maildrop: Option<PathBuf>,
    /// The server's host name: what our sender and From: are at.
    pub hostname: String,
}

pub struct Settings {
    /// Set when SMTP_HOST and SMTP_USER are not and this host runs the
    /// server (its submit socket or maildrop exists): local mode.
    pub local: Option<Local>,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: Option<String>,
    pub from: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    pub timeout: Duration,
    pub queue_dir: PathBuf,
    pub log: LogTo,
    raw: RawConfig,
}

fn config_failure(e: ConfigError) -> Failure {
    Failure::new(exit::CONFIG, e.to_string())
}

impl Settings {
    pub fn load(explicit: Option<&Path>) -> Result<Settings, Failure> {
        let raw = RawConfig::load(explicit).map_err(config_failure)?;
        let tls = match raw.string("SMTP_TLS").trim().to_ascii_lowercase().as_str() {
            "starttls" | "" => TlsMode::StartTls,
            "ssl" | "tls" => TlsMode::Implicit,
            "none" | "no" => TlsMode::None,
            v => {
                return Err(config_failure(
                    raw.error("SMTP_TLS", format!("{v:?} is not starttls, ssl or none")),
                ))
            }
        };
        let port = if raw.string("SMTP_PORT").trim().is_empty() {
            match tls {
                TlsMode::Implicit => 465,
                _ => 587,
            }
        } else {
            let p = raw.port("SMTP_PORT").map_err(config_failure)?;
            if p == 0 {
                return Err(config_failure(raw.error("SMTP_PORT", "must not be 0")));
            }
            p
        };
        let host = raw.string("SMTP_HOST").trim().to_string();
        if host.is_empty() {
            return Err(config_failure(raw.error("SMTP_HOST", "must not be empty")));
        }
        let user = Some(raw.string("SMTP_USER").trim().to_string()).filter(|u| !u.is_empty());
        if user.is_some() && tls == TlsMode::None {
            return Err(config_failure(raw.error(
                "SMTP_TLS",
                "is none while SMTP_USER is set: the password would cross the network in clear",
            )));
        }
        let mut from = Some(raw.string("SMTP_FROM").trim().to_string()).filter(|f| !f.is_empty());
        let ca_file = if raw.string("SMTP_CA_FILE").trim().is_empty() {
            None
        } else {
            Some(raw.path("SMTP_CA_FILE").map_err(config_failure)?)
        };
        let verify = raw.boolean("SMTP_TLS_VERIFY").map_err(config_failure)?;
        let secs = raw.duration("SMTP_TIMEOUT").map_err(config_failure)?;
        if secs == 0 {
            return Err(config_failure(
                raw.error("SMTP_TIMEOUT", "must be at least 1s"),
            ));
        }
        let queue_dir = if raw.string("SMTP_QUEUE_DIR").trim().is_empty() {
            default_queue_dir().ok_or_else(|| {
                config_failure(raw.error(
                    "SMTP_QUEUE_DIR",
                    "is empty and neither XDG_DATA_HOME nor HOME is set",
                ))
            })?
        } else {
            raw.path("SMTP_QUEUE_DIR").map_err(config_failure)?
        };
        let log = match raw.string("SMTP_LOG").trim().to_ascii_lowercase().as_str() {
            "syslog" | "" => LogTo::Syslog,
            "stderr" => LogTo::Stderr,
            "none" | "no" => LogTo::Nowhere,
            v => {
                return Err(config_failure(
                    raw.error("SMTP_LOG", format!("{v:?} is not syslog, stderr or none")),
                ))
            }
        };
        let local = if raw.is_set("SMTP_HOST") || raw.is_set("SMTP_USER") {
            None
        } else {
            let socket = raw
                .optional_path("EMAIL_SUBMIT_SOCKET")
                .map_err(config_failure)?;
            let maildrop = raw
                .optional_path("EMAIL_MAILDROP_DIR")
                .map_err(config_failure)?;
            let here = socket.as_deref().is_some_and(Path::exists)
                || maildrop.as_deref().is_some_and(Path::is_dir);
            here.then(|| Local {
                socket,
                maildrop,
                hostname: Some(raw.string("EMAIL_HOSTNAME").trim().to_string())
                    .filter(|h| !h.is_empty())
                    .or_else(|| {
                        nix::unistd::gethostname()
                            .ok()
                            .and_then(|h| h.into_string().ok())
                    })
                    .unwrap_or_else(|| "localhost".into())
                    .to_ascii_lowercase(),
            })
        };
        if let (Some(l), None) = (&local, &from) {
            // What the server makes of us anyway: our login at its host name.
            from = Some(format!("{}@{}", super::compose::login_name(), l.hostname));
        }
        Ok(Settings {
            local,
            host,
            port,
            tls,
            user,
            from,
            ca_file,
            verify,
            timeout: Duration::from_secs(secs),
            queue_dir,
            log,
            raw,
        })
    }

    /// The AUTH password: SMTP_PASS, else the first line of SMTP_PASS_FILE, else the
    /// first output line of SMTP_PASS_CMD. Read only when it is about to be used.
    pub fn password(&self) -> Result<String, Failure> {
        let raw = &self.raw;
        if raw.is_set("SMTP_PASS") {
            return Ok(raw.string("SMTP_PASS"));
        }
        let file = raw.string("SMTP_PASS_FILE");
        if !file.trim().is_empty() {
            let path = raw.path("SMTP_PASS_FILE").map_err(config_failure)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                config_failure(raw.error(
                    "SMTP_PASS_FILE",
                    format!("cannot read {}: {e}", path.display()),
                ))
            })?;
            return Ok(first_line(&text));
        }
        let cmd = raw.string("SMTP_PASS_CMD");
        if !cmd.trim().is_empty() {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&cmd)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| {
                    config_failure(raw.error("SMTP_PASS_CMD", format!("cannot run: {e}")))
                })?;
            if !out.status.success() {
                return Err(config_failure(
                    raw.error("SMTP_PASS_CMD", format!("exited with {}", out.status)),
                ));
            }
            return Ok(first_line(&String::from_utf8_lossy(&out.stdout)));
        }
        Err(config_failure(raw.error(
            "SMTP_PASS",
            "SMTP_USER is set but none of SMTP_PASS, SMTP_PASS_FILE, SMTP_PASS_CMD is",
        )))
    }

    pub fn server(&self) -> String {
        match &self.local {
            Some(Local {
                socket: Some(p), ..
            }) => format!("local:{}", p.display()),
            Some(_) => "local maildrop".into(),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string()
}

fn default_queue_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("scorpiox/queue"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/scorpiox/queue"))
}
