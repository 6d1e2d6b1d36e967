//! Mail the rest of the internet gets right: scorpiox-email (A, a.test)
//! against a private Postfix 3.7 started by each test (tests/common/postfix.rs)
//! and, where MX records matter, dnsmasq. Needs root (Postfix, port 25); the
//! tests say "skipped" otherwise.

mod common;
use common::postfix::Postfix;
use common::*;
use std::time::{Duration, Instant};

/// A with bob@a.test, its mail for `routes` (domain=host:port, ...) sent there.
fn a_with_routes(routes: &str) -> Server {
    let a = Server::prepare(&format!("EMAIL_ROUTES={routes}")).start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    a
}

/// Submit as bob over 587 with the given MAIL FROM options (e.g. SMTPUTF8,
/// BODY=8BITMIME); returns the reply to DATA (or to MAIL, if refused).
fn submit_with(a: &Server, options: &str, rcpt: &str, message: &[u8]) -> String {
    const PY: &str = r#"
import smtplib, ssl, sys
port, cafile, options, rcpt, message = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
code, msg = s.mail('bob@a.test', options)
if code != 250:
    print(code, msg.decode()); sys.exit(0)
code, msg = s.rcpt(rcpt)
assert code == 250, (code, msg)
code, msg = s.data(message.encode('utf-8', 'surrogateescape'))
print(code, msg.decode())
s.quit()
"#;
    let port = a.ports.submission.to_string();
    let cert = a.cert.to_string_lossy().into_owned();
    let text = String::from_utf8_lossy(message).into_owned();
    let o = python(PY, &[&port, &cert, options, rcpt, &text]);
    assert!(
        o.status.success(),
        "submit: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        a.log()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// bob's INBOX at A, as texts, once it holds n messages.
fn inbox_of_bob(a: &Server, n: usize) -> Vec<String> {
    inbox_at(a, "bob", n)
}

/// The messages in `user@a.test`'s INBOX at A, once it holds n of them.
fn inbox_at(a: &Server, user: &str, n: usize) -> Vec<String> {
    let dir = a.path(&format!("mail/a.test/{user}/new"));
    let t = Instant::now();
    loop {
        let m: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if m.len() >= n {
            return m;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{} of {n} in {user}'s INBOX:\n{}",
            m.len(),
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 15.7: `John.Doe@` arrives as `John.Doe@` (the local part was
/// lower-cased); 15.8: BODY=BINARYMIME, not advertised, is refused with 555.
#[test]
fn local_parts_keep_their_case_and_binarymime_is_refused() {
    let port = free_port();
    let Some(pf) = Postfix::start("127.0.0.1", port, "pf.test", "") else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let a = a_with_routes(&format!("pf.test=127.0.0.1:{port}"));
    let r = submit_with(&a, "", "John.Doe@pf.test", b"Subject: case\r\n\r\nx\r\n");
    assert!(r.starts_with("250"), "{r}");
    pf.wait_log("to=<John.Doe@pf.test>", 1, Duration::from_secs(15));
    assert!(
        a.log().contains("to=<John.Doe@pf.test> relay=[127.0.0.1]:"),
        "{}",
        a.log()
    );
    let r = submit_with(&a, "BODY=BINARYMIME", "John.Doe@pf.test", b"x\r\n");
    assert!(r.starts_with("555 5.5.4"), "{r}");
}

/// Issue 15.2/15.8: a hop that does not offer SMTPUTF8 (or 8BITMIME) never
/// gets a message that needs it: the sender gets a 5.6.7 (5.6.3) bounce, as
/// Postfix gives; a message that does not need them goes through.
#[test]
fn a_hop_without_smtputf8_or_8bitmime_gets_nothing_the_sender_a_bounce() {
    let port = free_port();
    let Some(pf) = Postfix::start(
        "127.0.0.1",
        port,
        "pf.test",
        "smtputf8_enable = no\nsmtpd_discard_ehlo_keywords = 8bitmime, silent-discard",
    ) else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let a = a_with_routes(&format!("pf.test=127.0.0.1:{port}"));
    let utf8 = "Subject: caf\u{e9}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nx\r\n";
    let r = submit_with(
        &a,
        "SMTPUTF8 BODY=8BITMIME",
        "carol@pf.test",
        utf8.as_bytes(),
    );
    assert!(r.starts_with("250"), "{r}");
    let body8 = "Subject: eight\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncr\u{e8}me\r\n";
    let r = submit_with(&a, "BODY=8BITMIME", "carol@pf.test", body8.as_bytes());
    assert!(r.starts_with("250"), "{r}");
    // Declared 8-bit and SMTPUTF8, but all ASCII: sent.
    let r = submit_with(
        &a,
        "SMTPUTF8 BODY=8BITMIME",
        "carol@pf.test",
        b"Subject: plain\r\n\r\nascii\r\n",
    );
    assert!(r.starts_with("250"), "{r}");
    let got = pf.wait_messages(1, Duration::from_secs(15));
    assert!(got[0].contains("Subject: plain"), "{got:?}");
    let bounces = inbox_of_bob(&a, 2);
    let all = bounces.join("\n====\n");
    assert!(all.contains("Status: 5.6.7"), "{all}");
    assert!(all.contains("Status: 5.6.3"), "{all}");
    assert!(a.log().contains("dsn=5.6.7 status=bounced"), "{}", a.log());
    // A has nothing left to send: one message went to Postfix, no more.
    a.wait_spool(0);
    let sent_out = a
        .log()
        .lines()
        .filter(|l| l.contains("to=<carol@pf.test>") && l.contains("status=sent"))
        .count();
    assert_eq!(sent_out, 1, "{}", a.log());
    assert_eq!(pf.messages().len(), 1, "{}", pf.log());
}

/// A greeter on host:25 that answers every connection with `reply` and hangs up.
struct Greeter(std::process::Child);

impl Greeter {
    fn start(host: &str, reply: &str) -> Greeter {
        const PY: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 25)); s.listen(16)
print('ready', flush=True)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[2].encode() + b'\r\n')
    try:
        c.settimeout(2); c.recv(1000)
    except OSError:
        pass
    c.close()
"#;
        let mut child = python_cmd()
            .args(["-c", PY, host, reply])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        Greeter(child)
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 15.3: MX 10 greets with 421 (b.test) or 554 (c.test): MX 20, a
/// Postfix, receives; 15.12: the log names the host that answered.
#[test]
fn the_next_mx_is_tried_when_the_first_greets_with_421_or_554() {
    if !std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        eprintln!("skipped: needs dnsmasq");
        return;
    }
    let Some(pf) = Postfix::start("127.0.0.6", 25, "b.test c.test", "") else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let _g421 = Greeter::start("127.0.0.4", "421 4.3.2 mx1.b.test shutting down");
    let _g554 = Greeter::start("127.0.0.5", "554 5.7.1 mx1.c.test no service for you");
    let dns_port = free_port();
    let records = [
        "--mx-host=b.test,mx1.b.test,10",
        "--mx-host=b.test,mx2.b.test,20",
        "--mx-host=c.test,mx1.c.test,10",
        "--mx-host=c.test,mx2.c.test,20",
        "--host-record=mx1.b.test,127.0.0.4",
        "--host-record=mx1.c.test,127.0.0.5",
        "--host-record=mx2.b.test,127.0.0.6",
        "--host-record=mx2.c.test,127.0.0.6",
    ];
    let _dns = dnsmasq("127.0.0.1", dns_port, &records.map(String::from));
    let a = Server::prepare(&format!("EMAIL_DNS_SERVER=127.0.0.1:{dns_port}")).start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    submit_as_bob(&a, &["carol@b.test"], "Subject: via mx2 of b\r\n\r\nx\r\n");
    submit_as_bob(&a, &["dave@c.test"], "Subject: via mx2 of c\r\n\r\nx\r\n");
    let got = pf.wait_messages(2, Duration::from_secs(20));
    assert!(
        got.iter().any(|m| m.contains("Subject: via mx2 of b")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|m| m.contains("Subject: via mx2 of c")),
        "{got:?}"
    );
    // Postfix can have the message before our queue logs the result.
    for want in [
        "mx1.b.test[127.0.0.4]:25: greeting: 421 4.3.2 mx1.b.test shutting down; trying the next host",
        "mx1.c.test[127.0.0.5]:25: greeting: 554 5.7.1 mx1.c.test no service for you; trying the next host",
        "to=<carol@b.test> relay=mx2.b.test[127.0.0.6]:25 ",
        "to=<dave@c.test> relay=mx2.c.test[127.0.0.6]:25 ",
    ] {
        a.wait_log(want, 1, Duration::from_secs(10));
    }
}

/// The published name and the TXT value (its strings joined) of a record file
/// written by `--dkim-keygen`.
fn record_of(path: &std::path::Path) -> (String, String) {
    let line = std::fs::read_to_string(path).unwrap();
    let name = line
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    let value: String = line.split('"').skip(1).step_by(2).collect();
    (name, value)
}

/// opendkim-testmsg (libopendkim, as OpenDKIM verifies) on `msg`, looking the
/// key up through dnsmasq on 127.0.0.7:53, given to it as the only name server
/// in a private mount namespace.
fn opendkim_verifies(record: &std::path::Path, msg: &std::path::Path) -> Result<(), String> {
    let (name, value) = record_of(record);
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.7\n").unwrap();
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(200)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let _dns = dnsmasq(
        "127.0.0.7",
        53,
        &[format!("--txt-record={name},{}", chunks.join(","))],
    );
    let o = std::process::Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/resolv.conf && exec opendkim-testmsg < \"$2\"",
            "sh",
        ])
        .arg(&resolv)
        .arg(msg)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Issue 15.4: submitted without Date and Message-ID, the message gets both
/// at submission, is signed over the headers it has (From, To, Cc, Subject,
/// Reply-To over-signed), Postfix adds nothing on its hop, and dkimpy and
/// OpenDKIM verify it there; also after a list adds List-Id and Sender.
#[test]
fn a_message_without_date_is_completed_signed_and_survives_postfix_and_a_list() {
    let port = free_port();
    let Some(pf) = Postfix::start("127.0.0.1", port, "pf.test", "") else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let a = Server::prepare(&format!("EMAIL_ROUTES=pf.test=127.0.0.1:{port}"));
    let gen = a.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "dkim-keygen");
    let record = a.path("record.txt");
    std::fs::write(&record, &gen.stdout).unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let r = submit_with(
        &a,
        "",
        "carol@pf.test",
        b"From: bob@a.test\r\nTo: carol@pf.test\r\nSubject: no date\r\n\r\nbody\r\n",
    );
    assert!(r.starts_with("250"), "{r}");
    let got = pf.wait_messages(1, Duration::from_secs(15));
    let text = &got[0];
    let head = text.split("\n\n").next().unwrap_or_default().to_string();
    let count = |name: &str| {
        head.lines()
            .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .count()
    };
    assert_eq!(count("date"), 1, "{text}");
    assert_eq!(count("message-id"), 1, "{text}");
    assert!(
        head.contains("@mail.a.test>"),
        "our Message-ID, not Postfix's: {text}"
    );
    let sig: String = head
        .split("DKIM-Signature:")
        .nth(1)
        .unwrap_or_default()
        .split("\nReceived:")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let h = sig
        .split(';')
        .find_map(|t| t.strip_prefix("h="))
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert_eq!(
        h, "subject:to:from:message-id:date:from:to:cc:subject:reply-to",
        "{text}"
    );
    let file = std::fs::read_dir(pf.inbox())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert!(dkimpy_verifies(&record, &file), "{text}");
    if let Err(e) = opendkim_verifies(&record, &file) {
        panic!("opendkim-testmsg: {e}\n{text}");
    }
    // What a mailing list adds on top.
    let listed = a.path("listed.eml");
    let mut bytes = b"List-Id: <team.lists.test>\nSender: team-owner@lists.test\n".to_vec();
    bytes.extend_from_slice(&std::fs::read(&file).unwrap());
    std::fs::write(&listed, bytes).unwrap();
    assert!(dkimpy_verifies(&record, &listed));
    if let Err(e) = opendkim_verifies(&record, &listed) {
        panic!("opendkim-testmsg after List-Id: {e}");
    }
}

/// Issue 15.1: NOTIFY=SUCCESS gets a "delivered" notice for a local
/// mailbox, NOTIFY and ORCPT are passed to a hop that offers DSN (Postfix
/// then reports the delivery itself), and a hop without DSN gets the mail
/// and the sender a "relayed" notice from us.
#[test]
fn notify_success_is_answered_here_passed_on_or_relayed() {
    let (pf_port, np_port) = (free_port(), free_port());
    let a = Server::prepare(&format!(
        "EMAIL_ROUTES=pf.test=127.0.0.1:{pf_port},np.test=127.0.0.1:{np_port}"
    ));
    let back = format!(
        "transport_maps = inline:{{a.test=smtp:[127.0.0.1]:{}}}",
        a.ports.smtp
    );
    // debug_peer_list: Postfix logs the SMTP commands it receives from us.
    let Some(pf) = Postfix::start(
        "127.0.0.1",
        pf_port,
        "pf.test",
        &format!("{back}\ndebug_peer_list = 127.0.0.1"),
    ) else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let Some(np) = Postfix::start(
        "127.0.0.1",
        np_port,
        "np.test",
        &format!("{back}\nsmtpd_discard_ehlo_keywords = dsn, silent-discard"),
    ) else {
        return;
    };
    std::fs::write(a.path("aliases"), "team@a.test: carol@pf.test\n").unwrap();
    let a = a.start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.add_account("alice@a.test", "pw-alice");
    a.wait_log(
        "directory: 2 account(s), 1 alias(es)",
        1,
        Duration::from_secs(5),
    );
    const PY: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1])); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
