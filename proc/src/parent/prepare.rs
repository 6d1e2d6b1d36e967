//! Everything the parent reads before it spawns children: users, directories,
//! TLS identity, DKIM keys and accounts. Re-run on SIGHUP.

use crate::config::ServerConfig;
use crate::tls::LoadedIdentity;
use ipc::messages::{ChildSettings, DkimAlgo, DkimKey, Role, Sandbox, Secrets, TlsPublic};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

pub struct Prepared {
    pub identity: Option<LoadedIdentity>,
    pub aliases: Vec<(String, Vec<String>)>,
    pub dkim: Vec<DkimKey>,
    pub accounts: Vec<(String, String)>,
    /// Per role, when running as root.
    pub sandboxes: Vec<(Role, Sandbox)>,
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn user(name: &str, key: &str) -> Result<nix::unistd::User, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!(
            "{key}: user {name:?} does not exist (create it: useradd --system --no-create-home --shell /usr/sbin/nologin {name})"
        )),
        Err(e) => Err(format!("{key}: cannot look up user {name:?}: {e}")),
    }
}

/// `useradd --system` unless the user exists (embedded default as root only).
pub fn create_system_user(name: &str) -> Result<(), String> {
    if matches!(nix::unistd::User::from_name(name), Ok(Some(_))) {
        return Ok(());
    }
    let st = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status()
        .map_err(|e| format!("cannot run useradd for {name}: {e}"))?;
    // Another process may have created it meanwhile (exit 9: already exists).
    if st.success() || matches!(nix::unistd::User::from_name(name), Ok(Some(_))) {
        log::info!("created system user {name}");
        Ok(())
    } else {
        Err(format!("useradd {name} failed ({st})"))
    }
}

fn ensure_dir(p: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    if !p.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(p)
            .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g))
            .map_err(|e| format!("cannot chown {}: {e}", p.display()))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Resolve users and create the directories each process is chrooted into.
