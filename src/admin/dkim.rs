//! --dkim-keygen (write a private key, print the TXT record) and --dkim-sign
//! (have the running keyholder sign a message; a check of the published record).

use super::control;
use crate::cli::{Algo, ServerArgs};
use crate::exit;
use base64::Engine;
use ipc::messages::{ControlReply, ControlRequest};
use std::os::fd::AsFd;
use std::path::Path;
use sxproc::config::ServerConfig;

pub fn keygen(cfg: &ServerConfig, a: &ServerArgs) -> i32 {
    let domain = a
        .domain
        .clone()
        .unwrap_or_else(|| cfg.primary_domain().to_string());
    let selector = a
        .selector
        .clone()
        .unwrap_or_else(|| cfg.dkim_selector.clone());
    let out = a.output.clone().unwrap_or_else(|| cfg.dkim_key.clone());
    if out.exists() && !a.force {
        eprintln!(
            "sx server-email: {} exists; use --force to replace it",
            out.display()
        );
        return exit::CANTCREAT;
    }
    let (pem, k, p) = match generate(a.algo) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sx server-email: key generation failed: {e}");
            return exit::SOFTWARE;
        }
    };
    if let Err(e) = sxproc::accounts::write_atomic(&out, pem.as_bytes(), 0o600) {
        eprintln!("sx server-email: cannot write {}: {e}", out.display());
        return exit::CANTCREAT;
    }
    eprintln!(
        "wrote {} (mode 0600); publish this DNS record:",
        out.display()
    );
    println!("{}", txt_record(&selector, &domain, k, &p));
    exit::OK
}

/// `S._domainkey.D IN TXT "v=DKIM1; k=rsa; p=..."`, split in 255-byte strings.
fn txt_record(selector: &str, domain: &str, k: &str, p: &str) -> String {
    let value = format!("v=DKIM1; k={k}; p={p}");
    let parts: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{selector}._domainkey.{domain}. IN TXT {}", parts.join(" "))
}

/// (private key PEM, k= tag, base64 public key)
fn generate(algo: Algo) -> Result<(String, &'static str, String), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match algo {
        Algo::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let key =
                rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| e.to_string())?;
            let spki = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| e.to_string())?;
            Ok((pem.to_string(), "rsa", b64.encode(spki.as_bytes())))
        }
        Algo::Ed25519 => {
            use ring::rand::SecureRandom;
            use ring::signature::KeyPair;
            let mut seed = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut seed)
                .map_err(|_| "no randomness".to_string())?;
            let pkcs8 = ed25519_pkcs8_v1(&seed);
            let kp = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                .map_err(|e| e.to_string())?;
            let body = b64.encode(&pkcs8);
            let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
            for line in body.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            // RFC 8463: p= is the raw 32-byte public key.
            Ok((pem, "ed25519", b64.encode(kp.public_key().as_ref())))
        }
    }
}

/// The RFC 8410 PKCS#8 (version 1) form of an Ed25519 key: what OpenSSL,
/// python-cryptography, OpenDKIM and rspamd read. (Earlier releases wrote
/// ring's version 2 form, which carries the public key too; it is still read.)
fn ed25519_pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

pub fn sign(cfg: &ServerConfig, file: &Path, domain: Option<&str>) -> i32 {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sx server-email: {}: {e}", file.display());
            return exit::NOINPUT;
        }
    };
    let domain = domain.unwrap_or(cfg.primary_domain()).to_string();
    match control::call(cfg, &ControlRequest::DkimSign { domain }, &[f.as_fd()]) {
        Ok(ControlReply::DkimHeader(h)) => {
            print!("{h}");
            exit::OK
        }
        Ok(other) => control::unexpected(other),
        Err(c) => c,
    }
}

/// The TXT record for an existing private key (RSA: SubjectPublicKeyInfo;
/// Ed25519: the raw public key, RFC 8463), for --check-config.
pub fn public_record(path: &Path, selector: &str, domain: &str) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;
    let b64 = base64::engine::general_purpose::STANDARD;
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rsa_key = match &der {
        PrivateKeyDer::Pkcs1(d) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            rsa::RsaPrivateKey::from_pkcs1_der(d.secret_pkcs1_der()).ok()
        }
        PrivateKeyDer::Pkcs8(d) => {
            use rsa::pkcs8::DecodePrivateKey;
            rsa::RsaPrivateKey::from_pkcs8_der(d.secret_pkcs8_der()).ok()
        }
        _ => None,
    };
    if let Some(k) = rsa_key {
        use rsa::pkcs8::EncodePublicKey;
        let spki = k
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(txt_record(
            selector,
            domain,
            "rsa",
            &b64.encode(spki.as_bytes()),
        ));
    }
    if let PrivateKeyDer::Pkcs8(d) = &der {
        use ring::signature::KeyPair;
        if let Ok(kp) =
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(d.secret_pkcs8_der())
        {
            return Ok(txt_record(
                selector,
                domain,
                "ed25519",
                &b64.encode(kp.public_key().as_ref()),
            ));
        }
    }
    Err(format!("{}: not an RSA or Ed25519 key", path.display()))
}
