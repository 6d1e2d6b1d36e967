//! parent — root. Reads config, certificates, DKIM keys and accounts; binds every
//! listener; re-execs the five children with their socketpairs; supervises them;
//! serves the control socket; handles SIGTERM/SIGINT (stop), SIGHUP (reload).
//!
//! May touch: every configured file (read), the pid file and control socket
//! (write), the data, queue and maildir roots (create, chown). Holds the TLS and
//! DKIM private keys only long enough to hand them to keyholder.
//!
//! Answers: children's Ready/Reloaded/DkimSigned; control requests Status, Reload,
//! DkimSign (forwarded to keyholder); smtp's BrokerRequest (a connection to a
//! unix: milter of the configuration, `broker.rs`).

mod broker;
mod control;
mod listeners;
mod pidfile;
mod prepare;
mod spawn;
mod supervise;

pub use pidfile::running as running_pid;
pub use prepare::load_dkim_key;

use crate::config::{ServerConfig, EX_CONFIG};
use std::os::fd::OwnedFd;

pub struct RunOpts {
    /// Write one byte here once serving (`--daemon` start-up handshake).
    pub ready: Option<OwnedFd>,
    /// Print the listening summary to stdout (foreground start).
    pub announce: bool,
    /// stderr is a log file (or the terminal): children keep it, also when
    /// detached.
    pub stderr_is_log: bool,
    /// Called once serving (the daemon closes its stderr here).
    pub on_ready: Option<fn()>,
}

/// sysexits: EX_SOFTWARE, EX_OSERR, EX_CANTCREAT, EX_TEMPFAIL.
pub const EX_SOFTWARE: i32 = 70;
pub const EX_OSERR: i32 = 71;
pub const EX_CANTCREAT: i32 = 73;
pub const EX_TEMPFAIL: i32 = 75;

/// Run the server in the foreground until SIGTERM/SIGINT. Returns the exit code.
pub fn run(cfg: ServerConfig, opts: RunOpts) -> i32 {
    crate::log::init("sx-parent", cfg.log);
    if opts.ready.is_some() && !opts.stderr_is_log {
        spawn::CHILD_STDERR_NULL.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    for w in &cfg.raw.warnings {
        log::warn!("{w}");
    }
    if !prepare::is_root() {
        log::warn!("not running as root: children keep this user, no chroot (development mode)");
    }
    if let Some(pid) = pidfile::running(&cfg.pid_file) {
        let e = format!("already running (pid {pid}, {})", cfg.pid_file.display());
        log::error!("{e}");
        eprintln!("sx server-email: {e}");
        return EX_TEMPFAIL;
    }
    let prep = match prepare::load(&cfg, 1) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            eprintln!("sx server-email: {e}");
            return EX_CONFIG;
        }
    };
    let bound = match listeners::bind_all(&cfg) {
        Ok(b) => b,
        Err(e) => {
            log::error!("{e}");
            eprintln!("sx server-email: {e}");
            return EX_OSERR;
        }
    };
    if let Err(e) = pidfile::write(&cfg.pid_file) {
        log::error!("{e}");
        eprintln!("sx server-email: {e}");
        return EX_TEMPFAIL;
    }
    let control = match control::bind(&cfg) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            eprintln!("sx server-email: {e}");
            pidfile::remove(&cfg.pid_file);
            return EX_CANTCREAT;
        }
    };
    // First set: spawned before any runtime exists in this process.
    let set = match spawn::spawn_set(&cfg, &prep, &bound) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            eprintln!("sx server-email: {e}");
            pidfile::remove(&cfg.pid_file);
            let _ = std::fs::remove_file(&cfg.control_socket);
            return EX_SOFTWARE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start runtime: {e}");
            let mut set = set;
            spawn::kill_all(&mut set);
            pidfile::remove(&cfg.pid_file);
            return EX_OSERR;
        }
    };
    // Before anyone is told we are up, so that a stop request is never lost.
    let signals = match rt.block_on(async { supervise::Signals::register() }) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            let mut set = set;
            spawn::kill_all(&mut set);
            pidfile::remove(&cfg.pid_file);
            return EX_OSERR;
        }
    };
    for b in &bound {
        log::info!("listening on {} ({})", b.addr, b.service.name());
    }
    if opts.announce {
        announce(&cfg, &bound);
    }
    if let Some(fd) = opts.ready {
        let _ = nix::unistd::write(&fd, b"1");
    }
    if let Some(f) = opts.on_ready {
        f();
    }
    let code = rt.block_on(supervise::supervise(
        cfg.clone(),
        prep,
        bound,
        set,
        control,
        signals,
    ));
    pidfile::remove(&cfg.pid_file);
    let _ = std::fs::remove_file(&cfg.control_socket);
    if let Some(s) = &cfg.submit_socket {
        // Gone with the server: sendmail then uses the maildrop.
        let _ = std::fs::remove_file(s);
    }
    code
}

fn announce(cfg: &ServerConfig, bound: &[listeners::Bound]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "sx server-email: serving {}", cfg.domains.join(", "));
    if cfg.raw.embedded {
        let _ = writeln!(
            out,
            "  embedded default (no config file found): data in {}",
            cfg.data_dir.display()
        );
    }
    for b in bound {
        let what = match b.service {
            ipc::messages::Service::Smtp => "SMTP (MTA, STARTTLS offered)",
            ipc::messages::Service::Submission => "submission (STARTTLS, then AUTH)",
            ipc::messages::Service::Submissions => "submission over TLS",
            ipc::messages::Service::Imaps => "IMAP over TLS",
            ipc::messages::Service::Imap => "IMAP (STARTTLS)",
            ipc::messages::Service::Local => "local submission (sendmail on this host)",
        };
        let _ = writeln!(out, "  {:<22} {}", b.addr, what);
    }
    let _ = writeln!(out, "  certificate            {}", cfg.tls_cert.display());
    let _ = writeln!(
        out,
        "  control socket         {}",
        cfg.control_socket.display()
    );
    let _ = out.flush();
}
