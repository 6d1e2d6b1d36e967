//! The checks against real DNS and real signatures: dnsmasq (Debian's
//! dnsmasq-base, on a loopback port) serves the SPF, DKIM and DMARC records,
//! dkimpy (python3-dkim) signs the messages and python3-spf gives its own
//! SPF answer for the same DNS, and the real SMTP session runs in process
//! (client 192.0.2.1, local domains a.test and b.test).

use crate::dns_fixture::{dnsmasq, free_udp_port, Dns};
use crate::inprocess::Smtp;
use ipc::messages::Service;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/checks");
const PYTHON: &str = "/usr/bin/python3";

/// The records every test serves: SPF for each result, DMARC policies.
fn records() -> Vec<(String, String)> {
    [
        ("pass.test", "v=spf1 ip4:192.0.2.1 -all"),
        ("fail.test", "v=spf1 ip4:198.51.100.7 -all"),
        ("soft.test", "v=spf1 ~all"),
        ("neutral.test", "v=spf1 ?all"),
        ("perm.test", "v=spf1 ip4:192.0.2.1 frobnicate:x -all"),
        ("mx.pass.test", "v=spf1 a -all"),
        ("reject.test", "v=spf1 ip4:198.51.100.7 -all"),
        ("_dmarc.reject.test", "v=DMARC1; p=reject"),
        ("quar.test", "v=spf1 ip4:198.51.100.7 -all"),
        ("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
        ("signed.test", "v=spf1 ip4:198.51.100.7 -all"),
        ("_dmarc.signed.test", "v=DMARC1; p=reject"),
        ("a.test", "v=spf1 ip4:198.51.100.7 -all"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect()
}

struct Setup {
    _dns: (Dns, Dns),
    port: u16,
    smtp: Smtp,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// dnsmasq with `records()` and dkimpy's keys, and a session harness
/// whose checks are on and use it.
fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "sx-checks-{}-{}",
        std::process::id(),
        free_udp_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(PYTHON)
        .arg(Path::new(SCRIPTS).join("dkim_sign.py"))
        .arg(&dir)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dkim_sign.py (apt-get install python3-dkim python3-nacl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut txt = records();
    let keys = std::fs::read_to_string(dir.join("records")).expect("records");
    for l in keys.lines() {
        if let Some((n, t)) = l.split_once('\t') {
            txt.push((n.into(), t.into()));
        }
    }
    let port = free_udp_port();
    // The client's own name, for SPF's a/mx terms.
    let dns = dnsmasq(port, &txt, &["--host-record=mx.pass.test,192.0.2.1"]);
    let smtp = Smtp::with_settings(|s| {
        s.dns_servers = vec![format!("127.0.0.1:{port}")];
        s.checks.enabled = true;
    })
    .expect("harness");
    Setup {
        _dns: dns,
        port,
        smtp,
        dir,
    }
}

impl Setup {
    fn eml(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(format!("{name}.eml"))).expect("message")
    }

    /// One transaction on port 25; the server's answer to the end of DATA
    /// and, when committed, the spooled bytes and the junk mark.
    async fn send(&self, helo: &str, from: &str, msg: &[u8]) -> (String, Option<(String, bool)>) {
        let before = self.smtp.committed.lock().map(|c| c.len()).unwrap_or(0);
        let mut input =
            format!("EHLO {helo}\r\nMAIL FROM:<{from}>\r\nRCPT TO:<bob@a.test>\r\nDATA\r\n")
                .into_bytes();
        input.extend_from_slice(msg);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        let out =
            String::from_utf8_lossy(&self.smtp.session(Service::Smtp, &input).await).into_owned();
        // The line after `354`.
        let reply = out
            .split("\r\n")
            .skip_while(|l| !l.starts_with("354"))
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let committed = self.smtp.committed.lock().map(|c| c.get(before).cloned());
        let spooled = committed.ok().flatten().map(|env| {
            let bytes = self.smtp.spooled(&env.id).unwrap_or_default();
            (String::from_utf8_lossy(&bytes).into_owned(), env.junk)
        });
        (reply, spooled)
    }
}

fn plain(from: &str) -> Vec<u8> {
    format!("From: <{from}>\r\nTo: bob@a.test\r\nSubject: hi\r\n\r\nhello\r\n").into_bytes()
}

/// The one Authentication-Results field at the top of the spooled message.
fn results_field(spooled: &str) -> String {
    assert!(
        spooled.starts_with("Authentication-Results: mail.a.test;"),
        "{spooled}"
    );
    let mut field = String::new();
    for (i, l) in spooled.split_inclusive("\r\n").enumerate() {
        if i > 0 && !l.starts_with([' ', '\t']) {
            break;
        }
        field.push_str(l);
    }
    field
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_results_match_python_spf_for_the_same_dns() {
    let s = setup();
    let cases = [
        ("pass.test", "pass"),
        ("fail.test", "fail"),
        ("soft.test", "softfail"),
        ("neutral.test", "neutral"),
        ("none.test", "none"),
        ("perm.test", "permerror"),
        ("temp.test", "temperror"),
    ];
    let mut args = vec![s.port.to_string()];
    for (d, _) in &cases {
        args.extend(["192.0.2.1".into(), format!("x@{d}"), "mx.pass.test".into()]);
    }
    let out = Command::new(PYTHON)
        .arg(Path::new(SCRIPTS).join("spf_check.py"))
        .args(&args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "spf_check.py (apt-get install python3-spf): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for (i, (domain, want)) in cases.iter().enumerate() {
        assert_eq!(
            theirs.get(i).map(String::as_str),
            Some(*want),
            "python3-spf for {domain}"
        );
        let (reply, spooled) = s
            // From a domain without DMARC: SPF alone decides nothing here.
            .send(
                "mx.pass.test",
                &format!("x@{domain}"),
                &plain("x@none.test"),
            )
            .await;
        assert!(reply.starts_with("250 "), "{domain}: {reply}");
        let (text, junk) = spooled.expect("committed");
        assert!(!junk);
        let field = results_field(&text);
        assert!(
            field.contains(&format!("spf={want} ")),
            "{domain}: want spf={want}:\n{field}"
        );
        assert!(
            field.contains(&format!("smtp.mailfrom=x@{domain}")),
            "{field}"
        );
        // HELO's own SPF result, and the client's forward-confirmed reverse name.
        assert!(field.contains("smtp.helo=mx.pass.test"), "{field}");
        assert!(
            field.contains("iprev=pass policy.iprev=192.0.2.1"),
            "{field}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signatures_by_dkimpy_verify_and_tampering_fails() {
    let s = setup();
    for (case, want) in [("rsa", "header.s=rsa"), ("ed25519", "header.s=ed")] {
        let (reply, spooled) = s.send("mx.pass.test", "x@signed.test", &s.eml(case)).await;
        assert!(reply.starts_with("250 "), "{case}: {reply}");
        let field = results_field(&spooled.expect("committed").0);
        assert!(
            field.contains("dkim=pass") && field.contains(want),
            "{case}:\n{field}"
        );
        // SPF fails for signed.test, DKIM aligns: DMARC passes.
        assert!(field.contains("spf=fail"), "{field}");
        assert!(field.contains("dmarc=pass"), "{field}");
    }
    // A changed body: the signature fails, and p=reject refuses it.
    let (reply, spooled) = s
        .send("mx.pass.test", "x@signed.test", &s.eml("tampered"))
        .await;
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(spooled.is_none(), "a refused message was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_reject_refuses_quarantine_marks_junk_forged_results_go() {
    let s = setup();
    let (reply, spooled) = s
        .send("mx.pass.test", "x@reject.test", &plain("x@reject.test"))
        .await;
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(spooled.is_none());
    // Signed by signed.test, From reject.test: not aligned, refused too.
    let (reply, _) = s
        .send("mx.pass.test", "x@signed.test", &s.eml("unaligned"))
        .await;
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");

    let (reply, spooled) = s
        .send("mx.pass.test", "x@quar.test", &plain("x@quar.test"))
        .await;
    assert!(reply.starts_with("250 "), "{reply}");
    let (text, junk) = spooled.expect("committed");
    assert!(junk, "p=quarantine: to Junk");
    assert!(results_field(&text).contains("dmarc=fail"), "{text}");

    // Our authserv-id in an incoming field: removed; another's: kept.
    let mut msg = b"Authentication-Results: mail.a.test; dkim=pass header.d=pass.test\r\n\
Authentication-Results: MAIL.A.TEST;\r\n spf=pass\r\n\
Authentication-Results: mx.elsewhere.test; spf=none\r\n"
        .to_vec();
    msg.extend_from_slice(&plain("x@pass.test"));
    let (reply, spooled) = s.send("mx.pass.test", "x@pass.test", &msg).await;
    assert!(reply.starts_with("250 "), "{reply}");
    let text = spooled.expect("committed").0;
    let field = results_field(&text);
    assert!(field.contains("spf=pass"), "{field}");
    let ours = text.matches("Authentication-Results: mail.a.test").count()
        + text.matches("Authentication-Results: MAIL.A.TEST").count();
    assert_eq!(ours, 1, "{text}");
    assert!(
        text.contains("Authentication-Results: mx.elsewhere.test; spf=none\r\n"),
        "{text}"
    );
    // What follows our field is our Received, then the message.
    let after = text.get(field.len()..).unwrap_or_default();
    assert!(after.starts_with("Received: from "), "{after}");
    assert!(text.ends_with("\r\nhello\r\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_domains_need_spf_or_dkim_and_dns_failure_defers() {
    let s = setup();
    // a.test is ours: port 25 mail claiming it without SPF passing is refused.
    let (reply, _) = s
        .send("mx.pass.test", "bob@a.test", &plain("bob@a.test"))
        .await;
    assert!(
        reply.starts_with("550 5.7.1 a.test is a local domain"),
        "{reply}"
    );
    let (reply, _) = s
        .send("mx.pass.test", "x@pass.test", &plain("carol@a.test"))
        .await;
    assert!(
        reply.starts_with("550 5.7.1 a.test is a local domain"),
        "{reply}"
    );
    // The DMARC record of a temp.test From cannot be looked up: 451.
    let (reply, spooled) = s
        .send("mx.pass.test", "x@pass.test", &plain("x@temp.test"))
        .await;
    assert!(reply.starts_with("451 4.7.5 "), "{reply}");
    assert!(spooled.is_none());
}
