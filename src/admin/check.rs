//! `--check-config`: everything the server would trip over at start or later,
//! checked without starting it: the TLS certificate (dates, names, key match,
//! key file mode), accounts and aliases files, DKIM keys, directories (a missing
//! Maildir root often means an unmounted disk) and system users; then the DNS
//! records to publish. One line per finding, `ok:`, `warning:` or `error:`;
//! exit 78 when there is any error.

use super::dkim;
use crate::exit;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use sxproc::config::ServerConfig;

/// Warn this long before the certificate expires.
const EXPIRY_WARNING_DAYS: i64 = 14;

#[derive(Default)]
struct Report {
    errors: usize,
}

impl Report {
    fn ok(&mut self, m: impl AsRef<str>) {
        println!("ok: {}", m.as_ref());
    }
    fn warn(&mut self, m: impl AsRef<str>) {
        println!("warning: {}", m.as_ref());
    }
    fn error(&mut self, m: impl AsRef<str>) {
        self.errors += 1;
        println!("error: {}", m.as_ref());
    }
}

fn day(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// Group- or world-readable secrets are worth a warning.
fn check_private(r: &mut Report, key: &str, path: &Path) {
    if let Ok(m) = std::fs::metadata(path) {
        if m.mode() & 0o077 != 0 {
            r.warn(format!(
                "{key} {} is readable by group or others (mode {:04o}); chmod 600",
                path.display(),
                m.mode() & 0o7777
            ));
        }
    }
}

fn check_certificate(r: &mut Report, cfg: &ServerConfig) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let path = &cfg.tls_cert;
    if cfg.raw.embedded && !path.exists() {
        return r.warn(format!(
            "no certificate at {} yet: the embedded default makes a self-signed one on first start",
            path.display()
        ));
    }
    let chain: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
    {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return r.error(format!("EMAIL_TLS_CERT {}: no certificate", path.display())),
        Err(e) => return r.error(format!("EMAIL_TLS_CERT {}: {e}", path.display())),
    };
    let leaf = match x509_parser::parse_x509_certificate(&chain[0]) {
        Ok((_, c)) => c,
        Err(e) => {
            return r.error(format!(
                "EMAIL_TLS_CERT {}: not a valid certificate: {e}",
                path.display()
            ))
        }
    };
    let now = chrono::Utc::now().timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let not_before = leaf.validity().not_before.timestamp();
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    let s = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .map(|a| std::net::IpAddr::from(a).to_string())
                            .unwrap_or_default(),
                        16 => <[u8; 16]>::try_from(*ip)
                            .map(|a| std::net::IpAddr::from(a).to_string())
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    names.push(s);
                }
                _ => {}
            }
        }
    }
    if not_after < now {
        r.error(format!(
            "EMAIL_TLS_CERT {}: certificate expired on {} ({} days ago)",
            path.display(),
            day(not_after),
            (now - not_after) / 86_400
        ));
    } else if not_before > now {
        r.error(format!(
            "EMAIL_TLS_CERT {}: certificate not valid before {}",
            path.display(),
            day(not_before)
        ));
    } else {
        let days = (not_after - now) / 86_400;
        let line = format!(
            "TLS certificate {}: {}, valid until {} ({days} days), names: {}",
            path.display(),
            leaf.subject(),
            day(not_after),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        if days < EXPIRY_WARNING_DAYS {
            r.warn(format!("{line}: renew it soon"));
        } else {
            r.ok(line);
        }
    }
    let host = cfg.hostname.to_ascii_lowercase();
    let covers = names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        n == host
            || n.strip_prefix("*.").is_some_and(|rest| {
                host.split_once('.')
                    .is_some_and(|(_, parent)| parent == rest)
            })
    });
    if !covers {
        r.warn(format!(
            "EMAIL_TLS_CERT {} does not name EMAIL_HOSTNAME {}: clients that verify will refuse it",
            path.display(),
            cfg.hostname
        ));
    }
    match sxproc::tls::load_identity(path, &cfg.tls_key, 0) {
        Ok(_) => r.ok(format!(
            "TLS key {} matches the certificate",
            cfg.tls_key.display()
        )),
        Err(e) => r.error(format!("EMAIL_TLS_KEY: {e}")),
    }
    check_private(r, "EMAIL_TLS_KEY", &cfg.tls_key);
}

