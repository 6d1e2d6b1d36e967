//! What an operator touches: `--check-config`, the man pages as rendered, and
//! the binary's shared libraries.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A configured but not started server with one account, a DKIM key and its
/// directories, as an installed system would have.
fn configured() -> (Server, String) {
    let srv = Server::prepare("");
    srv.add_account("bob@a.test", "pw-bob-1");
    let gen = srv.sx(&["--dkim-keygen"], "");
    assert_ok(&gen, "--dkim-keygen");
    for d in ["mail/a.test/bob/new", "queue"] {
        std::fs::create_dir_all(srv.path(d)).unwrap();
    }
    (srv, text(&gen).trim().to_string())
}

fn set(srv: &Server, key: &str, value: &Path) {
    let cfg = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(&srv.config, format!("{cfg}{key}={}\n", value.display())).unwrap();
}

#[test]
fn check_config_passes_and_prints_the_dns_records() {
    let (srv, dkim_record) = configured();
    let o = srv.sx(&["--check-config"], "");
    assert_ok(&o, "--check-config");
    let out = text(&o);
    assert!(!out.contains("error:"), "{out}");
    for want in [
        "ok: TLS certificate ",
        "valid until ",
        "ok: TLS key ",
        "ok: 1 account(s)",
        "ok: DKIM key ",
        "ok: Maildir root ",
        "DNS records to publish:",
        "a.test. IN MX 10 mail.a.test.",
        "a.test. IN TXT \"v=spf1 mx -all\"",
        // Issue 15.5: bounces go out from <> under the HELO name.
        "mail.a.test. IN TXT \"v=spf1 a -all\"",
        "_dmarc.a.test. IN TXT \"v=DMARC1; p=quarantine",
        &dkim_record,
    ] {
        assert!(out.contains(want), "--check-config lacks {want:?}:\n{out}");
    }
}

/// What port 25 checks, as `--check-config` says it: lists, rates,
/// greylisting and each milter, with a warning for a unix: milter whose
/// socket is not there (yet); none of them is an error.
#[test]
fn check_config_reports_the_inbound_checks_and_milters() {
    let (srv, _) = configured();
    let cfg = std::fs::read_to_string(&srv.config).unwrap();
    let extra = "EMAIL_DNSBL=bl.example\nEMAIL_RATE_CLIENT=100/1h\nEMAIL_GREYLIST=on\n\
                 EMAIL_MILTERS=inet:127.0.0.1:11332, unix:/run/sx-no-such-milter.sock?fail=closed\n";
    std::fs::write(&srv.config, format!("{cfg}{extra}")).unwrap();
    let o = srv.sx(&["--check-config"], "");
    let out = text(&o);
    assert_ok(&o, &format!("--check-config\n{out}"));
    for want in [
        "ok: DNS block lists: bl.example",
        "ok: rate limit per client address: 100 messages per 3600 s",
        "ok: greylisting: a new triplet waits 300 s",
        "ok: milter inet:127.0.0.1:11332 (timeout 30 s, fail=open)",
        "ok: milter unix:/run/sx-no-such-milter.sock (timeout 30 s, fail=closed)",
        "warning: milter unix:/run/sx-no-such-milter.sock: No such file",
    ] {
        assert!(out.contains(want), "--check-config lacks {want:?}:\n{out}");
    }
}

