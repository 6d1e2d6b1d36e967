//! Delivery status notifications (RFC 3464): a multipart/report to the envelope
//! sender for the recipients that failed, with the original headers (RET=HDRS,
//! the default) or the whole message (RET=FULL). Sent from `<>` so that a bounce
//! is never bounced again.

use ipc::messages::{Envelope, Recipient};

pub struct Failed<'a> {
    pub rcpt: &'a Recipient,
    pub error: &'a str,
}

/// "5.1.1" from a reply like "RCPT: 550 5.1.1 <x>: ..."; defaults by class.
fn status(error: &str) -> String {
    for w in error.split_whitespace() {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 3
            && (parts[0] == "4" || parts[0] == "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            // A permanent failure of a message that was retried until it expired is 4.4.7.
            return w.to_string();
        }
    }
    if error.starts_with("delivery time expired") {
        "4.4.7".into()
    } else {
        "5.0.0".into()
    }
}

/// Keep a header value on one line and in ASCII.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(900)
        .collect()
}

/// The header block of a message (up to the empty line), bounded.
pub fn headers_of(message: &[u8]) -> &[u8] {
    let limit = message.len().min(64 * 1024);
    let m = &message[..limit];
    match m.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &m[..i + 2],
        None => m,
    }
}

/// Who reports, about which message, when.
pub struct Reporter<'a> {
    pub hostname: &'a str,
    /// Domain of the MAILER-DAEMON address.
    pub postmaster_domain: &'a str,
    /// Queue id of the report itself.
    pub id: &'a str,
    pub now: u64,
}

pub fn build(
    rep: &Reporter<'_>,
    env: &Envelope,
    failed: &[Failed<'_>],
    original: &[u8],
    retry_until: Option<u64>,
) -> Vec<u8> {
    let Reporter {
        hostname,
        postmaster_domain,
        id,
        now,
    } = *rep;
    // Some(deadline): a delay warning (Action: delayed) rather than a failure.
    let delayed = retry_until.is_some();
    let date = crate::smtp::rfc5322_date(now);
    let boundary = format!("{id}/{hostname}");
    let full = env.ret_full == Some(true);
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{postmaster_domain}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", clean(&env.from)));
    m.push_str(if delayed {
        "Subject: Delayed Mail (still being retried)\r\n"
    } else {
        "Subject: Undelivered Mail Returned to Sender\r\n"
    });
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!("Message-ID: <{id}@{hostname}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!("--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"));
    m.push_str(&format!(
        "This is the mail system at host {hostname}.\r\n\r\n"
    ));
    if let Some(until) = retry_until {
        m.push_str("Your message could not be delivered yet to one or more recipients.\r\n");
        m.push_str(&format!(
            "The mail system will keep trying until {}; you need not send it again.\r\n",
            crate::smtp::rfc5322_date(until)
        ));
        m.push_str("The last errors were:\r\n\r\n");
    } else {
        m.push_str("Your message could not be delivered to one or more recipients.\r\n");
        m.push_str("The mail system gave these reasons:\r\n\r\n");
    }
    for f in failed {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&f.rcpt.address),
            clean(f.error)
        ));
    }
    m.push_str(&format!("\r\n--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    if let Some(e) = &env.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", clean(e)));
    }
    m.push_str(&format!(
        "Arrival-Date: {}\r\n",
        crate::smtp::rfc5322_date(env.arrived)
    ));
    for f in failed {
        m.push_str("\r\n");
        m.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            clean(&f.rcpt.address)
        ));
        if let Some(o) = &f.rcpt.orcpt {
            m.push_str(&format!("Original-Recipient: rfc822; {}\r\n", clean(o)));
        }
        if delayed {
            let st = status(f.error);
            let st = if st.starts_with('4') {
                st
            } else {
                "4.0.0".to_string()
            };
            m.push_str("Action: delayed\r\n");
            m.push_str(&format!("Status: {st}\r\n"));
        } else {
            m.push_str("Action: failed\r\n");
            m.push_str(&format!("Status: {}\r\n", status(f.error)));
        }
        m.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", clean(f.error)));
        m.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
        if let Some(until) = retry_until {
            m.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                crate::smtp::rfc5322_date(until)
            ));
        }
    }
    let mut out = m.into_bytes();
    if full {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(original);
    } else {
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(headers_of(original));
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(status("RCPT: 550 5.1.1 <x@b>: User unknown"), "5.1.1");
        assert_eq!(
            status("delivery time expired; last error: refused"),
            "4.4.7"
        );
        assert_eq!(status("RCPT: 550 no such user"), "5.0.0");
    }
}
