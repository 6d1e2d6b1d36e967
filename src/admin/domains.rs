//! --add-domain, --remove-domain, --list-domains: the local domains of
//! EMAIL_DOMAINS_FILE, edited under a lock and written atomically, then the
//! running server reloads (as for accounts), so a new domain is served at
//! once. EMAIL_DOMAIN and EMAIL_DOMAINS stay the configuration file's.

use super::accounts::{notify_daemon, report, Outcome};
use crate::exit;
use sxproc::config::{domains_in_file, valid_domain, ServerConfig};

fn edit(cfg: &ServerConfig, f: impl FnOnce(&mut Vec<String>) -> Outcome) -> Outcome {
    let path = &cfg.domains_file;
    let _lock = sxproc::accounts::lock(path).map_err(|e| {
        (
            exit::CANTCREAT,
            format!("cannot lock {}: {e}", path.display()),
        )
    })?;
    let mut list = domains_in_file(path).map_err(|e| (exit::DATAERR, e.to_string()))?;
    let said = f(&mut list)?;
    let mut text =
        String::from("# Local domains (sx server-email --add-domain / --remove-domain).\n");
    for d in &list {
        text.push_str(d);
        text.push('\n');
    }
    sxproc::accounts::write_atomic(path, text.as_bytes(), 0o644).map_err(|e| {
        (
            exit::CANTCREAT,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    notify_daemon(cfg);
    Ok(said)
}

pub fn add_with(cfg: &ServerConfig, domain: &str) -> Outcome {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !valid_domain(&d) {
        return Err((exit::DATAERR, format!("{domain:?} is not a domain name")));
    }
    if cfg.domains.contains(&d) {
        return Err((exit::DATAERR, format!("{d} is a local domain already")));
    }
    edit(cfg, |list| {
        list.push(d.clone());
        Ok(format!(
            "added {d} (in {}); now: sx server-email --add-account you@{d}",
            cfg.domains_file.display()
        ))
    })
}

pub fn remove_with(cfg: &ServerConfig, domain: &str) -> Outcome {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    edit(cfg, |list| {
        let before = list.len();
        list.retain(|x| *x != d);
        if list.len() == before {
            let why = if cfg.domains.contains(&d) {
                format!(
                    "{d} comes from EMAIL_DOMAIN/EMAIL_DOMAINS, not {}",
                    cfg.domains_file.display()
                )
            } else {
                format!("{d} is not a local domain")
            };
            return Err((exit::NOINPUT, why));
        }
        Ok(format!("removed {d}; its accounts and mail are kept"))
    })
}

pub fn add(cfg: &ServerConfig, domain: &str) -> i32 {
    report(add_with(cfg, domain))
}

pub fn remove(cfg: &ServerConfig, domain: &str) -> i32 {
    report(remove_with(cfg, domain))
}

pub fn list(cfg: &ServerConfig) -> i32 {
    for (i, d) in cfg.domains.iter().enumerate() {
        println!("{d}{}", if i == 0 { " (primary)" } else { "" });
    }
    exit::OK
}
