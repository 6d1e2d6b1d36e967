//! CREATE (with USE, RFC 6154 CREATE-SPECIAL-USE), DELETE and RENAME (RFC
//! 3501 6.3.3-5); special uses given at CREATE follow RENAME and go with
//! DELETE. Every name goes through
//! names::folder, which keeps it inside the account's Maildir; an account has
//! at most EMAIL_IMAP_MAX_FOLDERS folders.

use crate::imap::folder::Folder;
use crate::imap::io::Io;
use crate::imap::names;
use crate::imap::state::State;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

fn make_maildir(p: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    b.create(p)?;
    for sub in ["cur", "new", "tmp"] {
        b.create(p.join(sub))?;
    }
    std::fs::write(p.join("maildirfolder"), b"")
}

/// CREATE, with the special use RFC 6154's `USE` asks for (one at most).
pub fn create(io: &mut Io, state: &State, tag: &str, name: &str, uses: &[String]) {
    let Some(login) = state.login() else {
        return;
    };
    let attr = match uses {
        [] => None,
        [u] => match names::CREATABLE_USES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(u))
        {
            Some(c) => Some(*c),
            None => {
                io.tagged(tag, "NO", "[USEATTR] Special use not supported");
                return;
            }
        },
        _ => {
            io.tagged(tag, "NO", "[USEATTR] One special use per mailbox");
            return;
        }
    };
    let name = name.strip_suffix(names::DELIM).unwrap_or(name);
    if names::is_inbox(name) {
        io.tagged(tag, "NO", "[ALREADYEXISTS] INBOX always exists");
        return;
    }
    if let Err(why) = names::check_new(name) {
        io.tagged(tag, "NO", &format!("[CANNOT] {why}"));
        return;
    }
    let Some(path) = super::folder_or_no(io, login, tag, name) else {
        return;
    };
    if path.exists() {
        io.tagged(tag, "NO", "[ALREADYEXISTS] Mailbox exists");
        return;
    }
    // Every folder costs four directories and a place in every LIST.
    if names::count(&login.account) >= io.sh.max_folders {
        log::info!(
            "{}: CREATE refused user={}: {} folders already",
            io.service.name(),
            login.user,
            io.sh.max_folders
        );
        io.tagged(tag, "NO", "[LIMIT] Too many mailboxes");
        return;
    }
    match make_maildir(&path) {
        Ok(()) => {
            if let Some(a) = attr {
                if let Err(e) = names::set_special_use(&login.account, name, Some(a)) {
                    log::warn!("{}: special use of {name}: {e}", io.service.name());
                    let _ = std::fs::remove_dir_all(&path);
                    io.tagged(tag, "NO", "[SERVERBUG] Cannot record the special use");
                    return;
                }
            }
            // RFC 8474 4.1: CREATE tells the new mailbox's MAILBOXID.
            let id =
                Folder::open(&path).and_then(|f| f.lock().and_then(|mut st| f.mailbox_id(&mut st)));
            // For NOTIFY's MailboxName in other sessions.
            io.changed(&path);
            match id {
                Ok(id) => io.tagged(tag, "OK", &format!("[MAILBOXID ({id})] CREATE completed")),
                Err(_) => io.tagged(tag, "OK", "CREATE completed"),
            }
        }
        Err(e) => {
            log::warn!("{}: create {}: {e}", io.service.name(), path.display());
            io.tagged(tag, "NO", "[CANNOT] Cannot create mailbox")
        }
    }
}

pub fn delete(io: &mut Io, state: &mut State, tag: &str, name: &str) {
    let Some(login) = state.login() else {
        return;
    };
    if names::is_inbox(name) {
        io.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
        return;
    }
    let Some(path) = super::folder_or_no(io, login, tag, name) else {
        return;
    };
    if !path.join("cur").is_dir() {
        io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
        return;
    }
    let account = login.account.clone();
    if state.selected().is_some_and(|s| s.folder.path == path) {
        state.deselect();
    }
    Folder::forget(&path);
    match std::fs::remove_dir_all(&path) {
        Ok(()) => {
            let _ = names::set_special_use(&account, name, None);
            io.changed(&path);
            io.tagged(tag, "OK", "DELETE completed")
        }
        Err(e) => {
            log::warn!("{}: delete {}: {e}", io.service.name(), path.display());
            io.tagged(tag, "NO", "[CANNOT] Cannot delete mailbox")
        }
    }
}

pub fn rename(io: &mut Io, state: &State, tag: &str, from: &str, to: &str) {
    let Some(login) = state.login() else {
        return;
    };
    let Some(src) = super::folder_or_no(io, login, tag, from) else {
        return;
    };
    if let Some(why) = names::check_new(to).err().filter(|_| !names::is_inbox(to)) {
        io.tagged(tag, "NO", &format!("[CANNOT] {why}"));
        return;
    }
    let Some(dst) = super::folder_or_no(io, login, tag, to) else {
        return;
    };
    if names::is_inbox(to) || dst.exists() {
        io.tagged(tag, "NO", "[ALREADYEXISTS] Target mailbox exists");
        return;
    }
    if !src.join("cur").is_dir() {
        io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
        return;
    }
    let result = if names::is_inbox(from) {
        rename_inbox(io, &src, &dst)
    } else {
        // The folder and its children: `.a` and `.a.*` become `.b` and `.b.*`.
        let mut r = Ok(());
        for child in names::with_children(&login.account, from) {
            let rest = child.get(from.len()..).unwrap_or_default();
            let old = login.account.join(format!(".{child}"));
            let new = login.account.join(format!(".{to}{rest}"));
            Folder::forget(&old);
            if let Err(e) = std::fs::rename(&old, &new) {
                r = Err(e);
                break;
            }
        }
        r
    };
    if result.is_ok() && !names::is_inbox(from) {
        let _ = names::rename_special_uses(&login.account, from, to);
    }
    match result {
        Ok(()) => {
            io.changed(&src);
            io.changed(&dst);
            io.tagged(tag, "OK", "RENAME completed")
        }
        Err(e) => {
            log::warn!("{}: rename {from} -> {to}: {e}", io.service.name());
            io.tagged(tag, "NO", "[CANNOT] Cannot rename mailbox")
        }
    }
}

/// RFC 3501: renaming INBOX moves its messages to a new mailbox, INBOX stays.
fn rename_inbox(io: &Io, src: &Path, dst: &Path) -> std::io::Result<()> {
    make_maildir(dst)?;
    let folder = Folder::open(src)?;
    let st = folder.lock()?;
    for m in st.msgs.iter() {
        std::fs::rename(folder.file_path(m), dst.join("cur").join(&*m.file))?;
    }
    drop(st);
    io.changed(src);
    Ok(())
}