s.mail('bob@a.test', ['RET=HDRS', 'ENVID=env-15-1'])
for r in sys.argv[3:]:
    code, msg = s.rcpt(r, ['NOTIFY=SUCCESS,FAILURE'])
    assert code == 250, (r, code, msg)
code, msg = s.data(b'From: bob@a.test\r\nSubject: tell me\r\n\r\nx\r\n')
assert code == 250, (code, msg)
s.quit()
"#;
    let o = python(
        PY,
        &[
            &a.ports.submission.to_string(),
            &a.cert.to_string_lossy(),
            "alice@a.test",
            "team@a.test",
            "dave@np.test",
        ],
    );
    assert_ok(&o, "submit with NOTIFY=SUCCESS");
    // Postfix got NOTIFY (it sends its own success notice) and ORCPT (the alias).
    pf.wait_log(
        "RCPT TO:<carol@pf.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;team@a.test",
        1,
        Duration::from_secs(15),
    );
    pf.wait_log(
        "sender delivery status notification",
        1,
        Duration::from_secs(15),
    );
    np.wait_messages(1, Duration::from_secs(15));
    // Ours (alice delivered, dave relayed) and Postfix's (carol).
    let notices = inbox_of_bob(&a, 2);
    let ours = notices
        .iter()
        .find(|m| m.contains("From: Mail Delivery System <MAILER-DAEMON@a.test>"))
        .unwrap_or_else(|| panic!("{notices:?}"));
    for want in [
        "Subject: Successful Mail Delivery Report",
        "Original-Envelope-Id: env-15-1",
        "Final-Recipient: rfc822; alice@a.test\r\nAction: delivered\r\nStatus: 2.0.0",
        "Final-Recipient: rfc822; dave@np.test\r\nAction: relayed\r\nStatus: 2.0.0",
    ] {
        assert!(ours.contains(want), "{want:?} not in\n{ours}");
    }
    assert!(!ours.contains("carol@pf.test"), "{ours}");
    let theirs = notices
        .iter()
        .find(|m| m.contains("postfix.pf.test"))
        .unwrap_or_else(|| panic!("no notice from Postfix: {notices:?}\n{}", pf.log()));
    assert!(theirs.contains("Action: delivered"), "{theirs}");
    assert!(
        theirs.contains("Original-Recipient: rfc822;team@a.test"),
        "{theirs}"
    );
    // Exactly the two notices.
    a.wait_spool(0);
    assert_eq!(inbox_of_bob(&a, 2).len(), 2, "{}", a.log());
}

