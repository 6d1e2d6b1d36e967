//! NOTIFY (RFC 5465): a session told of changes as they happen, between
//! commands and in IDLE, for the mailboxes and events it named. The selected
//! mailbox's changes are told as IDLE tells them (EXISTS, EXPUNGE or
//! VANISHED, FETCH FLAGS; with SELECTED-DELAYED expunges wait for a command
//! that may report them), new messages with the FETCH the client asked for;
//! another mailbox's as `* STATUS`; created, deleted and renamed mailboxes
//! as `* LIST` (\NonExistent, OLDNAME); subscriptions as `* LIST
//! (\Subscribed)`; metadata as `* METADATA` with the entries that changed.
//! Each change is heard on the process's change channel (delivery's and
//! every session's), and what differs from what the client was last told is
//! what it is told. A session that falls behind the channel gets `* OK
//! [NOTIFICATIONOVERFLOW]` and no more notifications (RFC 5465 5.8).

use crate::imap::folder::Folder;
use crate::imap::io::Io;
use crate::imap::notify::{Command, Events, Filter, Refused, Watch, SUPPORTED};
use crate::imap::state::{Login, State};
use crate::imap::view::Selected;
use crate::imap::{metadata, names, utf8};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How often the selected mailbox is looked at for changes nobody
/// announced (other programs), when the client asked for its events.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// NOTIFY SET, NOTIFY NONE, or the refusal.
pub fn notify(io: &mut Io, state: &mut State, cmd: Result<Command, Refused>) {
    let login = match state.login() {
        Some(l) => l,
        None => {
            let tag = match &cmd {
                Ok(Command::None(t)) | Ok(Command::Set { tag: t, .. }) => t.clone(),
                Err(Refused::Bad(t, _)) | Err(Refused::BadEvent(t)) => t.clone(),
            };
            io.tagged(&tag, "BAD", "Log in first");
            return;
        }
    };
    match cmd {
        Err(Refused::Bad(tag, why)) => io.tagged(&tag, "BAD", why),
        // RFC 5465 3.1: NO (not BAD), naming every event told here.
        Err(Refused::BadEvent(tag)) => io.tagged(
            &tag,
            "NO",
            &format!("[BADEVENT ({SUPPORTED})] Event not supported"),
        ),
        Ok(Command::None(tag)) => {
            io.notify = None;
            io.tagged(&tag, "OK", "NOTIFY completed");
        }
        Ok(Command::Set { tag, status, spec }) => {
            let account = login.account.clone();
            let names_wanted = spec.any(|e| e.mailbox_name);
            let subs_wanted = spec.any(|e| e.subscription_change);
            let meta_wanted = spec.any(|e| e.mailbox_metadata || e.server_metadata);
            let mut w = Watch {
                rx: io.sh.changes.subscribe(),
                told: HashMap::new(),
                folders: names_wanted.then(|| folder_ids(&account)),
                subscribed: subs_wanted
                    .then(|| names::subscriptions(&account).into_iter().collect()),
                metadata: HashMap::new(),
                spec,
            };
            if meta_wanted {
                for name in names::all(&account) {
                    w.metadata
                        .insert(name.clone(), entry_hashes(&account, &name));
                }
                w.metadata.insert(String::new(), entry_hashes(&account, ""));
            }
            let selected = state.selected().map(|s| s.folder.path.clone());
            // RFC 5465 3.1: STATUS of each watched mailbox but the selected
            // one before the OK; remembered either way, so that only
            // changes are told later.
            let utf8 = io.enabled.utf8;
            for name in names::all(&account) {
                if selected.as_deref() == names::folder(&account, &name).ok().as_deref() {
                    continue;
                }
                let ev = events_for(&w, &account, &name, utf8);
                if !ev.messages() {
                    continue;
                }
                if let Some(line) = status_line(io, login, &name, &ev) {
                    if status {
                        io.push(&line);
                    }
                    w.told.insert(name, line);
                }
            }
            io.notify = Some(Box::new(w));
            // An implicit NOOP (RFC 5465 3.1).
            if let State::Selected(_, sel) = state {
                let updates = sel.sync(io.enabled, true);
                io.push(&updates);
            }
            io.tagged(&tag, "OK", "NOTIFY completed");
        }
    }
}

