//! SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6-7). Names may be subscribed
//! without existing, so the list is bounded like folders: it is read by every
//! LSUB and LIST and could otherwise grow without end.

use crate::imap::io::Io;
use crate::imap::names;
use crate::imap::state::Login;

pub fn subscribe(io: &mut Io, login: &Login, tag: &str, name: &str, on: bool) {
    let name = if names::is_inbox(name) { "INBOX" } else { name };
    if super::folder_or_no(io, login, tag, name).is_none() {
        return;
    }
    if on {
        let subs = names::subscriptions(&login.account);
        if !subs.iter().any(|s| s == name) && subs.len() > io.sh.max_folders {
            io.tagged(tag, "NO", "[LIMIT] Too many subscriptions");
            return;
        }
    }
    match names::set_subscribed(&login.account, name, on) {
        Ok(()) => {
            // For NOTIFY's SubscriptionChange in other sessions.
            io.changed(&login.account.join(names::SUBSCRIPTIONS));
            io.tagged(tag, "OK", "Completed")
        }
        Err(e) => {
            log::warn!("{}: subscriptions: {e}", io.service.name());
            io.tagged(tag, "NO", "[SERVERBUG] Cannot update subscriptions")
        }
    }
}
