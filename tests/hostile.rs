//! Hostile clients (issue 14): whatever one sends, it can at worst lose its own
//! session. Each test replays attacks that took the server (or one of its
//! services) down or made it grow, against the real daemon, and checks that the
//! attacker got the protocol's error, the processes are the same ones, their
//! memory stayed small and other clients were served.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const IMAP_PY: &str = include_str!("hostile/imap.py");

fn server(extra: &str) -> Server {
    let mut s = Server::prepare(extra);
    s.launch();
    s.add_account("bob@a.test", "pw-bob-1");
    s.add_account("carol@a.test", "pw-carol");
    s.wait_log("directory: 2 account(s)", 1, Duration::from_secs(5));
    s
}

fn rss_kib(pid: i32) -> u64 {
    proc_status(pid, "VmRSS")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn new_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn wait_files(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let t = Instant::now();
    loop {
        let f = new_files(dir);
        if f.len() >= n {
            return f;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{} of {n} in {dir:?}",
            f.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send everything at once (pipelining), then read `replies` SMTP replies.
fn smtp_pipelined(port: u16, payload: &[u8], replies: usize) -> Vec<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    let writer = {
        let payload = payload.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&payload);
            w
        })
    };
    let mut out = Vec::new();
    while out.len() < replies {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            out.push("EOF".to_string());
            break;
        }
        if l.len() >= 4 && l.as_bytes()[3] == b'-' {
            continue;
        }
        out.push(l.trim_end().to_string());
    }
    drop(writer.join());
    out
}

/// Items 1, 2, 3 and 9: LIST patterns that overflowed the stack or spun for
/// ever, literals reserved at their announced size before login, a literal
/// flood re-decoded after every literal, folders without end, megabyte log lines.
#[test]
fn imap_patterns_literals_floods_and_folders_cannot_take_imap_down() {
    let srv = server("EMAIL_IMAP_MAX_FOLDERS=10");
    let imap_pid = srv.child_pid("sx-imap");
    let before = srv.children();
    let o = python(
        IMAP_PY,
        &[
            &srv.ports.imaps.to_string(),
            &srv.ports.imap.to_string(),
            &srv.cert.to_string_lossy(),
            "bob@a.test",
            "pw-bob-1",
        ],
    );
    assert_ok(&o, "hostile imap script");
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    for want in [
        "list-stars=OK",
        "list-long=NO",
        "list-spin=OK",
        "list-all=OK/5",
        "list-fast=True",
        "create-refused=[LIMIT]",
        "created=6",
        "long-name=NO",
        "huge-name=NO",
        "prelogin-literal=NO+bye",
        "prelogin-sync=NO",
        "flood=refused",
        "flood-fast=True",
        "login-during-flood=True",
    ] {
        assert!(
            out.split(' ').any(|w| w == want),
            "{want} not in: {out}\n{}",
            srv.log()
        );
    }
    assert_eq!(srv.child_pid("sx-imap"), imap_pid, "sx-imap was restarted");
    let (mut now, mut was) = (srv.children(), before);
    now.sort();
    was.sort();
    assert_eq!(now, was, "a process was restarted");
    let rss = rss_kib(imap_pid);
    assert!(rss < 100 * 1024, "sx-imap RSS {rss} KiB after the attacks");
    let log = srv.log();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2200, "a log line of {longest} bytes");
    assert!(log.contains("LIST pattern over"), "{log}");
}

