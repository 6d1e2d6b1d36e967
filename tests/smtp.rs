//! The SMTP server with real clients: swaks, Python's smtplib and raw sockets.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Files in bob's INBOX new/, waiting up to 5 s for `n` of them.
fn wait_new(dir: &Path, n: usize) -> Vec<PathBuf> {
    let t = Instant::now();
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if v.len() >= n {
            v.sort();
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "only {} message(s) in {}",
            v.len(),
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server(extra: &str) -> Server {
    let srv = Server::prepare(extra).start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.add_account("carol@a.test", "pw-carol");
    srv.wait_log("2 account(s)", 1, Duration::from_secs(5));
    srv.wait_log("directory: 2 account(s)", 1, Duration::from_secs(5));
    srv
}

fn swaks(args: &[&str]) -> std::process::Output {
    Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks (apt-get install swaks)")
}

#[test]
fn swaks_and_smtplib_deliver_on_25_with_and_without_starttls() {
    let srv = server("");
    let port = srv.ports.smtp.to_string();
    let server_arg = format!("127.0.0.1:{port}");
    let o = swaks(&[
        "--server",
        &server_arg,
        "--from",
        "alice@example.net",
        "--to",
        "bob@a.test",
        "--helo",
        "client.example.net",
        "--h-Subject",
        "plain swaks",
        "--body",
        "body one",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("250 2.0.0 Ok: queued as "));
    let o = swaks(&[
        "--server",
        &server_arg,
        "--from",
        "alice@example.net",
        "--to",
        "bob+lists@a.test",
        "--helo",
        "client.example.net",
        "--tls",
        "--h-Subject",
        "tls swaks",
        "--body",
        "body two",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let py = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.example.net')
s.sendmail('alice@example.net', ['carol@a.test'], 'Subject: smtplib plain\r\n\r\nbody three\r\n')
s.quit()
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.example.net')
s.starttls(context=ctx)
s.sendmail('alice@example.net', ['Carol@A.TEST'], 'Subject: smtplib tls\r\n\r\nbody four\r\n')
s.quit()
print('sent')
"#;
    let o = python(py, &[&port, &srv.cert.to_string_lossy()]);
    assert_ok(&o, "smtplib");
    let bob = wait_new(&srv.path("mail/a.test/bob/new"), 2);
    let carol = wait_new(&srv.path("mail/a.test/carol/new"), 2);
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
    let (b1, b2) = (read(&bob[0]), read(&bob[1]));
    let (plain, tls) = if b1.contains("plain swaks") {
        (b1, b2)
    } else {
        (b2, b1)
    };
    assert!(
        plain.starts_with("Return-Path: <alice@example.net>\r\nDelivered-To: bob@a.test\r\n"),
        "{plain}"
    );
    assert!(plain.contains("Received: from client.example.net ([127.0.0.1])\r\n\tby mail.a.test (scorpiox) with ESMTP id "), "{plain}");
    assert!(plain.contains("for <bob@a.test>;"), "{plain}");
    assert!(!plain.contains("version=TLS"), "{plain}");
    assert!(plain.contains("body one"));
    assert!(tls.contains("with ESMTPS id "), "{tls}");
    assert!(tls.contains("(version=TLSv1.3 cipher=TLS13_"), "{tls}");
    assert!(tls.contains("X-Original-To: bob+lists@a.test"), "{tls}");
    let c: Vec<String> = carol.iter().map(read).collect();
    assert!(c
        .iter()
        .any(|m| m.contains("smtplib plain") && m.contains("with ESMTP id")));
    assert!(c
        .iter()
        .any(|m| m.contains("smtplib tls") && m.contains("with ESMTPS id")));
    // Every delivered message left the queue.
    srv.wait_log("removed", 4, Duration::from_secs(5));
    assert_eq!(std::fs::read_dir(srv.path("queue/msg")).unwrap().count(), 0);
    let log = srv.log();
    assert!(log.contains("from=<alice@example.net> size="), "{log}");
    assert!(
        log.contains("relay=local") && log.contains("status=sent"),
        "{log}"
    );
}

const SUBMISSION_PY: &str = r#"
import smtplib, ssl, sys
port, cafile, implicit = int(sys.argv[1]), sys.argv[2], sys.argv[3] == 'ssl'
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
def connect():
    if implicit:
        s = smtplib.SMTP_SSL('127.0.0.1', port, context=ctx, local_hostname='client.test')
    else:
        s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.test')
    s.ehlo()
    return s
out = []
s = connect()
if not implicit:
    out.append('auth-offered-before-tls=%s' % s.has_extn('auth'))
    out.append('auth-before-tls=%d' % s.docmd('AUTH PLAIN AGJvYkBhLnRlc3QAcHctYm9i')[0])
    out.append('mail-before-tls=%d' % s.docmd('MAIL FROM:<bob@a.test>')[0])
    s.starttls(context=ctx); s.ehlo()
out.append('auth-offered=%s' % s.has_extn('auth'))
out.append('mail-before-auth=%d' % s.docmd('MAIL FROM:<bob@a.test>')[0])
try:
    s.login('bob@a.test', 'wrong')
except smtplib.SMTPAuthenticationError as e:
    out.append('wrong-password=%d' % e.smtp_code)
s.login('bob@a.test', 'pw-bob-1')   # smtplib prefers PLAIN here
out.append('as-other-user=%d' % s.docmd('MAIL FROM:<carol@a.test>')[0])
s.docmd('RSET')
r = s.sendmail('bob+x@a.test', ['someone@remote.test', 'carol@a.test'], 'From: bob@a.test\r\nSubject: out\r\n\r\nhi\r\n')
out.append('sent-plain=%s' % (r == {}))
s.quit()
s = connect()
if not implicit:
    s.starttls(context=ctx); s.ehlo()
s.user, s.password = 'carol@a.test', 'pw-carol'
code, resp = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
out.append('login-mech=%d' % code)
s.sendmail('carol@a.test', ['x@remote.test'], 'Subject: via LOGIN\r\n\r\nhi\r\n')
out.append('sent-login=True')
s.quit()
print(' '.join(out))
"#;

fn submission(implicit: bool) {
    let srv = server("");
    let port = if implicit {
        srv.ports.submissions
    } else {
        srv.ports.submission
    };
    let mode = if implicit { "ssl" } else { "starttls" };
    let o = python(
        SUBMISSION_PY,
        &[&port.to_string(), &srv.cert.to_string_lossy(), mode],
    );
    assert_ok(&o, "submission");
    let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mut want = Vec::new();
    if !implicit {
        want.extend([
            "auth-offered-before-tls=False",
            "auth-before-tls=538",
            "mail-before-tls=530",
        ]);
    }
    want.extend([
        "auth-offered=True",
        "mail-before-auth=530",
        "wrong-password=535",
        "as-other-user=553",
        "sent-plain=True",
        "login-mech=235",
        "sent-login=True",
    ]);
    assert_eq!(got, want.join(" "));
    // The remote recipients are queued (outbound is the queue issue's), the local one delivered.
    wait_new(&srv.path("mail/a.test/carol/new"), 1);
    let t = Instant::now();
    while std::fs::read_dir(srv.path("queue/msg")).unwrap().count() < 2 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = srv.log();
    assert!(
        log.contains("proto=ESMTPSA") && log.contains("auth=bob@a.test"),
        "{log}"
    );
    assert!(log.contains("auth failed user=bob@a.test"), "{log}");
    assert!(
        !log.contains("pw-bob-1") && !log.contains("wrong"),
        "password in log"
    );
}

#[test]
fn submission_587_starttls_auth_plain_and_login() {
    submission(false);
}

#[test]
fn submissions_465_implicit_tls() {
    submission(true);
}

/// Send `lines` one by one on port `port`, returning each reply's first line.
const DIALOG_PY: &str = r#"
import socket, sys
port = int(sys.argv[1]); cmds = sys.argv[2:]
s = socket.create_connection(('127.0.0.1', port)); f = s.makefile('rb')
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        if not l: return 'EOF'
        lines.append(l.rstrip())
        if len(l) < 4 or l[3] != '-': return lines[0] if len(lines) == 1 else lines[-1]
reply()
for c in cmds:
    try:
        s.sendall(c.encode().replace(b'\\r\\n', b'\r\n') + b'\r\n')
        print(reply())
    except (BrokenPipeError, ConnectionResetError):
        print('EOF')
"#;

fn dialog(port: u16, cmds: &[&str]) -> Vec<String> {
    let mut args = vec![port.to_string()];
    args.extend(cmds.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = python(DIALOG_PY, &a);
    assert_ok(&o, "dialog");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn port_25_never_relays() {
    let srv = server("");
    let attempts = [
        "RCPT TO:<victim@foreign.test>",
        "RCPT TO:<victim%foreign.test@a.test>",
        "RCPT TO:<\"victim@foreign.test\"@a.test>",
        "RCPT TO:<@a.test:victim@foreign.test>",
        "RCPT TO:<victim@foreign.test@a.test>",
        "RCPT TO:<victim!foreign.test@a.test>",
        "RCPT TO:<nosuchuser@a.test>",
    ];
    let mut cmds = vec!["EHLO relay.test", "MAIL FROM:<spammer@foreign.test>"];
    cmds.extend(attempts);
    cmds.push("DATA");
    let r = dialog(srv.ports.smtp, &cmds);
    assert!(r[1].starts_with("250"), "{r:?}");
    for (a, reply) in attempts.iter().zip(&r[2..]) {
        assert!(reply.starts_with('5'), "{a} -> {reply}");
    }
    assert!(r[2].starts_with("554 5.7.1"), "{}", r[2]);
    assert!(r[8].starts_with("550 5.1.1"), "{}", r[8]);
    assert!(
        r.last().unwrap().starts_with("554 5.5.1"),
        "DATA without recipients: {r:?}"
    );
    assert_eq!(std::fs::read_dir(srv.path("queue/msg")).unwrap().count(), 0);
    assert!(srv.log().contains(
        "reject: RCPT from [127.0.0.1]: 554 5.7.1 <victim@foreign.test>: Relay access denied"
    ));
}

#[test]
fn pipelined_commands_after_starttls_are_discarded() {
    let srv = server("");
    let py = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port)); f = s.makefile('rb')
def reply():
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b'-': return l.decode().strip()
reply(); s.sendall(b'EHLO a\r\n'); reply()
s.sendall(b'STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nRCPT TO:<bob@a.test>\r\n')
print(reply())
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
t = ctx.wrap_socket(s); g = t.makefile('rb')
def treply():
    while True:
        l = g.readline()
        if len(l) < 4 or l[3:4] != b'-': return l.decode().strip()
t.sendall(b'RCPT TO:<bob@a.test>\r\n'); print(treply())
t.sendall(b'MAIL FROM:<x@y.test>\r\n'); print(treply())
t.sendall(b'EHLO a\r\n'); print(treply())
t.sendall(b'MAIL FROM:<x@y.test>\r\n'); print(treply())
"#;
    let o = python(
        py,
        &[&srv.ports.smtp.to_string(), &srv.cert.to_string_lossy()],
    );
    assert_ok(&o, "starttls injection");
    let r: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(r[0].starts_with("220 2.0.0"), "{r:?}");
    // Neither the injected MAIL nor RCPT ran, and the session was reset (EHLO needed).
    assert!(r[1].starts_with("503"), "{r:?}");
    assert!(r[2].starts_with("503 5.5.1 Send EHLO"), "{r:?}");
    assert!(r[3].starts_with("250 HELP"), "{r:?}");
    assert!(r[4].starts_with("250 2.1.0"), "{r:?}");
}

#[test]
fn bare_lf_size_recipient_and_line_limits() {
    let srv = server("EMAIL_MAX_MESSAGE_SIZE=20000\nEMAIL_MAX_RECIPIENTS=1000");
    let py = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port)); f = s.makefile('rb')
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l: return 'EOF'
        lines.append(l.decode().strip())
        if len(l) < 4 or l[3:4] != b'-': return '|'.join(lines)
def cmd(c): s.sendall(c); return reply()
reply()
print(cmd(b'EHLO limits.test\r\n'))
# Bare LF in DATA: refused, the session goes on.
cmd(b'MAIL FROM:<a@b.test>\r\n'); cmd(b'RCPT TO:<bob@a.test>\r\n'); cmd(b'DATA\r\n')
print(cmd(b'Subject: x\r\n\r\nline\nmore\r\n.\r\n'))
# Declared and actual size.
print(cmd(b'MAIL FROM:<a@b.test> SIZE=30000\r\n'))
cmd(b'MAIL FROM:<a@b.test>\r\n'); cmd(b'RCPT TO:<bob@a.test>\r\n'); cmd(b'DATA\r\n')
print(cmd(b'Subject: big\r\n\r\n' + (b'x' * 998 + b'\r\n') * 25 + b'.\r\n'))
# 1001 recipients, pipelined.
cmd(b'RSET\r\n'); cmd(b'MAIL FROM:<a@b.test>\r\n')
s.sendall(b'RCPT TO:<bob@a.test>\r\n' * 1001)
replies = [reply() for _ in range(1001)]
print('rcpt-ok=%d last=%s' % (sum(r.startswith('250') for r in replies), replies[-1]))
cmd(b'RSET\r\n')
# A 1 MB line, then the session still works.
print(cmd(b'NOOP ' + b'A' * (1 << 20) + b'\r\n'))
print(cmd(b'NOOP\r\n'))
"#;
    let o = python(py, &[&srv.ports.smtp.to_string()]);
    assert_ok(&o, "limits");
    let r: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(r[0].contains("250-SIZE 20000"), "{}", r[0]);
    assert!(r[1].starts_with("550 5.6.0"), "bare LF: {}", r[1]);
    assert!(r[2].starts_with("552 5.3.4"), "declared size: {}", r[2]);
    assert!(r[3].starts_with("552 5.3.4"), "actual size: {}", r[3]);
    assert_eq!(r[4], "rcpt-ok=1000 last=452 4.5.3 Too many recipients");
    assert!(r[5].starts_with("500 5.5.2"), "long line: {}", r[5]);
    assert!(r[6].starts_with("250"), "after long line: {}", r[6]);

    // Issue 15.9: a dot line after a bare LF is answered at once (it waited
    // for the timeout), and the connection closes: the smuggled MAIL FROM
    // behind it is never read as a command.
    let py = r#"
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5); f = s.makefile('rb')
f.readline()
s.sendall(b'EHLO x.test\r\n')
while f.readline()[3:4] == b'-': pass
s.sendall(b'MAIL FROM:<a@b.test>\r\nRCPT TO:<bob@a.test>\r\nDATA\r\n')
for _ in range(3): f.readline()
t = time.time()
s.sendall(b'Subject: x\r\n\r\nline\n.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<bob@a.test>\r\n')
print(f.readline().decode().strip(), '%.1f' % (time.time() - t))
print(repr(f.read()))
"#;
    let o = python(py, &[&srv.ports.smtp.to_string()]);
    assert_ok(&o, "bare LF dot");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("521 5.5.2 ") && out.contains(" 0.0\nb''"),
        "{out}"
    );
    // Nothing of the refused messages was delivered or queued.
    srv.wait_spool(0);
    assert_eq!(
        std::fs::read_dir(srv.path("mail/a.test/bob/new"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(srv.path("queue/msg")).unwrap().count(), 0);
}

#[test]
fn errors_and_connections_are_limited() {
    let srv = server("EMAIL_MAX_ERRORS=3\nEMAIL_MAX_CONNECTIONS_PER_IP=2");
    let r = dialog(
        srv.ports.smtp,
        &["BOGUS", "BOGUS", "BOGUS", "BOGUS", "NOOP"],
    );
    assert!(r[0].starts_with("500 5.5.1"), "{r:?}");
    assert!(r[3].starts_with("421"), "{r:?}");
    assert_eq!(r[4], "EOF");
    // Two connections held open; the third from the same address is refused.
    // Each is counted once it has its greeting.
    let hold: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            use std::io::Read;
            let mut c = std::net::TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
            let mut b = [0u8; 3];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"220");
            c
        })
        .collect();
    let r = dialog(srv.ports.smtp, &["NOOP"]);
    assert_eq!(r, ["EOF"], "third connection should get 421 and close");
    // Served again once the server has seen the two close.
    drop(hold);
    let t = std::time::Instant::now();
    while dialog(srv.ports.smtp, &["NOOP"]) != ["250 2.0.0 Ok"] {
        assert!(t.elapsed() < Duration::from_secs(5), "still refused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn chunking_bdat_delivers() {
    let srv = server("");
    let body = "Subject: bdat\r\n\r\nchunked body\r\n";
    // The dialog helper ends every command with CRLF: each chunk's last two bytes.
    let (a, b) = ("Subject: bdat", "\r\nchunked body");
    let r = dialog(
        srv.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<a@b.test> BODY=8BITMIME RET=HDRS ENVID=abc123",
            "RCPT TO:<bob@a.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@a.test",
            &format!("BDAT {}\r\n{a}", a.len() + 2),
            &format!("BDAT {} LAST\r\n{b}", b.len() + 2),
        ],
    );
    // The EHLO reply names CHUNKING (dialog() keeps only a reply's last line).
    let ehlo = smtp_dialog_at("127.0.0.1", srv.ports.smtp, &["EHLO c.test"]);
    assert!(
        ehlo[1]
            .lines()
            .any(|l| l.trim_end() == "250-CHUNKING" || l.trim_end() == "250 CHUNKING"),
        "{ehlo:?}"
    );
    assert!(r[0].starts_with("250 "), "{r:?}");
    assert!(r[3].starts_with("250 2.0.0 15 octets"), "{r:?}");
    assert!(r[4].starts_with("250 2.0.0 Ok: queued as"), "{r:?}");
    let m = wait_new(&srv.path("mail/a.test/bob/new"), 1);
    let text = std::fs::read_to_string(&m[0]).unwrap();
    assert!(text.ends_with(body), "{text}");
}

/// kill -9 of queue mid-DATA: no false 250; every 250'd message survives.
#[test]
fn queue_killed_during_data_never_gives_a_false_250() {
    let srv = server("");
    let py = r#"
import smtplib, ssl, sys, socket, time
port, cafile, flag = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
ids = []
for i in range(5):
    s.mail('bob@a.test'); s.rcpt('far%d@remote.test' % i)
    code, msg = s.data(('Subject: m%d\r\n\r\nbody\r\n' % i).encode())
    ids.append(msg.decode().split()[-1])
print(' '.join(ids), flush=True)
s.mail('bob@a.test'); s.rcpt('last@remote.test')
code, msg = s.docmd('DATA')
assert code == 354
s.send(b'Subject: doomed\r\n\r\n')
# Tell the test to kill queue, wait for it to be done.
open(flag, 'w').write('go')
time.sleep(1.0)
try:
    s.send(b'more\r\n.\r\n')
    code, msg = s.getreply()
    print('final=%d' % code)
except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
    print('final=dropped')
"#;
    let flag = srv.path("flag");
    let child = python_cmd()
        .args([
            "-c",
            py,
            &srv.ports.submission.to_string(),
            &srv.cert.to_string_lossy(),
            &flag.to_string_lossy(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !flag.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "{}", srv.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let queue = srv.child_pid("sx-queue");
    srv.expect_crashes();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(queue),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut lines = text.lines();
    let ids: Vec<String> = lines.next().unwrap().split(' ').map(String::from).collect();
    let last = lines.next().unwrap_or("");
    assert!(
        last == "final=dropped" || last.starts_with("final=4"),
        "got {last}"
    );
    assert_eq!(ids.len(), 5);
    srv.wait_log("restarted:", 1, Duration::from_secs(10));
    srv.wait_log("5 message(s) in the queue", 1, Duration::from_secs(10));
    for id in &ids {
        let path = srv.path(&format!("queue/msg/{id}"));
        let (env, body) =
            sxproc::queue::spool::read_message(&path).unwrap_or_else(|e| panic!("{id} lost: {e}"));
        assert_eq!(&env.id, id);
        assert!(String::from_utf8_lossy(&body).contains("Subject: m"));
    }
    // The half-written one was removed at restart: only the five acknowledged remain.
    assert_eq!(
        std::fs::read_dir(srv.path("queue/msg")).unwrap().count(),
        5,
        "half-written file left"
    );
}

/// RFC 3461 parameters given by the client end up in the queued envelope.
#[test]
fn dsn_parameters_are_kept_in_the_envelope() {
    let srv = server("");
    let py = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
assert s.has_extn('dsn')
s.sendmail('bob@a.test', ['far@remote.test'], 'Subject: dsn\r\n\r\nx\r\n',
           mail_options=['RET=HDRS', 'ENVID=env-42'],
           rcpt_options=['NOTIFY=FAILURE,DELAY', 'ORCPT=rfc822;far@remote.test'])
s.quit()
"#;
    assert_ok(
        &python(
            py,
            &[
                &srv.ports.submission.to_string(),
                &srv.cert.to_string_lossy(),
            ],
        ),
        "dsn",
    );
    let msg = std::fs::read_dir(srv.path("queue/msg"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let (e, body) = sxproc::queue::spool::read_message(&msg).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Subject: dsn"));
    assert_eq!(e.from, "bob@a.test");
    assert_eq!(e.ret_full, Some(false));
    assert_eq!(e.envid.as_deref(), Some("env-42"));
    assert_eq!(e.auth.as_deref(), Some("bob@a.test"));
    let r = &e.recipients[0];
    assert_eq!(r.address, "far@remote.test");
    // smtp-proto decodes ORCPT to the address; its type is rfc822.
    assert_eq!(r.orcpt.as_deref(), Some("far@remote.test"));
    assert_eq!(r.notify, smtp_proto_notify(&["FAILURE", "DELAY"]));
    assert!(
        matches!(&r.dest, ipc::messages::Dest::Remote { address } if address == "far@remote.test")
    );
}

fn smtp_proto_notify(flags: &[&str]) -> u64 {
    // smtp-proto's RCPT_NOTIFY_* bits: SUCCESS 1, FAILURE 2, DELAY 4, NEVER 8.
    flags
        .iter()
        .map(|f| match *f {
            "SUCCESS" => 1,
            "FAILURE" => 2,
            "DELAY" => 4,
            _ => 8,
        })
        .sum()
}

#[test]
fn aliases_catch_all_and_tags() {
    let srv = Server::prepare("EMAIL_DOMAINS=b.test");
    std::fs::write(
        srv.path("aliases"),
        "# aliases\npostmaster@a.test: bob@a.test\nteam@a.test: bob@a.test, carol@a.test\n@b.test: carol@a.test\n",
    )
    .unwrap();
    let srv = srv.start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.add_account("carol@a.test", "pw-carol");
    srv.wait_log(
        "directory: 2 account(s), 3 alias(es)",
        1,
        Duration::from_secs(5),
    );
    let mut cmds = vec!["EHLO c.test", "MAIL FROM:<x@y.test>"];
    let rcpts = [
        "postmaster@a.test",
        "TEAM@a.test",
        "anything@b.test",
        "bob+tag@a.test",
        "nobody@a.test",
    ];
    let lines: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:<{r}>")).collect();
    cmds.extend(lines.iter().map(|s| s.as_str()));
    cmds.extend(["DATA", "Subject: aliases\r\n\r\nhi\r\n."]);
    let r = dialog(srv.ports.smtp, &cmds);
    assert!(r[2..6].iter().all(|x| x.starts_with("250")), "{r:?}");
    assert!(r[6].starts_with("550 5.1.1"), "{r:?}");
    assert!(r[8].starts_with("250 2.0.0 Ok: queued"), "{r:?}");
    // One copy per mailbox: bob (postmaster, team, +tag), carol (team, catch-all).
    wait_new(&srv.path("mail/a.test/bob/new"), 1);
    wait_new(&srv.path("mail/a.test/carol/new"), 1);
    srv.wait_log("removed", 1, Duration::from_secs(5));
    assert_eq!(
        std::fs::read_dir(srv.path("mail/a.test/bob/new"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(srv.path("mail/a.test/carol/new"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn quota_defers_mail_for_a_full_mailbox() {
    let srv = server("EMAIL_QUOTA=3000");
    let big = "x".repeat(2000);
    let r1 = dialog(
        srv.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<a@b.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("Subject: one\r\n\r\n{big}\r\n."),
        ],
    );
    assert!(r1[4].starts_with("250"), "{r1:?}");
    wait_new(&srv.path("mail/a.test/bob/new"), 1);
    let r2 = dialog(
        srv.ports.smtp,
        &[
            "EHLO c.test",
            "MAIL FROM:<a@b.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("Subject: two\r\n\r\n{big}\r\n."),
        ],
    );
    assert!(r2[4].starts_with("250"), "{r2:?}");
    srv.wait_log(
        "status=deferred (4.2.2 mailbox full: bob@a.test is over its quota of 3000 bytes)",
        1,
        Duration::from_secs(5),
    );
    assert_eq!(
        std::fs::read_dir(srv.path("mail/a.test/bob/new"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(srv.path("queue/msg")).unwrap().count(),
        1,
        "kept for a retry"
    );
}
