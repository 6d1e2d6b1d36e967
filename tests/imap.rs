//! The IMAP server with real clients: Python's imaplib (over 993 and STARTTLS
//! on 143), raw sockets for IDLE and concurrent sessions, mbsync,
//! offlineimap3, and Perl's Mail::IMAPTalk for QRESYNC.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const COMMANDS_PY: &str = include_str!("imap/commands.py");

fn server() -> Server {
    let mut s = Server::prepare("");
    s.launch();
    s.add_account("alice@a.test", "alice-pw-1");
    // add_account returns once the running server has the account.
    s.add_account("bob@a.test", "bob-pw-1");
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
    s.wait_spool(0);
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

/// Found by fuzz/imap_command: LIST matched patterns by byte index, and a
/// folder name with a multi-byte character at byte 5 made sx-imap panic (abort),
/// dropping every session; five such LISTs in a minute stopped the server.
/// Names are UTF-8 on the wire once a client enables UTF8=ACCEPT (imaplib's
/// enable() then sends them quoted), and patterns are matched against them.
const UTF8_NAMES_PY: &str = r#"
import imaplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
assert m.login('alice@a.test', 'alice-pw-1')[0] == 'OK'
# Without UTF8=ACCEPT a name is modified UTF-7, and 8-bit is refused.
m.literal = 'Entw\u00fcrfe'.encode()
typ, data = m._simple_command('CREATE')
assert typ == 'NO' and b'modified UTF-7' in data[0], data
assert m.enable('UTF8=ACCEPT')[0] == 'OK'
assert m.create('"Entw\u00fcrfe"')[0] == 'OK'
for pattern in ['"*"', '"INBOX*"', '"Entw%"', '"Entw\u00fc*"']:
    typ, data = m.list('""', pattern)
    assert typ == 'OK', (pattern, data)
typ, data = m.list('""', '"Entw\u00fc*"')
assert data == ['(\\HasNoChildren) "." "Entw\u00fcrfe"'.encode()], data
assert m.select('"Entw\u00fcrfe"')[0] == 'OK'
print(m.logout()[0])
"#;

#[test]
fn utf8_mailbox_names_are_listed_without_crashing_imap() {
    let mut s = server();
    assert_eq!(run_py(&s, UTF8_NAMES_PY, &[]), "BYE");
    assert!(!s.log().contains("killed by"), "{}", s.log());
    // Stored in modified UTF-7, as Dovecot stores it.
    assert!(s.path("mail/a.test/alice/.Entw&APw-rfe/cur").is_dir());
    s.stop();
}

/// COMPRESS=DEFLATE (RFC 4978) over TLS with imaplib and Python's zlib
/// (raw deflate both ways from the tagged OK, as RFC 4978 says): a 300 KB
/// message goes up and comes back, and what came over the wire is a small
/// part of it.
const COMPRESS_PY: &str = r#"
import imaplib, ssl, sys, zlib
port, cafile = int(sys.argv[1]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')

class Z(imaplib.IMAP4_SSL):
    z = None
    wire = 0
    def compress(self):
        typ, data = self._simple_command('COMPRESS', 'DEFLATE')
        assert typ == 'OK', data
        self.z = (zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15))
        self.zbuf = b''
    def send(self, data):
        if self.z:
            data = self.z[0].compress(data) + self.z[0].flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
    def _fill(self):
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.wire += len(chunk)
            out = self.z[1].decompress(chunk)
            if out:
                self.zbuf += out
                return True
    def read(self, size):
        if not self.z:
            return super().read(size)
        while len(self.zbuf) < size and self._fill():
            pass
        out, self.zbuf = self.zbuf[:size], self.zbuf[size:]
        return out
    def readline(self):
        if not self.z:
            return super().readline()
        while b'\n' not in self.zbuf and self._fill():
            pass
        i = self.zbuf.find(b'\n') + 1 or len(self.zbuf)
        out, self.zbuf = self.zbuf[:i], self.zbuf[i:]
        return out

m = Z('127.0.0.1', port, ssl_context=ctx)
assert 'COMPRESS=DEFLATE' in m.capabilities, m.capabilities
assert m.login('alice@a.test', 'alice-pw-1')[0] == 'OK'
m.compress()
body = b'Subject: big\r\n\r\n' + b'the same line again and again\r\n' * 10000
typ, data = m.append('INBOX', None, None, body)
assert typ == 'OK', data
assert m.select('INBOX')[0] == 'OK'
typ, data = m.uid('SEARCH', None, 'SUBJECT', 'big')
uid = data[0].split()[-1]
typ, data = m.uid('FETCH', uid, '(BODY.PEEK[])')
assert typ == 'OK' and data[0][1] == body, (typ, len(data[0][1]))
assert m.wire < len(body) // 10, m.wire
typ, data = m._simple_command('COMPRESS', 'DEFLATE')
assert typ == 'NO' and data[0].startswith(b'[COMPRESSIONACTIVE]'), (typ, data)
print(m.logout()[0])
"#;

#[test]
fn compress_deflate_with_imaplib_and_zlib_over_tls() {
    let mut s = server();
    assert_eq!(run_py(&s, COMPRESS_PY, &[]), "BYE");
    s.stop();
}

/// BURL (RFC 4468) with URLAUTH (RFC 4467), both sides real: imaplib saves a
/// draft and has GENURLAUTH authorize a `submit+` URL for it; smtplib sends
/// the message by that URL (BURL ... LAST) over submission; bob finds it in
/// his INBOX. A tampered URL gets 554 5.6.6 and nothing is sent.
const BURL_PY: &str = r#"
import imaplib, re, smtplib, ssl, sys, time
imaps, cafile, sub = int(sys.argv[1]), sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
imaplib.Commands['GENURLAUTH'] = ('AUTH', 'SELECTED')
m = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx)
assert 'URLAUTH' in m.capabilities, m.capabilities
assert m.login('alice@a.test', 'alice-pw-1')[0] == 'OK'
draft = b'From: alice@a.test\r\nTo: bob@a.test\r\nSubject: burl draft\r\n\r\nwritten once, sent by reference\r\n'
typ, data = m.append('Drafts', None, None, draft)
assert typ == 'OK', data
uid = re.search(rb'APPENDUID \d+ (\d+)', data[0]).group(1).decode()
url = 'imap://alice%40a.test@mail.a.test/Drafts/;uid=' + uid + ';urlauth=submit+alice%40a.test'
typ, data = m._simple_command('GENURLAUTH', '"%s"' % url, 'INTERNAL')
assert typ == 'OK', data
authorized = m.untagged_responses['GENURLAUTH'][0].decode().strip('"')
assert authorized.startswith(url + ':internal:'), authorized
# The submit URL is for the submission server, not for IMAP sessions.
imaplib.Commands['URLFETCH'] = ('AUTH', 'SELECTED')
typ, data = m._simple_command('URLFETCH', '"%s"' % authorized)
assert typ == 'OK' and m.untagged_responses['URLFETCH'][0].endswith(b' NIL'), m.untagged_responses
m.logout()