/// Items 4, 5, 11: ~900 recipients (the commit frame was dropped and the
/// session hung), more than one frame's worth (452, the rest goes on), BDAT
/// with bare CR/LF, postmaster.
#[test]
fn smtp_recipient_floods_bdat_smuggling_and_postmaster() {
    let srv = server("");
    let smtp_pid = srv.child_pid("sx-smtp");
    let mut p = b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\n".to_vec();
    for i in 0..900 {
        p.extend_from_slice(format!("RCPT TO:<bob+{i}@a.test>\r\n").as_bytes());
    }
    p.extend_from_slice(b"DATA\r\nSubject: many\r\n\r\nhi\r\n.\r\nQUIT\r\n");
    let t = Instant::now();
    let r = smtp_pipelined(srv.ports.smtp, &p, 905);
    assert!(
        r[2..902].iter().all(|l| l.starts_with("250")),
        "{:?}",
        &r[..5]
    );
    assert!(r[902].starts_with("354"), "{:?}", &r[900..]);
    assert!(
        r[903].starts_with("250 2.0.0 Ok: queued as"),
        "{:?}",
        &r[900..]
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    // One copy per mailbox per message.
    wait_files(&srv.path("mail/a.test/bob/new"), 1);

    // 1000 long recipients do not fit one frame: the excess gets 452, the
    // message still goes (RFC 5321 4.5.3.1.10).
    let tail = "x".repeat(50);
    let mut p = b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\n".to_vec();
    for i in 0..1000 {
        p.extend_from_slice(format!("RCPT TO:<carol+{tail}{i}@a.test>\r\n").as_bytes());
    }
    p.extend_from_slice(b"DATA\r\nSubject: long\r\n\r\nhi\r\n.\r\nQUIT\r\n");
    let r = smtp_pipelined(srv.ports.smtp, &p, 1005);
    let ok = r[2..1002].iter().filter(|l| l.starts_with("250")).count();
    let full = r[2..1002]
        .iter()
        .filter(|l| l.starts_with("452 4.5.3"))
        .count();
    assert!(ok > 300 && full > 0 && ok + full == 1000, "{ok} {full}");
    assert!(
        r[1003].starts_with("250 2.0.0 Ok: queued"),
        "{:?}",
        &r[1000..]
    );
    wait_files(&srv.path("mail/a.test/carol/new"), 1);

    // BDAT: bare CR and LF are refused as in DATA.
    for body in [
        "Subject: x\r\n\r\na\r.\r",
        "Subject: x\r\n\r\na\r.\n",
        "Subject: x\n\nb\r\n",
    ] {
        let mut p =
            b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@a.test>\r\n".to_vec();
        p.extend_from_slice(format!("BDAT {} LAST\r\n{body}", body.len()).as_bytes());
        let r = smtp_pipelined(srv.ports.smtp, &p, 4);
        assert!(r[3].starts_with("550 5.6.0"), "{body:?}: {r:?}");
    }

    // A 1 MB header line: the header section is bounded (item 9).
    let mut p =
        b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@a.test>\r\nDATA\r\nX-Long: "
            .to_vec();
    p.extend(std::iter::repeat_n(b'h', 1 << 20));
    p.extend_from_slice(b"\r\n\r\nbody\r\n.\r\n");
    let r = smtp_pipelined(srv.ports.smtp, &p, 5);
    assert!(
        r[4].starts_with("552 5.3.4 Message header size exceeds limit"),
        "{r:?}"
    );

    // RFC 5321 4.5.1: postmaster, with and without a domain, always.
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<x@remote.test>",
            "RCPT TO:<Postmaster>",
            "RCPT TO:<POSTMASTER@a.test>",
        ],
    );
    assert!(r[3].starts_with("250"), "{r:?}");
    assert!(r[4].starts_with("250"), "{r:?}");
    assert_eq!(srv.child_pid("sx-smtp"), smtp_pid);
}

/// Item 6: an authenticated user may only put its own addresses in From:.
#[test]
fn submission_refuses_a_from_header_the_user_does_not_own() {
    let srv = server("");
    const PY: &str = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
out = []
for frm in ['ceo@a.test', 'Bob <bob@a.test>, carol@a.test', 'Bob <bob+x@a.test>']:
    s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
    s.mail('bob@a.test'); s.rcpt('x@remote.test')
    code, msg = s.data(('From: %s\r\nSubject: t\r\n\r\nhi\r\n' % frm).encode())
    out.append(str(code))
    s.quit()
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
s.mail('bob@a.test'); s.rcpt('x@remote.test')
code, msg = s.data(b'From: bob@a.test\r\nFrom: ceo@a.test\r\n\r\nhi\r\n')
out.append(str(code))
print(' '.join(out))
"#;
    let o = python(
        PY,
        &[
            &srv.ports.submission.to_string(),
            &srv.cert.to_string_lossy(),
        ],
    );
    assert_ok(&o, "submission");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "553 553 250 550");
}