/// Issue 15.2: SMTPUTF8 inbound: an account and an alias with UTF-8 local
/// parts receive mail relayed by Postfix with SMTPUTF8; the Received field
/// says `with UTF8SMTP` and keeps the recipient as given.
#[test]
fn utf8_local_parts_are_delivered_in() {
    let pf_port = free_port();
    let a = Server::prepare("");
    std::fs::write(a.path("aliases"), "\u{e9}quipe@a.test: jos\u{e9}@a.test\n").unwrap();
    let Some(_pf) = Postfix::start(
        "127.0.0.1",
        pf_port,
        "pf.test",
        &format!(
            "relay_domains = a.test\ntransport_maps = inline:{{a.test=smtp:[127.0.0.1]:{}}}",
            a.ports.smtp
        ),
    ) else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let a = a.start();
    a.add_account("jos\u{e9}@a.test", "pw-jose-1");
    a.wait_log(
        "directory: 1 account(s), 1 alias(es)",
        1,
        Duration::from_secs(5),
    );
    let py = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
msg = 'From: ana@pf.test\r\nTo: jos\u00e9@a.test\r\nSubject: ol\u00e1\r\n\r\nbom dia\r\n'.encode()
s.sendmail('ana@pf.test', ['jos\u00e9@a.test', '\u00e9quipe@a.test'], msg, mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
s.quit()
"#;
    assert_ok(&python(py, &[&pf_port.to_string()]), "send through Postfix");
    let inbox = a.path("mail/a.test/jos\u{e9}/new");
    let text = inbox_at(&a, "jos\u{e9}", 1).remove(0);
    assert!(text.contains("with UTF8SMTP id "), "{text}");
    assert!(text.contains("Subject: ol\u{e1}"), "{text}");
    // Two recipients in one transaction: one copy (the alias leads to the
    // same mailbox), no `for` clause (Bcc privacy).
    a.wait_spool(0);
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 1, "{}", a.log());
    // One recipient: `for <josé@a.test>`, UTF-8 kept.
    let r = smtp_dialog_at(
        "127.0.0.1",
        a.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<ana@pf.test> SMTPUTF8",
            "RCPT TO:<jos\u{e9}@a.test>",
            "DATA",
            "Subject: two\r\n\r\nx\r\n.",
        ],
    );
    assert!(r[5].starts_with("250"), "{r:?}");
    // Without SMTPUTF8 a UTF-8 address is refused.
    let r = smtp_dialog_at(
        "127.0.0.1",
        a.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<ana@pf.test>",
            "RCPT TO:<jos\u{e9}@a.test>",
        ],
    );
    assert!(r[3].starts_with("553 5.6.7"), "{r:?}");
    let texts = inbox_at(&a, "jos\u{e9}", 2);
    assert!(
        texts.iter().any(|t| t.contains("for <jos\u{e9}@a.test>;")),
        "{texts:?}"
    );
}

