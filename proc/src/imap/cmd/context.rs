//! RFC 5267 contexts: searches kept up to date. A UID SEARCH or UID SORT
//! with RETURN (UPDATE) is kept in the view (search.rs `keep`); whenever the
//! mailbox has changed since, it is run again and the difference told as an
//! unsolicited `* ESEARCH (TAG "t") UID REMOVEFROM (...) ADDTO (...)`, after
//! a command's answer or during IDLE. CANCELUPDATE stops that; leaving the
//! mailbox ends them all.

use super::search::matching;
use super::sort::facts;
use crate::imap::io::Io;
use crate::imap::respond::{quote, uid_ranges};
use crate::imap::sort;
use crate::imap::view::Selected;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::{decode::Decoder, CommandCodec};

/// Tell the client how each kept search's results changed since it last
/// heard; nothing when the mailbox has not changed.
pub fn updates(io: &mut Io, sel: &mut Selected) {
    if sel.contexts.is_empty() {
        return;
    }
    let now = sel.state_key();
    for i in 0..sel.contexts.len() {
        let Some(ctx) = sel.contexts.get(i) else {
            continue;
        };
        if ctx.seen == now {
            continue;
        }
        let Some(results) = run(sel, &ctx.command, ctx.sort.as_deref()) else {
            continue;
        };
        let Some(ctx) = sel.contexts.get_mut(i) else {
            continue;
        };
        let changes = if ctx.sort.is_some() {
            positional(&ctx.results, &results)
        } else {
            unordered(&ctx.results, &results)
        };
        if !changes.is_empty() {
            io.push(&format!(
                "* ESEARCH (TAG {}) UID{changes}\r\n",
                quote(&ctx.tag)
            ));
        }
        ctx.results = results;
        ctx.seen = now;
    }
}

/// The kept command's results now: UIDs in mailbox order, or in its sort
/// order.
fn run(sel: &Selected, command: &[u8], criteria: Option<&[sort::Criterion]>) -> Option<Vec<u32>> {
    let (_, cmd) = CommandCodec::default().decode(command).ok()?;
    let CommandBody::Search { criteria: key, .. } = cmd.body else {
        return None;
    };
    match criteria {
        None => Some(matching(sel, &key).ok()?.iter().map(|h| h.uid).collect()),
        Some(criteria) => {
            let mut f = facts(sel, &key).ok()?;
            sort::sort(&mut f, criteria);
            Some(f.iter().map(|f| f.uid).collect())
        }
    }
}

/// SEARCH results are in mailbox order: context position 0 for both
/// (RFC 5267 4.3.3, 4.3.4), each set in mailbox order.
fn unordered(old: &[u32], new: &[u32]) -> String {
    let gone: Vec<u32> = old
        .iter()
        .copied()
        .filter(|u| new.binary_search(u).is_err())
        .collect();
    let came: Vec<u32> = new
        .iter()
        .copied()
        .filter(|u| old.binary_search(u).is_err())
        .collect();
    let mut out = String::new();
    if !gone.is_empty() {
        out.push_str(&format!(" REMOVEFROM (0 {})", uid_ranges(&gone)));
    }
    if !came.is_empty() {
        out.push_str(&format!(" ADDTO (0 {})", uid_ranges(&came)));
    }
    out
}

