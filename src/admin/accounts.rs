//! --add-account, --remove-account, --passwd, --list-accounts: atomic edits of the
//! accounts file under a lock, then SIGHUP to the running daemon.

use crate::exit;
use sxproc::accounts::{self, Account};
use sxproc::config::ServerConfig;

fn normalize(cfg: &ServerConfig, addr: &str) -> Result<String, i32> {
    let Some(a) = accounts::normalize_address(addr) else {
        eprintln!("sx server-email: {addr:?} is not a valid address (user@domain, letters, digits, . _ -)");
        return Err(exit::DATAERR);
    };
    let domain = a.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !cfg.domains.iter().any(|d| d == domain) {
        eprintln!(
            "sx server-email: {domain} is not a local domain (EMAIL_DOMAIN/EMAIL_DOMAINS: {})",
            cfg.domains.join(", ")
        );
        return Err(exit::DATAERR);
    }
    Ok(a)
}

fn load(cfg: &ServerConfig) -> Result<Vec<Account>, i32> {
    accounts::load(&cfg.accounts_file).map_err(|e| {
        eprintln!("sx server-email: {e}");
        exit::DATAERR
    })
}

fn save(cfg: &ServerConfig, list: &[Account]) -> Result<(), i32> {
    accounts::save(&cfg.accounts_file, list).map_err(|e| {
        eprintln!(
            "sx server-email: cannot write {}: {e}",
            cfg.accounts_file.display()
        );
        exit::CANTCREAT
    })
}

/// Edit under the lock; `f` changes the list or returns an exit code.
fn edit(cfg: &ServerConfig, f: impl FnOnce(&mut Vec<Account>) -> Result<(), i32>) -> i32 {
    let _lock = match accounts::lock(&cfg.accounts_file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "sx server-email: cannot lock {}: {e}",
                cfg.accounts_file.display()
            );
            return if e.kind() == std::io::ErrorKind::PermissionDenied {
                exit::NOPERM
            } else {
                exit::CANTCREAT
            };
        }
    };
    let mut list = match load(cfg) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if let Err(c) = f(&mut list) {
        return c;
    }
    if let Err(c) = save(cfg, &list) {
        return c;
    }
    notify_daemon(cfg);
    exit::OK
}

fn hash(pw: &str) -> Result<String, i32> {
    accounts::hash_password(pw).map_err(|e| {
        eprintln!("sx server-email: cannot hash password: {e}");
        exit::SOFTWARE
    })
}

fn password_for(addr: &str) -> Result<String, i32> {
    crate::password::read_new(addr).map_err(|e| {
        eprintln!("sx server-email: {e}");
        exit::DATAERR
    })
}

pub fn add(cfg: &ServerConfig, addr: &str) -> i32 {
    let addr = match normalize(cfg, addr) {
        Ok(a) => a,
        Err(c) => return c,
    };
    if load(cfg)
        .map(|l| l.iter().any(|a| a.address == addr))
        .unwrap_or(false)
    {
        eprintln!("sx server-email: account {addr} already exists");
        return exit::DATAERR;
    }
    let pw = match password_for(&addr) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let h = match hash(&pw) {
        Ok(h) => h,
        Err(c) => return c,
    };
    let code = edit(cfg, |list| {
        if list.iter().any(|a| a.address == addr) {
            eprintln!("sx server-email: account {addr} already exists");
            return Err(exit::DATAERR);
        }
        list.push(Account {
            address: addr.clone(),
            hash: h,
        });
        Ok(())
    });
    if code != exit::OK {
        return code;
    }
    let owner = if nix::unistd::geteuid().is_root() {
        match nix::unistd::User::from_name(&cfg.users.mail) {
            Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
            _ => {
                eprintln!(
                    "sx server-email: warning: user {} missing; Maildir left owned by root",
                    cfg.users.mail
                );
                None
            }
        }
    } else {
        None
    };
    match sxproc::maildir::create_account(&cfg.maildir, &addr, owner) {
        Ok(dir) => println!("added {addr} (Maildir {})", dir.display()),
        Err(e) => {
            eprintln!("sx server-email: account added but Maildir not created: {e}");
            return exit::CANTCREAT;
        }
    }
    exit::OK
}

pub fn remove(cfg: &ServerConfig, addr: &str) -> i32 {
    let Some(addr) = accounts::normalize_address(addr) else {
        eprintln!("sx server-email: {addr:?} is not a valid address");
        return exit::DATAERR;
    };
    let code = edit(cfg, |list| {
        let before = list.len();
        list.retain(|a| a.address != addr);
        if list.len() == before {
            eprintln!("sx server-email: no account {addr}");
            return Err(exit::NOINPUT);
        }
        Ok(())
    });
    if code == exit::OK {
        println!("removed {addr} (its mail is kept)");
    }
    code
}

pub fn passwd(cfg: &ServerConfig, addr: &str) -> i32 {
    let Some(addr) = accounts::normalize_address(addr) else {
        eprintln!("sx server-email: {addr:?} is not a valid address");
        return exit::DATAERR;
    };
    if !load(cfg)
        .map(|l| l.iter().any(|a| a.address == addr))
        .unwrap_or(false)
    {
        eprintln!("sx server-email: no account {addr}");
        return exit::NOINPUT;
    }
    let pw = match password_for(&addr) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let h = match hash(&pw) {
        Ok(h) => h,
        Err(c) => return c,
    };
    let code = edit(cfg, |list| {
        match list.iter_mut().find(|a| a.address == addr) {
            Some(a) => {
                a.hash = h;
                Ok(())
            }
            None => {
                eprintln!("sx server-email: no account {addr}");
                Err(exit::NOINPUT)
            }
        }
    });
    if code == exit::OK {
        println!("password changed for {addr}");
    }
    code
}

pub fn list(cfg: &ServerConfig) -> i32 {
    match load(cfg) {
        Ok(l) => {
            for a in l {
                println!("{}", a.address);
            }
            exit::OK
        }
        Err(c) => c,
    }
}

/// A running daemon re-reads accounts on SIGHUP.
fn notify_daemon(cfg: &ServerConfig) {
    if let Some(pid) = sxproc::parent::running_pid(&cfg.pid_file) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
}