fn check_files(r: &mut Report, cfg: &ServerConfig) -> Vec<String> {
    let mut accounts = Vec::new();
    match sxproc::accounts::load(&cfg.accounts_file) {
        Ok(a) => {
            r.ok(format!(
                "{} account(s) in {}",
                a.len(),
                cfg.accounts_file.display()
            ));
            accounts = a.into_iter().map(|a| a.address).collect();
        }
        Err(e) => r.error(format!("EMAIL_ACCOUNTS_FILE: {e}")),
    }
    check_private(r, "EMAIL_ACCOUNTS_FILE", &cfg.accounts_file);
    if cfg.aliases_file.exists() {
        match sxproc::aliases::load(&cfg.aliases_file) {
            Ok(a) => r.ok(format!(
                "{} alias(es) in {}",
                a.len(),
                cfg.aliases_file.display()
            )),
            Err(e) => r.error(format!("EMAIL_ALIASES_FILE: {e}")),
        }
    }
    accounts
}

fn check_dirs(r: &mut Report, cfg: &ServerConfig, accounts: &[String]) {
    if cfg.maildir.is_dir() {
        r.ok(format!("Maildir root {}", cfg.maildir.display()));
        for a in accounts {
            let Some((local, domain)) = a.split_once('@') else {
                continue;
            };
            let d = cfg.maildir.join(domain).join(local);
            if !d.join("new").is_dir() {
                r.warn(format!(
                    "Maildir of {a} missing at {} (created on first delivery)",
                    d.display()
                ));
            }
        }
    } else if cfg.raw.embedded {
        r.warn(format!(
            "Maildir root {} does not exist yet (created at start)",
            cfg.maildir.display()
        ));
    } else {
        r.error(format!(
            "EMAIL_MAILDIR {} does not exist (an unmounted disk?); the server would start with it empty",
            cfg.maildir.display()
        ));
    }
    if cfg.queue_dir.is_dir() {
        r.ok(format!("queue directory {}", cfg.queue_dir.display()));
    } else {
        r.warn(format!(
            "EMAIL_QUEUE_DIR {} does not exist yet (created at start)",
            cfg.queue_dir.display()
        ));
    }
    if nix::unistd::geteuid().is_root() && !cfg.raw.embedded {
        for (key, name) in [
            ("EMAIL_USER_KEYHOLDER", &cfg.users.keyholder),
            ("EMAIL_USER_SMTP", &cfg.users.smtp),
            ("EMAIL_USER_QUEUE", &cfg.users.queue),
            ("EMAIL_USER_MAIL", &cfg.users.mail),
        ] {
            match nix::unistd::User::from_name(name) {
                Ok(Some(u)) if u.uid.is_root() => {
                    r.error(format!("{key} {name} has uid 0; children must not run as root"))
                }
                Ok(Some(_)) => {}
                _ => r.error(format!(
                    "{key}: no user {name} (useradd --system --no-create-home --shell /usr/sbin/nologin {name})"
                )),
            }
        }
    }
}

/// DKIM keys: each must load; their TXT records are printed with the others.
fn check_dkim(r: &mut Report, cfg: &ServerConfig) -> Vec<String> {
    let mut records = Vec::new();
    let mut keys: Vec<(String, String, std::path::PathBuf)> = vec![(
        cfg.primary_domain().to_string(),
        cfg.dkim_selector.clone(),
        cfg.dkim_key.clone(),
    )];
    keys.extend(cfg.dkim_keys.iter().cloned());
    for (domain, selector, path) in keys {
        if !path.exists() {
            r.warn(format!(
                "no DKIM key for {domain} at {}: outbound mail will not be signed (sx server-email --dkim-keygen)",
                path.display()
            ));
            continue;
        }
        match dkim::public_record(&path, &selector, &domain) {
            Ok(rec) => {
                r.ok(format!(
                    "DKIM key {} (selector {selector}, domain {domain})",
                    path.display()
                ));
                records.push(rec);
            }
            Err(e) => r.error(format!("EMAIL_DKIM_KEY: {e}")),
        }
        check_private(r, "EMAIL_DKIM_KEY", &path);
    }
    records
}

