//! `sx server-email`: run the server, or one admin action against its files or
//! its control socket.

pub mod accounts;
mod check;
pub mod control;
mod dkim;
mod domains;

use crate::cli::ServerArgs;
use crate::exit;
use sxproc::config::ServerConfig;

pub fn server_email(a: ServerArgs) -> i32 {
    let cfg = match ServerConfig::load(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sx server-email: {e}");
            return exit::CONFIG;
        }
    };
    if let Some(addr) = &a.add_account {
        return accounts::add(&cfg, addr);
    }
    if let Some(addr) = &a.remove_account {
        return accounts::remove(&cfg, addr);
    }
    if let Some(addr) = &a.passwd {
        return accounts::passwd(&cfg, addr);
    }
    if a.list_accounts {
        return accounts::list(&cfg);
    }
    if let Some(d) = &a.add_domain {
        return domains::add(&cfg, d);
    }
    if let Some(d) = &a.remove_domain {
        return domains::remove(&cfg, d);
    }
    if a.list_domains {
        return domains::list(&cfg);
    }
    if a.dkim_keygen {
        return dkim::keygen(&cfg, &a);
    }
    if let Some(f) = &a.dkim_sign {
        return dkim::sign(&cfg, f, a.domain.as_deref());
    }
    if a.status {
        return control::status(&cfg, a.json);
    }
    if a.reload {
        return control::reload(&cfg);
    }
    if a.tui {
        return crate::tui::run(cfg);
    }
    if a.make_cert {
        return make_cert(&cfg, a.force);
    }
    if a.check_config {
        return check::run(&cfg);
    }
    use ipc::messages::QueueCmd;
    let queue_cmd = if a.queue {
        Some(QueueCmd::List)
    } else if let Some(id) = &a.queue_show {
        Some(QueueCmd::Show { id: id.clone() })
    } else if let Some(id) = &a.queue_flush {
        Some(QueueCmd::Flush {
            id: (!id.is_empty()).then(|| id.clone()),
        })
    } else if let Some(id) = &a.queue_remove {
        Some(QueueCmd::Remove { id: id.clone() })
    } else if let Some(id) = &a.queue_hold {
        Some(QueueCmd::Hold { id: id.clone() })
    } else {
        a.queue_release
            .as_ref()
            .map(|id| QueueCmd::Release { id: id.clone() })
    };
    if let Some(cmd) = queue_cmd {
        return control::queue(&cfg, cmd);
    }
    for w in &cfg.raw.warnings {
        eprintln!("sx server-email: warning: {w}");
    }
    if let Some(pid) = sxproc::parent::running_pid(&cfg.pid_file) {
        // Said here, before detaching, so `--daemon` exits 75 as documented.
        eprintln!(
            "sx server-email: already running (pid {pid}, {})",
            cfg.pid_file.display()
        );
        return exit::TEMPFAIL;
    }
    let mut cfg = cfg;
    let (ready, on_ready): (_, Option<fn()>) = if !a.daemon {
        (None, None)
    } else if cfg.log == ipc::messages::LogTarget::Stderr {
        // A detached server logging to stderr logs to a file in its data
        // directory (the embedded default), not to /dev/null.
        let log = match crate::daemon::open_log(&cfg.data_dir) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "sx server-email: cannot open the log file in {}: {e}",
                    cfg.data_dir.display()
                );
                return exit::CANTCREAT;
            }
        };
        println!("sx server-email: logging to {}", log.path.display());
        cfg.log = ipc::messages::LogTarget::LogFile;
        (Some(crate::daemon::detach(Some(log))), None)
    } else {
        (
            Some(crate::daemon::detach(None)),
            Some(crate::daemon::close_stderr),
        )
    };
    sxproc::parent::run(
        cfg,
        sxproc::parent::RunOpts {
            announce: ready.is_none(),
            stderr_is_log: on_ready.is_none(),
            ready,
            on_ready,
        },
    )
}

/// A first certificate so the server can start (the package's postinst runs
/// this); replace it with one a CA signed. Existing files are kept unless --force.
fn make_cert(cfg: &ServerConfig, force: bool) -> i32 {
    if !force && (cfg.tls_cert.exists() || cfg.tls_key.exists()) {
        eprintln!(
            "sx server-email: {} or {} exists; use --force to replace them",
            cfg.tls_cert.display(),
            cfg.tls_key.display()
        );
        return exit::CANTCREAT;
    }
    let (cert, key) = match sxproc::tls::self_signed(&cfg.hostname) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sx server-email: cannot make a certificate: {e}");
            return exit::SOFTWARE;
        }
    };
    for (path, data, mode) in [(&cfg.tls_key, key, 0o600), (&cfg.tls_cert, cert, 0o644)] {
        if let Err(e) = sxproc::accounts::write_atomic(path, data.as_bytes(), mode) {
            eprintln!("sx server-email: cannot write {}: {e}", path.display());
            return exit::CANTCREAT;
        }
    }
    println!(
        "wrote a self-signed certificate for {} to {} (key {})",
        cfg.hostname,
        cfg.tls_cert.display(),
        cfg.tls_key.display()
    );
    exit::OK
}