s = smtplib.SMTP('127.0.0.1', sub, timeout=30)
s.starttls(context=ctx)
s.ehlo()
assert 'burl' in s.esmtp_features, s.esmtp_features
s.login('alice@a.test', 'alice-pw-1')
s.mail('alice@a.test')
s.rcpt('bob@a.test')
bad = authorized[:-1] + ('1' if authorized[-1] == '0' else '0')
code, msg = s.docmd('BURL', bad + ' LAST')
assert code == 554 and b'5.6.6' in msg, (code, msg)
code, msg = s.docmd('BURL', authorized + ' LAST')
assert code == 250, (code, msg)
s.quit()

b = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx)
assert b.login('bob@a.test', 'bob-pw-1')[0] == 'OK'
for _ in range(100):
    b.select('INBOX')
    typ, data = b.search(None, 'SUBJECT', '"burl draft"')
    if data[0].split():
        break
    time.sleep(0.1)
n = data[0].split()
assert len(n) == 1, data
typ, data = b.fetch(n[0], '(BODY.PEEK[TEXT])')
assert b'written once, sent by reference' in data[0][1], data
print(b.logout()[0])
"#;

#[test]
fn burl_sends_a_draft_by_its_urlauth_url() {
    let mut s = server();
    let sub = s.ports.submission.to_string();
    assert_eq!(run_py(&s, BURL_PY, &[&sub]), "BYE", "{}", s.log());
    assert!(s.log().contains("BURL user=alice@a.test"), "{}", s.log());
    s.stop();
}

