//! Who receives mail here: accounts, aliases (with catch-all and +tag), local
//! domains. smtp uses it at RCPT time (550 for unknown users, never a relay) and
//! at MAIL time on submission (an authenticated user sends as its own addresses).

use ipc::messages::{Dest, Directory};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a local domain and the client may not relay.
    Relay,
    /// Local domain, no such user.
    Unknown,
    /// Local part with relay tricks (`%`, `!`, quoted `@`) or bad characters.
    Syntax,
}

#[derive(Default)]
pub struct Dir {
    accounts: HashSet<String>,
    aliases: HashMap<String, Vec<String>>,
    domains: Vec<String>,
    /// Where postmaster mail goes when no alias or account says otherwise: the
    /// first account of the primary domain, else the first account listed.
    postmaster: Option<String>,
    /// The host name (EMAIL_HOSTNAME): local submissions go out from
    /// `user@<host>`, a bare recipient of sendmail is `name@<host>`, and mail
    /// to such an address is for that local user of the host.
    host: Option<String>,
}

/// Alias chains deeper than this are cut (loops, mistakes).
const MAX_DEPTH: usize = 5;

fn local_part_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && !l.starts_with('.')
        && !l.ends_with('.')
        && !l.contains("..")
        && l.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || "._-+".contains(c)
                || (!c.is_ascii() && c.is_alphanumeric())
        })
}

impl Dir {
    pub fn new(d: Directory, domains: &[String]) -> Dir {
        let domains: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        let primary = domains.first().map(|d| format!("@{d}"));
        let postmaster = d
            .accounts
            .iter()
            .find(|a| primary.as_deref().is_some_and(|p| a.ends_with(p)))
            .or_else(|| d.accounts.first())
            .cloned();
        Dir {
            accounts: d.accounts.into_iter().collect(),
            aliases: d.aliases.into_iter().collect(),
            domains,
            postmaster,
            host: None,
        }
    }

    /// The host name whose users are this machine's local users.
    pub fn with_host(mut self, hostname: &str) -> Dir {
        let h = hostname.trim_end_matches('.').to_ascii_lowercase();
        self.host = (!h.is_empty()).then_some(h);
        self
    }

    /// A recipient of a local submission (sendmail on this host). A bare
    /// name (`root`, `www-data`, `alice`) or a name at the host name is a
    /// local user: resolved as that name at the primary domain (aliases,
    /// accounts), and one nothing takes goes where postmaster's mail goes
    /// (the first account), so cron's mail to root is never lost. Anything
    /// else resolves as usual.
    pub fn resolve_local(&self, addr: &str) -> Result<Vec<Dest>, Refusal> {
        let addr = addr.to_ascii_lowercase();
        let local = match addr.rsplit_once('@') {
            None => addr.as_str(),
            Some((l, d)) if self.host.as_deref() == Some(d.trim_end_matches('.')) => l,
            Some(_) => return self.resolve(&addr),
        };
        if !local_part_ok(local) {
            return Err(Refusal::Syntax);
        }
        let primary = self.domains.first().ok_or(Refusal::Unknown)?;
        match self.resolve_plain(&format!("{local}@{primary}")) {
            Err(Refusal::Unknown) => match &self.postmaster {
                Some(m) => Ok(vec![Dest::Local { mailbox: m.clone() }]),
                None => Err(Refusal::Unknown),
            },
            other => other,
        }
    }

    /// Where a bounce for `sender` goes: a local user at the host name as
    /// `resolve_local` says, anything else as `resolve`.
    pub fn resolve_sender(&self, sender: &str) -> Result<Vec<Dest>, Refusal> {
        match sender.rsplit_once('@') {
            Some((_, d))
                if self.host.as_deref() == Some(&d.trim_end_matches('.').to_ascii_lowercase()) =>
            {
                self.resolve_local(sender)
            }
            _ => self.resolve(sender),
        }
    }

    /// RFC 5321 4.5.1: `postmaster@` every local domain, and `<Postmaster>`
    /// with no domain, are always accepted. Ordinary resolution first (an alias
    /// or an account named postmaster), then the alias of the primary domain,
    /// then the fallback account.
    fn postmaster(&self, addr: &str) -> Option<Vec<Dest>> {
        let local = match addr.rsplit_once('@') {
            Some((l, d)) if self.is_local_domain(d) => l,
            None => addr,
            _ => return None,
        };
        if !local.eq_ignore_ascii_case("postmaster") {
            return None;
        }
        let primary = self.domains.first()?;
        let main = format!("postmaster@{primary}");
        if addr != main {
            if let Ok(d) = self.resolve_plain(&main) {
                return Some(d);
            }
        }
        let mailbox = self.postmaster.clone()?;
        Some(vec![Dest::Local { mailbox }])
    }

    pub fn is_local_domain(&self, d: &str) -> bool {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        self.domains.contains(&d)
    }

