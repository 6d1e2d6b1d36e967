//! Delivery status notifications (RFC 3464): a multipart/report to the envelope
//! sender for the recipients that failed (with the original headers, RET=HDRS,
//! the default, or the whole message, RET=FULL), are late (a delay warning), or
//! were delivered or relayed and asked for NOTIFY=SUCCESS (headers only). Sent
//! from `<>` so that a notice is never bounced again.

use ipc::messages::{Dest, Envelope, Recipient};

/// How a recipient's error starts when it gave up because the message was
/// too old (EMAIL_QUEUE_LIFETIME): reported as 4.4.7 whatever the last error.
pub const EXPIRED: &str = "delivery time expired; last error: ";

/// One recipient in a report: its error (empty for a success).
pub struct Failed<'a> {
    pub rcpt: &'a Recipient,
    pub error: &'a str,
}

/// What a report says about its recipients.
pub enum Kind<'a> {
    Failure,
    /// Still being retried until then (Action: delayed).
    Delay {
        until: u64,
    },
    /// Delivered here (Action: delivered), or handed to a hop that does not
    /// send delivery notices (the indices of `relayed`, Action: relayed).
    Success {
        relayed: &'a [bool],
    },
}

/// The enhanced status code of a recipient's error: 4.4.7 when it expired,
/// else the first one in it ("550 5.1.1 <x>: ..."), else 5.0.0.
pub fn status(error: &str) -> String {
    if error.starts_with(EXPIRED) {
        return "4.4.7".into();
    }
    for w in error.split_whitespace() {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 3
            && (parts[0] == "4" || parts[0] == "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return w.to_string();
        }
    }
    "5.0.0".into()
}