/// Found by fuzz/imap_message: a 595-byte message whose MIME parts (as parsed)
/// point back at each other made BODYSTRUCTURE walk exponentially many parts
/// (gigabytes of memory). Now every part is rendered once, at most 1000 in all.
const PART_CYCLE_PY: &str = r#"
import imaplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=10)
assert m.login('alice@a.test', 'alice-pw-1')[0] == 'OK'
assert m.select('INBOX')[0] == 'OK'
for item in ['BODYSTRUCTURE', 'BODY', 'ENVELOPE', 'BODY[1]', 'BODY[2.1]', 'BODY[TEXT]']:
    typ, data = m.fetch('1', '(%s)' % item)
    assert typ == 'OK', (item, data)
print(m.logout()[0])
"#;

#[test]
fn a_message_with_self_referencing_parts_is_fetched_in_bounded_time_and_memory() {
    let mut s = server();
    let new = s.path("mail/a.test/alice/new");
    std::fs::create_dir_all(&new).unwrap();
    let name = new.join("1700000000.cycle.mail.a.test");
    std::fs::write(&name, include_bytes!("imap/part-cycle.eml")).unwrap();
    if is_root() {
        let mail = nix::unistd::User::from_name("_sxmail").unwrap().unwrap();
        nix::unistd::chown(&name, Some(mail.uid), Some(mail.gid)).unwrap();
    }
    let t = std::time::Instant::now();
    assert_eq!(run_py(&s, PART_CYCLE_PY, &[]), "BYE");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    let rss_kb: u64 = proc_status(s.child_pid("sx-imap"), "VmHWM")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kb < 200 * 1024, "sx-imap peaked at {rss_kb} kB");
    assert!(!s.log().contains("killed by"), "{}", s.log());
    s.stop();
}

const SESSIONS_PY: &str = include_str!("imap/sessions.py");

#[test]
fn two_sessions_see_expunges_at_the_right_time_and_idle_is_pushed() {
    let mut s = server();
    let out = run_py(&s, SESSIONS_PY, &["bob@a.test", "bob-pw-1"]);
    assert!(out.starts_with("OK"), "{out}\n{}", s.log());
    s.stop();
}

const FILL_PY: &str = include_str!("imap/fill.py");
const SERVER_SIDE_PY: &str = include_str!("imap/server_side.py");

/// A sync client's local changes to a synced Maildir: 10 messages read and
/// flagged, 5 deleted, 2 new.
fn change_locally(inbox: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(inbox.join("cur"))
        .unwrap()
        .chain(std::fs::read_dir(inbox.join("new")).unwrap())
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in &files[..10] {
        let n = f.file_name().unwrap().to_string_lossy().into_owned();
        let base = n.split(":2,").next().unwrap().to_string();
        std::fs::rename(f, inbox.join("cur").join(format!("{base}:2,FS"))).unwrap();
    }
    for f in &files[10..15] {
        std::fs::remove_file(f).unwrap();
    }
    for i in 0..2 {
        std::fs::write(
            inbox.join("new").join(format!("17000000{i}.local{i}.host")),
            format!("From: me@a.test\r\nSubject: local new {i}\r\n\r\nhi\r\n"),
        )
        .unwrap();
    }
}

fn mbsync(s: &Server, cfg: &Path) -> String {
    let o = std::process::Command::new("mbsync")
        .arg("-c")
        .arg(cfg)
        .arg("-a")
        .output()
        .expect("mbsync (apt-get install isync)");
    assert_ok(&o, "mbsync");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("UIDVALIDITY changed") && !text.contains("Error"),
        "{text}\n{}",
        s.log()
    );
    text
}

/// Local messages: file names without flags, and how many carry `flag`.
fn local(dir: &Path, flag: char) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut flagged = 0;
    for sub in ["cur", "new"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let (base, info) = n.split_once(":2,").unwrap_or((&n, ""));
            if info.contains(flag) {
                flagged += 1;
            }
            names.push(base.to_string());
        }
    }
    names.sort();
    (names, flagged)
}

