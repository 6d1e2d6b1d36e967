//! The pid file: refuses a second daemon, removed on clean exit.

use std::path::Path;

/// Pid of a live daemon recorded in `path`, if any.
pub fn running(path: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let ours = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|c| c.contains("server-email") || c.contains("sx"))
        .unwrap_or(false);
    (alive && ours && pid != std::process::id() as i32).then_some(pid)
}

pub fn write(path: &Path) -> Result<(), String> {
    if let Some(pid) = running(path) {
        return Err(format!("already running (pid {pid}, {})", path.display()));
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    crate::accounts::write_atomic(path, format!("{}\n", std::process::id()).as_bytes(), 0o644)
        .map_err(|e| format!("cannot write pid file {}: {e}", path.display()))
}

pub fn remove(path: &Path) {
    if std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(std::process::id())
    {
        let _ = std::fs::remove_file(path);
    }
}
