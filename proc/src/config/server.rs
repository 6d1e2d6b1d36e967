//! The typed server configuration.

use super::{ConfigError, RawConfig};
use ipc::messages::{LogTarget, SeccompMode};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Ports {
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imaps: u16,
    pub imap: u16,
}

#[derive(Debug, Clone)]
pub struct Users {
    pub keyholder: String,
    pub smtp: String,
    pub queue: String,
    pub mail: String,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub raw: RawConfig,
    pub listen: Vec<IpAddr>,
    pub hostname: String,
    /// Local domains, primary first, lower case.
    pub domains: Vec<String>,
    pub ports: Ports,
    pub data_dir: PathBuf,
    pub maildir: PathBuf,
    pub queue_dir: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub accounts_file: PathBuf,
    pub aliases_file: PathBuf,
    pub dkim_key: PathBuf,
    pub dkim_selector: String,
    /// (domain, selector, key file) from EMAIL_DKIM_KEYS.
    pub dkim_keys: Vec<(String, String, PathBuf)>,
    pub pid_file: PathBuf,
    pub control_socket: PathBuf,
    /// EMAIL_DOMAINS_FILE (its domains are in `domains` already).
    pub domains_file: PathBuf,
    /// Local submission socket (EMAIL_SUBMIT_SOCKET), None when disabled.
    pub submit_socket: Option<PathBuf>,
    /// Where sendmail leaves mail while the server is down (EMAIL_MAILDROP_DIR).
    pub maildrop_dir: Option<PathBuf>,
    pub admin_group: String,
    pub log: LogTarget,
    pub seccomp: SeccompMode,
    pub users: Users,
    pub max_message_size: u64,
    pub max_recipients: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub imap_max_user_connections: u32,
    pub imap_max_folders: u32,
    pub auth_max_failures: u32,
    pub auth_max_account_failures: u32,
    pub max_errors: u32,
    pub max_idle_commands: u32,
    pub smtp_timeout: u64,
    pub shutdown_timeout: u64,
    pub routes: Vec<(String, String)>,
    pub relay_host: Option<String>,
    /// `ip:port` of the DNS servers used for MX lookups.
    pub dns_servers: Vec<String>,
    pub domain_concurrency: u32,
    /// (user, password) for the smarthost.
    pub relay_auth: Option<(String, String)>,
    pub outbound_tls_required: bool,
    pub quota: u64,
    pub queue_retry: Vec<u64>,
    pub queue_lifetime: u64,
    pub queue_warn: u64,
    pub auth_cache_ttl: u64,
    pub checks: ipc::messages::InboundChecks,
    pub abuse: ipc::messages::AbuseSettings,
}