/// Issue 15.5/15.6: a bounce from A to a sender at Postfix is DKIM-signed
/// (dkimpy verifies it where it lands) and its fields are what parsers want:
/// the alias's failed target as Final-Recipient, the alias as
/// Original-Recipient, Remote-MTA, and Postfix's reply as a bare smtp
/// Diagnostic-Code.
#[test]
fn a_bounce_to_a_sender_at_postfix_is_signed_and_well_formed() {
    let pf_port = free_port();
    let a = Server::prepare(&format!("EMAIL_ROUTES=pf.test=127.0.0.1:{pf_port}"));
    let gen = a.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "dkim-keygen");
    let record = a.path("record.txt");
    std::fs::write(&record, &gen.stdout).unwrap();
    std::fs::write(a.path("aliases"), "fwd@a.test: ghost@pf.test\n").unwrap();
    // Postfix knows only ana@pf.test; it relays a.test to A.
    let Some(pf) = Postfix::start(
        "127.0.0.1",
        pf_port,
        "pf.test",
        &format!(
            "virtual_mailbox_maps = inline:{{ana@pf.test=box/}}\nrelay_domains = a.test\n\
             transport_maps = inline:{{a.test=smtp:[127.0.0.1]:{}}}",
            a.ports.smtp
        ),
    ) else {
        eprintln!("skipped: needs root and postfix");
        return;
    };
    let a = a.start();
    a.wait_log("0 account(s), 1 alias(es)", 1, Duration::from_secs(5));
    let py = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('ana@pf.test', ['fwd@a.test'], b'From: ana@pf.test\r\nTo: fwd@a.test\r\nSubject: to a ghost\r\n\r\nboo\r\n')
