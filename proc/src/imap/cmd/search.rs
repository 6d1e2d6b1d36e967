//! SEARCH and UID SEARCH (RFC 3501 6.4.4), answered as ESEARCH when the
//! client asked with RETURN (RFC 4731) or enabled IMAP4rev2 (RFC 9051);
//! RETURN (SAVE) keeps the result for `$` (RFC 5182 SEARCHRES). Matching is
//! search.rs's.

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
    /// RFC 7162 3.1.5: a MODSEQ key was used; the answer gives the highest
    /// mod-sequence of what matched.
    pub modseq: bool,
    /// The command as decoded, kept when RETURN has UPDATE (RFC 5267).
    pub command: Option<Vec<u8>>,
}

/// A search to keep up to date, as `keep` takes it.
pub struct Kept {
    pub command: Option<Vec<u8>>,
    pub sort: Option<Vec<crate::imap::sort::Criterion>>,
    /// UIDs, in result order.
    pub results: Vec<u32>,
}

/// RFC 5267 4.3: UPDATE with the tag of a context still kept is BAD.
pub fn tag_free(io: &mut Io, sel: &Selected, tag: &str) -> bool {
    if sel.contexts.iter().any(|c| c.tag == tag) {
        io.tagged(
            tag,
            "BAD",
            "Tag reuse: a search with this tag is kept updated",
        );
        return false;
    }
    true
}

/// Keep a search up to date (RFC 5267 4.3), or say why not with an untagged
/// NO [NOUPDATE]: only UID searches are kept (updates by sequence number
/// would have to be ordered around every EXPUNGE; RFC 5267 4.3.1 lets a
/// server refuse), and at most MAX_CONTEXTS per session. The search itself
/// is answered either way.
pub fn keep(io: &mut Io, sel: &mut Selected, tag: &str, uid: bool, k: Kept) {
    let refused = if !uid {
        Some("Updates are kept for UID SEARCH and UID SORT only")
    } else if sel.contexts.len() >= crate::imap::view::MAX_CONTEXTS {
        Some("Too many contexts")
    } else {
        None
    };
    match (refused, k.command) {
        (None, Some(command)) => {
            let seen = sel.state_key();
            sel.contexts.push(crate::imap::view::Context {
                tag: tag.to_string(),
                command,
                sort: k.sort,
                results: k.results,
                seen,
            });
        }
        (why, _) => io.push(&format!(
            "* NO [NOUPDATE {}] {}\r\n",
            crate::imap::respond::quote(tag),
            why.unwrap_or("Cannot keep this search")
        )),
    }
}

/// A message a search program matched.
pub struct Hit {
    pub seq: u32,
    pub uid: u32,
    pub modseq: u64,
    pub meta: std::sync::Arc<crate::imap::folder::Meta>,
    pub path: std::path::PathBuf,
}

/// The messages of the view `key` matches, in sequence order.
pub fn matching(sel: &Selected, key: &SearchKey<'_>) -> std::io::Result<Vec<Hit>> {
    let mut st = sel.folder.lock()?;
    let keywords = st.keywords.clone();
    let max = (sel.uids.len() as u32, sel.max_uid());
    let mut found = Vec::new();
    let cur = sel.folder.path.join("cur");
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
            meta.clone(),
            (&cur, &m.file),
            &keywords,
            max,
        );
        it.modseq = m.modseq;
        it.saved = m.saved;
        if search::matches(key, &mut it) {
            found.push(Hit {
                seq: i as u32 + 1,
                uid: u,
                modseq: m.modseq,
                meta,
                path: cur.join(&*m.file),
            });
        }
    }
    Ok(found)
}

/// Whether SEARCH, SORT and THREAD can read this charset; a NO if not.
pub fn charset_ok(io: &mut Io, tag: &str, charset: Option<&Charset<'_>>) -> bool {
    let ok = charset.is_none_or(|c| {
        let c = c.as_ref().to_ascii_uppercase();
        c == "UTF-8" || c == "US-ASCII"
    });
    if !ok {
        io.tagged(
            tag,
            "NO",
            "[BADCHARSET (UTF-8 US-ASCII)] Charset not supported",
        );
    }
    ok
}

pub fn search(io: &mut Io, sel: &mut Selected, cmd: Search<'_, '_>) -> std::io::Result<()> {
    let Search {
        tag,
        charset,
        key,
        uid,
        ret,
        modseq,
        command,
    } = cmd;
    let update = ret
        .as_ref()
        .is_some_and(|o| o.iter().any(|x| x == "UPDATE"));
    if update && !tag_free(io, sel, tag) {
        return Ok(());
    }
    if !charset_ok(io, tag, charset) {
        // A failed SAVE empties the saved result (RFC 5182 2.1).
        if ret.as_ref().is_some_and(|o| o.iter().any(|x| x == "SAVE")) {
            sel.saved.clear();
        }
        return Ok(());
    }
    // SEARCH answers with sequence numbers: no EXPUNGE may shift them.
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    let hits = matching(sel, key)?;
    let highest = hits.iter().map(|h| h.modseq).max().unwrap_or(0);
    let found: Vec<u32> = hits
        .iter()
        .map(|h| if uid { h.uid } else { h.seq })
        .collect();
    let highest = (modseq && !found.is_empty()).then_some(highest);
    if update {
        let results = hits.iter().map(|h| h.uid).collect();
        let kept = Kept {
            command,
            sort: None,
            results,
        };
        keep(io, sel, tag, uid, kept);
    }
    let line = match ret {
        Some(opts) if opts.iter().any(|o| o == "SAVE") => {
            save(sel, &opts, &found, uid);
            let rest: Vec<String> = opts.into_iter().filter(|o| o != "SAVE").collect();
            // SAVE alone answers nothing but the tagged OK (RFC 5182 2.1).
            if rest.is_empty() {
                String::new()
            } else {
                esearch(tag, uid, &rest, &found, highest)
            }
        }
        Some(opts) => esearch(tag, uid, &opts, &found, highest),
        // IMAP4rev2 has no SEARCH response: a plain SEARCH is RETURN (ALL)
        // (RFC 9051 6.4.4).
        None if io.enabled.rev2 => esearch(tag, uid, &[], &found, highest),
        None => {
            let mut line = String::from("* SEARCH");
            for n in found {
                line.push(' ');
                line.push_str(&n.to_string());
            }
            if let Some(h) = highest {
                line.push_str(&format!(" (MODSEQ {h})"));
            }
            line + "\r\n"
        }
    };
    io.push(&line);
    io.tagged(tag, "OK", "SEARCH completed");
    Ok(())
}

/// RFC 5182 2.4: keep the result for `$`, as UIDs; with MIN and/or MAX but
/// neither ALL nor COUNT, only those.
fn save(sel: &mut Selected, opts: &[String], found: &[u32], uid: bool) {
    let has = |o: &str| opts.iter().any(|x| x == o);
    let picked: Vec<u32> = if (has("MIN") || has("MAX")) && !has("ALL") && !has("COUNT") {
        let mut v = Vec::new();
        if has("MIN") {
            v.extend(found.iter().min());
        }
        if has("MAX") {
            v.extend(found.iter().max());
        }
        v
    } else {
        found.to_vec()
    };
    let mut uids: Vec<u32> = if uid {
        picked
    } else {
        picked
            .iter()
            .filter_map(|seq| sel.uids.get((*seq as usize).checked_sub(1)?).copied())
            .collect()
    };
    uids.sort_unstable();
    uids.dedup();
    sel.saved = uids;
}
