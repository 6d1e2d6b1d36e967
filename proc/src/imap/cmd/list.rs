//! LIST (RFC 3501 6.3.8, with LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154
//! and LIST-STATUS RFC 5819) and LSUB (6.3.9). Patterns are compiled once
//! (names::Pattern matches in linear time) and every level above an existing
//! or subscribed name is a candidate, each once.

use crate::imap::ext::ListOpts;
use crate::imap::io::Io;
use crate::imap::names;
use crate::imap::state::Login;

pub fn list(
    io: &mut Io,
    login: &Login,
    tag: &str,
    reference: &str,
    patterns: &[String],
    opts: ListOpts,
) {
    if patterns.len() == 1 && patterns[0].is_empty() {
        io.push("* LIST (\\Noselect) \".\" \"\"\r\n");
        io.tagged(tag, "OK", "LIST completed");
        return;
    }
    let Some(compiled) = compile(io, login, tag, reference, patterns) else {
        return;
    };
    let existing = names::all(&login.account);
    let existing_set: std::collections::HashSet<&str> =
        existing.iter().map(String::as_str).collect();
    let subs = names::subscriptions(&login.account);
    let uses = names::SpecialUses::read(&login.account);
    // Every existing name and every level above one (those may not exist),
    // in order, each once: sets keep this linear in the number of folders.
    let mut all: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut parents: std::collections::HashSet<String> = std::collections::HashSet::new();
    for n in &existing {
        let mut prefix = String::new();
        for (i, level) in n.split(names::DELIM).enumerate() {
            if i > 0 {
                parents.insert(prefix.clone());
                prefix.push(names::DELIM);
            }
            prefix.push_str(level);
            if seen.insert(prefix.clone()) {
                all.push(prefix.clone());
            }
        }
    }
    for s in &subs {
        if !opts.subscribed {
            break;
        }
        // With RECURSIVEMATCH the levels above a subscribed name are
        // candidates too (they may be listed for their CHILDINFO).
        if opts.recursive {
            for p in ancestors(s) {
                if seen.insert(p.clone()) {
                    all.push(p);
                }
            }
        }
        if seen.insert(s.clone()) {
            all.push(s.clone());
        }
    }
    let sub_set: std::collections::HashSet<&str> = subs.iter().map(String::as_str).collect();
    // Names with a subscribed (or special-use) name below them.
    let mut below_subscribed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut below_special: std::collections::HashSet<String> = std::collections::HashSet::new();
    if opts.recursive {
        for s in &subs {
            below_subscribed.extend(ancestors(s));
        }
        for n in existing.iter().filter(|n| uses.of(n).is_some()) {
            below_special.extend(ancestors(n));
        }
    }
    let mut lines = Vec::new();
    for name in &all {
        // The client's patterns are in the client's form (UTF-8 once
        // enabled), so they are matched against the name as it is shown.
        let shown = io.name_out(name).into_owned();
        if !compiled.iter().any(|p| p.matches(&shown)) {
            continue;
        }
        let exists = existing_set.contains(name.as_str());
        let subscribed = sub_set.contains(name.as_str());
        let special = uses.of(name);
        // RFC 5258 3.5: CHILDINFO names the selection options a
        // descendant meets.
        let mut childinfo = Vec::new();
        if opts.recursive && opts.subscribed && below_subscribed.contains(name) {
            childinfo.push("\"SUBSCRIBED\"");
        }
        if opts.recursive && opts.special_use && below_special.contains(name) {
            childinfo.push("\"SPECIAL-USE\"");
        }
        let selected = (!opts.subscribed || subscribed) && (!opts.special_use || special.is_some());
        if !selected && childinfo.is_empty() {
            continue;
        }
        let children = parents.contains(name);
        let mut attrs = Vec::new();
        if !exists {
            attrs.push(if opts.subscribed {
                "\\NonExistent"
            } else {
                "\\Noselect"
            });
        }
        attrs.push(if children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        });
        if let Some(s) = special {
            attrs.push(s);
        }
        if opts.return_subscribed && subscribed {
            attrs.push("\\Subscribed");
        }
        let extended = if childinfo.is_empty() {
            String::new()
        } else {
            format!(" (\"CHILDINFO\" ({}))", childinfo.join(" "))
        };
        lines.push(format!(
            "* LIST ({}) \".\" {}{extended}\r\n",
            attrs.join(" "),
            io.quote_name(&shown)
        ));
        if exists && !opts.status.is_empty() {
            if let Some(st) = super::status::items(login, name, &opts.status) {
                lines.push(format!("* STATUS {} ({st})\r\n", io.quote_name(&shown)));
            }
        }
    }
    for l in lines {
        io.push(&l);
    }
    io.tagged(tag, "OK", "LIST completed");
}

