//! Failed logins per client address (SMTP AUTH and IMAP LOGIN), counted
//! within a 15-minute window; each protocol decides how long to make a
//! client wait for a given count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address within this window count together.
const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct LoginFailures {
    by_ip: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginFailures {
    /// Failures from `ip` in the current window.
    pub fn count(&self, ip: IpAddr) -> u32 {
        let m = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(&ip) {
            Some((n, t)) if t.elapsed() < WINDOW => *n,
            _ => 0,
        }
    }

    /// Record a failure; returns the count including it.
    pub fn fail(&self, ip: IpAddr) -> u32 {
        crate::stats::count(ipc::messages::Event::LoginFailed);
        let mut m = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_TRACKED {
            m.retain(|_, (_, t)| t.elapsed() < WINDOW);
        }
        let e = m.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.1 = Instant::now();
        e.0
    }

    pub fn succeed(&self, ip: IpAddr) {
        crate::stats::count(ipc::messages::Event::Login);
        self.by_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}
