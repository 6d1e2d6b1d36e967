//! The counters a child keeps for `--status` and the TUI: open connections per
//! service, events (total since start and in the last 60 s, by second buckets),
//! and gauges a role computes on demand (the queue's sizes). Process-global so
//! any session can count without plumbing; read only by `snapshot()`, which
//! answers the parent's ParentToChild::Stats.

use ipc::messages::{ChildStats, Event, Service};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

static CONNECTIONS: [AtomicU32; Service::ALL.len()] =
    [const { AtomicU32::new(0) }; Service::ALL.len()];
const EVENTS: usize = Event::ALL.len();
static TOTALS: [AtomicU64; EVENTS] = [const { AtomicU64::new(0) }; EVENTS];
/// Per event: (second of the last count, counts of the last 60 seconds).
static RECENT: Mutex<[(u64, [u32; 60]); EVENTS]> = Mutex::new([(0, [0; 60]); EVENTS]);
type GaugeFn = Box<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;
static GAUGES: OnceLock<GaugeFn> = OnceLock::new();

fn service_index(s: Service) -> usize {
    Service::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn event_index(e: Event) -> usize {
    Event::ALL.iter().position(|x| *x == e).unwrap_or(0)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Zero the buckets that lie between the last count and `now`.
fn advance(slot: &mut (u64, [u32; 60]), now: u64) {
    let (last, ring) = slot;
    if now > *last {
        let gap = (now - *last).min(60);
        for i in 1..=gap {
            ring[((*last + i) % 60) as usize] = 0;
        }
        *last = now;
    }
}

/// An open connection, counted until dropped.
pub struct Connection(Service);

impl Drop for Connection {
    fn drop(&mut self) {
        CONNECTIONS[service_index(self.0)].fetch_sub(1, Relaxed);
    }
}

pub fn connection(s: Service) -> Connection {
    CONNECTIONS[service_index(s)].fetch_add(1, Relaxed);
    Connection(s)
}

pub fn count(e: Event) {
    count_n(e, 1);
}

pub fn count_n(e: Event, n: u32) {
    let i = event_index(e);
    TOTALS[i].fetch_add(u64::from(n), Relaxed);
    if let Ok(mut r) = RECENT.lock() {
        let now = now_secs();
        advance(&mut r[i], now);
        let b = (now % 60) as usize;
        r[i].1[b] = r[i].1[b].saturating_add(n);
    }
}

/// Register the role's gauges (once per process).
pub fn gauges(f: impl Fn() -> Vec<(String, u64)> + Send + Sync + 'static) {
    let _ = GAUGES.set(Box::new(f));
}

pub fn snapshot() -> ChildStats {
    let connections = Service::ALL
        .iter()
        .map(|s| (*s, CONNECTIONS[service_index(*s)].load(Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let now = now_secs();
    let mut events = Vec::new();
    if let Ok(mut r) = RECENT.lock() {
        for e in Event::ALL {
            let i = event_index(e);
            let total = TOTALS[i].load(Relaxed);
            if total == 0 {
                continue;
            }
            advance(&mut r[i], now);
            events.push((e, total, r[i].1.iter().sum()));
        }
    }
    let gauges = GAUGES.get().map(|f| f()).unwrap_or_default();
    ChildStats {
        connections,
        events,
        gauges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_window_forgets_old_seconds() {
        let mut slot = (100, [0u32; 60]);
        slot.1[(100 % 60) as usize] = 5;
        advance(&mut slot, 130);
        assert_eq!(slot.1.iter().sum::<u32>(), 5);
        advance(&mut slot, 160);
        assert_eq!(slot.1.iter().sum::<u32>(), 0);
    }
}
