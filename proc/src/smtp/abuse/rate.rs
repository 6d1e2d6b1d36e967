//! Rate limits: at most N messages per period per key (a client address, a
//! sender), as a token bucket that refills N per period. Kept in memory, a
//! bounded number of keys: past that, buckets back to full (idle keys) go
//! first; a flood of distinct keys at worst resets the counts, it never
//! grows the table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 50_000;

pub struct Limiter {
    /// Messages per `per`; 0 means no limit.
    n: u32,
    per: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(n: u32, per_secs: u64) -> Limiter {
        Limiter {
            n,
            per: Duration::from_secs(per_secs.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether one more message for `key` is within the limit (and count it).
    pub fn take(&self, key: &str, now: Instant) -> bool {
        if self.n == 0 {
            return true;
        }
        let Ok(mut b) = self.buckets.lock() else {
            return true;
        };
        let cap = f64::from(self.n);
        let rate = cap / self.per.as_secs_f64();
        if b.len() >= MAX_KEYS && !b.contains_key(key) {
            b.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
            if b.len() >= MAX_KEYS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The key for a client address: IPv6 clients by their /64 (one host has
/// a whole one).
pub fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The network a client's address is greylisted by: its /24 (IPv4) or /64
/// (IPv6): a sender's retries may come from another host of the same farm.
pub fn network_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        v6 => client_key(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_per_period_then_refused_then_refilled() {
        let l = Limiter::new(3, 60);
        let t = Instant::now();
        assert!((0..3).all(|_| l.take("a", t)));
        assert!(!l.take("a", t));
        assert!(l.take("b", t), "another key has its own bucket");
        assert!(
            l.take("a", t + Duration::from_secs(20)),
            "one refilled after 20 s"
        );
        assert!(!l.take("a", t + Duration::from_secs(21)));
        assert!(Limiter::new(0, 60).take("a", t), "0 is no limit");
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = Limiter::new(1, 3600);
        let t = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            l.take(&format!("k{i}"), t);
        }
        assert!(l.buckets.lock().map(|b| b.len()).unwrap_or(0) <= MAX_KEYS);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