    /// `user+tag@d` -> `user@d`.
    pub fn base(addr: &str) -> String {
        match addr.rsplit_once('@') {
            Some((l, d)) => match l.split_once('+') {
                Some((b, _)) if !b.is_empty() => format!("{b}@{d}"),
                _ => addr.to_string(),
            },
            None => addr.to_string(),
        }
    }

    /// Where mail for `addr` (any case) goes. Remote domains are a `Relay` refusal;
    /// the caller decides whether this client may relay.
    pub fn resolve(&self, addr: &str) -> Result<Vec<Dest>, Refusal> {
        let addr = addr.to_ascii_lowercase();
        match self.resolve_plain(&addr) {
            Err(e @ (Refusal::Unknown | Refusal::Syntax)) => self.postmaster(&addr).ok_or(e),
            other => other,
        }
    }

    fn resolve_plain(&self, addr: &str) -> Result<Vec<Dest>, Refusal> {
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return Err(Refusal::Syntax);
        };
        if !self.is_local_domain(domain) {
            return Err(Refusal::Relay);
        }
        if !local_part_ok(local) {
            // `a%b@local`, `"a@b"@local` (smtp-proto drops the quotes), `a!b@local`...
            return Err(if local.contains(['%', '!', '@', '"', '\\']) {
                Refusal::Relay
            } else {
                Refusal::Syntax
            });
        }
        let base = Self::base(addr);
        let targets = if let Some(t) = self.aliases.get(addr).or_else(|| self.aliases.get(&base)) {
            t.clone()
        } else if self.accounts.contains(&base) {
            return Ok(vec![Dest::Local { mailbox: base }]);
        } else if let Some(t) = self.aliases.get(&format!("@{domain}")) {
            t.clone()
        } else {
            return Err(Refusal::Unknown);
        };
        let mut out = Vec::new();
        self.expand(&targets, 0, &mut out);
        if out.is_empty() {
            return Err(Refusal::Unknown);
        }
        Ok(out)
    }

    fn expand(&self, targets: &[String], depth: usize, out: &mut Vec<Dest>) {
        for t in targets {
            let dest = match t.rsplit_once('@') {
                Some((_, d)) if self.is_local_domain(d) => {
                    // Local parts of local addresses compare without case;
                    // remote ones are kept as written (RFC 5321 2.4).
                    let t = &t.to_ascii_lowercase();
                    let base = Self::base(t);
                    if self.accounts.contains(&base) {
                        Dest::Local { mailbox: base }
                    } else {
                        if depth < MAX_DEPTH {
                            if let Some(next) = self
                                .aliases
                                .get(t.as_str())
                                .or_else(|| self.aliases.get(&base))
                            {
                                self.expand(next, depth + 1, out);
                            }
                        }
                        continue;
                    }
                }
                _ => Dest::Remote { address: t.clone() },
            };
            if !out.contains(&dest) {
                out.push(dest);
            }
        }
    }

    /// May the authenticated `user` use `sender` as its envelope sender?
    /// Its own address (with any +tag), or an alias that delivers to it.
    pub fn owns(&self, user: &str, sender: &str) -> bool {
        let sender = sender.to_ascii_lowercase();
        if Self::base(&sender) == user {
            return true;
        }
        let me = Dest::Local {
            mailbox: user.to_string(),
        };
        let is_alias =
            self.aliases.contains_key(&sender) || self.aliases.contains_key(&Self::base(&sender));
        is_alias && self.resolve(&sender).is_ok_and(|d| d.contains(&me))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Dir {
        Dir::new(
            Directory {
                accounts: vec!["bob@a.test".into(), "carol@a.test".into()],
                aliases: vec![
                    (
                        "team@a.test".into(),
                        vec![
                            "bob@a.test".into(),
                            "carol@a.test".into(),
                            "x@b.test".into(),
                        ],
                    ),
                    ("@c.test".into(), vec!["carol@a.test".into()]),
                ],
            },
            &["a.test".into(), "c.test".into()],
        )
    }

    #[test]
    fn resolves_accounts_tags_aliases_catch_all() {
        let d = dir();
        let local = |m: &str| Dest::Local { mailbox: m.into() };
        assert_eq!(d.resolve("Bob@A.test"), Ok(vec![local("bob@a.test")]));
        assert_eq!(d.resolve("bob+news@a.test"), Ok(vec![local("bob@a.test")]));
        assert_eq!(d.resolve("team@a.test").unwrap().len(), 3);
        assert_eq!(d.resolve("anyone@c.test"), Ok(vec![local("carol@a.test")]));
        assert_eq!(d.resolve("nobody@a.test"), Err(Refusal::Unknown));
    }

    /// Issue 15.7: a remote target keeps its local part's case; local
    /// targets are matched without case.
    #[test]
    fn remote_local_parts_keep_their_case() {
        let d = Dir::new(
            Directory {
                accounts: vec!["bob@a.test".into()],
                aliases: vec![(
                    "fwd@a.test".into(),
                    vec!["John.Doe@remote.test".into(), "Bob@a.test".into()],
                )],
            },
            &["a.test".into()],
        );
        assert_eq!(
            d.resolve("FWD@a.test"),
            Ok(vec![
                Dest::Remote {
                    address: "John.Doe@remote.test".into()
                },
                Dest::Local {
                    mailbox: "bob@a.test".into()
                }
            ])
        );
    }

    #[test]
    fn refuses_relay_tricks() {
        let d = dir();
        for a in [
            "x@b.test",
            "user%b.test@a.test",
            "user@b.test@a.test",
            "user!b.test@a.test",
            ".x@a.test",
        ] {
            assert!(d.resolve(a).is_err(), "{a}");
        }
        assert_eq!(d.resolve("x@b.test"), Err(Refusal::Relay));
        assert_eq!(d.resolve("postmaster@b.test"), Err(Refusal::Relay));
    }

    /// Regression (issue 14.11): postmaster was refused with 550 5.1.1.
    #[test]
    fn postmaster_is_always_accepted() {
        let d = dir();
        let local = |m: &str| Dest::Local { mailbox: m.into() };
        for a in [
            "postmaster@a.test",
            "PostMaster@A.TEST",
            "postmaster@c.test",
            "Postmaster",
        ] {
            let r = d.resolve(a);
            assert!(r.is_ok(), "{a}: {r:?}");
        }
        assert_eq!(
            d.resolve("postmaster@a.test"),
            Ok(vec![local("bob@a.test")])
        );
        // An alias for it wins, also for the other local domains.
        let mut with_alias = Directory {
            accounts: vec!["bob@a.test".into(), "carol@a.test".into()],
            aliases: vec![("postmaster@a.test".into(), vec!["carol@a.test".into()])],
        };
        let d = Dir::new(with_alias.clone(), &["a.test".into(), "c.test".into()]);
        assert_eq!(
            d.resolve("postmaster@c.test"),
            Ok(vec![local("carol@a.test")])
        );
        assert_eq!(d.resolve("Postmaster"), Ok(vec![local("carol@a.test")]));
        with_alias.accounts.clear();
        with_alias.aliases.clear();
        let empty = Dir::new(with_alias, &["a.test".into()]);
        assert_eq!(empty.resolve("postmaster@a.test"), Err(Refusal::Unknown));
    }

    #[test]
    fn sender_ownership() {
        let d = dir();
        assert!(d.owns("bob@a.test", "bob@a.test"));
        assert!(d.owns("bob@a.test", "Bob+x@a.test"));
        assert!(d.owns("bob@a.test", "team@a.test"));
        assert!(!d.owns("bob@a.test", "carol@a.test"));
        assert!(!d.owns("bob@a.test", "bob@b.test"));
        assert!(!d.owns("bob@a.test", ""));
    }

    #[test]
    fn local_submission_recipients() {
        let d = Dir::new(
            Directory {
                accounts: vec!["bob@a.test".into(), "carol@a.test".into()],
                aliases: vec![("root@a.test".into(), vec!["carol@a.test".into()])],
            },
            &["a.test".into()],
        )
        .with_host("Host.Example");
        let local = |m: &str| Ok(vec![Dest::Local { mailbox: m.into() }]);
        // Aliases first, then accounts, then the first account.
        assert_eq!(d.resolve_local("root"), local("carol@a.test"));
        assert_eq!(d.resolve_local("Bob"), local("bob@a.test"));
        assert_eq!(d.resolve_local("www-data"), local("bob@a.test"));
        assert_eq!(d.resolve_local("daemon@host.example"), local("bob@a.test"));
        assert_eq!(d.resolve_local("carol@a.test"), local("carol@a.test"));
        assert_eq!(d.resolve_local("a%b"), Err(Refusal::Syntax));
        assert_eq!(d.resolve_local("x@remote.test"), Err(Refusal::Relay));
        // Bounces to a local user at the host name come home; port 25's
        // resolve does not take the host name.
        assert_eq!(d.resolve_sender("alice@host.example"), local("bob@a.test"));
        assert_eq!(d.resolve("alice@host.example"), Err(Refusal::Relay));
        // A host name that is also a local domain: its names are the host's
        // users all the same (there is nobody else to give them to).
        let same = Dir::new(
            Directory {
                accounts: vec!["bob@a.test".into()],
                aliases: vec![],
            },
            &["a.test".into()],
        )
        .with_host("a.test");
        assert_eq!(same.resolve_local("x@a.test"), local("bob@a.test"));
        assert_eq!(same.resolve("x@a.test"), Err(Refusal::Unknown));
    }
}
