//! The IMAP server with real clients: Python's imaplib (over 993 and STARTTLS
//! on 143), raw sockets for IDLE and concurrent sessions, and mbsync.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const COMMANDS_PY: &str = include_str!("imap/commands.py");

fn server() -> Server {
    let mut s = Server::prepare("");
    s.launch();
    s.add_account("alice@a.test", "alice-pw-1");
    s.add_account("bob@a.test", "bob-pw-1");
    s.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    s
}

fn run_py(s: &Server, script: &str, extra: &[&str]) -> String {
    let mut args = vec![
        s.ports.imaps.to_string(),
        s.ports.imap.to_string(),
        s.ports.smtp.to_string(),
        s.cert.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = python(script, &refs);
    assert_ok(&o, "python imap script");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn imaplib_commands_over_993_and_starttls_143() {
    let mut s = server();
    let out = run_py(&s, COMMANDS_PY, &["alice@a.test", "alice-pw-1"]);
    assert!(out.ends_with("OK"), "{out}\n{}", s.log());
    let log = s.log();
    assert!(log.contains("login user=alice@a.test"), "{log}");
    assert!(log.contains("login failed user=alice@a.test"), "{log}");
    assert!(
        log.contains("logout user=alice@a.test") && log.contains(" in=") && log.contains(" out="),
        "{log}"
    );
    assert!(
        !log.contains("alice-pw-1") && !log.contains("wrong password"),
        "passwords in the log"
    );
    s.stop();
}

fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                if p.is_dir() {
                    walk(&p, base, out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const TRAVERSAL_PY: &str = r#"
import imaplib, ssl, sys
imaps, imap, smtp, cafile = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)
m.login("alice@a.test", "alice-pw-1")
bad = ["../x", "../../a.test/bob", "a/b", "..", "/etc", "~root", ".hidden", "x..y", "Sent/../../bob"]
for name in bad:
    for cmd in (lambda: m.create(name), lambda: m.select(name), lambda: m.rename("Sent", name),
                lambda: m.rename(name, "Fine"), lambda: m.delete(name), lambda: m.status(name, "(MESSAGES)"),
                lambda: m.append(name, None, None, b"Subject: x\r\n\r\nx\r\n"), lambda: m.subscribe(name)):
        try:
            typ, data = cmd()
        except imaplib.IMAP4.error as e:
            typ, data = "BAD", [str(e).encode()]
        if typ == "OK":
            print("ACCEPTED", name, data); sys.exit(1)
m.select("INBOX")
typ, data = m.copy("1:*", "../../a.test/bob")
if typ == "OK":
    print("COPY ACCEPTED"); sys.exit(1)
print("OK")
"#;

#[test]
fn path_traversal_is_refused_and_creates_nothing() {
    let mut s = server();
    // One message so that COPY has something to copy.
    let o = python(
        "import smtplib,sys\nwith smtplib.SMTP('127.0.0.1', int(sys.argv[1])) as c: c.sendmail('x@b.test', ['alice@a.test'], 'Subject: t\\r\\n\\r\\nbody\\r\\n')",
        &[&s.ports.smtp.to_string()],
    );
    assert_ok(&o, "smtp");
    std::thread::sleep(Duration::from_millis(500));
    let root = s.path("");
    let before = tree(&root);
    let out = run_py(&s, TRAVERSAL_PY, &[]);
    assert_eq!(out, "OK");
    let after: Vec<String> = tree(&root)
        .into_iter()
        .filter(|p| !p.contains("/cur/") && !p.contains("/new/") && !p.contains("sx-"))
        .filter(|p| !p.ends_with("/cur") || before.contains(p))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.contains("/cur/") && !p.contains("/new/") && !p.contains("sx-"))
        .collect();
    let new: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(new.is_empty(), "created: {new:?}");
    assert!(!s.path("x").exists() && !s.path("mail/x").exists());
    s.stop();
}
