//! Two daemons on loopback: A (a.test) routes b.test to B with a static route.
//! Mail submitted at A arrives in B's Maildir over STARTTLS, DKIM-signed by A's
//! keyholder, and dkimpy verifies the signature against A's published record.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// dkimpy verifies `file`'s signature against the DKIM record in `record`.
fn assert_dkim_verified(record: &std::path::Path, file: &std::path::Path) {
    assert!(dkimpy_verifies(record, file), "{}", file.display());
}

#[test]
fn submitted_at_a_arrives_at_b_signed_over_starttls() {
    let (a, b, record) = a_and_b_with_aliases("");
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));

    submit_as_bob(&a, &["carol@b.test"], "From: Bob <bob@a.test>\r\nTo: carol@b.test\r\nSubject: across\r\nMessage-ID: <x1@a.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nhello b\r\n.leading dot line\r\n");

    let inbox = b.path("mail/b.test/carol/new");
    let t = Instant::now();
    let file = loop {
        if let Some(f) = std::fs::read_dir(&inbox).unwrap().flatten().next() {
            break f.path();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not delivered at B.\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("DKIM-Signature: v=1; a=rsa-sha256; s=default; d=a.test"),
        "{text}"
    );
    assert!(
        text.contains("by mail.b.test (scorpiox) with ESMTPS id"),
        "B's Received: {text}"
    );
    assert!(
        text.contains("by mail.a.test (scorpiox) with ESMTPSA id"),
        "A's Received: {text}"
    );
    assert!(
        text.contains("\r\n.leading dot line\r\n"),
        "dot-stuffing: {text}"
    );
    assert_dkim_verified(&record, &file);
    a.wait_log(
        "status=sent (250 2.0.0 Ok: queued as",
        1,
        Duration::from_secs(5),
    );
    a.wait_log("removed", 1, Duration::from_secs(5));
    assert_eq!(std::fs::read_dir(a.path("queue/msg")).unwrap().count(), 0);
}

