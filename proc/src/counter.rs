//! Counting sessions per key (client address, user) with a guard that gives
//! the slot back when the session ends, however it ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct Counter<K: Eq + Hash + Clone>(Mutex<HashMap<K, u32>>, tokio::sync::Notify);

pub struct Slot<K: Eq + Hash + Clone> {
    counter: Arc<Counter<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Default for Counter<K> {
    fn default() -> Self {
        Counter(Mutex::new(HashMap::new()), tokio::sync::Notify::new())
    }
}

impl<K: Eq + Hash + Clone> Counter<K> {
    /// Take a slot for `key`; `Err` (and nothing taken) when `max` are in use.
    pub fn take(self: &Arc<Self>, key: K, max: u32) -> Result<Slot<K>, u32> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(Slot {
            counter: self.clone(),
            key,
        })
    }

    /// Like `take`, but wait up to `wait` for a slot to come free: a client
    /// that closes a connection and opens the next at once (a busy MTA does)
    /// may be a moment ahead of the task that gives the old slot back.
    pub async fn take_wait(
        self: &Arc<Self>,
        key: K,
        max: u32,
        wait: std::time::Duration,
    ) -> Result<Slot<K>, u32> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.1.notified();
            match self.take(key.clone(), max) {
                Ok(s) => return Ok(s),
                Err(n) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        return Err(n);
                    }
                }
            }
        }
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut m = self.counter.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
        drop(m);
        self.counter.1.notify_waiters();
    }
}
