//! Commands valid in every state (RFC 3501 6.1): CAPABILITY, NOOP, LOGOUT;
//! and ID (RFC 2971), NAMESPACE (RFC 2342) and ENABLE (RFC 5161), which need
//! nothing of the mailbox.

use crate::imap::io::Io;
use crate::imap::view::Selected;

pub fn capability(io: &mut Io, tag: &str, logged_in: bool) {
    let c = io.capability(logged_in);
    io.push(&format!("* CAPABILITY {c}\r\n"));
    io.tagged(tag, "OK", "CAPABILITY completed");
}

/// NOOP and CHECK: a chance to hear of changes to the selected mailbox.
pub fn noop(io: &mut Io, sel: Option<&mut Selected>, tag: &str) {
    if let Some(sel) = sel {
        let updates = sel.sync(true);
        io.push(&updates);
    }
    io.tagged(tag, "OK", "Completed");
}

pub fn logout(io: &mut Io, tag: &str) {
    io.push("* BYE Logging out\r\n");
    io.tagged(tag, "OK", "LOGOUT completed");
}

pub fn id(io: &mut Io, tag: &str) {
    io.push("* ID (\"name\" \"scorpiox-email\" \"version\" \"");
    io.push(env!("CARGO_PKG_VERSION"));
    io.push("\")\r\n");
    io.tagged(tag, "OK", "ID completed");
}

pub fn namespace(io: &mut Io, tag: &str) {
    io.push("* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
    io.tagged(tag, "OK", "NAMESPACE completed");
}

pub fn enable(io: &mut Io, tag: &str) {
    // Nothing this server offers needs enabling.
    io.push("* ENABLED\r\n");
    io.tagged(tag, "OK", "ENABLE completed");
}
