//! `sx server-email`: run the server, or one admin action against its files or
//! its control socket.

mod accounts;
mod check;
mod control;
mod dkim;

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
    let (ready, on_ready): (_, Option<fn()>) = if a.daemon {
        (
            Some(crate::daemon::detach()),
            Some(crate::daemon::close_stderr),
        )
    } else {
        (None, None)
    };
    sxproc::parent::run(
        cfg,
        sxproc::parent::RunOpts {
            config: a.config.clone(),
            announce: ready.is_none(),
            ready,
            on_ready,
        },
    )
}
