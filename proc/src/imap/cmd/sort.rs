//! SORT and UID SORT (RFC 5256 3, with ESORT's RETURN of RFC 5267 and
//! SORT=DISPLAY of RFC 5957), THREAD and UID THREAD (RFC 5256 4): the
//! messages a search program matches, in order or in threads. The search
//! itself is SEARCH's (cmd/search.rs); the keys and the base subject are
//! sort.rs's, the threading thread.rs's.

use super::search::{charset_ok, matching};
use crate::imap::io::Io;
use crate::imap::respond::{quote, uid_ranges};
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
}

pub fn ordered(io: &mut Io, sel: &mut Selected, req: Ordered<'_, '_>) -> std::io::Result<()> {
    let Ordered {
        tag,
        charset,
        key,
        uid,
        order,
    } = req;
    if !charset_ok(io, tag, charset) {
        return Ok(());
    }
    // Answers name messages by number: no EXPUNGE may shift them now.
    let updates = sel.sync(io.enabled, uid);
    io.push(&updates);
    let mut facts: Vec<Facts> = Vec::new();
    for h in matching(sel, key)? {
        let header = h
            .meta
            .header
            .get_or_init(|| {
                crate::imap::folder::read_header(&h.path)
                    .unwrap_or_default()
                    .into()
            })
            .clone();
        facts.push(Facts::of(
            &header,
            h.seq,
            h.uid,
            h.meta.internal,
            h.meta.size,
        ));
    }
    let name = |f: &Facts| if uid { f.uid } else { f.seq };
    match order {
        Order::Sort { criteria, ret } => {
            sort::sort(&mut facts, &criteria);
            let found: Vec<u32> = facts.iter().map(name).collect();
            match ret {
                Some(opts) => io.push(&esort(tag, uid, &opts, &found)),
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

/// RFC 5267 4.2: ESEARCH for a SORT; MIN and MAX are the first and last in
/// sort order, ALL keeps that order (runs only where numbers ascend by one).
fn esort(tag: &str, uid: bool, opts: &[String], found: &[u32]) -> String {
    let mut line = format!("* ESEARCH (TAG {})", quote(tag));
    if uid {
        line.push_str(" UID");
    }
    let want = |o: &str| opts.iter().any(|x| x == o) || (opts.is_empty() && o == "ALL");
    if let (true, Some(min)) = (want("MIN"), found.first()) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (true, Some(max)) = (want("MAX"), found.last()) {
        line.push_str(&format!(" MAX {max}"));
    }
    if want("COUNT") {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if want("ALL") && !found.is_empty() {
        // uid_ranges joins runs in the order given: the sort order is kept.
        line.push_str(&format!(" ALL {}", uid_ranges(found)));
    }
    line + "\r\n"
}
