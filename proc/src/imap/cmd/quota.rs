//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208): one quota root, "", for
//! the whole account when EMAIL_QUOTA is set, which delivery enforces. Quotas
//! are the administrator's: SETQUOTA is refused.

use crate::imap::io::Io;
use crate::imap::names;
use crate::imap::state::Login;

/// RFC 9208: one quota root, "", for the whole account, when EMAIL_QUOTA
/// is set; the limit and usage in units of 1024 octets.
fn quota_line(io: &Io, login: &Login) -> String {
    let used = crate::maildir::usage(&login.account).div_ceil(1024);
    let limit = io.sh.quota.div_ceil(1024);
    format!("* QUOTA \"\" (STORAGE {used} {limit})\r\n")
}

pub fn get_quota_root(io: &mut Io, login: &Login, tag: &str, name: &str) {
    let Some(path) = super::folder_or_no(io, login, tag, name) else {
        return;
    };
    if !path.join("cur").is_dir() {
        io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
        return;
    }
    let shown = if names::is_inbox(name) { "INBOX" } else { name };
    let shown = io.name_out(shown).into_owned();
    let shown = shown.as_str();
    if io.sh.quota == 0 {
        // No limit: the mailbox has no quota root.
        io.push(&format!("* QUOTAROOT {}\r\n", io.quote_name(shown)));
    } else {
        io.push(&format!("* QUOTAROOT {} \"\"\r\n", io.quote_name(shown)));
        let q = quota_line(io, login);
        io.push(&q);
    }
    io.tagged(tag, "OK", "GETQUOTAROOT completed");
}

pub fn get_quota(io: &mut Io, login: &Login, tag: &str, root: &str) {
    if !root.is_empty() || io.sh.quota == 0 {
        io.tagged(tag, "NO", "[NONEXISTENT] No such quota root");
        return;
    }
    let q = quota_line(io, login);
    io.push(&q);
    io.tagged(tag, "OK", "GETQUOTA completed");
}

pub fn set_quota(io: &mut Io, tag: &str) {
    io.tagged(
        tag,
        "NO",
        "[NOPERM] Quotas are set by the administrator (EMAIL_QUOTA)",
    );
}
