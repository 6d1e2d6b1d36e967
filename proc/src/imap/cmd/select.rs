//! SELECT and EXAMINE (RFC 3501 6.3.1-2), CLOSE (6.4.2) and UNSELECT
//! (RFC 3691): in and out of the selected state.

use crate::imap::flags;
use crate::imap::folder::Folder;
use crate::imap::io::Io;
use crate::imap::respond::flags_lines;
use crate::imap::state::State;
use crate::imap::view::Selected;

pub fn select(io: &mut Io, state: &mut State, tag: &str, name: &str, read_only: bool) {
    // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
    state.deselect();
    let Some(login) = state.login() else {
        return;
    };
    let Some(path) = super::folder_or_no(io, login, tag, name) else {
        return;
    };
    let folder = match Folder::open(&path) {
        Ok(f) => f,
        Err(_) => {
            io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
    };
    let sel = match Selected::open(folder, io.id, read_only) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{}: select {}: {e}", io.service.name(), path.display());
            io.tagged(tag, "NO", "[SERVERBUG] Cannot open mailbox");
            return;
        }
    };
    let (uidvalidity, uidnext, keywords) = match sel.folder.lock() {
        Ok(st) => (st.uidvalidity, st.uidnext, st.keywords.clone()),
        Err(_) => (0, 1, Vec::new()),
    };
    let unseen = sel.flags.iter().position(|f| f & flags::SEEN == 0);
    io.push(&flags_lines(&keywords, read_only));
    io.push(&format!("* {} EXISTS\r\n", sel.uids.len()));
    io.push(&format!("* {} RECENT\r\n", sel.recent.len()));
    if let Some(i) = unseen {
        io.push(&format!("* OK [UNSEEN {}] First unseen\r\n", i + 1));
    }
    io.push(&format!("* OK [UIDVALIDITY {uidvalidity}] UIDs valid\r\n"));
    io.push(&format!("* OK [UIDNEXT {uidnext}] Predicted next UID\r\n"));
    let (code, cmd) = if read_only {
        ("[READ-ONLY]", "EXAMINE")
    } else {
        ("[READ-WRITE]", "SELECT")
    };
    state.select(sel);
    io.tagged(tag, "OK", &format!("{code} {cmd} completed"));
}

/// CLOSE (`expunge`: messages marked \Deleted go, silently) or UNSELECT.
pub fn close(io: &mut Io, state: &mut State, tag: &str, expunge: bool) {
    if let Some(sel) = state.deselect() {
        if expunge && !sel.read_only {
            if let Ok(mut st) = sel.folder.lock() {
                let idx: Vec<usize> = (0..st.msgs.len())
                    .filter(|&j| st.msgs[j].flags & flags::DELETED != 0)
                    .collect();
                if !sel.folder.remove(&mut st, &idx).is_empty() {
                    io.changed(&sel.folder.path);
                }
            }
        }
    }
    io.tagged(tag, "OK", "Completed");
}
