//! The `Received:` trace header (RFC 5321 §4.4, RFC 3848 protocol names) and an
//! RFC 5322 date, without a date library.

/// "Tue, 24 Nov 2026 10:00:00 +0000" for a Unix time.
pub fn rfc5322_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WD[days.rem_euclid(7) as usize],
        d,
        MO[(mo - 1) as usize],
        y,
        h,
        m,
        s
    )
}

pub struct Trace<'a> {
    pub helo: &'a str,
    pub ip: std::net::IpAddr,
    pub hostname: &'a str,
    pub proto: &'a str,
    pub id: &'a str,
    pub tls: Option<&'a str>,
    pub auth: Option<&'a str>,
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