/// Item 7: one table of failures for SMTP and IMAP, per address and per
/// account; IMAP locks out too; a success elsewhere does not reset it.
#[test]
fn login_failures_are_counted_once_for_both_services_and_lock_out() {
    let srv = server("EMAIL_AUTH_MAX_FAILURES=3\nEMAIL_AUTH_MAX_ACCOUNT_FAILURES=4");
    const PY: &str = r#"
import imaplib, smtplib, socket, ssl, sys
imaps, sub, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
out = []
def imap_login(user, pw, src='127.0.0.1'):
    class M(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            s = socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
            return self.ssl_context.wrap_socket(s, server_hostname=self.host)
    m = M('127.0.0.1', imaps, ssl_context=ctx)
    try:
        m.login(user, pw); m.logout(); return 'OK'
    except imaplib.IMAP4.error as e:
        return 'UNAVAILABLE' if 'UNAVAILABLE' in str(e) else 'NO'
    except (imaplib.IMAP4.abort, OSError):
        return 'BYE'
def smtp_auth(user, pw, src='127.0.0.1'):
    s = smtplib.SMTP('127.0.0.1', sub, source_address=(src, 0)); s.starttls(context=ctx)
    s.user, s.password = user, pw
    try:
        s.ehlo(); s.auth('PLAIN', s.auth_plain); s.quit(); return '235'
    except smtplib.SMTPAuthenticationError as e:
        return str(e.smtp_code)
    except smtplib.SMTPServerDisconnected:
        return 'closed'
    except smtplib.SMTPResponseException as e:
        return str(e.smtp_code)
# Two failures by IMAP, a success for another account, one failure by SMTP:
out.append(imap_login('bob@a.test', 'x'))
out.append(imap_login('carol@a.test', 'x'))
out.append(imap_login('carol@a.test', 'pw-carol'))
out.append(smtp_auth('bob@a.test', 'x'))
# ... the address is locked out on both, even with the right password.
out.append(imap_login('bob@a.test', 'pw-bob-1'))
out.append(smtp_auth('bob@a.test', 'pw-bob-1'))
# Per account: 4 failures on carol from other addresses lock strangers out,
# not the address carol logged in from before.
out.append(imap_login('carol@a.test', 'pw-carol', '127.0.0.9'))
for src in ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']:
    imap_login('carol@a.test', 'bad', src)
out.append(imap_login('carol@a.test', 'pw-carol', '127.0.0.6'))
out.append(imap_login('carol@a.test', 'pw-carol', '127.0.0.9'))
out.append(imap_login('bob@a.test', 'pw-bob-1', '127.0.0.6'))
print(' '.join(out))
"#;
    let o = python(
        PY,
        &[
            &srv.ports.imaps.to_string(),
            &srv.ports.submission.to_string(),
            &srv.cert.to_string_lossy(),
        ],
    );
    assert_ok(&o, "logins");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "NO NO OK 535 UNAVAILABLE 421 OK UNAVAILABLE OK OK",
        "{}",
        srv.log()
    );
    assert!(srv.log().contains("too many failures"));
}

/// Item 8: as root, --add-account must not follow a link planted in the
/// mail user's tree (it chowned the target and made files in it).
#[test]
fn add_account_does_not_follow_links_in_the_maildir_tree() {
    let srv = server("");
    let victim = srv.path("victim");
    std::fs::create_dir(&victim).unwrap();
    let domain = srv.path("mail/a.test");
    std::fs::create_dir_all(&domain).unwrap();
    std::os::unix::fs::symlink(&victim, domain.join("eve")).unwrap();
    let o = srv.sx(&["--add-account", "eve@a.test"], "pw-eve-12\n");
    assert!(!o.status.success(), "followed the link: {o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("symbolic link"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!(m.uid(), nix::unistd::geteuid().as_raw(), "victim chowned");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    // A planted domain directory link is refused just the same.
    let other = srv.path("mail/b.test");
    std::os::unix::fs::symlink(&victim, &other).unwrap();
    let o = srv.sx(&["--add-account", "x@b.test"], "pw\n");
    assert!(!o.status.success());
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}

/// Item 10: a busy MTA holding exactly the per-address limit, reconnecting for
/// every message, is never refused; the count is per service; on 465 and
/// 993 the refusal comes inside TLS.
#[test]
fn reconnecting_at_the_per_address_limit_is_never_refused_and_refusals_are_in_tls() {
    let srv = server("EMAIL_MAX_CONNECTIONS_PER_IP=4");
    let port = srv.ports.smtp;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut refused = 0;
                for _ in 0..15 {
                    let r = smtp_dialog_at(
                        "127.0.0.1",
                        port,
                        &[
                            "EHLO c.test",
                            "MAIL FROM:<x@remote.test>",
                            "RCPT TO:<bob@a.test>",
                            "DATA",
                            "Subject: x\r\n\r\nhi\r\n.",
                            "QUIT",
                        ],
                    );
                    if !r[0].starts_with("220") {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 0, "{}", srv.log());
    wait_files(&srv.path("mail/a.test/bob/new"), 60);
    // Four held on 25 do not count against 587.
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut b = [0u8; 64];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.read(&mut b);
            s
        })
        .collect();
    assert!(smtp_greets(srv.ports.submission));
    // On 993 the fifth connection reads its BYE inside TLS.
    const PY: &str = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
held = [ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10)) for _ in range(4)]
for h in held:
    h.recv(1000)
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10))
print(s.recv(1000).decode().strip())
"#;
    let o = python(
        PY,
        &[&srv.ports.imaps.to_string(), &srv.cert.to_string_lossy()],
    );
    assert_ok(&o, "993 refusal");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "* BYE Too many connections from your address"
    );
    drop(held);
}