/// B (b.test, mail.b.test, account carol) and A (a.test, a DKIM key, routing b.test to B,
/// with `aliases`); returns A, B and the DKIM record A publishes.
/// The first file to appear in `dir` (10 s at most).
fn first_file(srv: &Server, dir: &std::path::Path, what: &str) -> std::path::PathBuf {
    let t = Instant::now();
    loop {
        if let Some(f) = std::fs::read_dir(dir).unwrap().flatten().next() {
            return f.path();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_and_b_with_aliases(aliases: &str) -> (Server, Server, std::path::PathBuf) {
    let b = Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test").start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let a = Server::prepare(&format!("EMAIL_ROUTES=b.test=127.0.0.1:{}", b.ports.smtp));
    let gen = a.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "dkim-keygen");
    let record = a.path("record.txt");
    std::fs::write(&record, &gen.stdout).unwrap();
    std::fs::write(a.path("aliases"), aliases).unwrap();
    (a.start(), b, record)
}

/// A plain SMTP transaction on A's port 25; asserts the 250.
fn send_on_25(a: &Server, from: &str, rcpt: &str, data: &str) {
    let (mail, to) = (format!("MAIL FROM:<{from}>"), format!("RCPT TO:<{rcpt}>"));
    let r = smtp_dialog_at(
        "127.0.0.1",
        a.ports.smtp,
        &["EHLO c.test", &mail, &to, "DATA", data],
    );
    assert!(r[5].starts_with("250 2.0.0 Ok: queued"), "{r:?}");
}

/// Issue 14.6: DKIM vouches only for what this server authenticated. Mail
/// from port 25 with a local sender, forwarded by an alias, goes out unsigned.
#[test]
fn unauthenticated_mail_forwarded_by_an_alias_is_not_signed() {
    let (a, b, _) = a_and_b_with_aliases("fwd@a.test: carol@b.test\n");
    send_on_25(
        &a,
        "ceo@a.test",
        "fwd@a.test",
        "From: ceo@a.test\r\nSubject: wire money\r\n\r\npay\r\n.",
    );
    let (text, _) = first_at_b(&a, &b);
    assert!(text.contains("Subject: wire money"), "{text}");
    assert!(!text.contains("DKIM-Signature"), "signed: {text}");
}

/// Issue 14.6: bounces are generated here, so they are signed (with the local
/// domain their From names), and dkimpy verifies them at the far side.
#[test]
fn a_bounce_to_a_remote_sender_is_signed() {
    let (a, b, record) = a_and_b_with_aliases("fwd@a.test: nobody@b.test\n");
    send_on_25(
        &a,
        "carol@b.test",
        "fwd@a.test",
        "From: carol@b.test\r\nSubject: doomed\r\n\r\nx\r\n.",
    );
    let (text, file) = first_at_b(&a, &b);
    assert!(text.contains("multipart/report"), "{text}");
    assert!(
        text.contains("DKIM-Signature: v=1; a=rsa-sha256; s=default; d=a.test"),
        "{text}"
    );
    assert_dkim_verified(&record, &file);
}

const DSN_PY: &str = r#"
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.compat32)
assert m.get_content_type() == 'multipart/report', m.get_content_type()
assert m.get_param('report-type') == 'delivery-status'
parts = m.get_payload()
assert parts[0].get_content_type() == 'text/plain'
assert parts[1].get_content_type() == 'message/delivery-status'
assert parts[2].get_content_type() == 'text/rfc822-headers'
status = parts[1].as_string()
headers = parts[2].get_payload()
print(m['From'].split('<')[1].rstrip('>'), m['To'], sep='|')
for k in ('Final-Recipient: rfc822; nobody@b.test', 'Action: failed', 'Status: 5.1.1', 'Reporting-MTA: dns; mail.a.test',
          'Remote-MTA: dns; [127.0.0.1]', 'Diagnostic-Code: smtp; 550 5.1.1 ',
          # Issue 15.6/15.7: an alias's target is the final recipient, as written.
          'Final-Recipient: rfc822; Nobody.Two@b.test\nOriginal-Recipient: rfc822; team@a.test'):
    assert k in status, (k, status)
assert 'RCPT:' not in status, status
# Per recipient fields, as a DSN parser sees them.
blocks = parts[1].get_payload()
assert [b['Final-Recipient'] for b in blocks[1:]] == ['rfc822; nobody@b.test', 'rfc822; Nobody.Two@b.test'], [b['Final-Recipient'] for b in blocks]
assert all(b['Diagnostic-Code'].startswith('smtp; 550 5.1.1') for b in blocks[1:]), [b['Diagnostic-Code'] for b in blocks]
assert 'Subject: doomed' in headers, headers
assert 'secret body' not in m.as_string()
print('ok')
"#;

#[test]
fn unknown_user_at_b_bounces_to_the_sender_and_no_route_defers() {
    let b = Server::prepare("EMAIL_DOMAIN=b.test").start();
    let a = Server::prepare(&format!("EMAIL_ROUTES=b.test=127.0.0.1:{}", b.ports.smtp));
    std::fs::write(
        a.path("aliases"),
        "fwd@a.test: nobody@b.test\nteam@a.test: Nobody.Two@b.test\n",
    )
    .unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log(
        "directory: 1 account(s), 2 alias(es)",
        1,
        Duration::from_secs(5),
    );
    submit_as_bob(
        &a,
        &["nobody@b.test", "team@a.test", "someone@c.test"],
        "Subject: doomed\r\n\r\nsecret body\r\n",
    );
    a.wait_log("to=<nobody@b.test>", 1, Duration::from_secs(10));
    a.wait_log("to=<Nobody.Two@b.test>", 1, Duration::from_secs(10));
    a.wait_log("to=<someone@c.test>", 1, Duration::from_secs(40));
    let log = a.log();
    assert!(
        log.contains("relay=[127.0.0.1]:") && log.contains("dsn=5.1.1 status=bounced (550 5.1.1"),
        "{log}"
    );
    // Tests never ask a real DNS server: the harness points DNS at a closed port.
    assert!(
        log.contains("status=deferred (MX lookup for c.test failed"),
        "{log}"
    );
    // The bounce lands in bob's INBOX at A, RFC 3464 shaped, with the original headers only.
    let inbox = a.path("mail/a.test/bob/new");
    let file = first_file(&a, &inbox, "no bounce");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("Return-Path: <>\r\n"), "{text}");
    let v = python(DSN_PY, &[&file.to_string_lossy()]);
    assert_ok(&v, "dsn shape");
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        "MAILER-DAEMON@a.test|<bob@a.test>\nok"
    );
    // The deferred recipient keeps the original queued; the bounce itself is gone.
    a.wait_log(
        "sender non-delivery notification",
        1,
        Duration::from_secs(5),
    );
    a.wait_spool(1);

    // From <> (port 25, through an alias to b.test): fails at B, is not bounced.
    let py = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('', ['fwd@a.test'], 'Subject: from null\r\n\r\nx\r\n')
