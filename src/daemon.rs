//! `--daemon`: double fork before any thread or runtime exists, new session,
//! stdin and stdout to /dev/null, stderr to the log file when logging to
//! stderr (else to /dev/null once serving). The first process waits until the
//! server reports ready (or fails) so `sx server-email --daemon && ...` is safe
//! in scripts.

use nix::unistd::{fork, setsid, ForkResult};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

/// The daemon's stderr: a log file (opened before detaching, so a failure is
/// reported on the terminal) and its path for messages.
pub struct LogFile {
    pub path: std::path::PathBuf,
    pub file: std::fs::File,
}

/// `<data dir>/sx-server-email.log`, appended to, made if missing.
pub fn open_log(data_dir: &std::path::Path) -> std::io::Result<LogFile> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("sx-server-email.log");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&path)?;
    Ok(LogFile { path, file })
}

/// Returns in the daemon process with the write end of the ready pipe.
/// The calling process exits here.
pub fn detach(log: Option<LogFile>) -> OwnedFd {
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sx server-email: pipe: {e}");
            std::process::exit(crate::exit::SOFTWARE);
        }
    };
    // SAFETY: single-threaded here (no runtime, no threads yet).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => {
            drop(w);
            let mut f = std::fs::File::from(r);
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            if buf.first() == Some(&b'1') {
                std::process::exit(crate::exit::OK);
            }
            match &log {
                Some(l) => eprintln!(
                    "sx server-email: the daemon did not start (see {})",
                    l.path.display()
                ),
                None => eprintln!("sx server-email: the daemon did not start (see the log)"),
            }
            std::process::exit(crate::exit::SOFTWARE);
        }
        Ok(ForkResult::Child) => {}
        Err(e) => {
            eprintln!("sx server-email: fork: {e}");
            std::process::exit(crate::exit::SOFTWARE);
        }
    }
    drop(r);
    let _ = setsid();
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
        Err(_) => std::process::exit(crate::exit::SOFTWARE),
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in [0, 1] {
            // SAFETY: dup2 onto stdio numbers.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    if let Some(l) = log {
        // SAFETY: dup2 onto stderr; the process and its children log there.
        unsafe { libc::dup2(l.file.as_raw_fd(), 2) };
    }
    w
}

/// After start-up errors could no longer be reported: stderr goes too.
pub fn close_stderr() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto stderr.
        unsafe { libc::dup2(null.as_raw_fd(), 2) };
    }
}
