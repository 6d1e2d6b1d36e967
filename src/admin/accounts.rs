//! --add-account, --remove-account, --passwd, --list-accounts: atomic edits of the
//! accounts file under a lock, then SIGHUP to the running daemon. The `*_with`
//! functions do the work and return what to say; the CLI prints it, the TUI
//! shows it.

use crate::exit;
use sxproc::accounts::{self, Account};
use sxproc::config::ServerConfig;

/// What happened (a line to show), or an exit code and why.
pub type Outcome = Result<String, (i32, String)>;

fn normalize(cfg: &ServerConfig, addr: &str) -> Result<String, (i32, String)> {
    let Some(a) = accounts::normalize_address(addr) else {
        return Err((
            exit::DATAERR,
            format!("{addr:?} is not a valid address (user@domain, letters, digits, . _ -)"),
        ));
    };
    let domain = a.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !cfg.domains.iter().any(|d| d == domain) {
        return Err((
            exit::DATAERR,
            format!(
                "{domain} is not a local domain ({}); add it first: sx server-email --add-domain {domain}",
                cfg.domains.join(", ")
            ),
        ));
    }
    Ok(a)
}

pub fn load(cfg: &ServerConfig) -> Result<Vec<Account>, (i32, String)> {
    accounts::load(&cfg.accounts_file).map_err(|e| (exit::DATAERR, e.to_string()))
}

/// Edit under the lock; `f` changes the list or says why not.
fn edit(
    cfg: &ServerConfig,
    f: impl FnOnce(&mut Vec<Account>) -> Result<(), (i32, String)>,
) -> Result<(), (i32, String)> {
    let _lock = accounts::lock(&cfg.accounts_file).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::PermissionDenied {
            exit::NOPERM
        } else {
            exit::CANTCREAT
        };
        (
            code,
            format!("cannot lock {}: {e}", cfg.accounts_file.display()),
        )
    })?;
    let mut list = load(cfg)?;
    f(&mut list)?;
    accounts::save(&cfg.accounts_file, &list).map_err(|e| {
        (
            exit::CANTCREAT,
            format!("cannot write {}: {e}", cfg.accounts_file.display()),
        )
    })?;
    notify_daemon(cfg);
    Ok(())
}

fn hash(pw: &str) -> Result<String, (i32, String)> {
    accounts::hash_password(pw).map_err(|e| (exit::SOFTWARE, format!("cannot hash password: {e}")))
}

fn exists(cfg: &ServerConfig, addr: &str) -> bool {
    load(cfg)
        .map(|l| l.iter().any(|a| a.address == addr))
        .unwrap_or(false)
}

pub fn add_with(cfg: &ServerConfig, addr: &str, pw: &str) -> Outcome {
    let addr = normalize(cfg, addr)?;
    if exists(cfg, &addr) {
        return Err((exit::DATAERR, format!("account {addr} already exists")));
    }
    let h = hash(pw)?;
    edit(cfg, |list| {
        if list.iter().any(|a| a.address == addr) {
            return Err((exit::DATAERR, format!("account {addr} already exists")));
        }
        list.push(Account {
            address: addr.clone(),
            hash: h,
        });
        Ok(())
    })?;
    let owner = if nix::unistd::geteuid().is_root() {
        match nix::unistd::User::from_name(&cfg.users.mail) {
            Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
            _ => None,
        }
    } else {
        None
    };
    match sxproc::maildir::create_account(&cfg.maildir, &addr, owner) {
        Ok(dir) => Ok(format!("added {addr} (Maildir {})", dir.display())),
        Err(e) => Err((
            exit::CANTCREAT,
            format!("account added but Maildir not created: {e}"),
        )),
    }
}

pub fn remove_with(cfg: &ServerConfig, addr: &str) -> Outcome {
    let Some(addr) = accounts::normalize_address(addr) else {
        return Err((exit::DATAERR, format!("{addr:?} is not a valid address")));
    };
    edit(cfg, |list| {
        let before = list.len();
        list.retain(|a| a.address != addr);
        if list.len() == before {
            return Err((exit::NOINPUT, format!("no account {addr}")));
        }
        Ok(())
    })?;
    Ok(format!("removed {addr} (its mail is kept)"))
}

pub fn passwd_with(cfg: &ServerConfig, addr: &str, pw: &str) -> Outcome {
    let Some(addr) = accounts::normalize_address(addr) else {
        return Err((exit::DATAERR, format!("{addr:?} is not a valid address")));
    };
    if !exists(cfg, &addr) {
        return Err((exit::NOINPUT, format!("no account {addr}")));
    }
    let h = hash(pw)?;
    edit(cfg, |list| {
        match list.iter_mut().find(|a| a.address == addr) {
            Some(a) => {
                a.hash = h;
                Ok(())
            }
            None => Err((exit::NOINPUT, format!("no account {addr}"))),
        }
    })?;
    Ok(format!("password changed for {addr}"))
}

/// Print the outcome the CLI way: the line on stdout, or the error on stderr.
pub fn report(o: Outcome) -> i32 {
    match o {
        Ok(line) => {
            println!("{line}");
            exit::OK
        }
        Err((code, msg)) => {
            eprintln!("sx server-email: {msg}");
            code
        }
    }
}

/// The password for a new or changed account: prompted, or read from stdin.
fn password_for(addr: &str) -> Result<String, (i32, String)> {
    crate::password::read_new(addr).map_err(|e| (exit::DATAERR, e))
}

pub fn add(cfg: &ServerConfig, addr: &str) -> i32 {
    report((|| {
        let a = normalize(cfg, addr)?;
        if exists(cfg, &a) {
            return Err((exit::DATAERR, format!("account {a} already exists")));
        }
        let pw = password_for(&a)?;
        add_with(cfg, &a, &pw)
    })())
}

pub fn remove(cfg: &ServerConfig, addr: &str) -> i32 {
    report(remove_with(cfg, addr))
}

pub fn passwd(cfg: &ServerConfig, addr: &str) -> i32 {
    report((|| {
        let Some(a) = accounts::normalize_address(addr) else {
            return Err((exit::DATAERR, format!("{addr:?} is not a valid address")));
        };
        if !exists(cfg, &a) {
            return Err((exit::NOINPUT, format!("no account {a}")));
        }
        let pw = password_for(&a)?;
        passwd_with(cfg, &a, &pw)
    })())
}

pub fn list(cfg: &ServerConfig) -> i32 {
    match load(cfg) {
        Ok(l) => {
            for a in l {
                println!("{}", a.address);
            }
            exit::OK
        }
        Err((code, msg)) => {
            eprintln!("sx server-email: {msg}");
            code
        }
    }
}

/// A running server re-reads the accounts: through the control socket,
/// which answers once every child has them (so the next command, a client's
/// message to the new account, finds it), or by SIGHUP when the socket is not
/// ours to use.
pub fn notify_daemon(cfg: &ServerConfig) {
    let Some(pid) = sxproc::parent::running_pid(&cfg.pid_file) else {
        return;
    };
    match super::control::request(cfg, &ipc::messages::ControlRequest::Reload, &[]) {
        Ok(ipc::messages::ControlReply::Ok) => {}
        Ok(ipc::messages::ControlReply::Error(e)) => {
            eprintln!("sx server-email: warning: the running server did not reload: {e}");
        }
        _ => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            );
        }
    }
}