pub fn sandboxes(cfg: &ServerConfig) -> Result<Vec<(Role, Sandbox)>, String> {
    ensure_dir(&cfg.data_dir, 0o755, None)?;
    if let Some(d) = &cfg.maildrop_dir {
        // Anyone may leave a file (sendmail while the server is down); the
        // sticky bit keeps each user's files theirs; nobody else may list.
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        ensure_dir(d, 0o1733, Some(me))?;
    }
    let empty = cfg.empty_dir();
    if !is_root() {
        ensure_dir(&empty, 0o755, None)?;
        ensure_dir(&cfg.queue_dir, 0o700, None)?;
        ensure_dir(&cfg.maildir, 0o755, None)?;
        return Ok(Vec::new());
    }
    if cfg.raw.embedded {
        // Trying it out as root with no config: make the users a package would make.
        for name in [
            &cfg.users.keyholder,
            &cfg.users.smtp,
            &cfg.users.queue,
            &cfg.users.mail,
        ] {
            create_system_user(name)?;
        }
    }
    let kh = user(&cfg.users.keyholder, "EMAIL_USER_KEYHOLDER")?;
    let sm = user(&cfg.users.smtp, "EMAIL_USER_SMTP")?;
    let qu = user(&cfg.users.queue, "EMAIL_USER_QUEUE")?;
    let ma = user(&cfg.users.mail, "EMAIL_USER_MAIL")?;
    for u in [&kh, &sm, &qu, &ma] {
        if u.uid.is_root() {
            return Err(format!(
                "user {} has uid 0; children must not run as root",
                u.name
            ));
        }
    }
    // The empty chroot belongs to root and stays empty and read-only for everyone.
    ensure_dir(&empty, 0o755, Some((0, 0)))?;
    ensure_dir(
        &cfg.queue_dir,
        0o700,
        Some((qu.uid.as_raw(), qu.gid.as_raw())),
    )?;
    ensure_dir(
        &cfg.maildir,
        0o750,
        Some((ma.uid.as_raw(), ma.gid.as_raw())),
    )?;
    let sb = |u: &nix::unistd::User, dir: &Path| Sandbox {
        user: u.name.clone(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        chroot: dir.to_string_lossy().into_owned(),
    };
    Ok(vec![
        (Role::Keyholder, sb(&kh, &empty)),
        (Role::Smtp, sb(&sm, &empty)),
        (Role::Queue, sb(&qu, &cfg.queue_dir)),
        (Role::Delivery, sb(&ma, &cfg.maildir)),
        (Role::Imap, sb(&ma, &cfg.maildir)),
    ])
}

/// The embedded default makes its own certificate on first start.
fn ensure_self_signed(cfg: &ServerConfig) -> Result<(), String> {
    if cfg.tls_cert.exists() || !cfg.raw.embedded {
        return Ok(());
    }
    let (cert, key) = crate::tls::self_signed(&cfg.hostname)?;
    if let Some(d) = cfg.tls_cert.parent() {
        ensure_dir(d, 0o700, None)?;
    }
    crate::accounts::write_atomic(&cfg.tls_key, key.as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", cfg.tls_key.display()))?;
    crate::accounts::write_atomic(&cfg.tls_cert, cert.as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", cfg.tls_cert.display()))?;
    log::info!(
        "made a self-signed certificate for {} in {}",
        cfg.hostname,
        cfg.tls_cert.display()
    );
    Ok(())
}

/// Load a DKIM private key PEM (PKCS#8 RSA or Ed25519, or PKCS#1 RSA).
pub fn load_dkim_key(path: &Path, domain: &str, selector: &str) -> Result<DkimKey, String> {
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let kind = crate::tls::key_kind(&der)
        .ok_or_else(|| format!("{}: unsupported key type", path.display()))?;
    let bytes = der.secret_der().to_vec();
    let is_rsa = match &der {
        PrivateKeyDer::Pkcs1(d) => {
            ring::signature::RsaKeyPair::from_der(d.secret_pkcs1_der()).is_ok()
        }
        PrivateKeyDer::Pkcs8(d) => {
            ring::signature::RsaKeyPair::from_pkcs8(d.secret_pkcs8_der()).is_ok()
        }
        _ => false,
    };
    let is_ed = matches!(&der, PrivateKeyDer::Pkcs8(d)
        if ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(d.secret_pkcs8_der()).is_ok());
    let algo = if is_rsa {
        DkimAlgo::RsaSha256
    } else if is_ed {
        DkimAlgo::Ed25519Sha256
    } else {
        return Err(format!("{}: not an RSA or Ed25519 key", path.display()));
    };
    Ok(DkimKey {
        domain: domain.to_string(),
        selector: selector.to_string(),
        algo,
        der: bytes,
        kind,
    })
}

/// Read certificate, keys and accounts. `key_id` numbers the TLS key generation.
pub fn load(cfg: &ServerConfig, key_id: u32) -> Result<Prepared, String> {
    let sandboxes = sandboxes(cfg)?;
    ensure_self_signed(cfg)?;
    let identity = if cfg.tls_cert.exists() || cfg.tls_key.exists() {
        Some(
            crate::tls::load_identity(&cfg.tls_cert, &cfg.tls_key, key_id)
                .map_err(|e| format!("EMAIL_TLS_CERT/EMAIL_TLS_KEY: {e}"))?,
        )
    } else {
        log::warn!(
            "no TLS certificate at {}: STARTTLS, 465 and 993 are unavailable",
            cfg.tls_cert.display()
        );
        None
    };
    let mut dkim = Vec::new();
    if cfg.dkim_key.exists() {
        dkim.push(
            load_dkim_key(&cfg.dkim_key, cfg.primary_domain(), &cfg.dkim_selector)
                .map_err(|e| format!("EMAIL_DKIM_KEY: {e}"))?,
        );
    } else {
        log::info!(
            "no DKIM key at {}: outbound mail will not be signed",
            cfg.dkim_key.display()
        );
    }
    for (domain, selector, path) in &cfg.dkim_keys {
        dkim.push(
            load_dkim_key(path, domain, selector).map_err(|e| format!("EMAIL_DKIM_KEYS: {e}"))?,
        );
    }
    let accounts = crate::accounts::load(&cfg.accounts_file)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|a| (a.address, a.hash))
        .collect();
    let aliases = crate::aliases::load(&cfg.aliases_file).map_err(|e| e.to_string())?;
    Ok(Prepared {
        aliases,
        identity,
        dkim,
        accounts,
        sandboxes,
    })
}

impl Prepared {
    pub fn secrets(&self) -> Secrets {
        Secrets {
            tls_keys: self.identity.iter().map(|i| i.key.clone()).collect(),
            dkim_keys: self.dkim.clone(),
            accounts: self.accounts.clone(),
        }
    }

    /// Account names and aliases, no secrets (smtp).
    pub fn directory(&self) -> ipc::messages::Directory {
        ipc::messages::Directory {
            accounts: self.accounts.iter().map(|(a, _)| a.clone()).collect(),
            aliases: self.aliases.clone(),
        }
    }

    /// The directory each role works in (its chroot when root).
    pub fn workdir(cfg: &ServerConfig, role: Role) -> String {
        let d = match role {
            Role::Keyholder | Role::Smtp => cfg.empty_dir(),
            Role::Queue => cfg.queue_dir.clone(),
            Role::Delivery | Role::Imap => cfg.maildir.clone(),
        };
        d.to_string_lossy().into_owned()
    }

    pub fn tls_public(&self) -> Option<TlsPublic> {
        self.identity.as_ref().map(|i| TlsPublic {
            cert_chain: i.chain.iter().map(|c| c.as_ref().to_vec()).collect(),
            key_id: i.key.key_id,
            schemes: i.schemes.clone(),
            algorithm: i.algorithm,
        })
    }

    /// Settings for one role: only smtp and imap see the certificate.
    pub fn settings(&self, cfg: &ServerConfig, role: Role) -> ChildSettings {
        ChildSettings {
            hostname: cfg.hostname.clone(),
            domains: cfg.domains.clone(),
            tls: match role {
                Role::Smtp | Role::Imap => self.tls_public(),
                _ => None,
            },
            max_message_size: cfg.max_message_size,
            max_recipients: cfg.max_recipients,
            max_connections: cfg.max_connections,
            max_connections_per_ip: cfg.max_connections_per_ip,
            imap_max_user_connections: cfg.imap_max_user_connections,
            imap_max_folders: cfg.imap_max_folders,
            auth_max_failures: cfg.auth_max_failures,
            auth_max_account_failures: cfg.auth_max_account_failures,
            max_errors: cfg.max_errors,
            shutdown_timeout: cfg.shutdown_timeout,
            max_idle_commands: cfg.max_idle_commands,
            timeout: cfg.smtp_timeout,
            routes: cfg.routes.clone(),
            relay_host: cfg.relay_host.clone(),
            dns_servers: cfg.dns_servers.clone(),
            domain_concurrency: cfg.domain_concurrency,
            // The smarthost password goes to smtp only, which must send it.
            relay_auth: match (&cfg.relay_auth, role) {
                (Some((u, p)), Role::Smtp) => Some((u.clone(), ipc::messages::Redacted(p.clone()))),
                _ => None,
            },
            outbound_tls_required: cfg.outbound_tls_required,
            quota: cfg.quota,
            queue_retry: cfg.queue_retry.clone(),
            queue_lifetime: cfg.queue_lifetime,
            queue_warn: cfg.queue_warn,
            auth_cache_ttl: cfg.auth_cache_ttl,
            checks: cfg.checks.clone(),
            abuse: cfg.abuse.clone(),
        }
    }

    pub fn sandbox(&self, role: Role) -> Option<Sandbox> {
        self.sandboxes
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, s)| s.clone())
    }
}
