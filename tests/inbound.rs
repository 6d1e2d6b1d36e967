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
    srv.add_account("bob@a.test", "pw-bob");
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
    std::thread::sleep(Duration::from_millis(300));
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
        log.contains("spf=fail dkim=none dmarc=fail arc=none folder=Junk"),
        "{log}"
    );
    assert!(
        log.contains("spf=pass dkim=none dmarc=none arc=none"),
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