/// SORT results keep their order (a message's sort keys never change), so
/// `old` becomes `new` by removals, then insertions, each at the position
/// it has when the client applies the ones before it (RFC 5267 4.3.2: in
/// order); runs at consecutive positions go as one pair.
fn positional(old: &[u32], new: &[u32]) -> String {
    let in_new: std::collections::HashSet<u32> = new.iter().copied().collect();
    let in_old: std::collections::HashSet<u32> = old.iter().copied().collect();
    // Removals: the survivors before a removed one set its position.
    let mut removals: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut kept = 0usize;
    for &u in old {
        if in_new.contains(&u) {
            kept += 1;
            continue;
        }
        match removals.last_mut() {
            Some((pos, run)) if *pos == kept + 1 => run.push(u),
            _ => removals.push((kept + 1, vec![u])),
        }
    }
    // Insertions: after the removals the list is `new` without what came, so
    // in `new`'s order each one goes where it is in `new`.
    let mut additions: Vec<(usize, Vec<u32>)> = Vec::new();
    for (i, &u) in new.iter().enumerate() {
        if in_old.contains(&u) {
            continue;
        }
        match additions.last_mut() {
            Some((pos, run)) if *pos + run.len() == i + 1 => run.push(u),
            _ => additions.push((i + 1, vec![u])),
        }
    }
    let pairs = |v: &[(usize, Vec<u32>)]| {
        v.iter()
            .map(|(p, run)| format!("{p} {}", uid_ranges(run)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    if !removals.is_empty() {
        out.push_str(&format!(" REMOVEFROM ({})", pairs(&removals)));
    }
    if !additions.is_empty() {
        out.push_str(&format!(" ADDTO ({})", pairs(&additions)));
    }
    out
}

/// CANCELUPDATE (RFC 5267 4.3.5): no more updates for these tags.
pub fn cancel(io: &mut Io, sel: &mut Selected, tag: &str, tags: &[String]) {
    sel.contexts.retain(|c| !tags.contains(&c.tag));
    io.tagged(tag, "OK", "CANCELUPDATE completed");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply REMOVEFROM/ADDTO pairs as RFC 5267 4.3.3-4 say a client does.
    fn apply(mut list: Vec<u32>, changes: &str) -> Vec<u32> {
        let mut words = changes.split_whitespace().peekable();
        while let Some(w) = words.next() {
            let add = w == "ADDTO";
            let mut body = String::new();
            for x in words.by_ref() {
                body.push_str(x);
                body.push(' ');
                if x.ends_with(')') {
                    break;
                }
            }
            let items: Vec<&str> = body.trim().trim_matches(['(', ')']).split(' ').collect();
            for pair in items.chunks(2) {
                let pos: usize = pair[0].parse().unwrap();
                let uids: Vec<u32> = pair[1]
                    .split(',')
                    .flat_map(|r| match r.split_once(':') {
                        Some((a, b)) => {
                            let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                            (a..=b).collect::<Vec<_>>()
                        }
                        None => vec![r.parse().unwrap()],
                    })
                    .collect();
                if add {
                    for (k, u) in uids.into_iter().enumerate() {
                        list.insert(pos - 1 + k, u);
                    }
                } else {
                    for u in uids {
                        assert_eq!(list[pos - 1], u, "{changes}");
                        list.remove(pos - 1);
                    }
                }
            }
        }
        list
    }

    #[test]
    fn positional_changes_take_the_old_order_to_the_new() {
        let cases: [(&[u32], &[u32]); 6] = [
            (&[5, 3, 9, 1], &[5, 9]),
            (&[5, 9], &[7, 5, 8, 9, 2]),
            (&[5, 3, 9, 1], &[4, 3, 1, 6]),
            (&[], &[3, 1, 2]),
            (&[3, 1, 2], &[]),
            (&[1, 2, 3], &[1, 2, 3]),
        ];
        for (old, new) in cases {
            let c = positional(old, new);
            assert_eq!(apply(old.to_vec(), &c), new, "{old:?} -> {new:?}: {c}");
        }
        // RFC 5267 4.3.3's preferred form: one pair for a run.
        assert_eq!(
            positional(&[2734, 2735], &[2731, 2732, 2733, 2734, 2735]),
            " ADDTO (1 2731:2733)"
        );
    }

    #[test]
    fn unordered_changes_at_position_zero() {
        assert_eq!(
            unordered(&[1, 4, 7], &[1, 5, 6, 7]),
            " REMOVEFROM (0 4) ADDTO (0 5:6)"
        );
        assert_eq!(unordered(&[1], &[1]), "");
    }
}
