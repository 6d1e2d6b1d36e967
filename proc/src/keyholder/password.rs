//! Password checks: argon2id off the async threads, at most two at once, and a
//! short-lived cache of successful checks keyed by HMAC-SHA256(random key, user,
//! password) so frequent logins cost one argon2 run per TTL, as Dovecot's auth
//! cache does. Failures are never cached; unknown users cost a full argon2 run too.

use ring::hmac;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const CACHE_MAX: usize = 10_000;

pub struct Checker {
    accounts: RwLock<Arc<HashMap<String, String>>>,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    ttl: RwLock<Duration>,
    key: hmac::Key,
    slots: Semaphore,
}

/// A valid hash of a password nobody knows, to spend the same time on unknown users.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| crate::accounts::hash_password("sx-dummy-password").unwrap_or_default())
}

impl Checker {
    pub fn new() -> Checker {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()));
        Checker {
            accounts: RwLock::new(Arc::new(HashMap::new())),
            cache: Mutex::new(HashMap::new()),
            ttl: RwLock::new(Duration::ZERO),
            key,
            slots: Semaphore::new(2),
        }
    }

    /// New account list (reload): the cache is emptied so a changed or removed
    /// password stops working at once.
    pub fn replace(&self, accounts: Vec<(String, String)>, ttl_secs: u64) {
        if let Ok(mut a) = self.accounts.write() {
            *a = Arc::new(accounts.into_iter().collect());
        }
        if let Ok(mut t) = self.ttl.write() {
            *t = Duration::from_secs(ttl_secs);
        }
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.accounts.read().map(|a| a.len()).unwrap_or(0)
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The canonical account address when the password is right.
    pub async fn check(&self, user: &str, password: &str) -> Option<String> {
        let user =
            crate::accounts::normalize_address(user).unwrap_or_else(|| user.to_ascii_lowercase());
        if user.len() > 320 || password.len() > 1024 {
            return None;
        }
        let ttl = self.ttl.read().map(|t| *t).unwrap_or(Duration::ZERO);
        let ck = self.cache_key(&user, password);
        if !ttl.is_zero() {
            if let Ok(c) = self.cache.lock() {
                if c.get(&ck).is_some_and(|exp| *exp > Instant::now()) {
                    return Some(user);
                }
            }
        }
        let accounts = self.accounts.read().ok()?.clone();
        let known = accounts.get(&user).cloned();
        let hash = known.clone().unwrap_or_else(|| dummy_hash().to_string());
        let _slot = self.slots.acquire().await.ok()?;
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || crate::accounts::verify_password(&hash, &pw))
            .await
            .unwrap_or(false);
        if !(ok && known.is_some()) {
            return None;
        }
        if !ttl.is_zero() {
            if let Ok(mut c) = self.cache.lock() {
                if c.len() >= CACHE_MAX {
                    let now = Instant::now();
                    c.retain(|_, exp| *exp > now);
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                }
                c.insert(ck, Instant::now() + ttl);
            }
        }
        Some(user)
    }
}