/// The remote SMTP reply in an error (`550 5.1.1 ...`), if it is one: what
/// Diagnostic-Code's `smtp` type carries. An expired message's last error
/// counts too.
fn smtp_reply(error: &str) -> Option<&str> {
    let e = error.strip_prefix(EXPIRED).unwrap_or(error);
    let b = e.as_bytes();
    (b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'))
        .then_some(e)
}

/// The host of an outbound relay label, for Remote-MTA: `mx.b.test` from
/// `mx.b.test[192.0.2.1]:25`, `[192.0.2.1]` from `[192.0.2.1]:25`; none for
/// `none`.
pub fn mta_of(relay: &str) -> Option<String> {
    let host = match relay.strip_prefix('[') {
        Some(rest) => format!("[{}]", rest.split(']').next().unwrap_or_default()),
        None => relay.split('[').next().unwrap_or_default().to_string(),
    };
    (!host.is_empty() && host != "none" && host != "[]").then_some(host)
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
    kind: Kind<'_>,
) -> Vec<u8> {
    let Reporter {
        hostname,
        postmaster_domain,
        id,
        now,
    } = *rep;
    let retry_until = match kind {
        Kind::Delay { until } => Some(until),
        _ => None,
    };
    let delayed = retry_until.is_some();
    let success = match kind {
        Kind::Success { relayed } => Some(relayed),
        _ => None,
    };
    let date = crate::smtp::rfc5322_date(now);
    let boundary = format!("{id}/{hostname}");
    // RFC 3461 4.3: only a failure returns the whole message.
    let full = env.ret_full == Some(true) && success.is_none() && !delayed;
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{postmaster_domain}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", clean(&env.from)));
    m.push_str(if delayed {
        "Subject: Delayed Mail (still being retried)\r\n"
    } else if success.is_some() {
        "Subject: Successful Mail Delivery Report\r\n"
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
    if success.is_some() {
        m.push_str("Your message was successfully delivered to the destinations listed below.\r\n");
        m.push_str(
            "A destination marked relayed went to a system that sends no delivery notices;\r\n",
        );
        m.push_str("you may still hear of errors there.\r\n\r\n");
    } else if let Some(until) = retry_until {
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
    for (n, f) in failed.iter().enumerate() {
        let what = match success {
            Some(relayed) if relayed.get(n).copied().unwrap_or(false) => "relayed",
            Some(_) => "delivered",
            None => f.error,
        };
        m.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&f.rcpt.address),
            clean(what)
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
    for (n, f) in failed.iter().enumerate() {
        m.push_str("\r\n");
        // The address that failed; for an alias, that is its target, and the
        // alias is the original recipient (RFC 3464 2.3.1, 2.3.2).
        let r = f.rcpt;
        let fin = match &r.dest {
            Dest::Remote { address } => address,
            Dest::Local { mailbox } => mailbox,
        };
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", clean(fin)));
        match &r.orcpt {
            Some(o) => m.push_str(&format!("Original-Recipient: rfc822; {}\r\n", clean(o))),
            None if !r.address.eq_ignore_ascii_case(fin) => m.push_str(&format!(
                "Original-Recipient: rfc822; {}\r\n",
                clean(&r.address)
            )),
            None => {}
        }
        if let Some(relayed) = success {
            let relayed = relayed.get(n).copied().unwrap_or(false);
            m.push_str(if relayed {
                "Action: relayed\r\n"
            } else {
                "Action: delivered\r\n"
            });
            m.push_str("Status: 2.0.0\r\n");
            if let Some(host) = &r.remote_mta {
                m.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(host)));
            }
            m.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
            continue;
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
        if let Some(host) = &r.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(host)));
        }
        match smtp_reply(f.error) {
            Some(reply) => m.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", clean(reply))),
            None => m.push_str(&format!(
                "Diagnostic-Code: X-Scorpiox; {}\r\n",
                clean(f.error)
            )),
        }
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
        assert_eq!(status("550 5.1.1 <x@b>: User unknown"), "5.1.1");
        assert_eq!(
            status("delivery time expired; last error: refused"),
            "4.4.7"
        );
        // Issue 15.6: the last remote code does not hide the expiry.
        assert_eq!(
            status("delivery time expired; last error: 451 4.3.0 try later"),
            "4.4.7"
        );
        assert_eq!(status("550 no such user"), "5.0.0");
        assert_eq!(smtp_reply("550 5.1.1 x"), Some("550 5.1.1 x"));
        assert_eq!(
            smtp_reply("delivery time expired; last error: 451 4.3.0 x"),
            Some("451 4.3.0 x")
        );
        assert_eq!(smtp_reply("[127.0.0.1]:25: connection refused"), None);
        assert_eq!(
            mta_of("mx.b.test[192.0.2.1]:25").as_deref(),
            Some("mx.b.test")
        );
        assert_eq!(mta_of("[192.0.2.1]:2525").as_deref(), Some("[192.0.2.1]"));
        assert_eq!(mta_of("none"), None);
    }

    /// Issue 15.6: an alias's failed target is the Final-Recipient, the alias
    /// the Original-Recipient; Remote-MTA names the host; the Diagnostic-Code
    /// is the bare SMTP reply.
    #[test]
    fn fields_of_a_failed_alias_target() {
        let r = Recipient {
            address: "team@a.test".into(),
            orcpt: None,
            notify: 0,
            dest: Dest::Remote {
                address: "John.Doe@b.test".into(),
            },
            state: ipc::messages::RcptState::Pending,
            remote_mta: Some("mx.b.test".into()),
        };
        let env = Envelope {
            id: "X".into(),
            from: "alice@c.test".into(),
            recipients: vec![r.clone()],
            arrived: 0,
            size: 0,
            ret_full: None,
            envid: None,
            body_8bit: false,
            smtputf8: false,
            helo: String::new(),
            client_ip: String::new(),
            auth: None,
            warned: false,
            junk: false,
        };
        let rep = Reporter {
            hostname: "mail.a.test",
            postmaster_domain: "a.test",
            id: "Y",
            now: 0,
        };
        let f = [Failed {
            rcpt: &r,
            error: "550 5.1.1 <John.Doe@b.test>: Recipient address rejected",
        }];
        let text =
            String::from_utf8(build(&rep, &env, &f, b"Subject: x\r\n\r\n", Kind::Failure)).unwrap();
        for want in [
            "Final-Recipient: rfc822; John.Doe@b.test\r\n",
            "Original-Recipient: rfc822; team@a.test\r\n",
            "Action: failed\r\nStatus: 5.1.1\r\n",
            "Remote-MTA: dns; mx.b.test\r\n",
            "Diagnostic-Code: smtp; 550 5.1.1 <John.Doe@b.test>: Recipient address rejected\r\n",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }
}
