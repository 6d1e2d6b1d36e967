//! Privilege drop, in the order of DESIGN.md §1: chroot, groups/gid/uid, all
//! capabilities, no_new_privs. Runs in each child before its tokio runtime exists.

use ipc::messages::Sandbox;
use std::io;

fn io_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Drop to `sb` (when given: we are root), then forbid regaining privileges.
pub fn enter(sb: Option<&Sandbox>) -> io::Result<()> {
    if let Some(sb) = sb {
        nix::unistd::chroot(sb.chroot.as_str())
            .map_err(|e| io_err(&format!("chroot {}", sb.chroot), e))?;
        nix::unistd::chdir("/").map_err(|e| io_err("chdir /", e))?;
        // The bounding set can only be shrunk while we still hold CAP_SETPCAP.
        caps::clear(None, caps::CapSet::Bounding)
            .or_else(|_| {
                for c in caps::all() {
                    let _ = caps::drop(None, caps::CapSet::Bounding, c);
                }
                Ok::<(), caps::errors::CapsError>(())
            })
            .map_err(|e| io_err("clear bounding capabilities", e))?;
        let gid = nix::unistd::Gid::from_raw(sb.gid);
        let uid = nix::unistd::Uid::from_raw(sb.uid);
        nix::unistd::setgroups(&[gid]).map_err(|e| io_err("setgroups", e))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| io_err("setresgid", e))?;
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|e| io_err(&format!("setresuid {}", sb.user), e))?;
        if nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
            return Err(io::Error::other(
                "privilege drop failed: could regain uid 0",
            ));
        }
    }
    for set in [
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
        caps::CapSet::Inheritable,
        caps::CapSet::Ambient,
    ] {
        caps::clear(None, set).map_err(|e| io_err("clear capabilities", e))?;
    }
    // SAFETY: plain prctl calls with constant arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(io_err("PR_SET_NO_NEW_PRIVS", io::Error::last_os_error()));
    }
    // A uid change clears the parent-death signal; set it again so a killed parent
    // does not leave children behind.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    Ok(())
}

/// Set the kernel's name for this process (`ps -o comm`, `/proc/<pid>/comm`).
pub fn set_process_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME reads at most 16 bytes of a NUL-terminated string.
        unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr(), 0, 0, 0) };
    }
}