s.quit()
"#;
    assert_ok(&python(py, &[&a.ports.smtp.to_string()]), "null sender");
    a.wait_log("not bounced: null sender <>", 1, Duration::from_secs(10));
    a.wait_spool(1);
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        1,
        "no second bounce"
    );
}

#[test]
fn b_down_a_retries_and_delivers_exactly_once() {
    let mut b = Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test").start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    assert_eq!(b.stop(), Some(0));
    let a = Server::prepare(&format!(
        "EMAIL_ROUTES=b.test=127.0.0.1:{}\nEMAIL_QUEUE_RETRY=1s\nEMAIL_QUEUE_WARN=1s",
        b.ports.smtp
    ))
    .start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    submit_as_bob(&a, &["carol@b.test"], "Subject: retry me\r\n\r\nx\r\n");
    // Two failed attempts while B is down, one second apart.
    a.wait_log(
        "dsn=4.0.0 status=deferred ([127.0.0.1]:",
        2,
        Duration::from_secs(10),
    );
    // Late mail: the sender is warned once (RFC 3464 Action: delayed).
    a.wait_log("sender delay warning", 1, Duration::from_secs(10));
    let warn_dir = a.path("mail/a.test/bob/new");
    let t = Instant::now();
    let warning = loop {
        if let Some(f) = std::fs::read_dir(&warn_dir).unwrap().flatten().next() {
            break std::fs::read_to_string(f.path()).unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no delay warning:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        warning.contains("Subject: Delayed Mail (still being retried)"),
        "{warning}"
    );
    assert!(
        warning.contains("Action: delayed") && warning.contains("Will-Retry-Until: "),
        "{warning}"
    );
    assert!(
        warning.contains("Final-Recipient: rfc822; carol@b.test"),
        "{warning}"
    );
    b.launch();
    let inbox = b.path("mail/b.test/carol/new");
    let t = Instant::now();
    while std::fs::read_dir(&inbox).unwrap().count() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not delivered after B came back:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.wait_log("removed", 1, Duration::from_secs(5));
    // A has nothing left to retry and B has delivered all it took.
    a.wait_spool(0);
    b.wait_spool(0);
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        1,
        "exactly one copy"
    );
    assert_eq!(
        a.log().matches("sender delay warning").count(),
        1,
        "warned once"
    );
    assert_eq!(std::fs::read_dir(a.path("queue/msg")).unwrap().count(), 0);
}

/// MX lookup against a local DNS server (dnsmasq on a loopback port): b.test's MX
/// is mail.b.test = 127.0.0.2, where B listens on port 25 (root only).
#[test]
fn mx_lookup_through_local_dns() {
    if !is_root() || !std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        eprintln!("skipped: needs root (port 25) and dnsmasq");
        return;
    }
    let dns_port = free_port();
    let _dns = dnsmasq(
        "127.0.0.1",
        dns_port,
        &[
            "--mx-host=b.test,mail.b.test,10".to_string(),
            "--host-record=mail.b.test,127.0.0.2".to_string(),
        ],
    );
    let mut b =
        Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_LISTEN_ADDR=127.0.0.2\nEMAIL_SMTP_PORT=25");
    b.host = "127.0.0.2".into();
    b.ports.smtp = 25;
    let b = b.start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let a = Server::prepare(&format!("EMAIL_DNS_SERVER=127.0.0.1:{dns_port}"));
    let gen = a.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "dkim-keygen");
    let record = a.path("record.txt");
    std::fs::write(&record, &gen.stdout).unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    submit_as_bob(
        &a,
        &["carol@b.test", "x@nowhere.test"],
        "Subject: via MX\r\n\r\nx\r\n",
    );
    let inbox = b.path("mail/b.test/carol/new");
    let t = Instant::now();
    while std::fs::read_dir(&inbox).unwrap().count() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not delivered via MX:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.wait_log("relay=mail.b.test[127.0.0.2]:25", 1, Duration::from_secs(5));
    // Signed by A's keyholder, verified by dkimpy; over STARTTLS.
    let file = std::fs::read_dir(&inbox)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("with ESMTPS id"), "{text}");
    assert_dkim_verified(&record, &file);
    // A domain that does not exist in DNS bounces at once (5.4.4).
    a.wait_log(
        "to=<x@nowhere.test> relay=none delay=",
        1,
        Duration::from_secs(10),
    );
    assert!(
        a.log()
            .contains("status=bounced (550 5.4.4 nowhere.test: domain does not exist)"),
        "{}",
        a.log()
    );
}