/// What the client is told of the changes heard (folder paths, as on the
/// change channel); `poll` looks at the selected mailbox without news.
pub async fn deliver(
    io: &mut Io,
    login: &Login,
    sel: Option<&mut Selected>,
    paths: &[Arc<PathBuf>],
    poll: bool,
) -> std::io::Result<()> {
    let Some(w) = io.notify.as_ref() else {
        return Ok(());
    };
    let account = login.account.clone();
    let selected_group = w.spec.selected().cloned();
    let selected_path = sel.as_ref().map(|s| s.folder.path.clone());
    let mut selected_changed = poll;
    let mut mailboxes: BTreeSet<String> = BTreeSet::new();
    let mut list_changed = false;
    let mut subs_changed = false;
    let mut meta_changed: BTreeSet<String> = BTreeSet::new();
    for p in paths {
        let p = p.as_path();
        if Some(p) == selected_path.as_deref() {
            selected_changed = true;
            continue;
        }
        match p.file_name().and_then(|f| f.to_str()) {
            Some(names::SUBSCRIPTIONS) if p.parent() == Some(account.as_path()) => {
                subs_changed = true;
                continue;
            }
            Some(metadata::SERVER_FILE) if p.parent() == Some(account.as_path()) => {
                meta_changed.insert(String::new());
                continue;
            }
            Some(metadata::FILE) => {
                if let Some(name) = p.parent().and_then(|f| mailbox_of(&account, f)) {
                    meta_changed.insert(name);
                }
                continue;
            }
            _ => {}
        }
        if let Some(name) = mailbox_of(&account, p) {
            // A folder that came or went: the list changed.
            let known = w
                .folders
                .as_ref()
                .is_some_and(|f| f.values().any(|n| *n == name));
            if w.folders.is_some() && known != p.join("cur").is_dir() {
                list_changed = true;
            }
            mailboxes.insert(name);
        }
    }
    // The selected mailbox, as IDLE tells it.
    if let (true, Some(g), Some(s)) = (selected_changed, &selected_group, sel) {
        if g.events.messages() {
            let before = s.uids.len();
            let allow_expunge = g.filter == Filter::Selected;
            let updates = tokio::task::block_in_place(|| s.sync(io.enabled, allow_expunge));
            io.push(&updates);
            let new: Vec<u32> = s.uids.get(before..).unwrap_or_default().to_vec();
            if let (Some(atts), false) = (&g.fetch, new.is_empty()) {
                fetch_new(io, s, &new, atts).await?;
            }
        }
    }
    let utf8 = io.enabled.utf8;
    for name in mailboxes {
        let Some(w) = io.notify.as_ref() else {
            break;
        };
        let ev = events_for(w, &account, &name, utf8);
        if !ev.messages() {
            continue;
        }
        let Some(line) = status_line(io, login, &name, &ev) else {
            continue;
        };
        let Some(w) = io.notify.as_mut() else {
            break;
        };
        if w.told.get(&name) != Some(&line) {
            w.told.insert(name, line.clone());
            io.push(&line);
        }
    }
    if list_changed {
        mailbox_names(io, login);
    }
    if subs_changed {
        subscriptions(io, login);
    }
    for name in meta_changed {
        metadata_changes(io, login, &name);
    }
    Ok(())
}

/// Own changes are not told back (RFC 5465 5: SHOULD): after a command
/// that may have made one, what the client would be told is taken as told.
pub fn after_own(io: &mut Io, login: &Login, word: &str) {
    let Some(w) = io.notify.as_mut() else {
        return;
    };
    let account = &login.account;
    match word {
        "CREATE" | "DELETE" | "RENAME" if w.folders.is_some() => {
            w.folders = Some(folder_ids(account));
        }
        "SUBSCRIBE" | "UNSUBSCRIBE" if w.subscribed.is_some() => {
            w.subscribed = Some(names::subscriptions(account).into_iter().collect());
        }
        "SETMETADATA" if !w.metadata.is_empty() => {
            let keys: Vec<String> = w.metadata.keys().cloned().collect();
            for k in keys {
                let h = entry_hashes(account, &k);
                w.metadata.insert(k, h);
            }
        }
        _ => {}
    }
}

/// The mailbox (stored name) a folder path of this account is, if any.
fn mailbox_of(account: &Path, p: &Path) -> Option<String> {
    if p == account {
        return Some("INBOX".to_string());
    }
    let name = p.strip_prefix(account).ok()?.to_str()?.strip_prefix('.')?;
    (!name.contains('/')).then(|| name.to_string())
}

