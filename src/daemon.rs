//! `--daemon`: double fork before any thread or runtime exists, new session,
//! stdio to /dev/null. The first process waits until the server reports ready
//! (or fails) so `sx server-email --daemon && ...` is safe in scripts.

use nix::unistd::{fork, setsid, ForkResult};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

/// Returns in the daemon process with the write end of the ready pipe.
/// The calling process exits here.
pub fn detach() -> OwnedFd {
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
            eprintln!("sx server-email: the daemon did not start (see the log)");
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
    w
}

/// After start-up errors could no longer be reported: stderr goes too.
pub fn close_stderr() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto stderr.
        unsafe { libc::dup2(null.as_raw_fd(), 2) };
    }
}
