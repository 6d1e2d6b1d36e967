//! Fault points for the tests of panic containment: with SX_FAULT_INJECTION=1
//! in the daemon's environment (root's choice; the parent passes that one
//! variable on to its children), `EHLO sx-fault-panic.invalid` and an IMAP
//! command tagged `sx-fault-panic` panic their session. They exist in every
//! build so the build that ships is the build those tests run; without the
//! variable they are inert. The parent logs at start when they are armed.

use std::sync::OnceLock;

/// The environment variable that arms the fault points.
pub const VAR: &str = "SX_FAULT_INJECTION";

/// Whether this process's fault points are armed (read once).
pub fn armed() -> bool {
    static ARMED: OnceLock<bool> = OnceLock::new();
    *ARMED.get_or_init(|| std::env::var_os(VAR).is_some_and(|v| v == "1"))
}
