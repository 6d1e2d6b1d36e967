//! STATUS (RFC 3501 6.3.10) with DELETED and DELETED-STORAGE (RFC 9208) and
//! SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162) and MAILBOXID (RFC 8474);
//! LIST-STATUS uses the same items.

use crate::imap::flags;
use crate::imap::folder::Folder;
use crate::imap::io::Io;
use crate::imap::names;
use crate::imap::state::Login;
use crate::imap::view::Selected;
use imap_codec::imap_types::status::StatusDataItemName;

/// `MESSAGES 3 UNSEEN 1 ...` for the named items, None if the folder is gone.
pub fn items(login: &Login, name: &str, items: &[String]) -> Option<String> {
    let path = names::folder(&login.account, name).ok()?;
    let folder = Folder::open(&path).ok()?;
    let mut st = folder.lock().ok()?;
    let mut out = Vec::new();
    for it in items {
        // RFC 8474 4.2: the one item that is not a number.
        if it == "MAILBOXID" {
            if let Ok(id) = folder.mailbox_id(&mut st) {
                out.push(format!("MAILBOXID ({id})"));
            }
            continue;
        }
        let v = match it.as_str() {
            "MESSAGES" => st.msgs.len() as u64,
            "RECENT" => st.msgs.iter().filter(|m| m.recent_to == 0).count() as u64,
            "UIDNEXT" => u64::from(st.uidnext),
            "UIDVALIDITY" => u64::from(st.uidvalidity),
            // RFC 7162 3.1.2.
            "HIGHESTMODSEQ" => st.highest_modseq(),
            "UNSEEN" => st
                .msgs
                .iter()
                .filter(|m| m.flags & flags::SEEN == 0)
                .count() as u64,
            "DELETED" => st
                .msgs
                .iter()
                .filter(|m| m.flags & flags::DELETED != 0)
                .count() as u64,
            // RFC 8438: the mailbox's size in octets.
            "SIZE" => st
                .msgs
                .iter()
                .filter_map(|m| std::fs::metadata(folder.file_path(m)).ok())
                .map(|md| md.len())
                .sum::<u64>(),
            // RFC 9208 4.2.2: what EXPUNGE would free, in 1024-octet units.
            "DELETED-STORAGE" => st
                .msgs
                .iter()
                .filter(|m| m.flags & flags::DELETED != 0)
                .filter_map(|m| std::fs::metadata(folder.file_path(m)).ok())
                .map(|md| md.len())
                .sum::<u64>()
                .div_ceil(1024),
            _ => continue,
        };
        out.push(format!("{it} {v}"));
    }
    Some(out.join(" "))
}

pub fn status(
    io: &mut Io,
    login: &Login,
    sel: Option<&Selected>,
    tag: &str,
    name: &str,
    items: &[StatusDataItemName],
) {
    let names: Vec<String> = items
        .iter()
        .map(|i| {
            match i {
                StatusDataItemName::Messages => "MESSAGES",
                StatusDataItemName::Recent => "RECENT",
                StatusDataItemName::UidNext => "UIDNEXT",
                StatusDataItemName::UidValidity => "UIDVALIDITY",
                StatusDataItemName::Unseen => "UNSEEN",
                StatusDataItemName::Deleted => "DELETED",
                StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
            }
            .to_string()
        })
        .collect();
    status_of(io, login, sel, tag, name, names);
}

/// STATUS for item names (upper case), from imap-codec or `ext`.
pub fn status_of(
    io: &mut Io,
    login: &Login,
    sel: Option<&Selected>,
    tag: &str,
    name: &str,
    names: Vec<String>,
) {
    if names.iter().any(|n| n == "HIGHESTMODSEQ") {
        super::any_state::turn_on_condstore(io, sel);
    }
    let Some(path) = super::folder_or_no(io, login, tag, name) else {
        return;
    };
    if !path.join("cur").is_dir() {
        io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
        return;
    }
    match items(login, name, &names) {
        Some(s) => {
            let shown = if names::is_inbox(name) { "INBOX" } else { name };
            let line = format!("* STATUS {} ({s})\r\n", io.quote_name(&io.name_out(shown)));
            io.push(&line);
            io.tagged(tag, "OK", "STATUS completed");
        }
        None => io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox"),
    }
}
