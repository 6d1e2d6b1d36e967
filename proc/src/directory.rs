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
}

/// Alias chains deeper than this are cut (loops, mistakes).
const MAX_DEPTH: usize = 5;

fn local_part_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && !l.starts_with('.')
        && !l.ends_with('.')
        && !l.contains("..")
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

impl Dir {
    pub fn new(d: Directory, domains: &[String]) -> Dir {
        Dir {
            accounts: d.accounts.into_iter().collect(),
            aliases: d.aliases.into_iter().collect(),
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        }
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
        let base = Self::base(&addr);
        let targets = if let Some(t) = self.aliases.get(&addr).or_else(|| self.aliases.get(&base)) {
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
}