#[test]
fn mbsync_syncs_500_messages_both_ways_and_survives_a_restart() {
    let mut s = server();
    let pw = ["alice@a.test", "alice-pw-1"];
    let out = run_py(&s, FILL_PY, &[pw[0], pw[1], "INBOX", "500"]);
    assert_eq!(out, "OK");
    let local_dir = s.path("local");
    std::fs::create_dir_all(&local_dir).unwrap();
    let cfg = s.path("mbsyncrc");
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount test\nHost localhost\nPort {}\nUser alice@a.test\nPass alice-pw-1\nSSLType IMAPS\n\
             CertificateFile {}\nSystemCertificates no\n\n\
             IMAPStore remote\nAccount test\n\n\
             MaildirStore local\nPath {d}/\nInbox {d}/INBOX\n\n\
             Channel ch\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\nSync All\n",
            s.ports.imaps,
            s.cert.display(),
            d = local_dir.display()
        ),
    )
    .unwrap();
    mbsync(&s, &cfg);
    let inbox = local_dir.join("INBOX");
    let (names, _) = local(&inbox, 'F');
    assert_eq!(names.len(), 500, "first sync");

    // Local changes: 10 read and flagged, 5 deleted, 2 new; server: 10 flagged, 3 new.
    change_locally(&inbox);
    let out = run_py(&s, SERVER_SIDE_PY, &[pw[0], pw[1], "change"]);
    assert_eq!(out, "OK");
    mbsync(&s, &cfg);
    let report = run_py(&s, SERVER_SIDE_PY, &[pw[0], pw[1], "report"]);
    assert!(
        report.starts_with("count=500 flagged=20 seen=10 local=2 "),
        "server after sync: {report}"
    );
    let (names, flagged) = local(&inbox, 'F');
    assert_eq!((names.len(), flagged), (500, 20), "local after sync");

    // A restart keeps UIDVALIDITY and UIDs: the next sync fetches only the
    // message another program put in the Maildir while the server was down.
    s.stop();
    let down = s.path("mail/a.test/alice/new/1790000001.Mdown.host");
    std::fs::write(&down, "From: x@b.test\r\nSubject: while down\r\n\r\nhi\r\n").unwrap();
    if is_root() {
        let o = std::process::Command::new("chown")
            .arg("_sxmail:_sxmail")
            .arg(&down)
            .output()
            .unwrap();
        assert_ok(&o, "chown");
    }
    s.launch();
    let out = mbsync(&s, &cfg);
    let again = run_py(&s, SERVER_SIDE_PY, &[pw[0], pw[1], "report"]);
    let validity = |r: &str| r.split("uidvalidity=").nth(1).unwrap_or("").to_string();
    assert_eq!(
        validity(&report),
        validity(&again),
        "UIDVALIDITY across restart"
    );
    assert!(again.starts_with("count=501 flagged=20 "), "{again}");
    let (after, _) = local(&inbox, 'F');
    assert_eq!(after.len(), 501, "one new message after restart: {out}");
    assert!(
        names.iter().all(|n| after.contains(n)),
        "no message downloaded again after restart: {out}"
    );
    s.stop();
}

const LIMITS_PY: &str = include_str!("imap/limits.py");

#[test]
fn limits_on_lines_literals_bad_commands_sessions_and_failed_logins() {
    let mut s =
        Server::prepare("EMAIL_MAX_MESSAGE_SIZE=1000000\nEMAIL_IMAP_MAX_USER_CONNECTIONS=3");
    s.launch();
    s.add_account("carol@a.test", "carol-pw-1");
    let out = run_py(&s, LIMITS_PY, &["carol@a.test", "carol-pw-1"]);
    assert_eq!(out, "OK", "{}", s.log());
    s.stop();
}

/// Issue 16.2: a folder deleted and created again (within one second, and
/// after a restart) gets a strictly greater UIDVALIDITY (RFC 3501 2.3.1.1);
/// it was the creation second, so UID 1 could name another message under the
/// same UIDVALIDITY.
#[test]
fn uidvalidity_is_strictly_increasing_per_account_across_restarts() {
    const PY: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login('alice@a.test', 'alice-pw-1')
out = []
for _ in range(3):
    m.create('Again')
    m.append('Again', None, None, b'Subject: x\r\n\r\nx\r\n')
    out.append(m.status('Again', '(UIDVALIDITY)')[1][0].decode().split()[-1].rstrip(')'))
    m.delete('Again')
print(' '.join(out))
"#;
    let mut s = server();
    let first: Vec<u64> = run_py(&s, PY, &[])
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    s.stop();
    s.launch();
    let second: Vec<u64> = run_py(&s, PY, &[])
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(second[0] > first[2], "{first:?} then {second:?}");
    assert!(second.windows(2).all(|w| w[0] < w[1]), "{second:?}");
}