fn events_for(w: &Watch, account: &Path, stored: &str, utf8: bool) -> Events {
    let shown = utf8::name_out(stored, utf8);
    let subscribed = || names::subscriptions(account);
    let mut subs: Option<Vec<String>> = None;
    w.spec.events_for(&shown, |n| {
        let s = subs.get_or_insert_with(subscribed);
        s.iter().any(|x| *utf8::name_out(x, utf8) == *n)
    })
}

/// `* STATUS` for a watched mailbox (RFC 5465 5.1-5.3): MESSAGES, UIDNEXT
/// and UIDVALIDITY for new and expunged messages; with FlagChange also
/// UNSEEN, and HIGHESTMODSEQ once CONDSTORE is on.
fn status_line(io: &Io, login: &Login, stored: &str, ev: &Events) -> Option<String> {
    let mut items = vec![
        "MESSAGES".to_string(),
        "UIDNEXT".into(),
        "UIDVALIDITY".into(),
    ];
    if ev.flag_change {
        items.push("UNSEEN".into());
        if io.enabled.condstore {
            items.push("HIGHESTMODSEQ".into());
        }
    }
    let st = super::status::items(login, stored, &items)?;
    Some(format!(
        "* STATUS {} ({st})\r\n",
        io.quote_name(&io.name_out(stored))
    ))
}

/// MessageNew's fetch attributes for the new messages of the selected
/// mailbox, answered as a UID FETCH would be (without its tagged line).
async fn fetch_new(
    io: &mut Io,
    sel: &mut Selected,
    uids: &[u32],
    atts: &str,
) -> std::io::Result<()> {
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::command::CommandBody;
    const TAG: &str = "sx-notify";
    let cmd = format!(
        "{TAG} UID FETCH {} {atts}\r\n",
        crate::imap::respond::uid_ranges(uids)
    );
    let Ok((_, c)) = imap_codec::CommandCodec::default().decode(cmd.as_bytes()) else {
        return Ok(());
    };
    let CommandBody::Fetch {
        sequence_set,
        macro_or_item_names,
        uid,
    } = c.body
    else {
        return Ok(());
    };
    let cond = crate::imap::parts::Parts::default();
    let req = super::fetch::Fetch {
        set: &sequence_set,
        items: macro_or_item_names,
        uid,
        cond: &cond,
    };
    let mark = io.out.len();
    Box::pin(super::fetch::fetch(io, sel, TAG, req)).await?;
    // The FETCH's own completion is not the client's to see.
    let tail = format!("{TAG} ");
    if let Some(at) = find_last_line(&io.out, mark, tail.as_bytes()) {
        io.out.truncate(at);
    }
    Ok(())
}

/// Where the last line starting with `prefix` begins, at or after `from`.
fn find_last_line(out: &[u8], from: usize, prefix: &[u8]) -> Option<usize> {
    let region = out.get(from..)?;
    let mut at = None;
    let mut start = 0;
    for (i, &b) in region.iter().enumerate() {
        if i == start && region[i..].starts_with(prefix) {
            at = Some(from + i);
        }
        if b == b'\n' {
            start = i + 1;
        }
    }
    at
}

/// MAILBOXID -> stored name of every folder (RFC 8474 ids survive RENAME,
/// which is how a rename is told from a delete and a create).
fn folder_ids(account: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in names::all(account) {
        let Ok(path) = names::folder(account, &name) else {
            continue;
        };
        // Read, not opened: a folder's index is built only when used.
        let id = Folder::recorded_mailbox_id(&path).unwrap_or_else(|| format!("?{name}"));
        out.insert(id, name);
    }
    out
}

