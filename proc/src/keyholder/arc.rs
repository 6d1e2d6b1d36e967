//! ARC sealing (RFC 8617) of mail this server forwards (an alias to another
//! domain): one set of ARC-Authentication-Results (our own
//! Authentication-Results, which smtp put at the top of the message after its
//! checks), ARC-Message-Signature and ARC-Seal, signed with the domain's DKIM
//! key. Built here because only keyholder holds the keys, from the message
//! alone: mail-auth's sealer wants the verification results as objects that
//! only a DNS-backed verification produces, and keyholder has no network.
//! The set's chain validation comes from our own result: `cv=none` for the
//! first set, `cv=pass` when smtp found `arc=pass`; a failed chain is not
//! sealed (RFC 8617 5.1.2 lets a sealer stop there).
//!
//! Canonicalization is relaxed for header fields and body (mail-auth's), as
//! ARC requires for the seal (RFC 8617 4.1.3) and as our DKIM signatures do.

use mail_auth::common::crypto::{Sha256, SigningKey};
use mail_auth::dkim::Canonicalization;
use mail_auth::AuthenticatedMessage;

/// ARC allows 50 sets (RFC 8617 4.2.1).
const MAX_SETS: usize = 50;

/// The three fields of the new set (ARC-Seal, ARC-Message-Signature,
/// ARC-Authentication-Results), CRLF-terminated, to go at the top.
pub fn seal<K: SigningKey<Hasher = Sha256>>(
    key: &K,
    domain: &str,
    selector: &str,
    authserv_id: &str,
    message: &[u8],
    h: &[String],
    now: u64,
) -> Result<String, String> {
    let msg = AuthenticatedMessage::parse(message).ok_or("message cannot be parsed")?;
    let (top_name, top_value) = *msg.headers.first().ok_or("message has no header")?;
    if !top_name.eq_ignore_ascii_case(b"Authentication-Results") || !names(top_value, authserv_id) {
        return Err("no Authentication-Results of ours at the top: not sealed".into());
    }
    let results = String::from_utf8_lossy(top_value);
    if msg.as_headers.len() >= MAX_SETS {
        return Err("ARC chain at its 50 sets: not sealed".into());
    }
    let prior = prior_sets(&msg)?;
    let i = prior.len() + 1;
    let cv = if prior.is_empty() {
        "none"
    } else if arc_result(&results) == Some("pass") {
        "pass"
    } else {
        return Err("the ARC chain did not validate here: not sealed".into());
    };
    let algo = match key.algorithm() {
        mail_auth::common::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
        _ => "rsa-sha256",
    };
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);

    // ARC-Authentication-Results: our results under instance i.
    let aar_value = format!(" i={i}; {}", results.trim_start());
    let aar_value = if aar_value.ends_with('\n') {
        aar_value
    } else {
        format!("{aar_value}\r\n")
    };

    // ARC-Message-Signature: a DKIM signature of the message as it leaves.
    let body = message.get(msg.body_offset as usize..).unwrap_or_default();
    let bh = b64(key
        .hash(Canonicalization::Relaxed.canonical_body(body, 0))
        .as_ref());
    let mut signed = Vec::new();
    let mut names_signed = Vec::new();
    let mut used = vec![false; msg.headers.len()];
    for name in h {
        // The last instance not yet taken, as DKIM selects (RFC 6376 5.4.2).
        let found = msg.headers.iter().enumerate().rev().find(|(j, (n, _))| {
            used.get(*j) == Some(&false) && n.eq_ignore_ascii_case(name.as_bytes())
        });
        if let Some((j, (n, v))) = found {
            if let Some(u) = used.get_mut(j) {
                *u = true;
            }
            Canonicalization::Relaxed.canonicalize_headers([(*n, *v)].into_iter(), &mut signed);
        }
        names_signed.push(name.clone());
    }
    let ams_unsigned = format!(
        " i={i}; a={algo}; c=relaxed/relaxed; d={domain}; s={selector}; t={now};\r\n\th={};\r\n\tbh={bh}; b=",
        names_signed.join(":")
    );
    Canonicalization::Relaxed.canonicalize_headers(
        [(&b"ARC-Message-Signature"[..], ams_unsigned.as_bytes())].into_iter(),
        &mut signed,
    );
    let ams_b = key
        .sign(signed.as_slice())
        .map_err(|e| format!("ARC signing failed: {e}"))?;
    let ams_value = format!("{ams_unsigned}{}\r\n", b64(&ams_b));

    // ARC-Seal: over every set so far, in order, and this one.
    let as_unsigned =
        format!(" i={i}; a={algo}; t={now}; cv={cv};\r\n\td={domain}; s={selector}; b=");
    let mut chain = Vec::new();
    for (aar, ams, seal) in &prior {
        Canonicalization::Relaxed.canonicalize_headers([*aar, *ams, *seal].into_iter(), &mut chain);
    }
    Canonicalization::Relaxed.canonicalize_headers(
        [
            (&b"ARC-Authentication-Results"[..], aar_value.as_bytes()),
            (&b"ARC-Message-Signature"[..], ams_value.as_bytes()),
            (&b"ARC-Seal"[..], as_unsigned.as_bytes()),
        ]
        .into_iter(),
        &mut chain,
    );
    let as_b = key
        .sign(chain.as_slice())
        .map_err(|e| format!("ARC signing failed: {e}"))?;
    Ok(format!(
        "ARC-Seal:{as_unsigned}{}\r\nARC-Message-Signature:{ams_value}ARC-Authentication-Results:{aar_value}",
        b64(&as_b)
    ))
}