/// Issue 16.9 and QUOTA (RFC 9208): GETQUOTAROOT works without a selected
/// mailbox (it was `BAD No mailbox selected`), the account's EMAIL_QUOTA is
/// its one root "", SETQUOTA is the administrator's, STATUS DELETED-STORAGE.
#[test]
fn quota_of_the_account_is_reported() {
    const PY: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login('alice@a.test', 'alice-pw-1')
print('CAP', 'QUOTA=RES-STORAGE' in m.capabilities)
m.append('INBOX', '(\\Deleted)', None, b'Subject: q\r\n\r\n' + b'x' * 3000 + b'\r\n')
print('ROOT', m.getquotaroot('INBOX'))
print('GET', m.getquota('""'))
try:
    print('SET', m.setquota('""', '(STORAGE 10)'))
except m.error as e:
    print('SET', e)
print('STATUS', m.status('INBOX', '(DELETED DELETED-STORAGE)'))
print('SIZE', 'STATUS=SIZE' in m.capabilities, m.status('inbox', '(SIZE MESSAGES)'))
typ, data = m._simple_command('LIST', '""', '"INBOX"', 'RETURN', '(STATUS (SIZE))')
print('LISTSIZE', m._untagged_response(typ, data, 'STATUS'))
m.logout()
"#;
    let mut s = Server::prepare("EMAIL_QUOTA=1M");
    s.launch();
    s.add_account("alice@a.test", "alice-pw-1");
    s.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let out = run_py(&s, PY, &[]);
    for want in [
        "CAP True",
        "ROOT ('OK', [[b'\"INBOX\" \"\"'], [b'\"\" (STORAGE 3 1024)']])",
        "GET ('OK', [b'\"\" (STORAGE 3 1024)'])",
        "SET ('NO', [b'[NOPERM]",
        "STATUS ('OK', [b'\"INBOX\" (DELETED 1 DELETED-STORAGE 3)'])",
        // RFC 8438: the message is 3,016 octets on disk.
        "SIZE True ('OK', [b'\"INBOX\" (SIZE 3016 MESSAGES 1)'])",
        "LISTSIZE ('OK', [b'\"INBOX\" (SIZE 3016)'])",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

/// AUTH=LOGIN (old clients): "Username:" and "Password:" challenges, each
/// answered in base64; a wrong password fails like LOGIN; offered only after TLS.
#[test]
fn authenticate_login_for_old_clients() {
    const PY: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
print('CAP', 'AUTH=LOGIN' in m.capabilities)
seen = []
def answer(pw):
    it = iter([b'alice@a.test', pw])
    def cb(challenge):
        seen.append(challenge)
        return next(it)
    return cb
print('AUTH', m.authenticate('LOGIN', answer(b'alice-pw-1'))[0], seen)
print('SELECT', m.select('INBOX')[0])
m.logout()
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
try:
    m.authenticate('LOGIN', answer(b'wrong'))
    print('BAD PASSWORD ACCEPTED')
except m.error as e:
    print('REFUSED', e)
p = imaplib.IMAP4('127.0.0.1', int(sys.argv[2]))
print('PLAIN CAP', 'AUTH=LOGIN' in p.capabilities)
"#;
    let s = server();
    let out = run_py(&s, PY, &[]);
    for want in [
        "CAP True",
        "AUTH OK [b'Username:', b'Password:']",
        "SELECT OK",
        "REFUSED [AUTHENTICATIONFAILED]",
        "PLAIN CAP False",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

/// Issue 16, RFC 7162: a QRESYNC client (Perl's Mail::IMAPTalk, with which
/// Cyrus tests its own QRESYNC) resyncs after a flag change, an expunge, a
/// change made by another program while the server was down, and a restart:
/// SELECT (QRESYNC ...) sends only those (VANISHED (EARLIER) and the changed
/// messages' flags), and HIGHESTMODSEQ has grown.
#[test]
fn a_qresync_client_resyncs_after_changes_and_a_restart() {
    const SETUP: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login('bob@a.test', 'bob-pw-1')
if sys.argv[5] == 'fill':
    for i in range(4):
        m.append('INBOX', None, None, ('Subject: m%d\r\n\r\nbody %d\r\n' % (i, i)).encode())
else:
    m.select('INBOX')
    m.uid('STORE', '2', '+FLAGS', '(\\Flagged)')
    m.uid('STORE', '1', '+FLAGS', '(\\Deleted)')
    m.expunge()
m.logout()
"#;
    const PERL: &str = include_str!("imap/qresync.pl");
    let perl = |s: &Server, args: &[&str]| {
        let mut cmd = std::process::Command::new("perl");
        cmd.arg("-e").arg(PERL).arg(s.ports.imaps.to_string());
        cmd.arg(&s.cert).args(args);
        let o = cmd.output().expect("perl");
        assert_ok(&o, "perl Mail::IMAPTalk");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut s = server();
    run_py(&s, SETUP, &["fill"]);
    let first = perl(&s, &["first"]);
    let f: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(f.get(2), Some(&"1,2,3,4"), "{first}");
    let (validity, known) = (f[0].to_string(), f[1].to_string());
    run_py(&s, SETUP, &["change"]);
    s.stop();
    // Another program marks message 3 seen while the server is down.
    let cur = s.path("mail/a.test/bob/cur");
    let names: Vec<String> = std::fs::read_dir(&cur)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    // The APPENDs' names sort in order; 1 was expunged, so 3 is the second.
    let third = &names[1];
    std::fs::rename(cur.join(third), cur.join(format!("{third}S"))).unwrap();
    s.launch();
    let out = perl(&s, &["resync", &validity, &known]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"vanished 1"), "{out}");
    let fetched: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("fetch "))
        .copied()
        .collect();
    assert_eq!(fetched.len(), 2, "only the two changed messages: {out}");
    assert!(fetched[0].starts_with("fetch 2 (\\flagged) "), "{out}");
    assert!(fetched[1].starts_with("fetch 3 (\\seen) "), "{out}");
    let highest: u64 = lines
        .last()
        .and_then(|l| l.strip_prefix("highestmodseq "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(highest > known.parse::<u64>().unwrap(), "{out}");
    for l in &fetched {
        let m: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(m > known.parse::<u64>().unwrap() && m <= highest, "{out}");
    }
}

/// Issue 16: IDLE's poll for changes made by other programs (a file dropped
/// into the folder's new/ by hand) fires even while another folder gets news
/// every half second; the poll used to restart with every wake-up, so under
/// steady news elsewhere it never came.
#[test]
fn idle_notices_other_programs_while_other_folders_get_mail() {
    const PY: &str = r#"
import imaplib, socket, ssl, sys, threading, time, os
ctx = ssl.create_default_context(cafile=sys.argv[4]); ctx.check_hostname = False
port, side = int(sys.argv[1]), sys.argv[5]
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
m.login('bob@a.test', 'bob-pw-1')
m.create('Watched')
stop = time.time() + 12
def busy():
    n = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
    n.login('bob@a.test', 'bob-pw-1')
    while time.time() < stop:
        n.append('INBOX', None, None, b'Subject: noise\r\n\r\nx\r\n')
        time.sleep(0.5)
    n.logout()
t = threading.Thread(target=busy); t.start()
raw = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)))
f = raw.makefile('rb')
def until(tag):
    while True:
        l = f.readline()
        if not l or l.startswith(tag):
            return l
f.readline()
raw.sendall(b'a LOGIN bob@a.test bob-pw-1\r\n'); until(b'a ')
raw.sendall(b'b SELECT Watched\r\n'); until(b'b ')
raw.sendall(b'c IDLE\r\n'); until(b'+')
time.sleep(1)
open(os.path.join(side, 'new', '1.byhand.test'), 'wb').write(b'Subject: by hand\r\n\r\nx\r\n')
start = time.time()
raw.settimeout(9)
seen = None
try:
    while seen is None:
        l = f.readline()
        if b'EXISTS' in l:
            seen = time.time() - start
except socket.timeout:
    pass
raw.sendall(b'DONE\r\n')
t.join()
print('seen after %.1f s' % seen if seen is not None else 'never seen')
"#;
    let s = server();
    let side = s.path("mail/a.test/bob/.Watched");
    let out = run_py(&s, PY, &[side.to_str().unwrap()]);
    assert!(out.starts_with("seen after"), "{out}\n{}", s.log());
}

fn offlineimap(s: &Server, cfg: &Path) -> String {
    let o = std::process::Command::new("offlineimap")
        .arg("-c")
        .arg(cfg)
        .arg("-o")
        .args(["-u", "basic"])
        .output()
        .expect("offlineimap (apt-get install offlineimap3)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && !text.contains("ERROR") && !text.contains("UIDVALIDITY"),
        "{text}\n{}",
        s.log()
    );
    text
}

/// Issue 16: offlineimap3 (imaplib2 underneath) syncs both ways with the
/// extensions advertised: flags, deletions and new messages on each side.
#[test]
fn offlineimap_syncs_both_ways() {
    let s = server();
    let pw = ["alice@a.test", "alice-pw-1"];
    assert_eq!(run_py(&s, FILL_PY, &[pw[0], pw[1], "INBOX", "450"]), "OK");
    let (mail, meta) = (s.path("offline-mail"), s.path("offline-meta"));
    std::fs::create_dir_all(&mail).unwrap();
    let cfg = s.path("offlineimaprc");
    std::fs::write(
        &cfg,
        format!(
            "[general]\naccounts = test\nmetadata = {}\n\n[Account test]\nlocalrepository = local\n\
             remoterepository = remote\n\n[Repository local]\ntype = Maildir\nlocalfolders = {}\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {}\n\
             remoteuser = {}\nremotepass = {}\nssl = yes\nsslcacertfile = {}\n\
             folderfilter = lambda f: f == 'INBOX'\n",
            meta.display(),
            mail.display(),
            s.ports.imaps,
            pw[0],
            pw[1],
            s.cert.display()
        ),
    )
    .unwrap();
    offlineimap(&s, &cfg);
    let inbox = mail.join("INBOX");
    let (names, _) = local(&inbox, 'F');
    assert_eq!(names.len(), 450, "first sync");
    // The same changes as the mbsync test, on both sides.
    change_locally(&inbox);
    assert_eq!(run_py(&s, SERVER_SIDE_PY, &[pw[0], pw[1], "change"]), "OK");
    offlineimap(&s, &cfg);
    let report = run_py(&s, SERVER_SIDE_PY, &[pw[0], pw[1], "report"]);
    assert!(
        report.starts_with("count=450 flagged=20 seen=10 local=2 "),
        "server after sync: {report}"
    );
    let (names, flagged) = local(&inbox, 'F');
    assert_eq!((names.len(), flagged), (450, 20), "local after sync");
}

/// Commands pipelined after STARTTLS in the same packet (CVE-2011-0411's
/// pattern) are dropped, not run inside the TLS session: the client sees no
/// answer to them after the handshake and is not logged in by them.
#[test]
fn commands_injected_before_the_tls_handshake_are_not_run() {
    let s = server();
    let py = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
raw = socket.create_connection(('127.0.0.1', port), timeout=10)
def line():
    b = b''
    while not b.endswith(b'\r\n'):
        c = raw.recv(1)
        if not c:
            raise SystemExit('closed: %r' % b)
        b += c
    return b
print(line()[:4].decode())
raw.sendall(b'a STARTTLS\r\nb LOGIN bob@a.test bob-pw-1\r\nc CAPABILITY\r\n')
print(line().decode().strip())
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
t = ctx.wrap_socket(raw)
t.sendall(b'd NOOP\r\ne SELECT INBOX\r\n')
got = b''
while b'\r\ne ' not in b'\r\n' + got or not got.endswith(b'\r\n'):
    c = t.recv(4096)
    if not c:
        break
    got += c
for l in got.decode().split('\r\n'):
    if l:
        print(l.split(' ')[0] + ' ' + l.split(' ')[1])
"#;
    let o = python(py, &[&s.ports.imap.to_string(), &s.cert.to_string_lossy()]);
    assert_ok(&o, "STARTTLS injection");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "* OK\na OK Begin TLS negotiation now\nd OK\ne BAD",
        "{}",
        s.log()
    );
    assert!(!s.log().contains("login user=bob@a.test"), "{}", s.log());
}