s.quit()
"#;
    assert_ok(&python(py, &[&pf_port.to_string()]), "send through Postfix");
    a.wait_log("to=<ghost@pf.test>", 1, Duration::from_secs(15));
    a.wait_log(
        "sender non-delivery notification",
        1,
        Duration::from_secs(15),
    );
    let got = pf.wait_messages(1, Duration::from_secs(15));
    let text = &got[0];
    assert!(
        text.contains("From: Mail Delivery System <MAILER-DAEMON@a.test>"),
        "{text}"
    );
    let file = std::fs::read_dir(pf.inbox())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert!(
        dkimpy_verifies(&record, &file),
        "bounce not verified:\n{text}"
    );
    const FIELDS_PY: &str = r#"
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
report = [p for p in m.walk() if p.get_content_type() == 'message/delivery-status'][0]
blocks = report.get_payload()
r = blocks[1]
for k in ('Final-Recipient', 'Original-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code'):
    print('%s=%s' % (k, r[k]))
"#;
    let o = python(FIELDS_PY, &[&file.to_string_lossy()]);
    assert_ok(&o, "parse the DSN");
    let fields = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in [
        "Final-Recipient=rfc822; ghost@pf.test",
        "Original-Recipient=rfc822; fwd@a.test",
        "Action=failed",
        "Status=5.1.1",
        "Remote-MTA=dns; [127.0.0.1]",
        "Diagnostic-Code=smtp; 550 5.1.1 <ghost@pf.test>",
    ] {
        assert!(fields.contains(want), "{want:?} not in\n{fields}\n{text}");
    }
}
