//! What of a message the checks look at, bounded. mail-auth hashes the body
//! once for every distinct (canonicalization, algorithm, l=) of the DKIM and
//! ARC signatures it finds while parsing, and verifies every signature with
//! a DNS lookup of its own: a 100 KiB header of signatures with distinct l=
//! over a 50 MB body would cost minutes of CPU. As OpenDKIM's
//! MaximumSignaturesToVerify, only the first few signatures are looked at;
//! a chain of more ARC sets than anyone forwards through is not looked at.

use super::results_field::fields;
use std::borrow::Cow;

/// DKIM-Signature fields verified, from the top.
pub const MAX_DKIM: usize = 5;
/// ARC sets (RFC 8617 allows 50); more, and ARC is not evaluated.
pub const MAX_ARC: usize = 10;

fn named(field: &[u8], name: &str) -> bool {
    field
        .iter()
        .position(|&b| b == b':')
        .and_then(|i| field.get(..i))
        .is_some_and(|n| n.trim_ascii_end().eq_ignore_ascii_case(name.as_bytes()))
}

/// `message`, or a copy whose header keeps only the first MAX_DKIM
/// DKIM-Signature fields and, past MAX_ARC sets, no ARC fields at all.
pub fn for_checks(message: &[u8]) -> Cow<'_, [u8]> {
    let head = crate::imap::mime::header_block(message);
    let count = |name: &str| fields(head).filter(|f| named(f, name)).count();
    let (dkim, arc) = (count("DKIM-Signature"), count("ARC-Message-Signature"));
    if dkim <= MAX_DKIM && arc <= MAX_ARC {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut seen = 0;
    for f in fields(head) {
        let drop = if named(f, "DKIM-Signature") {
            seen += 1;
            seen > MAX_DKIM
        } else {
            arc > MAX_ARC
                && [
                    "ARC-Message-Signature",
                    "ARC-Seal",
                    "ARC-Authentication-Results",
                ]
                .iter()
                .any(|n| named(f, n))
        };
        if !drop {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(message.get(head.len()..).unwrap_or_default());
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_past_the_bound_are_not_looked_at() {
        let mut m = Vec::new();
        for i in 0..8 {
            m.extend_from_slice(
                format!("DKIM-Signature: v=1; d=d{i}.test;\r\n b=x\r\n").as_bytes(),
            );
        }
        m.extend_from_slice(b"Subject: s\r\n\r\nbody\r\n");
        let out = for_checks(&m);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("DKIM-Signature:").count(), MAX_DKIM);
        assert!(
            text.contains("d=d4.test") && !text.contains("d=d5.test"),
            "{text}"
        );
        assert!(text.ends_with("Subject: s\r\n\r\nbody\r\n"), "{text}");
        let small = b"DKIM-Signature: v=1\r\n\r\nx";
        assert!(matches!(for_checks(small), Cow::Borrowed(_)));
    }

    #[test]
    fn too_long_an_arc_chain_is_left_out() {
        let mut m = Vec::new();
        for i in 1..=(MAX_ARC + 1) {
            for n in [
                "ARC-Seal",
                "ARC-Message-Signature",
                "ARC-Authentication-Results",
            ] {
                m.extend_from_slice(format!("{n}: i={i}\r\n").as_bytes());
            }
        }
        m.extend_from_slice(b"From: a@b.test\r\n\r\nx");
        let out = for_checks(&m);
        assert_eq!(String::from_utf8_lossy(&out), "From: a@b.test\r\n\r\nx");
    }
}
