//! Failed logins, counted in one place for SMTP AUTH and IMAP LOGIN/AUTHENTICATE:
//! keyholder, which checks every password, keeps this table, so both services
//! see the same counts and lock out alike.
//!
//! - Per client address: each failure in the window makes the answer to the
//!   next one slower (0.25 s doubling to 8 s); at `max_per_ip` the address is
//!   locked out until the window has passed since its last failure. A success
//!   does not wipe the address's failures (one good account would otherwise
//!   reset the count for guessing all the others).
//! - Per account: at `max_per_account` failures from any addresses the account
//!   is locked out, except for addresses that logged in to it successfully
//!   before (so a distributed guesser cannot lock its owner out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures count together within this window (since the last one).
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a successful (address, account) pair is remembered as trusted.
const TRUST: Duration = Duration::from_secs(30 * 24 * 3600);
/// Bounds on the tables: past these, expired entries are dropped first, then
/// the oldest half.
const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_per_ip: u32,
    pub max_per_account: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_per_ip: 10,
            max_per_account: 30,
        }
    }
}

/// What the guard says before a password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Too many failures from this address.
    LockedIp,
    /// Too many failures on this account, from an address never seen to succeed.
    LockedAccount,
}

#[derive(Default)]
struct Tables {
    by_ip: HashMap<IpAddr, (u32, Instant)>,
    by_account: HashMap<String, (u32, Instant)>,
    trusted: HashMap<(IpAddr, String), Instant>,
}

#[derive(Default)]
pub struct LoginFailures {
    t: Mutex<Tables>,
    limits: Mutex<Limits>,
}

fn current(e: Option<&(u32, Instant)>) -> u32 {
    match e {
        Some((n, t)) if t.elapsed() < WINDOW => *n,
        _ => 0,
    }
}

fn bump<K: std::hash::Hash + Eq>(m: &mut HashMap<K, (u32, Instant)>, k: K) -> u32 {
    if m.len() >= MAX_TRACKED {
        m.retain(|_, (_, t)| t.elapsed() < WINDOW);
        if m.len() >= MAX_TRACKED {
            m.clear();
        }
    }
    let e = m.entry(k).or_insert((0, Instant::now()));
    if e.1.elapsed() >= WINDOW {
        e.0 = 0;
    }
    e.0 = e.0.saturating_add(1);
    e.1 = Instant::now();
    e.0
}

impl LoginFailures {
    pub fn set_limits(&self, l: Limits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = l;
    }

    fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May `ip` try a password for `account` now?
    pub fn verdict(&self, ip: IpAddr, account: &str) -> Verdict {
        let l = self.limits();
        let t = self.tables();
        if current(t.by_ip.get(&ip)) >= l.max_per_ip {
            return Verdict::LockedIp;
        }
        if current(t.by_account.get(account)) >= l.max_per_account {
            let trusted = t
                .trusted
                .get(&(ip, account.to_string()))
                .is_some_and(|at| at.elapsed() < TRUST);
            if !trusted {
                return Verdict::LockedAccount;
            }
        }
        Verdict::Allow
    }

    /// Failures from `ip` in the current window.
    pub fn count(&self, ip: IpAddr) -> u32 {
        current(self.tables().by_ip.get(&ip))
    }

    /// Record a failure; returns the address's count including it.
    pub fn fail(&self, ip: IpAddr, account: &str) -> u32 {
        crate::stats::count(ipc::messages::Event::LoginFailed);
        let mut t = self.tables();
        // Only names that could be accounts are kept: a flood of random long
        // names must not grow the table by their length.
        if account.len() <= 320 {
            bump(&mut t.by_account, account.to_string());
        }
        bump(&mut t.by_ip, ip)
    }

    /// A good password: the pair is trusted from now on.
    pub fn succeed(&self, ip: IpAddr, account: &str) {
        crate::stats::count(ipc::messages::Event::Login);
        let mut t = self.tables();
        if t.trusted.len() >= MAX_TRACKED {
            t.trusted.retain(|_, at| at.elapsed() < TRUST);
            if t.trusted.len() >= MAX_TRACKED {
                let mut ages: Vec<Instant> = t.trusted.values().copied().collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                t.trusted.retain(|_, at| *at > cut);
            }
        }
        t.trusted.insert((ip, account.to_string()), Instant::now());
    }
}

/// How long to wait before answering the `n`th failure from an address:
/// 0.25 s, 0.5 s, 1 s ... at most 8 s.
pub fn delay(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.saturating_sub(1).min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Regression (issue 14.7): a success from an address cleared its failures
    /// for every account, and nothing was counted per account.
    #[test]
    fn counts_per_address_and_account() {
        let g = LoginFailures::default();
        g.set_limits(Limits {
            max_per_ip: 3,
            max_per_account: 5,
        });
        let eve = ip("192.0.2.66");
        for _ in 0..2 {
            g.fail(eve, "bob@a.test");
        }
        g.succeed(eve, "eve@a.test");
        g.fail(eve, "carol@a.test");
        assert_eq!(g.count(eve), 3);
        assert_eq!(g.verdict(eve, "anyone@a.test"), Verdict::LockedIp);
        // Distributed guessing on one account: locked for strangers ...
        let bob_home = ip("198.51.100.7");
        g.succeed(bob_home, "bob@a.test");
        for i in 0..5 {
            g.fail(ip(&format!("203.0.113.{i}")), "bob@a.test");
        }
        assert_eq!(
            g.verdict(ip("203.0.113.99"), "bob@a.test"),
            Verdict::LockedAccount
        );
        // ... but not for the address bob logs in from.
        assert_eq!(g.verdict(bob_home, "bob@a.test"), Verdict::Allow);
        assert_eq!(
            g.verdict(ip("203.0.113.99"), "carol@a.test"),
            Verdict::Allow
        );
    }

    #[test]
    fn delays_grow_and_cap() {
        assert!(delay(2) > delay(1));
        assert_eq!(delay(50), Duration::from_secs(8));
    }
}