/// RFC 5465 5.4: a mailbox made, deleted or renamed, as `* LIST`.
fn mailbox_names(io: &mut Io, login: &Login) {
    let Some(w) = io.notify.as_mut() else {
        return;
    };
    let Some(old) = w.folders.take() else {
        return;
    };
    let now = folder_ids(&login.account);
    let mut lines = Vec::new();
    for (id, name) in &now {
        match old.get(id) {
            Some(was) if was == name => {}
            Some(was) => lines.push((name.clone(), Some(was.clone()))),
            None => lines.push((name.clone(), None)),
        }
    }
    let gone: Vec<String> = old
        .iter()
        .filter(|(id, _)| !now.contains_key(*id))
        .map(|(_, n)| n.clone())
        .collect();
    if let Some(w) = io.notify.as_mut() {
        w.folders = Some(now);
    }
    let utf8 = io.enabled.utf8;
    for (name, was) in lines {
        let Some(w) = io.notify.as_ref() else {
            return;
        };
        if !events_for(w, &login.account, &name, utf8).mailbox_name {
            continue;
        }
        let attrs = super::list::attributes(login, &name);
        let oldname = was
            .map(|o| format!(" (\"OLDNAME\" ({}))", io.quote_name(&io.name_out(&o))))
            .unwrap_or_default();
        let line = format!(
            "* LIST ({attrs}) \".\" {}{oldname}\r\n",
            io.quote_name(&io.name_out(&name))
        );
        io.push(&line);
    }
    for name in gone {
        let Some(w) = io.notify.as_ref() else {
            return;
        };
        if !events_for(w, &login.account, &name, utf8).mailbox_name {
            continue;
        }
        let line = format!(
            "* LIST (\\NonExistent) \".\" {}\r\n",
            io.quote_name(&io.name_out(&name))
        );
        io.push(&line);
    }
}

/// RFC 5465 5.5: subscriptions added or removed, as `* LIST`.
fn subscriptions(io: &mut Io, login: &Login) {
    let Some(w) = io.notify.as_mut() else {
        return;
    };
    let Some(old) = w.subscribed.take() else {
        return;
    };
    let now: BTreeSet<String> = names::subscriptions(&login.account).into_iter().collect();
    if let Some(w) = io.notify.as_mut() {
        w.subscribed = Some(now.clone());
    }
    let utf8 = io.enabled.utf8;
    let mut lines = Vec::new();
    for (name, on) in now
        .difference(&old)
        .map(|n| (n, true))
        .chain(old.difference(&now).map(|n| (n, false)))
    {
        let Some(w) = io.notify.as_ref() else {
            return;
        };
        if !events_for(w, &login.account, name, utf8).subscription_change {
            continue;
        }
        let mut attrs = Vec::new();
        if names::folder(&login.account, name).is_ok_and(|p| p.join("cur").is_dir()) {
            attrs.push(super::list::attributes(login, name));
        } else {
            attrs.push("\\NonExistent".to_string());
        }
        if on {
            attrs.push("\\Subscribed".to_string());
        }
        lines.push(format!(
            "* LIST ({}) \".\" {}\r\n",
            attrs.join(" "),
            io.quote_name(&io.name_out(name))
        ));
    }
    for l in lines {
        io.push(&l);
    }
}

/// The metadata file of a mailbox (stored name; "" for the server).
fn metadata_file(account: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return Some(account.join(metadata::SERVER_FILE));
    }
    names::folder(account, name)
        .ok()
        .map(|f| f.join(metadata::FILE))
}

fn entry_hashes(account: &Path, name: &str) -> BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let Some(path) = metadata_file(account, name) else {
        return BTreeMap::new();
    };
    metadata::read(&path)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v.hash(&mut h);
            (k, h.finish())
        })
        .collect()
}

/// RFC 5465 5.6-5.7: `* METADATA name (entries)` naming the entries that
/// were set, changed or removed (without values: the client asks).
fn metadata_changes(io: &mut Io, login: &Login, name: &str) {
    let utf8 = io.enabled.utf8;
    let Some(w) = io.notify.as_ref() else {
        return;
    };
    let wanted = if name.is_empty() {
        w.spec.any(|e| e.server_metadata)
    } else {
        events_for(w, &login.account, name, utf8).mailbox_metadata
    };
    let now = entry_hashes(&login.account, name);
    let Some(w) = io.notify.as_mut() else {
        return;
    };
    let old = w
        .metadata
        .insert(name.to_string(), now.clone())
        .unwrap_or_default();
    if !wanted {
        return;
    }
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !now.contains_key(*k)))
        .collect();
    if changed.is_empty() {
        return;
    }
    let shown = if name.is_empty() {
        "\"\"".to_string()
    } else {
        io.quote_name(&io.name_out(name))
    };
    let entries: Vec<String> = changed
        .iter()
        .map(|k| crate::imap::respond::quote(k))
        .collect();
    io.push(&format!("* METADATA {shown} ({})\r\n", entries.join(" ")));
}
