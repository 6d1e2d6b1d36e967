//! SELECT and EXAMINE (RFC 3501 6.3.1-2) with CONDSTORE and QRESYNC
//! (RFC 7162 3.1.8, 3.2.5), CLOSE (6.4.2) and UNSELECT (RFC 3691): in and out
//! of the selected state.

use crate::imap::flags;
use crate::imap::folder::Folder;
use crate::imap::io::Io;
use crate::imap::parts::{Parts, Qresync};
use crate::imap::respond::flags_lines;
use crate::imap::respond::uid_ranges;
use crate::imap::search::in_set;
use crate::imap::state::State;
use crate::imap::view::{self, Selected};
use imap_codec::imap_types::sequence::SequenceSet;

pub fn select(
    io: &mut Io,
    state: &mut State,
    tag: &str,
    name: &str,
    read_only: bool,
    cond: &Parts,
) {
    if cond.qresync.is_some() && !io.enabled.qresync {
        io.tagged(tag, "BAD", "QRESYNC is not enabled");
        return;
    }
    // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
    if state.deselect().is_some() {
        // RFC 7162 3.2.11: the previous mailbox is closed from here on.
        io.push("* OK [CLOSED] Previous mailbox closed\r\n");
    }
    if cond.select_condstore {
        io.enabled.condstore = true;
    }
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
    let (uidvalidity, uidnext, keywords, highest, id, unseen) = match sel.folder.lock() {
        Ok(mut st) => {
            let unseen = sel.uids.iter().position(|u| {
                st.msgs
                    .binary_search_by_key(u, |m| m.uid)
                    .is_ok_and(|j| st.msgs[j].flags & flags::SEEN == 0)
            });
            (
                st.uidvalidity,
                st.uidnext,
                st.keywords.clone(),
                st.highest_modseq(),
                sel.folder.mailbox_id(&mut st).ok(),
                unseen,
            )
        }
        Err(_) => (0, 1, Vec::new(), 1, None, None),
    };
    io.push(&flags_lines(&keywords, read_only));
    io.push(&format!("* {} EXISTS\r\n", sel.uids.len()));
    // IMAP4rev2 (RFC 9051 6.3.2) drops RECENT and UNSEEN and tells the
    // mailbox's name and attributes in a LIST response instead.
    if io.enabled.rev2 {
        let attrs = super::list::attributes(login, name);
        let line = format!(
            "* LIST ({attrs}) \".\" {}\r\n",
            io.quote_name(&io.name_out(name))
        );
        io.push(&line);
    } else {
        io.push(&format!("* {} RECENT\r\n", sel.recent.len()));
        if let Some(i) = unseen {
            io.push(&format!("* OK [UNSEEN {}] First unseen\r\n", i + 1));
        }
    }
    io.push(&format!("* OK [UIDVALIDITY {uidvalidity}] UIDs valid\r\n"));
    io.push(&format!("* OK [UIDNEXT {uidnext}] Predicted next UID\r\n"));
    if io.enabled.condstore {
        io.push(&format!("* OK [HIGHESTMODSEQ {highest}] Highest\r\n"));
    }
    if let Some(id) = id {
        io.push(&format!("* OK [MAILBOXID ({id})] Ok\r\n"));
    }
    if let Some(q) = cond
        .qresync
        .as_ref()
        .filter(|q| q.uidvalidity == uidvalidity)
    {
        let lines = resync(&sel, q, uidnext);
        io.push(&lines);
    }
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

/// RFC 7162 3.2.5.2: what the client missed since its mod-sequence: the
/// UIDs expunged since (`VANISHED (EARLIER)`), then the flags of each message
/// changed since; both only for the UIDs it says it knows, when it says.
fn resync(sel: &Selected, q: &Qresync, uidnext: u32) -> String {
    let last = uidnext.saturating_sub(1);
    let known: Option<SequenceSet> = q.known.as_deref().and_then(|k| k.parse().ok());
    let knows = |u: u32| known.as_ref().is_none_or(|k| in_set(k, u, last));
    let mut out = String::new();
    let Ok(st) = sel.folder.lock() else {
        return out;
    };
    let vanished = match st.vanished_since(q.modseq, |u| u <= last && knows(u)) {
        Some(v) => uid_ranges(&v),
        // The record does not reach back so far: every UID up to the last
        // that is not here (clients ignore those they never had).
        None => view::missing(&sel.uids, last, known.as_ref()),
    };
    if !vanished.is_empty() {
        out.push_str(&format!("* VANISHED (EARLIER) {vanished}\r\n"));
    }
    for (i, &u) in sel.uids.iter().enumerate() {
        let Ok(j) = st.msgs.binary_search_by_key(&u, |m| m.uid) else {
            continue;
        };
        let m = &st.msgs[j];
        if m.modseq > q.modseq && knows(u) {
            let recent = sel.recent.contains(&u);
            out.push_str(&format!(
                "* {} FETCH (UID {u} FLAGS {} MODSEQ ({}))\r\n",
                i + 1,
                flags::imap_list(m.flags, &st.keywords, recent),
                m.modseq
            ));
        }
    }
    out
}
