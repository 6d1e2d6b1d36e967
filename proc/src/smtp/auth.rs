//! AUTH PLAIN and LOGIN (RFC 4954, RFC 4616), checked by keyholder, which also
//! counts failures (proc/src/login_failures.rs) and answers them ever more slowly.

use base64::Engine;

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`; an authzid other than the
/// authcid is refused (no proxy authorization).
pub fn parse_plain(raw: &[u8]) -> Option<(String, String)> {
    let mut parts = raw.split(|b| *b == 0);
    let (authz, user, pw) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || pw.is_empty() {
        return None;
    }
    let user = String::from_utf8(user.to_vec()).ok()?;
    let pw = String::from_utf8(pw.to_vec()).ok()?;
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(user.as_bytes()) {
        return None;
    }
    Some((user, pw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        assert_eq!(
            parse_plain(b"\0bob@a.test\0pw"),
            Some(("bob@a.test".into(), "pw".into()))
        );
        assert_eq!(
            parse_plain(b"bob@a.test\0bob@a.test\0pw").map(|x| x.0),
            Some("bob@a.test".into())
        );
        assert_eq!(parse_plain(b"eve\0bob@a.test\0pw"), None);
        assert_eq!(parse_plain(b"\0bob\0"), None);
    }
}
