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
        let updates = sel.sync(io.enabled, true);
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

/// ENABLE (RFC 5161): CONDSTORE, and QRESYNC (which implies it, RFC 7162
/// 3.2.3), UTF8=ACCEPT (RFC 9755) and IMAP4rev2 (RFC 9051); ENABLED names
/// what this command turned on.
pub fn enable(io: &mut Io, tag: &str, names: &[String]) {
    let mut now = Vec::new();
    for n in names {
        match n.as_str() {
            "CONDSTORE" if !io.enabled.condstore => {
                io.enabled.condstore = true;
                now.push("CONDSTORE");
            }
            // RFC 9051 6.3.1: a server offering both keeps to IMAP4rev1
            // until this; IMAP4rev2 has UTF-8 built in.
            "IMAP4REV2" if !io.enabled.rev2 => {
                io.enabled.rev2 = true;
                io.enabled.utf8 = true;
                now.push("IMAP4rev2");
            }
            "UTF8=ACCEPT" if !io.enabled.utf8 => {
                io.enabled.utf8 = true;
                now.push("UTF8=ACCEPT");
            }
            "QRESYNC" if !io.enabled.qresync => {
                io.enabled.qresync = true;
                io.enabled.condstore = true;
                now.push("QRESYNC");
            }
            _ => {}
        }
    }
    io.push(&format!(
        "* ENABLED{}\r\n",
        now.iter().map(|n| format!(" {n}")).collect::<String>()
    ));
    io.tagged(tag, "OK", "ENABLE completed");
}

/// A CONDSTORE-enabling command (RFC 7162 3.1): from now on responses carry
/// MODSEQ; the first time, with a mailbox selected, its HIGHESTMODSEQ is told.
pub fn turn_on_condstore(io: &mut Io, sel: Option<&Selected>) {
    if io.enabled.condstore {
        return;
    }
    io.enabled.condstore = true;
    if let Some(highest) = sel.and_then(|s| s.folder.lock().ok().map(|st| st.highest_modseq())) {
        io.push(&format!("* OK [HIGHESTMODSEQ {highest}] Highest\r\n"));
    }
}
