//! The `Received:` trace header (RFC 5321 §4.4, RFC 3848 protocol names).

pub use crate::date::rfc5322_date;

pub struct Trace<'a> {
    pub helo: &'a str,
    pub ip: std::net::IpAddr,
    pub hostname: &'a str,
    pub proto: &'a str,
    pub id: &'a str,
    pub tls: Option<&'a str>,
    pub auth: Option<&'a str>,
    /// A local submission's user and uid.
    pub local: Option<(&'a str, u32)>,
    /// Named only when there is exactly one recipient (privacy of Bcc).
    pub rcpt: Option<&'a str>,
    pub time: u64,
}

/// Keep client-supplied text inside a header: printable ASCII, no parentheses.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')' | '\\'))
        .take(255)
        .collect()
}

/// An address for `for <...>`: as `clean`, but non-ASCII letters stay (the
/// transaction used SMTPUTF8, so the header may carry UTF-8, RFC 6532).
fn clean_addr(s: &str) -> String {
    s.chars()
        .filter(|c| {
            (c.is_ascii_graphic() && !matches!(c, '(' | ')' | '\\' | '<' | '>'))
                || (!c.is_ascii() && c.is_alphanumeric())
        })
        .take(255)
        .collect()
}

impl Trace<'_> {
    pub fn header(&self) -> String {
        let mut h = format!(
            "Received: from {} ([{}])\r\n\tby {} (scorpiox) with {} id {}",
            clean(self.helo),
            self.ip,
            self.hostname,
            self.proto,
            self.id
        );
        if let Some(t) = self.tls {
            let mut it = t.splitn(2, ' ');
            let (v, c) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            h.push_str(&format!("\r\n\t(version={v} cipher={c})"));
        }
        if let Some(a) = self.auth {
            h.push_str(&format!("\r\n\t(authenticated as {})", clean(a)));
        }
        if let Some((name, uid)) = self.local {
            h.push_str(&format!("\r\n\t(local user {}, uid {uid})", clean(name)));
        }
        match self.rcpt {
            Some(r) => h.push_str(&format!(
                "\r\n\tfor <{}>; {}\r\n",
                clean_addr(r),
                rfc5322_date(self.time)
            )),
            None => h.push_str(&format!(";\r\n\t{}\r\n", rfc5322_date(self.time))),
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_500_000),
            "Tue, 24 Nov 2026 06:00:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
