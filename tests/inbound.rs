//! Sender checks on port 25 with the real process tree (seccomp, chroot,
//! queue, delivery): dnsmasq serves the sender domains' SPF and DMARC
//! records; what p=quarantine and p=reject do reaches the Maildir (or does
//! not), and the forged Authentication-Results is gone from what is stored.
//! The checks themselves, result by result, are `proc/src/smtp/checks/tests.rs`.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

fn send(srv: &Server, from: &str, msg: &str) -> Vec<String> {
    smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO mx.sender.test",
            &format!("MAIL FROM:<{from}>"),
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("{msg}\r\n."),
            "QUIT",
        ],
    )
}

#[test]
fn quarantine_lands_in_junk_reject_is_refused_and_forged_results_go() {
    let dns_port = free_port();
    let records = [
        "--txt-record=quar.test,v=spf1 ip4:192.0.2.99 -all",
        "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
        "--txt-record=reject.test,v=spf1 ip4:192.0.2.99 -all",
        "--txt-record=_dmarc.reject.test,v=DMARC1; p=reject",
        "--txt-record=good.test,v=spf1 ip4:127.0.0.1 -all",
    ];
    let _dns = dnsmasq("127.0.0.1", dns_port, &records.map(String::from));
    let srv = Server::prepare(&format!(
        "EMAIL_DNS_SERVER=127.0.0.1:{dns_port}\nEMAIL_AUTH_CHECKS=on"
    ))
    .start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let inbox = srv.path("mail/a.test/bob/new");
    let junk = srv.path("mail/a.test/bob/.Junk/new");

    // A long forged field in our name: removing it shortens the spool file.
    let forged = format!(
        "Authentication-Results: mail.a.test; dkim=pass header.d=quar.test\r\n\t{}",
        "x".repeat(3000)
    );
    let r = send(
        &srv,
        "a@quar.test",
        &format!("{forged}\r\nFrom: <a@quar.test>\r\nSubject: q\r\n\r\nquarantined"),
    );
    assert!(r[5].starts_with("250 "), "{r:?}\n{}", srv.log());
    let r = send(
        &srv,
        "a@reject.test",
        "From: <a@reject.test>\r\nSubject: r\r\n\r\nrejected",
    );
    assert!(r[5].starts_with("550 5.7.1 "), "{r:?}");
    let r = send(
        &srv,
        "a@good.test",
        "From: <a@good.test>\r\nSubject: g\r\n\r\ngood",
    );
    assert!(r[5].starts_with("250 "), "{r:?}");

    let t = Instant::now();
    while files_in(&junk).is_empty() || files_in(&inbox).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", srv.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.wait_spool(0);
    let j = files_in(&junk);
    assert_eq!(j.len(), 1, "{j:?}");
    assert!(
        j[0].contains("Authentication-Results: mail.a.test;"),
        "{}",
        j[0]
    );
    assert!(
        j[0].contains("dmarc=fail") && j[0].contains("spf=fail"),
        "{}",
        j[0]
    );
    assert!(
        !j[0].contains("xxxxxxxx"),
        "the forged field is still there"
    );
    assert!(j[0].trim_end().ends_with("quarantined"), "{}", j[0]);
    let i = files_in(&inbox);
    assert_eq!(i.len(), 1, "only the good one in INBOX: {i:?}");
    assert!(
        i[0].contains("spf=pass") && i[0].contains("Subject: g"),
        "{}",
        i[0]
    );

    let log = srv.log();
    assert!(
        log.contains("spf=fail dkim=none dmarc=fail arc=none iprev="),
        "{log}"
    );
    assert!(log.contains(" folder=Junk"), "{log}");
    assert!(
        log.contains("spf=pass dkim=none dmarc=none arc=none iprev="),
        "{log}"
    );
    assert!(
        log.contains("reject: END-OF-MESSAGE from [127.0.0.1]: 550 5.7.1"),
        "{log}"
    );
    assert!(
        !log.contains("killed by seccomp") && !log.contains("panicked"),
        "{log}"
    );
}

/// EHLO and MAIL FROM only; the reply to MAIL.
fn mail_only(srv: &Server, from: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let mut read_reply = |r: &mut BufReader<std::net::TcpStream>| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return line.clone();
        }
    };
    read_reply(&mut r);
    s.write_all(b"EHLO mx.sender.test\r\n").unwrap();
    read_reply(&mut r);
    s.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .unwrap();
    read_reply(&mut r)
}

#[test]
fn dnsbl_listed_client_gets_554_and_rate_limit_421_both_logged() {
    let dns_port = free_port();
    let _dns = dnsmasq(
        "127.0.0.1",
        dns_port,
        &["--host-record=1.0.0.127.bl.test,127.0.0.2".to_string()],
    );
    let srv = Server::prepare(&format!(
        "EMAIL_DNS_SERVER=127.0.0.1:{dns_port}\nEMAIL_DNSBL=bl.test\nEMAIL_RATE_SENDER=1/1h"
    ))
    .start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let r = send(&srv, "a@elsewhere.test", "Subject: x\r\n\r\nx");
    assert!(
        r[2].starts_with("554 5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test"),
        "{r:?}"
    );
    // The second message of that sender: 421, and the server hangs up.
    let r = mail_only(&srv, "a@elsewhere.test");
    assert!(r.starts_with("421 4.7.0 "), "{r}");
    let log = srv.log();
    assert!(
        log.contains("reject: MAIL from [127.0.0.1]: 554 5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test"),
        "{log}"
    );
    assert!(
        log.contains("reject: MAIL from [127.0.0.1]: 421 4.7.0 Too many messages from this sender"),
        "{log}"
    );
    assert!(files_in(&srv.path("mail/a.test/bob/new")).is_empty());
}

