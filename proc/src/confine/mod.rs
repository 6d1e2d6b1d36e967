//! Confinement after the privilege drop: Landlock (files, TCP, signals) and a
//! seccomp allow-list per role. Both are per-thread and inherited, so they are
//! installed before the child's runtime starts any thread.

pub mod landlock;
pub mod seccomp;

use ipc::messages::{Role, SeccompMode};

/// Confine this process; the returned line says what is in force (for the log).
pub fn enter(role: Role, mode: SeccompMode) -> Result<String, String> {
    let ll = landlock::install(role).map_err(|e| format!("landlock: {e}"))?;
    seccomp::install(role, mode).map_err(|e| format!("seccomp: {e}"))?;
    let sc = match mode {
        SeccompMode::Kill => format!(
            "{} calls allowed, others kill",
            seccomp::allowed(role).len()
        ),
        SeccompMode::Log => "log only (EMAIL_SECCOMP=log)".to_string(),
        SeccompMode::Off => "off (EMAIL_SECCOMP=off)".to_string(),
    };
    Ok(format!("confined: seccomp {sc}; landlock {ll}"))
}