/// Two messages in a row to the same destination share one SMTP connection.
#[test]
fn connection_is_reused_for_the_next_message() {
    let b = Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test").start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let a = Server::prepare(&format!("EMAIL_ROUTES=b.test=127.0.0.1:{}", b.ports.smtp)).start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let inbox = b.path("mail/b.test/carol/new");
    for (n, subject) in ["first", "second"].iter().enumerate() {
        submit_as_bob(
            &a,
            &["carol@b.test"],
            &format!("Subject: {subject}\r\n\r\nx\r\n"),
        );
        let t = Instant::now();
        while std::fs::read_dir(&inbox).unwrap().count() < n + 1 {
            assert!(t.elapsed() < Duration::from_secs(10), "{}", a.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        a.log().contains("(connection reused, message 2)"),
        "{}",
        a.log()
    );
    assert_eq!(
        b.log().matches("smtp: STARTTLS with").count(),
        1,
        "{}",
        b.log()
    );
}

/// A smarthost with AUTH over STARTTLS: A relays everything through B's
/// submission port as relay@a.test (B lets that account send as bob@a.test).
#[test]
fn smarthost_with_auth_over_starttls() {
    let b = Server::prepare("");
    std::fs::write(b.path("aliases"), "bob@a.test: relay@a.test\n").unwrap();
    let b = b.start();
    b.add_account("relay@a.test", "relay-secret");
    b.wait_log(
        "directory: 1 account(s), 1 alias(es)",
        1,
        Duration::from_secs(5),
    );
    let a = Server::prepare(&format!(
        "EMAIL_RELAY_HOST=127.0.0.1:{}\nEMAIL_RELAY_USER=relay@a.test\nEMAIL_RELAY_PASS_FILE=relay.pass",
        b.ports.submission
    ));
    std::fs::write(a.path("relay.pass"), "relay-secret\n").unwrap();
    // The pass file path is relative: the test runs the server with the config's directory as cwd.
    let mut cfg = std::fs::read_to_string(&a.config).unwrap();
    cfg = cfg.replace(
        "EMAIL_RELAY_PASS_FILE=relay.pass",
        &format!("EMAIL_RELAY_PASS_FILE={}", a.path("relay.pass").display()),
    );
    std::fs::write(&a.config, cfg).unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    submit_as_bob(
        &a,
        &["carol@far.test"],
        "Subject: via smarthost\r\n\r\nx\r\n",
    );
    a.wait_log(
        "to=<carol@far.test> relay=[127.0.0.1]:",
        1,
        Duration::from_secs(10),
    );
    assert!(
        a.log().contains("status=sent (250 2.0.0 Ok: queued as"),
        "{}",
        a.log()
    );
    b.wait_log(
        "submission: auth user=relay@a.test",
        1,
        Duration::from_secs(5),
    );
    assert!(
        b.log().contains("from=<bob@a.test>") && b.log().contains("proto=ESMTPSA"),
        "{}",
        b.log()
    );
    for log in [a.log(), b.log()] {
        assert!(!log.contains("relay-secret"), "password in a log line");
    }
}

/// EMAIL_QUEUE_LIFETIME: a recipient still failing temporarily when the message
/// is older than that is given up (logged `status=expired`), the sender gets an
/// RFC 3464 notice with Action: failed and Status: 4.4.7, and the spool empties.
#[test]
fn a_message_past_its_lifetime_is_returned_to_the_sender() {
    // nowhere.test is routed to a closed port: each attempt fails at once.
    let a = Server::prepare(&format!(
        "EMAIL_QUEUE_RETRY=1s\nEMAIL_QUEUE_LIFETIME=3s\nEMAIL_ROUTES=nowhere.test=127.0.0.1:{}",
        free_port()
    ))
    .start();
    a.add_account("bob@a.test", "pw-bob-1");
    let id = submit_as_bob(
        &a,
        &["carol@nowhere.test"],
        "Subject: too late\r\n\r\nx\r\n",
    );
    a.wait_log(
        "dsn=4.4.7 status=expired (gave up after ",
        1,
        Duration::from_secs(15),
    );
    let log = a.log();
    assert!(
        log.lines().any(|l| l
            .contains(&format!("{id}: to=<carol@nowhere.test> relay=[127.0.0.1]:"))
            && l.contains("status=expired")),
        "{log}"
    );
    let deferrals = log
        .lines()
        .filter(|l| {
            l.contains(&format!("{id}: to=<carol@nowhere.test>")) && l.contains("status=deferred")
        })
        .count();
    // Retried (each second) until the lifetime ran out: deferred at least
    // once, and the last attempt, the one that gave up, was not the first.
    let made: u32 = log
        .split("status=expired (gave up after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(deferrals >= 1 && made >= 2, "{log}");
    let inbox = a.path("mail/a.test/bob/new");
    let file = first_file(&a, &inbox, "no notice");
    let py = r#"
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
assert m.get_content_type() == 'multipart/report', m.get_content_type()
assert m.get_param('report-type') == 'delivery-status'
status = [p for p in m.walk() if p.get_content_type() == 'message/delivery-status'][0]
blocks = status.get_payload()
rcpt = blocks[1]
print(rcpt['Final-Recipient'], rcpt['Action'], rcpt['Status'])
orig = [p for p in m.walk() if p.get_content_type() in ('message/rfc822', 'text/rfc822-headers')][0]
print('too late' in orig.as_string())
"#;
    let v = python(py, &[&file.to_string_lossy()]);
    assert_ok(&v, "expiry notice");
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        "rfc822; carol@nowhere.test failed 4.4.7\nTrue"
    );
    let t = Instant::now();
    while std::fs::read_dir(a.path("queue/msg")).unwrap().count() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "expired message left in the spool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A smarthost that offers AUTH but not STARTTLS never sees the credentials:
/// the message is deferred with "TLS required" and the password is not sent.
#[test]
fn credentials_are_never_sent_to_a_smarthost_without_tls() {
    // A plain ESMTP listener that offers AUTH and records every line it gets.
    let py = r#"
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(5)
print(srv.getsockname()[1], flush=True)
log = open(sys.argv[1], 'ab', buffering=0)
srv.settimeout(30)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(10)
    f = c.makefile('rb')
    c.sendall(b'220 plain.test ESMTP\r\n')
    try:
        for line in f:
            log.write(line)
            w = line.strip().upper()
            if w.startswith(b'EHLO'):
                c.sendall(b'250-plain.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n')
            elif w == b'QUIT':
                c.sendall(b'221 bye\r\n'); break
            else:
                c.sendall(b'250 ok\r\n')
    except Exception:
        pass
    c.close()
"#;
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let mut sink = python_cmd()
        .arg("-c")
        .arg(py)
        .arg(&seen)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sink.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let _reap = Reap(sink);
    let a = Server::prepare(&format!(
        "EMAIL_RELAY_HOST=127.0.0.1:{}\nEMAIL_RELAY_USER=relay@a.test\nEMAIL_RELAY_PASS_FILE={}",
        port.trim(),
        dir.path().join("relay.pass").display()
    ));
    std::fs::write(dir.path().join("relay.pass"), "relay-secret\n").unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    submit_as_bob(&a, &["carol@far.test"], "Subject: x\r\n\r\nx\r\n");
    a.wait_log("to=<carol@far.test>", 1, Duration::from_secs(10));
    let log = a.log();
    assert!(
        log.contains("status=deferred") && log.contains("TLS required but STARTTLS not offered"),
        "{log}"
    );
    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
    assert!(seen.contains("EHLO"), "the smarthost was asked: {seen}");
    assert!(
        !seen.to_uppercase().contains("AUTH") && !seen.contains("MAIL FROM"),
        "sent to a smarthost without TLS: {seen}"
    );
}