/// `host:port` with a numeric port.
fn host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// EMAIL_DOMAINS_FILE: a domain per line, `#` comments; a missing file is none.
pub fn domains_in_file(path: &std::path::Path) -> Result<Vec<String>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigError {
                origin: super::Origin::File {
                    path: path.to_path_buf(),
                    line: 0,
                },
                key: "EMAIL_DOMAINS_FILE".into(),
                msg: format!("cannot read: {e}"),
            })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let d = line
            .split('#')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        if !valid_domain(&d) {
            return Err(ConfigError {
                origin: super::Origin::File {
                    path: path.to_path_buf(),
                    line: i + 1,
                },
                key: "EMAIL_DOMAINS_FILE".into(),
                msg: format!("{d:?} is not a domain name"),
            });
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

pub fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `N/period` (`200/1h`), or `0` for no limit.
fn rate(raw: &RawConfig, key: &str) -> Result<(u32, u64), ConfigError> {
    let v = raw.string(key);
    if v == "0" || v.is_empty() {
        return Ok((0, 0));
    }
    v.split_once('/')
        .and_then(|(n, p)| {
            let n = n.trim().parse::<u32>().ok()?;
            let p = super::parse_duration(p.trim()).filter(|p| *p > 0)?;
            Some((n, p))
        })
        .ok_or_else(|| raw.error(key, format!("{v:?} is not N/period (e.g. 200/1h) or 0")))
}

/// EMAIL_MILTERS: `inet:host:port` or `unix:/path` (also `local:/path`, as
/// Sendmail and OpenDKIM write it), each `[?timeout=30s&fail=open|closed]`.
fn milters(raw: &RawConfig) -> Result<Vec<ipc::messages::MilterSpec>, ConfigError> {
    use ipc::messages::MilterAddress;
    let key = "EMAIL_MILTERS";
    raw.list(key)
        .into_iter()
        .map(|m| {
            let bad = |why: &str| raw.error(key, format!("{m:?}: {why}"));
            let (addr, opts) = m.split_once('?').unwrap_or((&m, ""));
            let address = if let Some(hp) = addr.strip_prefix("inet:") {
                if !host_port(hp) {
                    return Err(bad("not inet:host:port"));
                }
                MilterAddress::Inet(hp.to_string())
            } else if let Some(p) = addr
                .strip_prefix("unix:")
                .or_else(|| addr.strip_prefix("local:"))
            {
                // sun_path holds 108 bytes with the terminating NUL.
                if !p.starts_with('/') || p.len() > 107 || p.contains('\0') {
                    return Err(bad(
                        "unix: needs an absolute socket path of at most 107 bytes",
                    ));
                }
                MilterAddress::Unix(p.to_string())
            } else {
                return Err(bad("not inet:host:port or unix:/path"));
            };
            let mut spec = ipc::messages::MilterSpec {
                address,
                timeout: 30,
                fail_open: true,
            };
            for o in opts.split('&').filter(|o| !o.is_empty()) {
                match o.split_once('=') {
                    Some(("timeout", v)) => {
                        spec.timeout = super::parse_duration(v)
                            .filter(|t| *t > 0)
                            .ok_or_else(|| bad("timeout is not a duration"))?
                    }
                    Some(("fail", "open")) => spec.fail_open = true,
                    Some(("fail", "closed")) => spec.fail_open = false,
                    _ => return Err(bad("options are timeout=<duration> and fail=open|closed")),
                }
            }
            Ok(spec)
        })
        .collect()
}

/// The DNS lists and rate limits.
fn abuse(raw: &RawConfig) -> Result<ipc::messages::AbuseSettings, ConfigError> {
    let zones = |key: &str| -> Result<Vec<String>, ConfigError> {
        raw.list(key)
            .into_iter()
            .map(|z| {
                let z = z.trim_matches('.').to_ascii_lowercase();
                if valid_domain(&z) {
                    Ok(z)
                } else {
                    Err(raw.error(key, format!("{z:?} is not a DNS zone")))
                }
            })
            .collect()
    };
    Ok(ipc::messages::AbuseSettings {
        dnsbl: zones("EMAIL_DNSBL")?,
        dnswl: zones("EMAIL_DNSWL")?,
        rate_client: rate(raw, "EMAIL_RATE_CLIENT")?,
        rate_sender: rate(raw, "EMAIL_RATE_SENDER")?,
        milters: milters(raw)?,
        greylist: if raw.boolean("EMAIL_GREYLIST")? {
            Some((
                raw.duration("EMAIL_GREYLIST_DELAY")?,
                raw.duration("EMAIL_GREYLIST_EXPIRE")?,
            ))
        } else {
            None
        },
    })
}

/// EMAIL_AUTH_CHECKS and the DMARC keys. `auto` checks whenever mail can
/// come from elsewhere: a server listening on loopback alone (the embedded
/// default, a test) hears only its own host.
fn inbound_checks(
    raw: &RawConfig,
    hostname: &str,
    listen: &[IpAddr],
) -> Result<ipc::messages::InboundChecks, ConfigError> {
    use ipc::messages::DmarcAction;
    let enabled = match raw.string("EMAIL_AUTH_CHECKS").as_str() {
        "on" => true,
        "off" => false,
        "auto" => listen.iter().any(|a| !a.is_loopback()),
        other => {
            return Err(raw.error(
                "EMAIL_AUTH_CHECKS",
                format!("{other:?} is not auto, on or off"),
            ))
        }
    };
    let mut authserv_id = raw.string("EMAIL_AUTHSERV_ID").to_ascii_lowercase();
    if authserv_id.is_empty() {
        authserv_id = hostname.to_string();
    }
    if !valid_domain(&authserv_id) {
        return Err(raw.error(
            "EMAIL_AUTHSERV_ID",
            format!("{authserv_id:?} is not a host name"),
        ));
    }
    let on_reject = match raw.string("EMAIL_DMARC_REJECT").as_str() {
        "reject" => DmarcAction::Reject,
        "quarantine" => DmarcAction::Quarantine,
        "deliver" => DmarcAction::Deliver,
        other => {
            return Err(raw.error(
                "EMAIL_DMARC_REJECT",
                format!("{other:?} is not reject, quarantine or deliver"),
            ))
        }
    };
    let on_quarantine = match raw.string("EMAIL_DMARC_QUARANTINE").as_str() {
        "quarantine" => DmarcAction::Quarantine,
        "deliver" => DmarcAction::Deliver,
        other => {
            return Err(raw.error(
                "EMAIL_DMARC_QUARANTINE",
                format!("{other:?} is not quarantine or deliver"),
            ))
        }
    };
    Ok(ipc::messages::InboundChecks {
        enabled,
        authserv_id,
        on_reject,
        on_quarantine,
    })
}

impl ServerConfig {
    pub fn from_raw(raw: RawConfig) -> Result<ServerConfig, ConfigError> {
        let mut listen = Vec::new();
        for a in raw.list("EMAIL_LISTEN_ADDR") {
            listen.push(a.parse::<IpAddr>().map_err(|_| {
                raw.error("EMAIL_LISTEN_ADDR", format!("{a:?} is not an IP address"))
            })?);
        }
        if listen.is_empty() {
            return Err(raw.error("EMAIL_LISTEN_ADDR", "no address given"));
        }
        let system_host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let mut hostname = raw.string("EMAIL_HOSTNAME").to_ascii_lowercase();
        if hostname.is_empty() {
            hostname = system_host.to_ascii_lowercase();
        }
        if !valid_domain(&hostname) {
            return Err(raw.error("EMAIL_HOSTNAME", format!("{hostname:?} is not a host name")));
        }
        let mut primary = raw.string("EMAIL_DOMAIN").to_ascii_lowercase();
        if primary.is_empty() {
            primary = match hostname.split_once('.') {
                Some((_, d)) if d.contains('.') => d.to_string(),
                _ => hostname.clone(),
            };
        }
        if !valid_domain(&primary) {
            return Err(raw.error("EMAIL_DOMAIN", format!("{primary:?} is not a domain name")));
        }
        let mut domains = vec![primary];
        for d in raw.list("EMAIL_DOMAINS") {
            let d = d.to_ascii_lowercase();
            if !valid_domain(&d) {
                return Err(raw.error("EMAIL_DOMAINS", format!("{d:?} is not a domain name")));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        for d in domains_in_file(&raw.path("EMAIL_DOMAINS_FILE")?)? {
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        let log = match raw.string("EMAIL_LOG").as_str() {
            "syslog" => LogTarget::Syslog,
            "stderr" => LogTarget::Stderr,
            other => {
                return Err(raw.error("EMAIL_LOG", format!("{other:?} is not syslog or stderr")))
            }
        };
        let seccomp = match raw.string("EMAIL_SECCOMP").as_str() {
            "kill" => SeccompMode::Kill,
            "log" => SeccompMode::Log,
            "off" => SeccompMode::Off,
            other => {
                return Err(raw.error(
                    "EMAIL_SECCOMP",
                    format!("{other:?} is not kill, log or off"),
                ))
            }
        };
        let selector = raw.string("EMAIL_DKIM_SELECTOR");
        if !valid_domain(&selector) {
            return Err(raw.error(
                "EMAIL_DKIM_SELECTOR",
                format!("{selector:?} is not a valid selector"),
            ));
        }
        let max_connections: u32 = raw.number("EMAIL_MAX_CONNECTIONS")?;
        if max_connections == 0 {
            return Err(raw.error("EMAIL_MAX_CONNECTIONS", "must be at least 1"));
        }
        let mut routes = Vec::new();
        for r in raw.list("EMAIL_ROUTES") {
            match r.split_once('=') {
                Some((d, hp))
                    if valid_domain(&d.trim().to_ascii_lowercase()) && host_port(hp.trim()) =>
                {
                    routes.push((d.trim().to_ascii_lowercase(), hp.trim().to_string()))
                }
                _ => {
                    return Err(raw.error("EMAIL_ROUTES", format!("{r:?} is not domain=host:port")))
                }
            }
        }
        let relay = raw.string("EMAIL_RELAY_HOST");
        if !relay.is_empty() && !host_port(&relay) {
            return Err(raw.error("EMAIL_RELAY_HOST", format!("{relay:?} is not host:port")));
        }
        let mut queue_retry = Vec::new();
        for r in raw.list("EMAIL_QUEUE_RETRY") {
            match super::parse_duration(&r) {
                Some(d) if d > 0 => queue_retry.push(d),
                _ => {
                    return Err(raw.error(
                        "EMAIL_QUEUE_RETRY",
                        format!("{r:?} is not a duration above 0"),
                    ))
                }
            }
        }
        if queue_retry.is_empty() {
            return Err(raw.error("EMAIL_QUEUE_RETRY", "no wait given"));
        }
        let mut dns_servers = Vec::new();
        for d in raw.list("EMAIL_DNS_SERVER") {
            let sa = d.parse::<std::net::SocketAddr>().or_else(|_| {
                d.parse::<IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            });
            match sa {
                Ok(sa) => dns_servers.push(sa.to_string()),
                Err(_) => {
                    return Err(raw.error("EMAIL_DNS_SERVER", format!("{d:?} is not ip or ip:port")))
                }
            }
        }
        if dns_servers.is_empty() {
            // Read here, before any chroot: smtp cannot see /etc/resolv.conf.
            let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            for l in conf.lines() {
                let mut w = l.split_whitespace();
                if w.next() == Some("nameserver") {
                    if let Some(ip) = w.next().and_then(|ip| ip.parse::<IpAddr>().ok()) {
                        dns_servers.push(std::net::SocketAddr::new(ip, 53).to_string());
                    }
                }
            }
        }
        let domain_concurrency: u32 = raw.number("EMAIL_DOMAIN_CONCURRENCY")?;
        if domain_concurrency == 0 {
            return Err(raw.error("EMAIL_DOMAIN_CONCURRENCY", "must be at least 1"));
        }
        let mut dkim_keys = Vec::new();
        for item in raw.list("EMAIL_DKIM_KEYS") {
            let mut parts = item.splitn(3, ':');
            let (d, sel, path) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let d = d.trim().to_ascii_lowercase();
            if !valid_domain(&d) || !valid_domain(sel.trim()) || path.trim().is_empty() {
                return Err(raw.error(
                    "EMAIL_DKIM_KEYS",
                    format!("{item:?} is not domain:selector:path"),
                ));
            }
            let p = PathBuf::from(path.trim());
            let p = if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
            };
            dkim_keys.push((d, sel.trim().to_string(), p));
        }
        let relay_user = raw.string("EMAIL_RELAY_USER");
        let relay_auth = if relay_user.is_empty() {
            None
        } else {
            let f = raw.path("EMAIL_RELAY_PASS_FILE")?;
            let text = std::fs::read_to_string(&f).map_err(|e| {
                raw.error(
                    "EMAIL_RELAY_PASS_FILE",
                    format!("cannot read {}: {e}", f.display()),
                )
            })?;
            let pw = text.lines().next().unwrap_or("").to_string();
            if pw.is_empty() {
                return Err(raw.error("EMAIL_RELAY_PASS_FILE", "empty password"));
            }
            Some((relay_user, pw))
        };
        let outbound_tls_required = match raw.string("EMAIL_OUTBOUND_TLS").as_str() {
            "may" => false,
            "required" => true,
            other => {
                return Err(raw.error(
                    "EMAIL_OUTBOUND_TLS",
                    format!("{other:?} is not may or required"),
                ))
            }
        };
        let checks = inbound_checks(&raw, &hostname, &listen)?;
        let abuse = abuse(&raw)?;
        Ok(ServerConfig {
            checks,
            abuse,
            relay_auth,
            outbound_tls_required,
            dkim_keys,
            domain_concurrency,
            quota: raw.size("EMAIL_QUOTA")?,
            dns_servers,
            queue_retry,
            queue_lifetime: raw.duration("EMAIL_QUEUE_LIFETIME")?,
            queue_warn: raw.duration("EMAIL_QUEUE_WARN")?,
            routes,
            relay_host: (!relay.is_empty()).then_some(relay),
            listen,
            hostname,
            domains,
            ports: Ports {
                smtp: raw.port("EMAIL_SMTP_PORT")?,
                submission: raw.port("EMAIL_SUBMISSION_PORT")?,
                submissions: raw.port("EMAIL_SUBMISSIONS_PORT")?,
                imaps: raw.port("EMAIL_IMAP_PORT")?,
                imap: raw.port("EMAIL_IMAP_STARTTLS_PORT")?,
            },
            data_dir: raw.path("EMAIL_DATA_DIR")?,
            maildir: raw.path("EMAIL_MAILDIR")?,
            queue_dir: raw.path("EMAIL_QUEUE_DIR")?,
            tls_cert: raw.path("EMAIL_TLS_CERT")?,
            tls_key: raw.path("EMAIL_TLS_KEY")?,
            accounts_file: raw.path("EMAIL_ACCOUNTS_FILE")?,
            aliases_file: raw.path("EMAIL_ALIASES_FILE")?,
            dkim_key: raw.path("EMAIL_DKIM_KEY")?,
            dkim_selector: selector,
            pid_file: raw.path("EMAIL_PID_FILE")?,
            control_socket: raw.path("EMAIL_CONTROL_SOCKET")?,
            domains_file: raw.path("EMAIL_DOMAINS_FILE")?,
            submit_socket: raw.optional_path("EMAIL_SUBMIT_SOCKET")?,
            maildrop_dir: raw.optional_path("EMAIL_MAILDROP_DIR")?,
            admin_group: raw.string("EMAIL_ADMIN_GROUP"),
            log,
            seccomp,
            users: Users {
                keyholder: raw.string("EMAIL_USER_KEYHOLDER"),
                smtp: raw.string("EMAIL_USER_SMTP"),
                queue: raw.string("EMAIL_USER_QUEUE"),
                mail: raw.string("EMAIL_USER_MAIL"),
            },
            max_message_size: raw.size("EMAIL_MAX_MESSAGE_SIZE")?,
            max_recipients: raw.number("EMAIL_MAX_RECIPIENTS")?,
            max_connections,
            max_connections_per_ip: raw.number("EMAIL_MAX_CONNECTIONS_PER_IP")?,
            imap_max_user_connections: raw.number("EMAIL_IMAP_MAX_USER_CONNECTIONS")?,
            imap_max_folders: raw.number("EMAIL_IMAP_MAX_FOLDERS")?,
            auth_max_failures: raw.number("EMAIL_AUTH_MAX_FAILURES")?,
            auth_max_account_failures: raw.number("EMAIL_AUTH_MAX_ACCOUNT_FAILURES")?,
            max_errors: raw.number("EMAIL_MAX_ERRORS")?,
            max_idle_commands: raw.number("EMAIL_MAX_IDLE_COMMANDS")?,
            smtp_timeout: raw.number("EMAIL_SMTP_TIMEOUT")?,
            shutdown_timeout: raw.number("EMAIL_SHUTDOWN_TIMEOUT")?,
            auth_cache_ttl: raw.number("EMAIL_AUTH_CACHE_TTL")?,
            raw,
        })
    }

    pub fn load(explicit: Option<&std::path::Path>) -> Result<ServerConfig, ConfigError> {
        let base = std::env::current_dir().map_err(|e| {
            RawConfig::default().error("", format!("cannot tell the working directory: {e}"))
        })?;
        Self::from_raw(RawConfig::load_server_in(explicit, &base)?)
    }

    /// Load again as this one was (SIGHUP): the same file, or the same
    /// search from the same directory, whatever the working directory is now.
    pub fn reload(&self) -> Result<ServerConfig, ConfigError> {
        Self::from_raw(RawConfig::load_server_in(
            self.raw.file.as_deref(),
            &self.raw.base,
        )?)
    }

    pub fn primary_domain(&self) -> &str {
        &self.domains[0]
    }

    /// The empty directory keyholder and smtp are chrooted into.
    pub fn empty_dir(&self) -> PathBuf {
        self.data_dir.join("empty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::messages::DmarcAction;
    use std::path::Path;

    fn checks(text: &str, listen: &[&str]) -> Result<ipc::messages::InboundChecks, String> {
        let raw = RawConfig::parse(Path::new("/e/env.txt"), text).map_err(|e| e.to_string())?;
        let listen: Vec<IpAddr> = listen.iter().filter_map(|a| a.parse().ok()).collect();
        inbound_checks(&raw, "mx.a.test", &listen).map_err(|e| e.to_string())
    }

    #[test]
    fn auth_checks_are_on_where_mail_comes_from_elsewhere() {
        let c = checks("", &["0.0.0.0"]).unwrap();
        assert!(c.enabled);
        assert_eq!(c.authserv_id, "mx.a.test");
        assert_eq!(
            (c.on_reject, c.on_quarantine),
            (DmarcAction::Reject, DmarcAction::Quarantine)
        );
        assert!(!checks("", &["127.0.0.1", "::1"]).unwrap().enabled);
        assert!(
            checks("EMAIL_AUTH_CHECKS=on\n", &["127.0.0.1"])
                .unwrap()
                .enabled
        );
        assert!(
            !checks("EMAIL_AUTH_CHECKS=off\n", &["192.0.2.1"])
                .unwrap()
                .enabled
        );
        let c = checks(
            "EMAIL_AUTHSERV_ID=Auth.A.Test\nEMAIL_DMARC_REJECT=quarantine\nEMAIL_DMARC_QUARANTINE=deliver\n",
            &["0.0.0.0"],
        )
        .unwrap();
        assert_eq!(c.authserv_id, "auth.a.test");
        assert_eq!(
            (c.on_reject, c.on_quarantine),
            (DmarcAction::Quarantine, DmarcAction::Deliver)
        );
    }

    #[test]
    fn lists_and_rates() {
        let raw = RawConfig::parse(
            Path::new("/e/env.txt"),
            "EMAIL_DNSBL=zen.spamhaus.org., bl.Test\nEMAIL_RATE_CLIENT=200/1h\nEMAIL_RATE_SENDER=5/90s\n",
        )
        .unwrap();
        let a = abuse(&raw).unwrap();
        assert_eq!(a.dnsbl, ["zen.spamhaus.org", "bl.test"]);
        assert!(a.dnswl.is_empty());
        assert_eq!((a.rate_client, a.rate_sender), ((200, 3600), (5, 90)));
        let raw = RawConfig::parse(
            Path::new("/e/env.txt"),
            "EMAIL_MILTERS=inet:127.0.0.1:11332, inet:localhost:8891?timeout=5s&fail=closed, \
             unix:/run/opendkim/opendkim.sock, local:/run/x.sock?fail=closed\n",
        )
        .unwrap();
        let m = abuse(&raw).unwrap().milters;
        let show = |i: usize| (m[i].address.to_string(), m[i].timeout, m[i].fail_open);
        assert_eq!(show(0), ("inet:127.0.0.1:11332".into(), 30, true));
        assert_eq!(show(1), ("inet:localhost:8891".into(), 5, false));
        assert_eq!(
            show(2),
            ("unix:/run/opendkim/opendkim.sock".into(), 30, true)
        );
        assert_eq!(show(3), ("unix:/run/x.sock".into(), 30, false));
        for (text, key) in [
            ("\nEMAIL_RATE_CLIENT=200\n", "EMAIL_RATE_CLIENT"),
            ("\nEMAIL_RATE_SENDER=x/1h\n", "EMAIL_RATE_SENDER"),
            ("\nEMAIL_DNSWL=not a zone\n", "EMAIL_DNSWL"),
            ("\nEMAIL_MILTERS=unix:run/rspamd.sock\n", "EMAIL_MILTERS"),
            ("\nEMAIL_MILTERS=tcp:1.2.3.4:5\n", "EMAIL_MILTERS"),
            ("\nEMAIL_MILTERS=inet:h:1?fail=maybe\n", "EMAIL_MILTERS"),
        ] {
            let raw = RawConfig::parse(Path::new("/e/env.txt"), text).unwrap();
            let e = abuse(&raw).unwrap_err().to_string();
            assert!(e.starts_with(&format!("/e/env.txt:2: {key}:")), "{e}");
        }
    }

    #[test]
    fn bad_check_keys_name_file_line_and_key() {
        for (text, key) in [
            ("\nEMAIL_AUTH_CHECKS=maybe\n", "EMAIL_AUTH_CHECKS"),
            ("\nEMAIL_DMARC_REJECT=bounce\n", "EMAIL_DMARC_REJECT"),
            (
                "\nEMAIL_DMARC_QUARANTINE=reject\n",
                "EMAIL_DMARC_QUARANTINE",
            ),
            ("\nEMAIL_AUTHSERV_ID=not a host\n", "EMAIL_AUTHSERV_ID"),
        ] {
            let e = checks(text, &["0.0.0.0"]).unwrap_err();
            assert!(e.starts_with(&format!("/e/env.txt:2: {key}:")), "{e}");
        }
    }
}
