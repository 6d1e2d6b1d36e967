//! DKIM signing with mail-auth: relaxed/relaxed, RSA-SHA256 or Ed25519-SHA256.
//! Only domains the parent gave a key for are signed.

use ipc::messages::{DkimAlgo, DkimKey, KeyKind};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use std::os::fd::OwnedFd;

/// Header fields signed when present (RFC 6376 §5.4.1 recommendations).
/// Absent ones are not named in `h=`, except OVERSIGNED: a mailing list that
/// adds List-Id or Sender keeps the signature valid.
pub const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "List-Id",
];

/// Named once more than they occur (RFC 6376 8.15, as rspamd does): nobody can
/// add one of these, or a second one, without breaking the signature.
pub const OVERSIGNED: [&str; 5] = ["From", "To", "Cc", "Subject", "Reply-To"];

/// `h=` for this message: the SIGNED_HEADERS it has (mail-auth signs every
/// instance of a named field), then each OVERSIGNED name once more (mail-auth
/// lists a name it did not find as an empty, signed field).
pub fn headers_for(message: &[u8]) -> Vec<String> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let names: Vec<&[u8]> = message[..head_end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b" ") && !l.starts_with(b"\t"))
        .filter_map(|l| {
            l.iter()
                .position(|&b| b == b':')
                .map(|i| l[..i].trim_ascii())
        })
        .collect();
    let mut h: Vec<String> = SIGNED_HEADERS
        .iter()
        .filter(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s.as_bytes())))
        .map(|s| s.to_string())
        .collect();
    h.extend(OVERSIGNED.iter().map(|s| s.to_string()));
    h
}

/// A key shared by the signers made from it: each message gets its own
/// signer (its own `h=`) without copying the key or locking it.
struct SharedKey<K>(std::sync::Arc<K>);

impl<K> Clone for SharedKey<K> {
    fn clone(&self) -> Self {
        SharedKey(self.0.clone())
    }
}

impl<K: SigningKey> SigningKey for SharedKey<K> {
    type Hasher = K::Hasher;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        self.0.algorithm()
    }
}

/// A loaded key; a signer is built around it for each message, with that
/// message's `h=`.
enum Key {
    Rsa(SharedKey<RsaKey<Sha256>>),
    Ed25519(SharedKey<Ed25519Key>),
}

struct Entry {
    domain: String,
    selector: String,
    key: Key,
}

#[derive(Default)]
pub struct DkimKeys {
    keys: Vec<Entry>,
}

fn der(k: &DkimKey) -> PrivateKeyDer<'static> {
    match k.kind {
        KeyKind::Pkcs8 => PrivateKeyDer::Pkcs8(k.der.clone().into()),
        KeyKind::Pkcs1 => PrivateKeyDer::Pkcs1(k.der.clone().into()),
        KeyKind::Sec1 => PrivateKeyDer::Sec1(k.der.clone().into()),
    }
}

impl DkimKeys {
    pub fn load(list: &[DkimKey]) -> DkimKeys {
        let mut keys = Vec::new();
        for k in list {
            let key = match k.algo {
                DkimAlgo::RsaSha256 => RsaKey::<Sha256>::from_key_der(der(k))
                    .map(|key| Key::Rsa(SharedKey(key.into()))),
                DkimAlgo::Ed25519Sha256 => Ed25519Key::from_pkcs8_maybe_unchecked_der(&k.der)
                    .map(|key| Key::Ed25519(SharedKey(key.into()))),
            };
            match key {
                Ok(key) => keys.push(Entry {
                    domain: k.domain.to_ascii_lowercase(),
                    selector: k.selector.clone(),
                    key,
                }),
                Err(e) => log::error!("DKIM key for {} unusable: {e}", k.domain),
            }
        }
        DkimKeys { keys }
    }

    /// Every `DKIM-Signature:` header for `domain` (one per key), CRLF-terminated.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<String, String> {
        let domain = domain.to_ascii_lowercase();
        let mut out = String::new();
        let h = headers_for(message);
        for e in self.keys.iter().filter(|e| e.domain == domain) {
            let sig = match &e.key {
                Key::Rsa(k) => signer(k.clone(), &domain, &e.selector, &h).sign(message),
                Key::Ed25519(k) => signer(k.clone(), &domain, &e.selector, &h).sign(message),
            }
            .map_err(|err| format!("DKIM signing for {domain} failed: {err}"))?;
            out.push_str(&sig.to_header());
        }
        if out.is_empty() {
            return Err(format!("no DKIM key for {domain}"));
        }
        Ok(out)
    }
}

impl DkimKeys {
    /// An ARC set (`arc.rs`) for `message` under `domain`'s first key.
    pub fn arc_seal(
        &self,
        domain: &str,
        authserv_id: &str,
        message: &[u8],
        now: u64,
    ) -> Result<String, String> {
        let domain = domain.to_ascii_lowercase();
        let e = self
            .keys
            .iter()
            .find(|e| e.domain == domain)
            .ok_or_else(|| format!("no DKIM key for {domain}"))?;
        let h = headers_for(message);
        match &e.key {
            Key::Rsa(k) => super::arc::seal(k, &domain, &e.selector, authserv_id, message, &h, now),
            Key::Ed25519(k) => {
                super::arc::seal(k, &domain, &e.selector, authserv_id, message, &h, now)
            }
        }
    }
}

fn signer<T: SigningKey<Hasher = Sha256>>(
    key: T,
    domain: &str,
    selector: &str,
    h: &[String],
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(h.iter().cloned())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// Read a message from an fd handed over by queue or the parent, bounded, from
/// offset 0 whatever the (possibly shared) file offset is.
pub fn read_message(fd: OwnedFd, max: u64, size: Option<u64>) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::from(fd);
    let limit = size.unwrap_or(u64::MAX).min(max + 1);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while (buf.len() as u64) < limit {
        let want = chunk.len().min((limit - buf.len() as u64) as usize);
        let n = f
            .read_at(&mut chunk[..want], buf.len() as u64)
            .map_err(|e| format!("cannot read message: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.len() as u64 > max {
        return Err("message too large to sign".into());
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15.4: present fields are named (mail-auth signs each instance),
    /// absent ones only if over-signed.
    #[test]
    fn h_names_present_fields_and_oversigns_five() {
        let m = b"Received: x\r\nFrom: a@b\r\nsubject: s\r\nX-Other: y\r\n\tcont: z\r\nDate: d\r\n\r\nList-Id: body\r\n";
        assert_eq!(
            headers_for(m),
            ["From", "Subject", "Date", "From", "To", "Cc", "Subject", "Reply-To"]
        );
    }
}