/// What port 25 checks of who sends, and what it needs for that.
fn check_inbound(r: &mut Report, cfg: &ServerConfig) {
    use ipc::messages::DmarcAction;
    let c = &cfg.checks;
    if !c.enabled {
        r.ok("sender checks on port 25: off (EMAIL_AUTH_CHECKS; auto is off when every EMAIL_LISTEN_ADDR is loopback)");
    } else {
        let act = |a: DmarcAction| match a {
            DmarcAction::Reject => "550 5.7.1",
            DmarcAction::Quarantine => "the Junk folder",
            DmarcAction::Deliver => "delivered",
        };
        r.ok(format!(
            "sender checks on port 25: SPF, DKIM, DMARC, ARC and iprev, as Authentication-Results {}; DMARC p=reject fails get {}, p=quarantine fails {}",
            c.authserv_id,
            act(c.on_reject),
            act(c.on_quarantine)
        ));
        if cfg.dns_servers.is_empty() {
            r.warn("sender checks are on but there is no DNS server (EMAIL_DNS_SERVER, /etc/resolv.conf): mail on port 25 will get 451 4.7.5");
        }
    }
    if !cfg.primary_domain().contains('.') && !cfg.raw.embedded {
        r.warn(format!(
            "the primary domain {:?} has no dot (the host name has no domain part): set EMAIL_DOMAIN, or add one with --add-domain",
            cfg.primary_domain()
        ));
    }
    match (&cfg.submit_socket, &cfg.maildrop_dir) {
        (Some(s), Some(d)) => r.ok(format!(
            "local mail (sendmail on this host): socket {}, maildrop {} while the server is down",
            s.display(),
            d.display()
        )),
        (Some(s), None) => r.ok(format!(
            "local mail (sendmail on this host): socket {}; no maildrop (EMAIL_MAILDROP_DIR empty)",
            s.display()
        )),
        (None, _) => r.ok("local mail: no submit socket (EMAIL_SUBMIT_SOCKET empty)"),
    }
    let a = &cfg.abuse;
    if !a.dnsbl.is_empty() {
        r.ok(format!("DNS block lists: {}", a.dnsbl.join(", ")));
    }
    if !a.dnswl.is_empty() {
        r.ok(format!("DNS allow lists: {}", a.dnswl.join(", ")));
    }
    for (what, (n, per)) in [("client address", a.rate_client), ("sender", a.rate_sender)] {
        if n > 0 {
            r.ok(format!("rate limit per {what}: {n} messages per {per} s"));
        }
    }
    if let Some((delay, expire)) = a.greylist {
        r.ok(format!(
            "greylisting: a new triplet waits {delay} s; passed ones pass for {expire} s"
        ));
    }
    for m in &a.milters {
        let fail = if m.fail_open { "open" } else { "closed" };
        r.ok(format!(
            "milter {} (timeout {} s, fail={fail})",
            m.address, m.timeout
        ));
        if let ipc::messages::MilterAddress::Unix(p) = &m.address {
            use std::os::unix::fs::FileTypeExt;
            match std::fs::metadata(p) {
                Ok(md) if md.file_type().is_socket() => {}
                Ok(_) => r.warn(format!("milter {}: not a socket", m.address)),
                Err(e) => r.warn(format!(
                    "milter {}: {e} (is the milter running?)",
                    m.address
                )),
            }
        }
    }
}

pub fn run(cfg: &ServerConfig) -> i32 {
    let mut r = Report::default();
    match &cfg.raw.file {
        Some(f) => r.ok(format!("configuration {}", f.display())),
        None => r.ok("no configuration file: embedded defaults"),
    }
    for w in &cfg.raw.warnings {
        r.warn(w);
    }
    check_certificate(&mut r, cfg);
    let accounts = check_files(&mut r, cfg);
    let dkim_records = check_dkim(&mut r, cfg);
    check_dirs(&mut r, cfg, &accounts);
    check_inbound(&mut r, cfg);

    println!();
    println!("DNS records to publish:");
    for d in &cfg.domains {
        println!("{d}. IN MX 10 {}.", cfg.hostname);
        println!("{d}. IN TXT \"v=spf1 mx -all\"");
        println!("_dmarc.{d}. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{d}\"");
    }
    // Bounces and DSNs go out from <>: receivers check SPF for the HELO
    // name, and DMARC aligns them through the DKIM signature of the primary
    // domain (the From is MAILER-DAEMON@ that domain).
    if !cfg
        .domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&cfg.hostname))
    {
        println!("{}. IN TXT \"v=spf1 a -all\"", cfg.hostname);
    }
    for rec in &dkim_records {
        println!("{rec}");
    }
    println!(
        "and a PTR record for the server's public address naming {} (at your network provider)",
        cfg.hostname
    );
    if r.errors == 0 {
        exit::OK
    } else {
        eprintln!(
            "sx server-email: {} error(s) in the configuration",
            r.errors
        );
        exit::CONFIG
    }
}
