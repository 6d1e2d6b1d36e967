//! Password checks: argon2id on two threads of its own (never the async ones),
//! fed by a bounded queue, and a short-lived cache of successful checks keyed by
//! HMAC-SHA256(random key, user, password) so frequent logins cost one argon2
//! run per TTL, as Dovecot's auth cache does. Failures are never cached; unknown
//! users cost a full argon2 run too. Every attempt goes through the failure
//! guard first: a locked-out address or account costs no argon2 run at all.
//!
//! Memory: argon2 takes 19 MiB per run. Two fixed threads (not a blocking pool
//! that grows a malloc arena per thread) and the fixed mmap threshold every
//! child sets (child.rs: each run's memory goes back to the kernel) keep
//! keyholder small after a flood. CPU: the two threads run at nice 10.

use crate::login_failures::{LoginFailures, Verdict};
use ring::hmac;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

const CACHE_MAX: usize = 10_000;
/// argon2 runs at once.
const HASHERS: usize = 2;
/// Checks waiting for a hasher; more are answered "busy" (the client gets a
/// temporary failure) instead of piling up.
const QUEUE: usize = 64;

/// The outcome of one login attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// The canonical account address.
    Ok(String),
    Failed,
    Locked,
    Busy,
}

type Job = (String, String, tokio::sync::oneshot::Sender<bool>);

pub struct Checker {
    accounts: RwLock<Arc<HashMap<String, String>>>,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    ttl: RwLock<Duration>,
    key: hmac::Key,
    jobs: std::sync::mpsc::SyncSender<Job>,
    pub failures: LoginFailures,
}

/// Start the hashing threads; they end when the Checker is dropped.
fn hashers() -> std::sync::mpsc::SyncSender<Job> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..HASHERS {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sx-argon2-{i}"))
            .spawn(move || loop {
                // Below the sessions and handshakes of this process (nice 10,
                // this thread only); a failure just leaves the default.
                // SAFETY: setpriority takes plain integers.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                }
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok((hash, pw, done)) = job else {
                    return;
                };
                let _ = done.send(crate::accounts::verify_password(&hash, &pw));
            });
        if let Err(e) = spawned {
            log::error!("cannot start a password thread: {e}");
        }
    }
    tx
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
            jobs: hashers(),
            failures: LoginFailures::default(),
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

    /// One login attempt from `ip`: the guard, then the password, then the
    /// count; a failure is answered only after the guard's delay.
    pub async fn login(&self, user: &str, password: &str, ip: IpAddr) -> Login {
        let account =
            crate::accounts::normalize_address(user).unwrap_or_else(|| user.to_ascii_lowercase());
        match self.failures.verdict(ip, &account) {
            Verdict::Allow => {}
            Verdict::LockedIp | Verdict::LockedAccount => return Login::Locked,
        }
        match self.check(&account, password).await {
            Some(Some(a)) => {
                self.failures.succeed(ip, &a);
                Login::Ok(a)
            }
            Some(None) => {
                let n = self.failures.fail(ip, &account);
                tokio::time::sleep(crate::login_failures::delay(n)).await;
                Login::Failed
            }
            None => Login::Busy,
        }
    }

    /// Some(Some(account)) when the password is right, Some(None) when wrong,
    /// None when no hasher could take the check.
    async fn check(&self, user: &str, password: &str) -> Option<Option<String>> {
        let user = user.to_string();
        if user.len() > 320 || password.len() > 1024 {
            return Some(None);
        }
        let ttl = self.ttl.read().map(|t| *t).unwrap_or(Duration::ZERO);
        let ck = self.cache_key(&user, password);
        if !ttl.is_zero() {
            if let Ok(c) = self.cache.lock() {
                if c.get(&ck).is_some_and(|exp| *exp > Instant::now()) {
                    return Some(Some(user));
                }
            }
        }
        let accounts = self.accounts.read().map(|a| a.clone()).unwrap_or_default();
        let known = accounts.get(&user).cloned();
        let hash = known.clone().unwrap_or_else(|| dummy_hash().to_string());
        let (done, result) = tokio::sync::oneshot::channel();
        if self
            .jobs
            .try_send((hash, password.to_string(), done))
            .is_err()
        {
            return None;
        }
        let ok = result.await.unwrap_or(false);
        if !(ok && known.is_some()) {
            return Some(None);
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
        Some(Some(user))
    }
}