type Field<'x> = (&'x [u8], &'x [u8]);

/// The sets already on the message, ordered by instance 1..n; an error when
/// they do not make a chain (a missing field or instance).
fn prior_sets<'x>(
    msg: &AuthenticatedMessage<'x>,
) -> Result<Vec<(Field<'x>, Field<'x>, Field<'x>)>, String> {
    let n = msg.as_headers.len();
    if msg.ams_headers.len() != n || msg.aar_headers.len() != n || msg.has_arc_errors {
        return Err("the ARC chain is broken: not sealed".into());
    }
    let mut sets = Vec::with_capacity(n);
    for i in 1..=n as u32 {
        let seal = msg.as_headers.iter().find(|h| h.header.i == i);
        let ams = msg.ams_headers.iter().find(|h| h.header.i == i);
        let aar = msg.aar_headers.iter().find(|h| h.header.i == i);
        match (aar, ams, seal) {
            (Some(r), Some(m), Some(s)) => {
                sets.push(((r.name, r.value), (m.name, m.value), (s.name, s.value)))
            }
            _ => return Err(format!("ARC set {i} is incomplete: not sealed")),
        }
    }
    Ok(sets)
}

/// Whether a header value (after the colon) starts with authserv-id `id`.
fn names(value: &[u8], id: &str) -> bool {
    let v = String::from_utf8_lossy(value);
    let v = v.trim_start();
    v.get(..id.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(id))
        && v[id.len()..].starts_with(|c: char| c == ';' || c.is_whitespace())
}

/// The `arc=` result in our Authentication-Results value.
fn arc_result(results: &str) -> Option<&str> {
    results
        .split(';')
        .map(str::trim)
        .find_map(|r| r.strip_prefix("arc="))
        .and_then(|r| r.split_whitespace().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_results_and_their_arc_word() {
        assert!(names(b" mail.a.test;\r\n\tspf=pass", "mail.a.test"));
        assert!(names(b" MAIL.A.TEST ; none", "mail.a.test"));
        assert!(!names(b" mail.a.test.evil; none", "mail.a.test"));
        assert_eq!(
            arc_result(" mx; spf=pass x;\r\n\tarc=pass smtp.remote-ip=1.2.3.4;\r\n\tdmarc=pass"),
            Some("pass")
        );
        assert_eq!(arc_result(" mx; spf=pass"), None);
    }
}