/// Item 9: FETCH held about 2.5 times a message per session; now whole
/// messages and their text are streamed from the file.
#[test]
fn fetching_big_messages_streams_them_from_the_file() {
    let srv = server("");
    let new = srv.path("mail/a.test/bob/new");
    let mut body = b"From: x@remote.test\r\nSubject: big\r\n\r\n".to_vec();
    let line = [b'y'; 998];
    while body.len() < 24 << 20 {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    std::fs::write(new.join("1000.big.test"), &body).unwrap();
    const PY: &str = r#"
import imaplib, ssl, sys, threading
port, cafile, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
ok = []
def one(item):
    m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
    m.login('bob@a.test', 'pw-bob-1'); m.select('INBOX')
    typ, data = m.fetch('1', item)
    # Another session's BODY[] sets \Seen: an unsolicited `1 (FLAGS (\Seen))`
    # may come first, so take the response that carries the literal.
    body = next((d[1] for d in data if isinstance(d, tuple)), b'')
    ok.append(typ == 'OK' and len(body) in (size, size - 37))
    m.logout()
ts = [threading.Thread(target=one, args=(i,)) for i in ['(BODY.PEEK[])', '(RFC822)', '(BODY.PEEK[TEXT])', '(BODY[])'] * 2]
[t.start() for t in ts]; [t.join() for t in ts]
print(all(ok), len(ok))
"#;
    let imap = srv.child_pid("sx-imap");
    let o = python(
        PY,
        &[
            &srv.ports.imaps.to_string(),
            &srv.cert.to_string_lossy(),
            &body.len().to_string(),
        ],
    );
    assert_ok(&o, "big fetches");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "True 8",
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        srv.log()
    );
    let peak: u64 = proc_status(imap, "VmHWM")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    // Eight sessions fetching 24 MB each: 480 MB before, a few MB now.
    assert!(peak < 64 * 1024, "sx-imap peaked at {peak} KiB");
}

/// Item 9: a login flood made keyholder grow from 7 MB to 450 MB and keep it
/// (argon2's 19 MiB per run, in the arenas of a growing thread pool).
#[test]
fn a_login_flood_leaves_keyholder_small() {
    let srv = server("");
    const PY: &str = r#"
import imaplib, socket, ssl, sys, threading
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
def one(i):
    class M(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            s = socket.create_connection((self.host, self.port), timeout, source_address=('127.0.%d.%d' % (1 + i // 200, 2 + i % 200), 0))
            return self.ssl_context.wrap_socket(s, server_hostname=self.host)
    try:
        m = M('127.0.0.1', port, ssl_context=ctx, timeout=60)
        m.login('bob@a.test', 'wrong-%d' % i)
    except Exception:
        pass
ts = [threading.Thread(target=one, args=(i,)) for i in range(120)]
[t.start() for t in ts]; [t.join() for t in ts]
print('done')
"#;
    let keyholder = srv.child_pid("sx-keyholder");
    // bob has logged in from here before the flood ...
    assert_eq!(imap_login(&srv, "bob@a.test", "pw-bob-1"), "OK");
    let o = python(
        PY,
        &[&srv.ports.imaps.to_string(), &srv.cert.to_string_lossy()],
    );
    assert_ok(&o, "login flood");
    let rss = rss_kib(keyholder);
    assert!(rss < 64 * 1024, "keyholder keeps {rss} KiB after the flood");
    assert_eq!(srv.child_pid("sx-keyholder"), keyholder);
    // ... so the account, locked for strangers now, is not locked for him.
    assert_eq!(imap_login(&srv, "bob@a.test", "pw-bob-1"), "OK");
}

/// Connections over one address's limit wait for a slot only a few at a time,
/// and a refusal holds no session slot: a flood from one address does not
/// fill the service for everyone else.
#[test]
fn a_flood_from_one_address_leaves_room_for_others() {
    let srv = server("EMAIL_MAX_CONNECTIONS_PER_IP=2\nEMAIL_MAX_CONNECTIONS=10");
    let flood: Vec<TcpStream> = (0..40)
        .filter_map(|_| {
            let s = std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], srv.ports.smtp)),
                Duration::from_secs(2),
            );
            s.ok()
        })
        .collect();
    // Another address is served at once.
    const PY: &str = r#"
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5, source_address=('127.0.0.9', 0))
print(s.recv(100).decode().split(' ')[0])
"#;
    let o = python(PY, &[&srv.ports.smtp.to_string()]);
    assert_ok(&o, "other address");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "220",
        "{}",
        srv.log()
    );
    drop(flood);
}
