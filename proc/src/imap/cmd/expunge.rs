//! EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315): only messages the
//! client has seen (UID up to its view's last) and that are \Deleted go.

use crate::imap::flags;
use crate::imap::io::Io;
use crate::imap::search::in_set;
use crate::imap::view::Selected;
use imap_codec::imap_types::sequence::SequenceSet;

pub fn expunge(
    io: &mut Io,
    sel: &mut Selected,
    tag: &str,
    only: Option<&SequenceSet>,
) -> std::io::Result<()> {
    if sel.read_only {
        io.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        return Ok(());
    }
    let gone = {
        let mut st = sel.folder.lock()?;
        let max_uid = sel.max_uid();
        let idx: Vec<usize> = (0..st.msgs.len())
            .filter(|&j| {
                let m = &st.msgs[j];
                m.flags & flags::DELETED != 0
                    && m.uid <= max_uid
                    && only.is_none_or(|set| in_set(set, m.uid, max_uid))
            })
            .collect();
        sel.folder.remove(&mut st, &idx)
    };
    let out = sel.expunged(io.enabled, &gone);
    io.push(&out);
    if !gone.is_empty() {
        io.changed(&sel.folder.path);
    }
    let updates = sel.sync(io.enabled, true);
    io.push(&updates);
    io.tagged(tag, "OK", "EXPUNGE completed");
    Ok(())
}