#[test]
fn greylisting_state_survives_a_restart() {
    let mut srv = Server::prepare("EMAIL_GREYLIST=on\nEMAIL_GREYLIST_DELAY=2s").start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let r = send(&srv, "a@elsewhere.test", "Subject: x\r\n\r\nx");
    assert!(
        r[3].starts_with(
            "451 4.7.1 <bob@a.test>: Recipient address rejected: Greylisted, try again in "
        ),
        "{r:?}"
    );
    let t = Instant::now();
    assert_eq!(srv.stop(), Some(0));
    srv.launch();
    // The retry, after the delay and a restart: taken, and delivered.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(t.elapsed()));
    let r = send(&srv, "a@elsewhere.test", "Subject: retried\r\n\r\nx");
    assert!(r[3].starts_with("250 "), "{r:?}\n{}", srv.log());
    assert!(r[5].starts_with("250 2.0.0 "), "{r:?}");
    let greylist = std::fs::read_to_string(srv.path("queue/greylist")).unwrap_or_default();
    assert!(greylist.starts_with("SXGREY1\n"), "{greylist}");
    assert!(
        srv.log()
            .contains("reject: RCPT from [127.0.0.1]: 451 4.7.1"),
        "{}",
        srv.log()
    );
}

/// dkimpy's ARC verification of a message, with A's key record as its DNS.
const ARC_VERIFY_PY: &str = r#"
import sys, dkim
record = open(sys.argv[1]).read().strip()
name, rest = record.split(' IN TXT ', 1)
value = ''.join(rest.split('"')[1::2])
msg = open(sys.argv[2], 'rb').read()
def dns(qname, timeout=5):
    q = qname.decode() if isinstance(qname, bytes) else qname
    return value.encode() if q.rstrip('.') == name.rstrip('.') else None
cv, results, reason = dkim.arc_verify(msg, dnsfunc=dns)
print(cv.decode() if isinstance(cv, bytes) else cv, reason)
"#;

/// Issue 17: mail forwarded by an alias leaves with an ARC set (A's key),
/// which dkimpy accepts and which B, checking on its own port 25, finds
/// `arc=pass`.
#[test]
fn mail_forwarded_by_an_alias_leaves_arc_sealed_and_the_next_server_trusts_it() {
    let dns_port = free_port();
    let b = Server::prepare(&format!(
        "EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test\nEMAIL_AUTH_CHECKS=on\nEMAIL_DNS_SERVER=127.0.0.1:{dns_port}"
    ));
    let a = Server::prepare(&format!(
        "EMAIL_AUTH_CHECKS=on\nEMAIL_DNS_SERVER=127.0.0.1:{dns_port}\nEMAIL_ROUTES=b.test=127.0.0.1:{}",
        b.ports.smtp
    ));
    let gen = a.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "dkim-keygen");
    let record = String::from_utf8_lossy(&gen.stdout).trim().to_string();
    let record_file = a.path("record.txt");
    std::fs::write(&record_file, &record).unwrap();
    std::fs::write(a.path("aliases"), "fwd@a.test: carol@b.test\n").unwrap();
    let (name, rest) = record.split_once(" IN TXT ").expect("a TXT record");
    let value: String = rest.split('"').skip(1).step_by(2).collect();
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(250)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let _dns = dnsmasq(
        "127.0.0.1",
        dns_port,
        &[
            "--txt-record=orig.test,v=spf1 ip4:127.0.0.1 -all".to_string(),
            format!(
                "--txt-record={},{}",
                name.trim_end_matches('.'),
                chunks.join(",")
            ),
        ],
    );
    let b = b.start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let a = a.start();
    let r = smtp_dialog_at(
        "127.0.0.1",
        a.ports.smtp,
        &[
            "EHLO mx.orig.test",
            "MAIL FROM:<alice@orig.test>",
            "RCPT TO:<fwd@a.test>",
            "DATA",
            "From: alice@orig.test\r\nTo: fwd@a.test\r\nSubject: forwarded\r\n\r\nhello\r\n.",
            "QUIT",
        ],
    );
    assert!(r[5].starts_with("250 "), "{r:?}\n{}", a.log());
    let (text, file) = first_at_b(&a, &b);
    assert!(text.contains("ARC-Seal: i=1; a=rsa-sha256; t="), "{text}");
    assert!(text.contains("cv=none"), "{text}");
    assert!(
        text.contains("ARC-Authentication-Results: i=1; mail.a.test;"),
        "{text}"
    );
    // B's own results: it verified A's set.
    let b_results = text
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Authentication-Results: mail.b.test;"))
        .take_while(|l| l.starts_with("Authentication-Results") || l.starts_with('\t'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(b_results.contains("arc=pass"), "{b_results}\n{text}");
    let out = python(
        ARC_VERIFY_PY,
        &[&record_file.to_string_lossy(), &file.to_string_lossy()],
    );
    assert_ok(&out, "dkimpy arc_verify");
    let verdict = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(verdict.starts_with("pass"), "dkimpy: {verdict}\n{text}");
}
