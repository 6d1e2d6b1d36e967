//! Authenticated-state commands on mailboxes: SELECT/EXAMINE, CREATE, DELETE,
//! RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST (with LIST-EXTENDED basics), LSUB,
//! STATUS. Every name goes through names::folder, which keeps it inside the
//! account's Maildir.

use super::ext::ListOpts;
use super::flags;
use super::folder::Folder;
use super::names;
use super::state::Session;
use super::view::Selected;
use super::wire::quote;
use imap_codec::imap_types::status::StatusDataItemName;
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

impl Session {
    fn folder_or_no(&mut self, tag: &str, name: &str) -> Option<std::path::PathBuf> {
        match names::folder(&self.account, name) {
            Ok(p) => Some(p),
            Err(why) => {
                log::info!(
                    "{}: refused mailbox name {:?} user={}",
                    self.service.name(),
                    crate::log::cut(name, 100),
                    self.user.as_deref().unwrap_or("")
                );
                self.tagged(tag, "NO", &format!("[CANNOT] {why}"));
                None
            }
        }
    }

    pub fn select(&mut self, tag: &str, name: &str, read_only: bool) {
        // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        self.sel = None;
        let Some(path) = self.folder_or_no(tag, name) else {
            return;
        };
        let folder = match Folder::open(&path) {
            Ok(f) => f,
            Err(_) => {
                self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                return;
            }
        };
        let sel = match Selected::open(folder, self.id, read_only) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{}: select {}: {e}", self.service.name(), path.display());
                self.tagged(tag, "NO", "[SERVERBUG] Cannot open mailbox");
                return;
            }
        };
        let (uidvalidity, uidnext, unseen, keywords) = match sel.folder.lock() {
            Ok(st) => {
                let unseen = sel
                    .uids
                    .iter()
                    .zip(&sel.flags)
                    .position(|(_, f)| f & flags::SEEN == 0);
                (st.uidvalidity, st.uidnext, unseen, st.keywords.clone())
            }
            Err(_) => (0, 1, None, Vec::new()),
        };
        let kw = keywords.join(" ");
        let sep = if kw.is_empty() { "" } else { " " };
        self.push(&format!("* FLAGS ({}{sep}{kw})\r\n", flags::SYSTEM_LIST));
        if read_only {
            self.push("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        } else {
            self.push(&format!(
                "* OK [PERMANENTFLAGS ({}{sep}{kw} \\*)] Flags permitted\r\n",
                flags::SYSTEM_LIST
            ));
        }
        self.push(&format!("* {} EXISTS\r\n", sel.uids.len()));
        self.push(&format!("* {} RECENT\r\n", sel.recent.len()));
        if let Some(i) = unseen {
            self.push(&format!("* OK [UNSEEN {}] First unseen\r\n", i + 1));
        }
        self.push(&format!("* OK [UIDVALIDITY {uidvalidity}] UIDs valid\r\n"));
        self.push(&format!("* OK [UIDNEXT {uidnext}] Predicted next UID\r\n"));
        let (code, cmd) = if read_only {
            ("[READ-ONLY]", "EXAMINE")
        } else {
            ("[READ-WRITE]", "SELECT")
        };
        self.sel = Some(sel);
        self.tagged(tag, "OK", &format!("{code} {cmd} completed"));
    }

    pub fn create(&mut self, tag: &str, name: &str) {
        let name = name.strip_suffix(names::DELIM).unwrap_or(name);
        if names::is_inbox(name) {
            self.tagged(tag, "NO", "[ALREADYEXISTS] INBOX always exists");
            return;
        }
        let Some(path) = self.folder_or_no(tag, name) else {
            return;
        };
        if path.exists() {
            self.tagged(tag, "NO", "[ALREADYEXISTS] Mailbox exists");
            return;
        }
        // Every folder costs four directories and a place in every LIST.
        if names::count(&self.account) >= self.sh.max_folders {
            log::info!(
                "{}: CREATE refused user={}: {} folders already",
                self.service.name(),
                self.user.as_deref().unwrap_or(""),
                self.sh.max_folders
            );
            self.tagged(tag, "NO", "[LIMIT] Too many mailboxes");
            return;
        }
        match make_maildir(&path) {
            Ok(()) => self.tagged(tag, "OK", "CREATE completed"),
            Err(e) => {
                log::warn!("{}: create {}: {e}", self.service.name(), path.display());
                self.tagged(tag, "NO", "[CANNOT] Cannot create mailbox")
            }
        }
    }

    pub fn delete(&mut self, tag: &str, name: &str) {
        if names::is_inbox(name) {
            self.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
            return;
        }
        let Some(path) = self.folder_or_no(tag, name) else {
            return;
        };
        if !path.join("cur").is_dir() {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
        if self.sel.as_ref().is_some_and(|s| s.folder.path == path) {
            self.sel = None;
        }
        Folder::forget(&path);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                self.changed(&path);
                self.tagged(tag, "OK", "DELETE completed")
            }
            Err(e) => {
                log::warn!("{}: delete {}: {e}", self.service.name(), path.display());
                self.tagged(tag, "NO", "[CANNOT] Cannot delete mailbox")
            }
        }
    }

    pub fn rename(&mut self, tag: &str, from: &str, to: &str) {
        let (Some(src), Some(dst)) = (self.folder_or_no(tag, from), self.folder_or_no(tag, to))
        else {
            return;
        };
        if names::is_inbox(to) || dst.exists() {
            self.tagged(tag, "NO", "[ALREADYEXISTS] Target mailbox exists");
            return;
        }
        if !src.join("cur").is_dir() {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
        let result = if names::is_inbox(from) {
            self.rename_inbox(&src, &dst)
        } else {
            // The folder and its children: `.a` and `.a.*` become `.b` and `.b.*`.
            let mut r = Ok(());
            for child in names::with_children(&self.account, from) {
                let old = self.account.join(format!(".{child}"));
                let new = self.account.join(format!(".{to}{}", &child[from.len()..]));
                Folder::forget(&old);
                if let Err(e) = std::fs::rename(&old, &new) {
                    r = Err(e);
                    break;
                }
            }
            r
        };
        match result {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(e) => {
                log::warn!("{}: rename {from} -> {to}: {e}", self.service.name());
                self.tagged(tag, "NO", "[CANNOT] Cannot rename mailbox")
            }
        }
    }

    /// RFC 3501: renaming INBOX moves its messages to a new mailbox, INBOX stays.
    fn rename_inbox(&mut self, src: &Path, dst: &Path) -> std::io::Result<()> {
        make_maildir(dst)?;
        let folder = Folder::open(src)?;
        let st = folder.lock()?;
        for m in st.msgs.iter() {
            std::fs::rename(folder.file_path(m), dst.join("cur").join(&*m.file))?;
        }
        drop(st);
        self.changed(src);
        Ok(())
    }

    pub fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let name = if names::is_inbox(name) { "INBOX" } else { name };
        if self.folder_or_no(tag, name).is_none() {
            return;
        }
        // Names may be subscribed without existing: bounded like folders, or
        // the list (read by every LSUB and LIST) could grow without end.
        if on {
            let subs = names::subscriptions(&self.account);
            if !subs.iter().any(|s| s == name) && subs.len() > self.sh.max_folders {
                self.tagged(tag, "NO", "[LIMIT] Too many subscriptions");
                return;
            }
        }
        match names::set_subscribed(&self.account, name, on) {
            Ok(()) => self.tagged(tag, "OK", "Completed"),
            Err(e) => {
                log::warn!("{}: subscriptions: {e}", self.service.name());
                self.tagged(tag, "NO", "[SERVERBUG] Cannot update subscriptions")
            }
        }
    }

    pub fn list(&mut self, tag: &str, reference: &str, patterns: &[String], opts: ListOpts) {
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.push("* LIST (\\Noselect) \".\" \"\"\r\n");
            self.tagged(tag, "OK", "LIST completed");
            return;
        }
        let Some(compiled) = self.patterns(tag, reference, patterns) else {
            return;
        };
        let existing = names::all(&self.account);
        let existing_set: std::collections::HashSet<&str> =
            existing.iter().map(String::as_str).collect();
        let subs = names::subscriptions(&self.account);
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
        let mut below_subscribed: std::collections::HashSet<String> =
            std::collections::HashSet::new();
        let mut below_special: std::collections::HashSet<String> = std::collections::HashSet::new();
        if opts.recursive {
            for s in &subs {
                below_subscribed.extend(ancestors(s));
            }
            for n in existing.iter().filter(|n| names::special_use(n).is_some()) {
                below_special.extend(ancestors(n));
            }
        }
        let mut lines = Vec::new();
        for name in &all {
            if !compiled.iter().any(|p| p.matches(name)) {
                continue;
            }
            let exists = existing_set.contains(name.as_str());
            let subscribed = sub_set.contains(name.as_str());
            let special = names::special_use(name);
            // RFC 5258 3.5: CHILDINFO names the selection options a
            // descendant meets.
            let mut childinfo = Vec::new();
            if opts.recursive && opts.subscribed && below_subscribed.contains(name) {
                childinfo.push("\"SUBSCRIBED\"");
            }
            if opts.recursive && opts.special_use && below_special.contains(name) {
                childinfo.push("\"SPECIAL-USE\"");
            }
            let selected =
                (!opts.subscribed || subscribed) && (!opts.special_use || special.is_some());
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
                quote(name)
            ));
            if exists && !opts.status.is_empty() {
                if let Some(st) = self.status_items(name, &opts.status) {
                    lines.push(format!("* STATUS {} ({st})\r\n", quote(name)));
                }
            }
        }
        for l in lines {
            self.push(&l);
        }
        self.tagged(tag, "OK", "LIST completed");
    }

    /// Compile `reference` + each pattern, or answer NO when one is too long.
    fn patterns(
        &mut self,
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
                self.service.name(),
                names::MAX_PATTERN,
                self.user.as_deref().unwrap_or("")
            );
            self.tagged(tag, "NO", "[LIMIT] Pattern too long");
        }
        compiled
    }

    /// RFC 9208: one quota root, "", for the whole account, when EMAIL_QUOTA
    /// is set; the limit and usage in units of 1024 octets.
    fn quota_line(&self) -> String {
        let used = crate::maildir::usage(&self.account).div_ceil(1024);
        let limit = self.sh.quota.div_ceil(1024);
        format!("* QUOTA \"\" (STORAGE {used} {limit})\r\n")
    }

    pub fn get_quota_root(&mut self, tag: &str, name: &str) {
        let Some(path) = self.folder_or_no(tag, name) else {
            return;
        };
        if !path.join("cur").is_dir() {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
        let shown = if names::is_inbox(name) { "INBOX" } else { name };
        if self.sh.quota == 0 {
            // No limit: the mailbox has no quota root.
            self.push(&format!("* QUOTAROOT {}\r\n", quote(shown)));
        } else {
            self.push(&format!("* QUOTAROOT {} \"\"\r\n", quote(shown)));
            let q = self.quota_line();
            self.push(&q);
        }
        self.tagged(tag, "OK", "GETQUOTAROOT completed");
    }

    pub fn get_quota(&mut self, tag: &str, root: &str) {
        if !root.is_empty() || self.sh.quota == 0 {
            self.tagged(tag, "NO", "[NONEXISTENT] No such quota root");
            return;
        }
        let q = self.quota_line();
        self.push(&q);
        self.tagged(tag, "OK", "GETQUOTA completed");
    }

    pub fn lsub(&mut self, tag: &str, reference: &str, pattern: &str) {
        let Some(compiled) = self.patterns(tag, reference, &[pattern.to_string()]) else {
            return;
        };
        let existing: std::collections::HashSet<String> =
            names::all(&self.account).into_iter().collect();
        let subs = names::subscriptions(&self.account);
        let subscribed: std::collections::HashSet<&str> = subs.iter().map(String::as_str).collect();
        let matches = |n: &str| compiled.iter().any(|p| p.matches(n));
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
                    lines.push(format!("* LSUB ({attr}) \".\" {}\r\n", quote(name)));
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
                    lines.push(format!("* LSUB (\\Noselect) \".\" {}\r\n", quote(&prefix)));
                }
            }
        }
        for l in lines {
            self.push(&l);
        }
        self.tagged(tag, "OK", "LSUB completed");
    }

    /// `MESSAGES 3 UNSEEN 1 ...` for the named items, None if the folder is gone.
    fn status_items(&self, name: &str, items: &[String]) -> Option<String> {
        let path = names::folder(&self.account, name).ok()?;
        let folder = Folder::open(&path).ok()?;
        let st = folder.lock().ok()?;
        let mut out = Vec::new();
        for it in items {
            let v = match it.as_str() {
                "MESSAGES" => st.msgs.len() as u64,
                "RECENT" => st.msgs.iter().filter(|m| m.recent_to == 0).count() as u64,
                "UIDNEXT" => u64::from(st.uidnext),
                "UIDVALIDITY" => u64::from(st.uidvalidity),
                "UNSEEN" => st
                    .msgs
                    .iter()
                    .filter(|m| m.flags & flags::SEEN == 0)
                    .count() as u64,
                "DELETED" => st
                    .msgs
                    .iter()
                    .filter(|m| m.flags & flags::DELETED != 0)
                    .count() as u64,
                // RFC 8438: the mailbox's size in octets.
                "SIZE" => st
                    .msgs
                    .iter()
                    .filter_map(|m| std::fs::metadata(folder.file_path(m)).ok())
                    .map(|md| md.len())
                    .sum::<u64>(),
                // RFC 9208 4.2.2: what EXPUNGE would free, in 1024-octet units.
                "DELETED-STORAGE" => st
                    .msgs
                    .iter()
                    .filter(|m| m.flags & flags::DELETED != 0)
                    .filter_map(|m| std::fs::metadata(folder.file_path(m)).ok())
                    .map(|md| md.len())
                    .sum::<u64>()
                    .div_ceil(1024),
                _ => continue,
            };
            out.push(format!("{it} {v}"));
        }
        Some(out.join(" "))
    }

    pub fn status(&mut self, tag: &str, name: &str, items: &[StatusDataItemName]) {
        let names: Vec<String> = items
            .iter()
            .map(|i| {
                match i {
                    StatusDataItemName::Messages => "MESSAGES",
                    StatusDataItemName::Recent => "RECENT",
                    StatusDataItemName::UidNext => "UIDNEXT",
                    StatusDataItemName::UidValidity => "UIDVALIDITY",
                    StatusDataItemName::Unseen => "UNSEEN",
                    StatusDataItemName::Deleted => "DELETED",
                    StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
                }
                .to_string()
            })
            .collect();
        self.status_of(tag, name, names);
    }

    /// STATUS for item names (upper case), from imap-codec or `ext`.
    pub fn status_of(&mut self, tag: &str, name: &str, names: Vec<String>) {
        let Some(path) = self.folder_or_no(tag, name) else {
            return;
        };
        if !path.join("cur").is_dir() {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
        match self.status_items(name, &names) {
            Some(s) => {
                let shown = if names::is_inbox(name) { "INBOX" } else { name };
                self.push(&format!("* STATUS {} ({s})\r\n", quote(shown)));
                self.tagged(tag, "OK", "STATUS completed");
            }
            None => self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox"),
        }
    }
}

/// The levels above `name`: `a`, `a.b` for `a.b.c`.
fn ancestors(name: &str) -> impl Iterator<Item = String> + '_ {
    name.match_indices(names::DELIM)
        .filter_map(|(i, _)| name.get(..i).map(str::to_string))
}
