//! SORT and UID SORT (RFC 5256 3, with ESORT's RETURN of RFC 5267 and
//! SORT=DISPLAY of RFC 5957), THREAD and UID THREAD (RFC 5256 4): the
//! messages a search program matches, in order or in threads. The search
//! itself is SEARCH's (cmd/search.rs); the keys and the base subject are
//! sort.rs's, the threading thread.rs's.

use super::search::{charset_ok, matching};
use crate::imap::io::Io;
use crate::imap::respond::esearch;
use crate::imap::sort::{self, Algorithm, Facts, Order};
use crate::imap::thread;
use crate::imap::view::Selected;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;

/// One SORT or THREAD as the client sent it.
pub struct Ordered<'a, 'b> {
    pub tag: &'a str,
    pub charset: Option<&'a Charset<'b>>,
    pub key: &'a SearchKey<'b>,
    pub uid: bool,
    pub order: Order,
    /// The command as decoded, kept when RETURN has UPDATE (RFC 5267).
    pub command: Option<Vec<u8>>,
}

/// What SORT and THREAD know of each message `key` matches, in mailbox
/// order.
pub fn facts(sel: &Selected, key: &SearchKey<'_>) -> std::io::Result<Vec<Facts>> {
    let mut facts: Vec<Facts> = Vec::new();
    for h in matching(sel, key)? {
        let header = crate::imap::folder::keep(&h.meta.header, || {
            crate::imap::folder::read_header(&h.path)
                .unwrap_or_default()
                .into()
        });
        facts.push(Facts::of(
            &header,
            h.seq,
            h.uid,
            h.meta.internal,
            h.meta.size,
        ));
    }
    Ok(facts)
}

pub fn ordered(io: &mut Io, sel: &mut Selected, req: Ordered<'_, '_>) -> std::io::Result<()> {
    let Ordered {
        tag,
        charset,
        key,
        uid,
        order,
        command,
    } = req;
    if !charset_ok(io, tag, charset) {
        return Ok(());
    }
    let update =
        matches!(&order, Order::Sort { ret: Some(o), .. } if o.iter().any(|x| x == "UPDATE"));
    if update && !super::search::tag_free(io, sel, tag) {
        return Ok(());
    }
    // Answers name messages by number: no EXPUNGE may shift them now.
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    let mut facts = facts(sel, key)?;
    let name = |f: &Facts| if uid { f.uid } else { f.seq };
    match order {
        Order::Sort { criteria, ret } => {
            sort::sort(&mut facts, &criteria);
            let found: Vec<u32> = facts.iter().map(name).collect();
            if update {
                let results = facts.iter().map(|f| f.uid).collect();
                let kept = super::search::Kept {
                    command,
                    sort: Some(criteria.clone()),
                    results,
                };
                super::search::keep(io, sel, tag, uid, kept);
            }
            match ret {
                Some(opts) => io.push(&esearch(tag, uid, &opts, &found, None)),
                None => {
                    let mut line = String::from("* SORT");
                    for n in found {
                        line.push_str(&format!(" {n}"));
                    }
                    io.push(&(line + "\r\n"));
                }
            }
            io.tagged(tag, "OK", "SORT completed");
        }
        Order::Thread(algo) => {
            let threads = match algo {
                Algorithm::OrderedSubject => thread::ordered_subject(&facts, uid),
                Algorithm::References => thread::references(&facts, uid),
            };
            let sep = if threads.is_empty() { "" } else { " " };
            io.push(&format!("* THREAD{sep}{threads}\r\n"));
            io.tagged(tag, "OK", "THREAD completed");
        }
    }
    Ok(())
}
