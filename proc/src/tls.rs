//! TLS for smtp and imap without the private key: [`RemoteSigningKey`] is a rustls
//! `SigningKey` whose signatures are made by keyholder over a dedicated blocking
//! SEQPACKET edge. Also the PEM loading the parent does before handing keys on.

use ipc::messages::{KeyKind, KeyReply, KeyRequest, TlsKey, TlsPublic};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Every scheme rustls knows; asked one by one to learn what a key can do.
const ALL_SCHEMES: [SignatureScheme; 10] = [
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key as read from PEM files by the parent.
pub struct LoadedIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: TlsKey,
    pub schemes: Vec<u16>,
    pub algorithm: u8,
    /// Seconds since the epoch when the leaf expires (for status/checks).
    pub not_after: Option<i64>,
}

pub fn key_kind(k: &PrivateKeyDer<'_>) -> Option<KeyKind> {
    match k {
        PrivateKeyDer::Pkcs8(_) => Some(KeyKind::Pkcs8),
        PrivateKeyDer::Pkcs1(_) => Some(KeyKind::Pkcs1),
        PrivateKeyDer::Sec1(_) => Some(KeyKind::Sec1),
        _ => None,
    }
}

pub fn key_der(k: &TlsKey) -> PrivateKeyDer<'static> {
    let d = k.der.clone();
    match k.kind {
        KeyKind::Pkcs8 => PrivateKeyDer::Pkcs8(d.into()),
        KeyKind::Pkcs1 => PrivateKeyDer::Pkcs1(d.into()),
        KeyKind::Sec1 => PrivateKeyDer::Sec1(d.into()),
    }
}

/// A real signing key (keyholder and parent only).
pub fn signing_key(k: &TlsKey) -> Result<Arc<dyn SigningKey>, String> {
    rustls::crypto::ring::sign::any_supported_type(&key_der(k)).map_err(|e| e.to_string())
}

/// Read cert chain + key, check they belong together, learn the key's schemes.
pub fn load_identity(cert: &Path, key: &Path, key_id: u32) -> Result<LoadedIdentity, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let kind = key_kind(&der).ok_or_else(|| format!("{}: unsupported key type", key.display()))?;
    let tls_key = TlsKey {
        key_id,
        der: der.secret_der().to_vec(),
        kind,
    };
    let sk = signing_key(&tls_key).map_err(|e| format!("{}: {e}", key.display()))?;
    CertifiedKey::new(chain.clone(), sk.clone())
        .keys_match()
        .map_err(|e| format!("{} does not match {}: {e}", key.display(), cert.display()))?;
    let schemes = ALL_SCHEMES
        .iter()
        .filter(|s| sk.choose_scheme(&[**s]).is_some())
        .map(|s| u16::from(*s))
        .collect();
    Ok(LoadedIdentity {
        not_after: None,
        chain,
        key: tls_key,
        schemes,
        algorithm: u8::from(sk.algorithm()),
    })
}

/// Client side of the dedicated keyholder signing edge. Blocking on purpose: rustls
/// calls `Signer::sign` synchronously inside the handshake.
#[derive(Debug)]
pub struct SignClient {
    fd: Mutex<OwnedFd>,
    next_id: AtomicU64,
}

impl SignClient {
    pub fn new(fd: OwnedFd) -> std::io::Result<SignClient> {
        let tv = nix::sys::time::TimeVal::new(5, 0);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(std::io::Error::from)?;
        Ok(SignClient {
            fd: Mutex::new(fd),
            next_id: AtomicU64::new(1),
        })
    }

    /// Use a fresh edge (keyholder was restarted).
    pub fn replace(&self, fd: OwnedFd) -> std::io::Result<()> {
        let tv = nix::sys::time::TimeVal::new(5, 0);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(std::io::Error::from)?;
        match self.fd.lock() {
            Ok(mut f) => *f = fd,
            Err(p) => *p.into_inner() = fd,
        }
        Ok(())
    }

    pub fn call(&self, req: &KeyRequest) -> Result<KeyReply, String> {
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        ipc::frame::send(fd.as_raw_fd(), id, req, &[]).map_err(|e| e.to_string())?;
        loop {
            match ipc::frame::recv::<KeyReply>(fd.as_raw_fd()) {
                Ok((rid, reply, _)) if rid == id => return Ok(reply),
                // A reply to an earlier request that timed out: skip it.
                Ok(_) => continue,
                Err(ipc::FrameError::WouldBlock) => {
                    return Err("keyholder did not answer in time".into())
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

#[derive(Debug)]
pub struct RemoteSigningKey {
    key_id: u32,
    schemes: Vec<SignatureScheme>,
    algorithm: SignatureAlgorithm,
    client: Arc<SignClient>,
}

#[derive(Debug)]
struct RemoteSigner {
    key_id: u32,
    scheme: SignatureScheme,
    client: Arc<SignClient>,
}

impl SigningKey for RemoteSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(RemoteSigner {
            key_id: self.key_id,
            scheme: *scheme,
            client: self.client.clone(),
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl Signer for RemoteSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let req = KeyRequest::TlsSign {
            key_id: self.key_id,
            scheme: u16::from(self.scheme),
            data: message.to_vec(),
        };
        let call = || self.client.call(&req);
        // Keep the other tasks of this runtime running while we wait on keyholder.
        let reply = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(call)
            }
            _ => call(),
        };
        match reply {
            Ok(KeyReply::TlsSignature(sig)) => Ok(sig),
            Ok(KeyReply::Error(e)) | Err(e) => {
                Err(rustls::Error::General(format!("keyholder: {e}")))
            }
            Ok(_) => Err(rustls::Error::General("keyholder: unexpected reply".into())),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A rustls server config whose key lives in keyholder.
pub fn server_config(
    public: &TlsPublic,
    client: Arc<SignClient>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = RemoteSigningKey {
        key_id: public.key_id,
        schemes: public
            .schemes
            .iter()
            .map(|s| SignatureScheme::from(*s))
            .collect(),
        algorithm: SignatureAlgorithm::from(public.algorithm),
        client,
    };
    let chain = public
        .cert_chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let ck = CertifiedKey::new(chain, Arc::new(key));
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(ck))));
    Ok(Arc::new(cfg))
}

/// Make a self-signed certificate (embedded default): returns (cert PEM, key PEM).
pub fn self_signed(hostname: &str) -> Result<(String, String), String> {
    // Loopback addresses too, so clients that verify can connect by IP.
    let names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    // The subject says whose it is (rcgen's default is "rcgen self signed cert").
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, hostname);
    dn.push(
        rcgen::DnType::OrganizationName,
        "scorpiox-email (self-signed)",
    );
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod self_signed_tests {
    #[test]
    fn the_subject_is_the_host_name() {
        let (pem, _) = super::self_signed("mail.example.org").unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let text = format!("{:?}", der.as_ref());
        // The CN's bytes appear in the DER; rcgen's default name does not.
        let has = |s: &str| der.as_ref().windows(s.len()).any(|w| w == s.as_bytes());
        assert!(has("mail.example.org"), "{text}");
        assert!(!has("rcgen self signed cert"));
    }
}