#[test]
fn check_config_catches_an_expired_certificate() {
    let (srv, _) = configured();
    let mut params = rcgen::CertificateParams::new(vec!["mail.a.test".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (srv.path("old.cert.pem"), srv.path("old.key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    set(&srv, "EMAIL_TLS_CERT", &c);
    set(&srv, "EMAIL_TLS_KEY", &k);
    let o = srv.sx(&["--check-config"], "");
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let want = format!(
        "error: EMAIL_TLS_CERT {}: certificate expired on 2021-01-01",
        c.display()
    );
    assert!(text(&o).contains(&want), "{}", text(&o));
}

#[test]
fn check_config_catches_a_key_that_does_not_match() {
    let (srv, _) = configured();
    let (_, other_key) = make_cert(srv.dir.path(), "other", "mail.a.test");
    set(&srv, "EMAIL_TLS_KEY", &other_key);
    let o = srv.sx(&["--check-config"], "");
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("error: EMAIL_TLS_KEY"))
        .unwrap_or_else(|| panic!("no key error:\n{out}"));
    assert!(
        line.contains(&other_key.display().to_string()) && line.contains("does not match"),
        "{line}"
    );
}

#[test]
fn check_config_catches_a_missing_maildir() {
    let (srv, _) = configured();
    std::fs::remove_dir_all(srv.path("mail")).unwrap();
    let o = srv.sx(&["--check-config"], "");
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let want = format!(
        "error: EMAIL_MAILDIR {} does not exist",
        srv.path("mail").display()
    );
    assert!(text(&o).contains(&want), "{}", text(&o));
}

#[test]
fn man_pages_render_without_warnings() {
    for page in [
        "man/sx-email.1",
        "man/sx-server-email.8",
        "man/scorpiox-env.txt.5",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
        let o = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("man (apt-get install man-db)");
        assert!(o.status.success(), "man {page}: {:?}", o.status);
        let warnings = String::from_utf8_lossy(&o.stderr);
        assert!(warnings.trim().is_empty(), "{page}:\n{warnings}");
        assert!(o.stdout.len() > 1000, "{page} rendered to almost nothing");
    }
}

#[test]
fn binary_needs_no_shared_library_beyond_the_c_runtime() {
    let o = Command::new("ldd").arg(SX).output().expect("ldd");
    let out = String::from_utf8_lossy(&o.stdout);
    for line in out.lines() {
        let lib = line.split_whitespace().next().unwrap_or_default();
        let name = Path::new(lib)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let allowed = [
            "linux-vdso",
            "libc.so",
            "libm.so",
            "libgcc_s.so",
            "ld-linux",
        ]
        .iter()
        .any(|a| name.starts_with(a));
        assert!(allowed, "sx links {lib}:\n{out}");
    }
    assert!(out.contains("libc.so"), "{out}");
}

#[test]
fn status_reports_connections_queue_and_counters_as_text_and_json() {
    let srv = Server::prepare("").start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log(
        "directory: 1 account(s)",
        1,
        std::time::Duration::from_secs(5),
    );
    for i in 0..2 {
        let r = smtp_dialog_at(
            "127.0.0.1",
            srv.ports.smtp,
            &[
                "EHLO client.test",
                "MAIL FROM:<x@b.test>",
                "RCPT TO:<bob@a.test>",
                "DATA",
                &format!("Subject: {i}\r\n\r\nhello\r\n."),
                "QUIT",
            ],
        );
        assert!(r[5].starts_with("250 2.0.0 Ok: queued as"), "{r:?}");
    }
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<x@b.test>",
            "RCPT TO:<y@elsewhere.test>",
            "QUIT",
        ],
    );
    assert!(r[3].starts_with("554"), "{r:?}");
    // An IMAP client connected (and greeted) while we ask.
    let imap = std::net::TcpStream::connect(("127.0.0.1", srv.ports.imap)).unwrap();
    let mut greet = [0u8; 64];
    use std::io::Read;
    let _ = (&imap).read(&mut greet).unwrap();

    // Deliveries are counted when they happen; wait for both.
    let t = std::time::Instant::now();
    let json = loop {
        let o = srv.sx(&["--status", "--json"], "");
        assert_ok(&o, "--status --json");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        // Sessions end (and stop counting) just after their last reply.
        // and the queue forgets a message just after its delivery is counted.
        let settled = v["events"]["delivered"]["total"] == 2
            && v["connections"]["smtp"] == 0
            && v["queue"]["messages"] == 0;
        if settled || t.elapsed().as_secs() > 10 {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(json["pid"], srv.pid(), "{json}");
    assert_eq!(json["processes"].as_array().unwrap().len(), 5, "{json}");
    assert_eq!(json["connections"]["imap"], 1, "{json}");
    assert_eq!(json["connections"]["smtp"], 0, "{json}");
    for (event, n) in [
        ("accepted", 2),
        ("delivered", 2),
        ("rejected", 1),
        ("bounced", 0),
    ] {
        assert_eq!(json["events"][event]["total"], n, "{event}: {json}");
        assert_eq!(json["events"][event]["last_minute"], n, "{event}: {json}");
    }
    assert_eq!(json["queue"]["messages"], 0, "{json}");

    let o = srv.sx(&["--status"], "");
    assert_ok(&o, "--status");
    let out = text(&o);
    for want in [
        "connections: smtp 0, submission 0, submissions 0, imaps 0, imap 1",
        "queue: 0 message(s), 0 held",
        "last minute: 2 accepted, 1 rejected, 2 delivered",
    ] {
        assert!(out.contains(want), "--status lacks {want:?}:\n{out}");
    }
    drop(imap);
}

/// Issue 18.6: a domain is one command away and served at once: no restart,
/// no edit of the configuration; a packaged host whose name has no dot is
/// warned that it serves a dotless domain.
#[test]
fn a_domain_added_by_command_is_served_at_once() {
    let srv = Server::prepare("").start();
    srv.add_account("bob@a.test", "pw-bob-1");
    let o = srv.sx(&["--add-account", "ann@new.test"], "pw-ann-1\n");
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sx server-email --add-domain new.test"),
        "{err}"
    );
    let o = srv.sx(&["--add-domain", "New.Test"], "");
    assert_ok(&o, "--add-domain");
    assert!(text(&o).contains("added new.test"), "{}", text(&o));
    let again = srv.sx(&["--add-domain", "new.test"], "");
    assert_eq!(again.status.code(), Some(65), "{again:?}");
    assert_ok(
        &srv.sx(&["--add-account", "ann@new.test"], "pw-ann-1\n"),
        "--add-account",
    );
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<x@b.test>",
            "RCPT TO:<ann@new.test>",
            "QUIT",
        ],
    );
    assert!(r[3].starts_with("250"), "{r:?}\n{}", srv.log());
    let list = text(&srv.sx(&["--list-domains"], ""));
    assert_eq!(list, "a.test (primary)\nnew.test\n");
    assert_ok(
        &srv.sx(&["--remove-domain", "new.test"], ""),
        "--remove-domain",
    );
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<x@b.test>",
            "RCPT TO:<ann@new.test>",
            "QUIT",
        ],
    );
    assert!(r[3].starts_with("554 5.7.1"), "{r:?}");
    let o = srv.sx(&["--remove-domain", "a.test"], "");
    assert_eq!(o.status.code(), Some(66), "{o:?}");

    // A host name without a dot: the packaged default domain is that name.
    let dotless = Server::prepare("");
    let cfg = std::fs::read_to_string(&dotless.config).unwrap().replace(
        "EMAIL_HOSTNAME=mail.a.test\nEMAIL_DOMAIN=a.test\n",
        "EMAIL_HOSTNAME=vm\n",
    );
    std::fs::write(&dotless.config, cfg).unwrap();
    let out = text(&dotless.sx(&["--check-config"], ""));
    assert!(
        out.contains("warning: the primary domain \"vm\" has no dot"),
        "{out}"
    );
}
