//! SEARCH and UID SEARCH (RFC 3501 6.4.4), answered as ESEARCH when the
//! client asked with RETURN (RFC 4731). Matching is search.rs's.

use crate::imap::io::Io;
use crate::imap::respond::esearch;
use crate::imap::search;
use crate::imap::view::Selected;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;

/// One SEARCH as the client sent it.
pub struct Search<'a, 'b> {
    pub tag: &'a str,
    pub charset: Option<&'a Charset<'b>>,
    pub key: &'a SearchKey<'b>,
    pub uid: bool,
    /// RFC 4731: RETURN options, for an ESEARCH answer.
    pub ret: Option<Vec<String>>,
}

pub fn search(io: &mut Io, sel: &mut Selected, cmd: Search<'_, '_>) -> std::io::Result<()> {
    let Search {
        tag,
        charset,
        key,
        uid,
        ret,
    } = cmd;
    if let Some(c) = charset {
        let c = c.as_ref().to_ascii_uppercase();
        if c != "UTF-8" && c != "US-ASCII" {
            io.tagged(
                tag,
                "NO",
                "[BADCHARSET (UTF-8 US-ASCII)] Charset not supported",
            );
            return Ok(());
        }
    }
    // SEARCH answers with sequence numbers: no EXPUNGE may shift them.
    let updates = sel.sync(uid);
    io.push(&updates);
    let found = (|| -> std::io::Result<Vec<u32>> {
        let mut st = sel.folder.lock()?;
        let keywords = st.keywords.clone();
        let max = (sel.uids.len() as u32, sel.max_uid());
        let mut found = Vec::new();
        for (i, &u) in sel.uids.iter().enumerate() {
            let Ok(j) = st.msgs.binary_search_by_key(&u, |m| m.uid) else {
                continue;
            };
            let Ok(meta) = sel.folder.meta(&mut st, j) else {
                continue;
            };
            let m = &st.msgs[j];
            let mut it = search::Item::new(
                i as u32 + 1,
                u,
                m.flags,
                sel.recent.contains(&u),
                meta,
                sel.folder.file_path(m),
                &keywords,
                max,
            );
            if search::matches(key, &mut it) {
                found.push(if uid { u } else { i as u32 + 1 });
            }
        }
        Ok(found)
    })()?;
    let line = match ret {
        Some(opts) => esearch(tag, uid, &opts, &found),
        None => {
            let mut line = String::from("* SEARCH");
            for n in found {
                line.push(' ');
                line.push_str(&n.to_string());
            }
            line + "\r\n"
        }
    };
    io.push(&line);
    io.tagged(tag, "OK", "SEARCH completed");
    Ok(())
}