/// Compile `reference` + each pattern, or answer NO when one is too long.
fn compile(
    io: &mut Io,
    login: &Login,
    tag: &str,
    reference: &str,
    patterns: &[String],
) -> Option<Vec<names::Pattern>> {
    let compiled: Option<Vec<names::Pattern>> = patterns
        .iter()
        .map(|p| names::Pattern::new(&format!("{reference}{p}")))
        .collect();
    if compiled.is_none() {
        log::info!(
            "{}: LIST pattern over {} bytes refused user={}",
            io.service.name(),
            names::MAX_PATTERN,
            login.user
        );
        io.tagged(tag, "NO", "[LIMIT] Pattern too long");
    }
    compiled
}

pub fn lsub(io: &mut Io, login: &Login, tag: &str, reference: &str, pattern: &str) {
    let Some(compiled) = compile(io, login, tag, reference, &[pattern.to_string()]) else {
        return;
    };
    let existing: std::collections::HashSet<String> =
        names::all(&login.account).into_iter().collect();
    let subs = names::subscriptions(&login.account);
    let subscribed: std::collections::HashSet<&str> = subs.iter().map(String::as_str).collect();
    let utf8 = io.enabled.utf8;
    let client = |n: &str| crate::imap::utf8::name_out(n, utf8).into_owned();
    let quote = |n: &str| crate::imap::respond::quote_name(n, utf8);
    let matches = |n: &str| compiled.iter().any(|p| p.matches(&client(n)));
    let mut shown: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut lines = Vec::new();
    for name in &subs {
        if matches(name) {
            if shown.insert(name.clone()) {
                let attr = if existing.contains(name) {
                    ""
                } else {
                    "\\Noselect"
                };
                lines.push(format!(
                    "* LSUB ({attr}) \".\" {}\r\n",
                    quote(&client(name))
                ));
            }
            continue;
        }
        // RFC 3501 6.3.9: `%` stops at a level; an unsubscribed parent of
        // a subscribed name it matches is listed, \Noselect.
        for prefix in ancestors(name) {
            if !subscribed.contains(prefix.as_str())
                && matches(&prefix)
                && shown.insert(prefix.clone())
            {
                lines.push(format!(
                    "* LSUB (\\Noselect) \".\" {}\r\n",
                    quote(&client(&prefix))
                ));
            }
        }
    }
    for l in lines {
        io.push(&l);
    }
    io.tagged(tag, "OK", "LSUB completed");
}

/// The attributes LIST gives an existing mailbox (for IMAP4rev2's LIST
/// response at SELECT, RFC 9051 6.3.2).
pub fn attributes(login: &Login, name: &str) -> String {
    let prefix = format!("{name}{}", names::DELIM);
    let children = names::all(&login.account)
        .iter()
        .any(|n| n.starts_with(&prefix));
    let mut attrs = vec![if children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }];
    let uses = names::SpecialUses::read(&login.account);
    if let Some(s) = uses.of(name) {
        attrs.push(s);
    }
    attrs.join(" ")
}

/// The levels above `name`: `a`, `a.b` for `a.b.c`.
fn ancestors(name: &str) -> impl Iterator<Item = String> + '_ {
    name.match_indices(names::DELIM)
        .filter_map(|(i, _)| name.get(..i).map(str::to_string))
}
