//! `sx email` and `sx sendmail` against our server (587 STARTTLS, 465 implicit TLS)
//! and against a plain aiosmtpd sink; what arrives is parsed with Python's `email`
//! package and compared with what was asked for.

mod common;
use common::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHECK_PY: &str = include_str!("email/check.py");

/// A client environment: its own config file, queue dir and HOME, nothing inherited.
struct Client {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Client {
    fn new(config: &str) -> Client {
        let dir = tempfile::Builder::new()
            .prefix("sx-client-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("client-env.txt");
        std::fs::write(&path, format!("# client\nSMTP_LOG=none\n{config}\n")).unwrap();
        Client { dir, config: path }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.path("data"))
            .env("LOGNAME", "tester")
            .current_dir(self.dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// `sx email --config <ours> args...`, stdin from `input` (or /dev/null).
    fn email(&self, args: &[&str], env: &[(&str, &str)], input: Option<&[u8]>) -> Output {
        let mut c = self.command(SX, env);
        c.arg("email").arg("--config").arg(&self.config).args(args);
        output_with_input(c, input)
    }

    fn spawn_email(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut c = self.command(SX, env);
        c.arg("email")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Failed with `codes`, saying why on exactly one stderr line containing `says`.
fn assert_fails(o: &Output, codes: &[i32], says: &str) {
    let err = stderr(o);
    assert!(
        codes.contains(&o.status.code().unwrap_or(-1)),
        "exit {:?}, want {codes:?}: {err}",
        o.status.code()
    );
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains(says), "stderr {err:?} should say {says:?}");
}

fn files(dir: &Path) -> HashSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Wait (5 s) until `dir` holds one file not in `before`, and return it.
fn one_more(dir: &Path, before: &HashSet<PathBuf>) -> PathBuf {
    let t = Instant::now();
    loop {
        let now = files(dir);
        let new: Vec<_> = now.difference(before).cloned().collect();
        if new.len() == 1 {
            return new[0].clone();
        }
        assert!(
            new.len() < 2,
            "more than one new message in {}",
            dir.display()
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no new message in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_count(dir: &Path, n: usize) {
    let t = Instant::now();
    while files(dir).len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} of {n} messages in {}",
            files(dir).len(),
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parse `file` with Python's email package and compare with `want` (JSON).
fn check(file: &Path, want: &str) {
    let o = python(CHECK_PY, &[&file.to_string_lossy(), want]);
    assert_ok(&o, &format!("check {}", file.display()));
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Our server with a CA-signed certificate, and accounts bob, carol, dave.
struct Mail {
    srv: Server,
    ca: PathBuf,
    _certs: tempfile::TempDir,
}

impl Mail {
    fn start() -> Mail {
        let certs = tempfile::Builder::new().prefix("sx-ca-").tempdir().unwrap();
        let (ca, cert, key) = make_ca_cert(certs.path(), "mail.a.test");
        let srv = Server::prepare(&format!(
            "EMAIL_TLS_CERT={}\nEMAIL_TLS_KEY={}",
            cert.display(),
            key.display()
        ))
        .start();
        for (a, p) in [
            ("bob@a.test", "pw-bob-1"),
            ("carol@a.test", "pw-carol"),
            ("dave@a.test", "pw-dave-1"),
        ] {
            srv.add_account(a, p);
        }
        srv.wait_log("directory: 3 account(s)", 1, Duration::from_secs(5));
        Mail {
            srv,
            ca,
            _certs: certs,
        }
    }

    fn inbox(&self, user: &str) -> PathBuf {
        self.srv.path(&format!("mail/a.test/{user}/new"))
    }

    /// Client settings for bob on submission (587, STARTTLS) with our CA.
    fn client_config(&self, extra: &str) -> String {
        format!(
            "SMTP_HOST=127.0.0.1\nSMTP_PORT={}\nSMTP_TLS=starttls\nSMTP_USER=bob@a.test\n\
             SMTP_FROM=bob@a.test\nSMTP_CA_FILE={}\nSMTP_TIMEOUT=10\n{extra}",
            self.srv.ports.submission,
            self.ca.display()
        )
    }
}

/// A port nothing listens on.
fn closed_port() -> String {
    free_port().to_string()
}

#[test]
fn sends_plain_html_attachments_cc_bcc_over_587_and_465() {
    let m = Mail::start();
    let c = Client::new(&m.client_config(""));
    std::fs::write(c.path("pass"), "pw-bob-1\nsecond line ignored\n").unwrap();
    let pdf: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(c.path("report.pdf"), &pdf).unwrap();
    std::fs::write(c.path("notes.txt"), "line one\n.\nline three\n").unwrap();
    let pass_file = c.path("pass").to_string_lossy().into_owned();

    // Plain text over 587 with the password from SMTP_PASS_FILE; a lone dot
    // inside the body must survive SMTP's dot-stuffing.
    let before = files(&m.inbox("carol"));
    let body = "Hello Carol,\n.\n..two dots\nBye.\n";
    let o = c.email(
        &["--to", "carol@a.test", "--subject", "Plain", "--body", body],
        &[("SMTP_PASS_FILE", &pass_file)],
        None,
    );
    assert_ok(&o, "plain send");
    assert!(stdout(&o).is_empty() && stderr(&o).is_empty(), "quiet");
    let got = one_more(&m.inbox("carol"), &before);
    check(
        &got,
        &format!(
            r#"{{"subject":"Plain","from":"bob@a.test","to":["carol@a.test"],"text":{},"type":"text/plain","absent":["bcc"]}}"#,
            json_str(body)
        ),
    );

    // HTML with attachments, a non-ASCII subject and display name, Cc and Bcc, an
    // extra header; the password from SMTP_PASS_CMD.
    let subject = "Grüße aus Köln ✓ — nightly report";
    let html = "<html><body><h1>Report</h1><p>All <b>green</b> &amp; fine.</p></body></html>";
    let befores: Vec<_> = ["carol", "dave", "bob"]
        .iter()
        .map(|u| files(&m.inbox(u)))
        .collect();
    let notes = c.path("notes.txt").to_string_lossy().into_owned();
    let report = c.path("report.pdf").to_string_lossy().into_owned();
    let o = c.email(
        &[
            "--to",
            "Carol Ünal <carol@a.test>",
            "--cc",
            "dave@a.test",
            "--bcc",
            "bob@a.test",
            "--subject",
            subject,
            "--body",
            html,
            "--html",
            "--attach",
            &report,
            "--attach",
            &notes,
            "--header",
            "X-Job: nightly",
        ],
        &[("SMTP_PASS_CMD", "echo pw-bob-1")],
        None,
    );
    assert_ok(&o, "html send");
    let want = format!(
        r#"{{"subject":{},"from":"bob@a.test","to":["carol@a.test"],"cc":["dave@a.test"],"absent":["bcc"],
            "headers":{{"X-Job":"nightly"}},"html":{},"text_contains":["Report","green","& fine"],
            "type":"multipart/mixed",
            "attachments":[{{"name":"report.pdf","type":"application/pdf","file":{}}},
                           {{"name":"notes.txt","type":"text/plain","file":{}}}]}}"#,
        json_str(subject),
        json_str(html),
        json_str(&report),
        json_str(&notes)
    );
    for (u, before) in ["carol", "dave", "bob"].iter().zip(&befores) {
        let got = one_more(&m.inbox(u), before);
        check(&got, &want);
        let raw = std::fs::read_to_string(&got).unwrap();
        assert!(raw.contains("Subject: =?utf-8?"), "RFC 2047 subject: {raw}");
        assert!(!raw.to_ascii_lowercase().contains("\nbcc:"), "{raw}");
    }

    // Implicit TLS on 465, body on stdin, Reply-To; password from SMTP_PASS.
    let cfg = m.client_config(&format!(
        "SMTP_TLS=ssl\nSMTP_PORT={}\nSMTP_PASS=pw-bob-1",
        m.srv.ports.submissions
    ));
    let c465 = Client::new(&cfg);
    let before = files(&m.inbox("dave"));
    let body = "Über stdin: ümlauts and a long line ".repeat(20) + "\nend\n";
    let o = c465.email(
        &[
            "--to",
            "dave@a.test",
            "--subject",
            "via 465",
            "--reply-to",
            "carol@a.test",
        ],
        &[],
        Some(body.as_bytes()),
    );
    assert_ok(&o, "465 send");
    let got = one_more(&m.inbox("dave"), &before);
    check(
        &got,
        &format!(
            r#"{{"subject":"via 465","to":["dave@a.test"],"reply-to":["carol@a.test"],"text":{}}}"#,
            json_str(&body)
        ),
    );
    let log = m.srv.log();
    assert!(log.contains("proto=ESMTPSA"), "{log}");
    assert!(!log.contains("pw-bob-1"), "password in the server log");
}

/// `python3 -m aiosmtpd` writing what it receives into a Maildir.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Sink {
        let dir = tempfile::Builder::new()
            .prefix("sx-sink-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = python_cmd()
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("md"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (apt-get install python3-aiosmtpd)");
        let t = Instant::now();
        while !smtp_greets(port) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sink { child, port, dir }
    }

    fn new_dir(&self) -> PathBuf {
        self.dir.path().join("md/new")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn plain_sink_without_tls_and_starttls_required_but_not_offered() {
    let sink = Sink::start();
    let c = Client::new(&format!(
        "SMTP_HOST=127.0.0.1\nSMTP_PORT={}\nSMTP_TLS=none\nSMTP_FROM=Cron <cron@h.test>",
        sink.port
    ));
    std::fs::write(c.path("data.csv"), "a,b\n1,2\n").unwrap();
    let csv = c.path("data.csv").to_string_lossy().into_owned();
    let subject = "Ärger mit dem Backup";
    let o = c.email(
        &[
            "--to",
            "x@sink.test, Y <y@sink.test>",
            "--cc",
            "z@sink.test",
            "--bcc",
            "hidden@sink.test",
            "--subject",
            subject,
            "--body",
            "<p>backup <i>failed</i></p>",
            "--html",
            "--attach",
            &csv,
        ],
        &[],
        None,
    );
    assert_ok(&o, "send to sink");
    let got = one_more(&sink.new_dir(), &HashSet::new());
    check(
        &got,
        &format!(
            r#"{{"subject":{},"from":"cron@h.test","from_name":"Cron","to":["x@sink.test","y@sink.test"],
                "cc":["z@sink.test"],"absent":["bcc"],"html":"<p>backup <i>failed</i></p>",
                "text_contains":["backup","failed"],
                "attachments":[{{"name":"data.csv","type":"text/csv","file":{}}}]}}"#,
            json_str(subject),
            json_str(&csv)
        ),
    );
    // aiosmtpd records the envelope: the Bcc recipient got it without a header.
    let raw = std::fs::read_to_string(&got).unwrap();
    let rcpt = raw
        .lines()
        .find(|l| l.starts_with("X-RcptTo:"))
        .unwrap_or_default();
    for a in [
        "x@sink.test",
        "y@sink.test",
        "z@sink.test",
        "hidden@sink.test",
    ] {
        assert!(rcpt.contains(a), "{a} not in envelope: {rcpt}");
    }
    assert!(raw.contains("X-MailFrom: cron@h.test"), "{raw}");

    // STARTTLS demanded, the sink doesn't offer it: fail, and nothing is sent.
    let before = files(&sink.new_dir());
    let o = c.email(
        &["--to", "x@sink.test", "--subject", "secret", "--body", "x"],
        &[("SMTP_TLS", "starttls")],
        None,
    );
    // The client has exited: anything it sent the sink had answered already.
    assert_fails(&o, &[69], "does not offer STARTTLS");
    assert_eq!(
        files(&sink.new_dir()),
        before,
        "a message went out in clear"
    );
}

#[test]
fn failures_exit_with_sysexits_and_one_clear_line() {
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    let send = |env: &[(&str, &str)]| {
        c.email(
            &["--to", "carol@a.test", "--subject", "s", "--body", "b"],
            env,
            None,
        )
    };
    let before = files(&m.inbox("carol"));

    let o = send(&[("SMTP_PASS", "wrong")]);
    assert_fails(&o, &[77], "authentication failed");
    assert!(stderr(&o).contains("535"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("wrong"), "password echoed");

    let port = closed_port();
    let o = send(&[("SMTP_PORT", &port)]);
    assert_fails(&o, &[69, 75], "cannot connect");

    // A server that accepts the connection and never greets: SMTP_TIMEOUT.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port().to_string();
    let t = Instant::now();
    let o = send(&[("SMTP_PORT", &sport), ("SMTP_TIMEOUT", "1")]);
    assert_fails(&o, &[75], "timed out");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Certificate checks: the system roots don't know our test CA.
    let o = send(&[("SMTP_CA_FILE", "")]);
    assert_fails(&o, &[69], "TLS with 127.0.0.1");
    let o = send(&[("SMTP_CA_FILE", ""), ("SMTP_TLS_VERIFY", "no")]);
    assert_ok(&o, "SMTP_TLS_VERIFY=no");

    // Configuration errors name the key, and the file and line when from the file.
    std::fs::write(
        c.path("bad-env.txt"),
        "SMTP_HOST=127.0.0.1\nSMTP_TLS=maybe\n",
    )
    .unwrap();
    let mut cmd = c.command(SX, &[]);
    cmd.arg("email")
        .arg("--config")
        .arg(c.path("bad-env.txt"))
        .args(["--to", "carol@a.test", "--subject", "s", "--body", "b"]);
    let o = output_with_input(cmd, None);
    assert_fails(&o, &[78], "bad-env.txt:2: SMTP_TLS");
    let o = send(&[("SMTP_TLS", "none")]);
    assert_fails(&o, &[78], "in clear");
    let o = send(&[("SMTP_TIMEOUT", "soon")]);
    assert_fails(&o, &[78], "environment: SMTP_TIMEOUT");

    // Header injection through any flag is refused before connecting.
    for args in [
        vec![
            "--to",
            "carol@a.test",
            "--subject",
            "hi\r\nBcc: x@evil.test",
        ],
        vec!["--to", "carol@a.test\nBcc: x@evil.test", "--subject", "hi"],
        vec![
            "--to",
            "carol@a.test",
            "--subject",
            "hi",
            "--header",
            "X-A: 1\nBcc: x@evil.test",
        ],
        vec![
            "--to",
            "carol@a.test",
            "--from",
            "a@b.test\r\nX: y",
            "--subject",
            "hi",
        ],
    ] {
        let mut a = args.clone();
        a.extend(["--body", "b"]);
        let o = c.email(&a, &[], None);
        assert_fails(&o, &[65], "line break");
    }
    let o = c.email(
        &["--to", "not an address", "--subject", "s", "--body", "b"],
        &[],
        None,
    );
    assert_fails(&o, &[65], "--to");
    let o = c.email(
        &[
            "--to",
            "carol@a.test",
            "--subject",
            "s",
            "--body-file",
            "/nonexistent/body",
        ],
        &[],
        None,
    );
    assert_fails(&o, &[66], "/nonexistent/body");
    let o = c.email(
        &[
            "--to",
            "carol@a.test",
            "--subject",
            "s",
            "--body",
            "b",
            "--attach",
            "/nonexistent/a.pdf",
        ],
        &[],
        None,
    );
    assert_fails(&o, &[66], "/nonexistent/a.pdf");
    let o = c.email(&["--subject", "s", "--body", "b"], &[], None);
    assert_fails(&o, &[64], "no recipient");
    let o = c.email(&["--to", "carol@a.test", "--bogus"], &[], None);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));

    // Refusals by the server: a sender bob may not use (553), and a relay attempt
    // on port 25 (554), which stops the whole message, the local copy too.
    let o = c.email(
        &[
            "--from",
            "carol@a.test",
            "--to",
            "carol@a.test",
            "--subject",
            "s",
            "--body",
            "b",
        ],
        &[],
        None,
    );
    assert_fails(&o, &[69], "sender <carol@a.test> refused: 553");
    let mta = m.srv.ports.smtp.to_string();
    let o = c.email(
        &[
            "--to",
            "carol@a.test,x@elsewhere.test",
            "--subject",
            "s",
            "--body",
            "b",
        ],
        &[("SMTP_PORT", &mta), ("SMTP_USER", "")],
        None,
    );
    assert_fails(&o, &[69], "recipient <x@elsewhere.test> refused: 554");

    // Only the SMTP_TLS_VERIFY=no message went through.
    m.srv.wait_spool(0);
    assert_eq!(files(&m.inbox("carol")).len(), before.len() + 1);
}

fn list(c: &Client, env: &[(&str, &str)]) -> String {
    let o = c.email(&["--list"], env, None);
    assert_ok(&o, "--list");
    stdout(&o)
}

/// The offline queue as release 0.1 wrote it (tests/data/outbox-v1: two
/// messages, each with a failed attempt) is listed and flushed; a file of a
/// later format is named, kept and does not stop the others.
#[test]
fn offline_queue_written_by_release_0_1_is_flushed() {
    let m = Mail::start();
    m.srv.add_account("eve@a.test", "pw-eve-12");
    m.srv
        .wait_log("directory: 4 account(s)", 1, Duration::from_secs(5));
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    let l = list(&c, &[]);
    let dir = l
        .strip_prefix("offline queue ")
        .and_then(|r| r.split(" is empty").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{l}"));
    std::fs::create_dir_all(&dir).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/outbox-v1");
    for e in std::fs::read_dir(&golden).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let later = dir.join("20991231T000000-000000-0000.msg");
    std::fs::write(&later, "SXQ 2\nsomething new\n\nx\n").unwrap();

    let l = list(&c, &[]);
    assert!(l.contains("3 message(s)"), "{l}");
    assert_eq!(l.matches("attempts=1").count(), 2, "{l}");
    assert!(
        l.contains("subject: golden outbox 1") && l.contains("subject: golden outbox 2 caf\u{e9}"),
        "{l}"
    );
    assert!(
        l.contains("to=carol@a.test,dave@b.test") && l.contains("from=<bob@a.test>"),
        "{l}"
    );
    assert!(
        l.contains("last error: cannot connect to 127.0.0.1:1"),
        "{l}"
    );
    assert!(
        l.contains("written by a newer release (format SXQ 2)"),
        "{l}"
    );

    let o = c.email(&["--flush", "-v"], &[], None);
    assert_eq!(
        o.status.code(),
        Some(65),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("2 sent, 1 kept"), "{}", stdout(&o));
    wait_count(&m.inbox("carol"), 2);
    wait_count(&m.inbox("eve"), 1);
    let texts: Vec<String> = files(&m.inbox("carol"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Message-ID: <out1@a.test>") && t.contains("First.")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Message-ID: <out2@a.test>")),
        "{texts:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&later).unwrap(),
        "SXQ 2\nsomething new\n\nx\n"
    );
    let l = list(&c, &[]);
    assert!(
        l.contains("1 message(s)") && l.contains("unreadable"),
        "{l}"
    );
}

#[test]
fn offline_queue_flush_clear_and_concurrent_flushes() {
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    let down_port = closed_port();
    let down = [("SMTP_PORT", down_port.as_str())];
    assert!(list(&c, &[]).contains("is empty"));

    for i in 1..=3 {
        let s = format!("queued {i}");
        let o = c.email(
            &[
                "--queue",
                "--to",
                "carol@a.test",
                "--subject",
                &s,
                "--body",
                "b",
            ],
            &down,
            None,
        );
        assert_ok(&o, "--queue");
    }
    let l = list(&c, &[]);
    for i in 1..=3 {
        assert!(l.contains(&format!("subject: queued {i}")), "{l}");
    }
    assert!(
        l.contains("3 message(s)") && l.contains("attempts=0"),
        "{l}"
    );
    assert!(
        l.contains("to=carol@a.test") && l.contains("from=<bob@a.test>"),
        "{l}"
    );

    // Server unreachable: --flush fails, keeps all three with their error,
    // and says so without -v (issue 18.8).
    let o = c.email(&["--flush"], &down, None);
    assert!(!o.status.success(), "flush with the server down succeeded");
    assert!(
        stdout(&o).contains("0 sent, 3 kept in the queue"),
        "{}",
        stdout(&o)
    );
    assert!(
        [69, 75].contains(&o.status.code().unwrap_or(0)),
        "{:?}",
        o.status
    );
    let l = list(&c, &[]);
    assert_eq!(l.matches("attempts=1").count(), 3, "{l}");
    assert_eq!(l.matches("last error: cannot connect").count(), 3, "{l}");
    assert_eq!(files(&m.inbox("carol")).len(), 0);

    // Server reachable: all three go, oldest first, and the queue is empty.
    let o = c.email(&["--flush", "-v"], &[], None);
    assert_ok(&o, "--flush");
    assert!(stdout(&o).contains("3 sent, 0 kept"), "{}", stdout(&o));
    wait_count(&m.inbox("carol"), 3);
    assert!(list(&c, &[]).contains("is empty"));
    // In the order the server queued them: Maildir names carry its queue id
    // (microseconds, then a counter), unlike mtimes, which can tie.
    let mut got: Vec<(String, String)> = files(&m.inbox("carol"))
        .into_iter()
        .map(|p| {
            let raw = std::fs::read_to_string(&p).unwrap();
            let subj = raw
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let qid = name.split('.').nth(1).unwrap_or_default().to_string();
            assert!(qid.starts_with('Q') && qid.len() == 21, "{name}");
            (qid, subj)
        })
        .collect();
    got.sort();
    let subjects: Vec<_> = got.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, ["queued 1", "queued 2", "queued 3"]);

    // --clear empties it without sending.
    for _ in 0..2 {
        let o = c.email(
            &[
                "--queue",
                "--to",
                "dave@a.test",
                "--subject",
                "never",
                "--body",
                "b",
            ],
            &[],
            None,
        );
        assert_ok(&o, "--queue");
    }
    assert!(list(&c, &[]).contains("2 message(s)"));
    let o = c.email(&["--clear"], &[], None);
    assert_ok(&o, "--clear");
    // Issue 18.8: --clear says what it did.
    assert!(
        stdout(&o).contains("removed 2 message(s)"),
        "{}",
        stdout(&o)
    );
    assert!(list(&c, &[]).contains("is empty"));

    // Two flushes at once send each message exactly once.
    for i in 0..6 {
        let s = format!("race {i}");
        let o = c.email(
            &[
                "--queue",
                "--to",
                "dave@a.test",
                "--subject",
                &s,
                "--body",
                "b",
            ],
            &[],
            None,
        );
        assert_ok(&o, "--queue");
    }
    let a = c.spawn_email(&["--flush"], &[]);
    let b = c.spawn_email(&["--flush"], &[]);
    for ch in [a, b] {
        let o = ch.wait_with_output().unwrap();
        assert_ok(&o, "concurrent --flush");
    }
    wait_count(&m.inbox("dave"), 6);
    m.srv.wait_spool(0);
    assert_eq!(files(&m.inbox("dave")).len(), 6, "a message was sent twice");
    assert!(list(&c, &[]).contains("is empty"));

    // --queue-on-fail: try, and keep it when the server can't be reached.
    let o = c.email(
        &[
            "--queue-on-fail",
            "--to",
            "carol@a.test",
            "--subject",
            "later",
            "--body",
            "b",
        ],
        &down,
        None,
    );
    assert_ok(&o, "--queue-on-fail");
    assert!(stderr(&o).contains("queued as"), "{}", stderr(&o));
    let l = list(&c, &[]);
    assert!(
        l.contains("subject: later") && l.contains("attempts=1"),
        "{l}"
    );
    assert!(l.contains("last error: cannot connect"), "{l}");
    assert_ok(&c.email(&["--flush"], &[], None), "--flush");
    wait_count(&m.inbox("carol"), 4);
}

#[test]
fn sendmail_interface_for_cron() {
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    let cfg = c.config.to_string_lossy().into_owned();
    let env = [("SCORPIOX_ENV", cfg.as_str())];

    // The issue's own line: headers on stdin, -t.
    let before = files(&m.inbox("carol"));
    let mut cmd = c.command(SX, &env);
    cmd.args(["sendmail", "-t"]);
    let o = output_with_input(cmd, Some(b"To: carol@a.test\nSubject: cron\n\nhello\n"));
    assert_ok(&o, "sx sendmail -t");
    let got = one_more(&m.inbox("carol"), &before);
    check(
        &got,
        r#"{"subject":"cron","from":"bob@a.test","to":["carol@a.test"],"body_raw":"hello",
            "present":["message-id","date"]}"#,
    );

    // Installed as `sendmail`: -f, -F, -i; Bcc recipients get it, unseen.
    let link = c.path("sendmail");
    std::os::unix::fs::symlink(SX, &link).unwrap();
    let befores: Vec<_> = ["carol", "dave"]
        .iter()
        .map(|u| files(&m.inbox(u)))
        .collect();
    let cmd = {
        let mut cmd = c.command(&link, &env);
        cmd.args(["-t", "-i", "-f", "bob@a.test", "-F", "Cron Daemon"]);
        cmd
    };
    let o = output_with_input(
        cmd,
        Some(b"To: carol@a.test\nBcc: dave@a.test\nSubject: nightly\n\n.\nline after a dot\n"),
    );
    assert_ok(&o, "sendmail -t -i");
    let want = r#"{"subject":"nightly","from":"bob@a.test","from_name":"Cron Daemon","to":["carol@a.test"],
                   "absent":["bcc"],"body_raw":".\nline after a dot","present":["message-id","date"]}"#;
    for (u, before) in ["carol", "dave"].iter().zip(&befores) {
        let got = one_more(&m.inbox(u), before);
        check(&got, want);
    }

    // Recipients as arguments; a bare name (cron's MAILTO=carol) gets the sender's domain.
    let before = files(&m.inbox("carol"));
    let mut cmd = c.command(SX, &env);
    cmd.args(["sendmail", "carol"]);
    let o = output_with_input(cmd, Some(b"Subject: to a bare name\n\nhi\n.\nnot sent\n"));
    assert_ok(&o, "sx sendmail carol");
    let got = one_more(&m.inbox("carol"), &before);
    check(
        &got,
        r#"{"subject":"to a bare name","body_raw":"hi","present":["message-id","date"]}"#,
    );

    // No recipient at all is a usage error.
    let mut cmd = c.command(SX, &env);
    cmd.args(["sendmail"]);
    let o = output_with_input(cmd, Some(b"Subject: x\n\nx\n"));
    assert_fails(&o, &[64], "no recipient");
}

#[test]
fn test_flag_prints_the_reply_chain_and_sends_are_logged() {
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1\nSMTP_LOG=stderr"));
    let before = files(&m.inbox("bob"));
    let o = c.email(&["--test"], &[], None);
    assert_ok(&o, "--test");
    let out = stdout(&o);
    for want in [
        "greeting: 220 ",
        "EHLO ",
        "STARTTLS: 220 ",
        "TLS: TLSv1.3 ",
        "certificate verified against",
        "AUTH as bob@a.test: 235",
        "MAIL FROM:<bob@a.test>: 250",
        "RCPT TO:<bob@a.test>: 250",
        "DATA: 250 2.0.0 Ok: queued as ",
        "QUIT: 221",
        "test message to bob@a.test accepted",
    ] {
        assert!(out.contains(want), "--test output lacks {want:?}:\n{out}");
    }
    let got = one_more(&m.inbox("bob"), &before);
    check(
        &got,
        r#"{"subject":"sx email --test from bob@a.test","to":["bob@a.test"]}"#,
    );
    // The send's log line carries the envelope and the server's reply, no secret.
    let log = stderr(&o);
    assert!(
        log.contains("sx-email[")
            && log.contains("from=<bob@a.test> to=<bob@a.test>")
            && log.contains("status=sent (250 2.0.0 Ok: queued as"),
        "{log}"
    );
    assert!(!log.contains("pw-bob-1"), "password in the log");

    // A failed --test still shows how far it got.
    let o = c.email(&["--test"], &[("SMTP_PASS", "nope")], None);
    assert_eq!(o.status.code(), Some(77), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("TLS: TLSv1.3") && !out.contains("MAIL FROM"),
        "{out}"
    );
    assert!(stderr(&o).contains("status=failed"), "{}", stderr(&o));
}

/// An SMTP server that accepts `accept` messages, then takes a whole message
/// and never answers, so a client can be killed at the worst moment. Sends on
/// `got` when that message's final dot has arrived.
fn stalling_server(accept: usize) -> (u16, std::sync::mpsc::Receiver<()>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The client may open a connection per message: serve them in turn.
        let mut accepted = 0;
        while let Ok((s, _)) = l.accept() {
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let _ = w.write_all(b"220 stall.test ESMTP\r\n");
            let mut in_data = false;
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let reply: &[u8] = if in_data {
                    if line == ".\r\n" && accepted < accept {
                        accepted += 1;
                        in_data = false;
                        b"250 2.0.0 Ok: queued as STALL\r\n"
                    } else if line == ".\r\n" {
                        let _ = tx.send(());
                        // Hold the connection open, never acknowledging the message.
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    } else {
                        b""
                    }
                } else if line.starts_with("EHLO") {
                    b"250-stall.test\r\n250 8BITMIME\r\n"
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if line.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = w.write_all(reply);
                line.clear();
            }
        }
    });
    (port, rx)
}

/// Three queued; the flush is killed after the server acknowledged the first
/// and while it holds the second's reply: the first is gone from the queue
/// (sent), the other two stay, and the next flush sends each of them once.
#[test]
fn flush_killed_mid_send_loses_nothing() {
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    for i in 1..=3 {
        let o = c.email(
            &[
                "--queue",
                "--to",
                "carol@a.test",
                "--subject",
                &format!("survivor {i}"),
                "--body",
                "b",
            ],
            &[],
            None,
        );
        assert_ok(&o, "--queue");
    }
    let (port, got_data) = stalling_server(1);
    let port = port.to_string();
    let mut flush = c.spawn_email(
        &["--flush"],
        &[
            ("SMTP_PORT", &port),
            ("SMTP_TLS", "none"),
            ("SMTP_USER", ""),
        ],
    );
    got_data
        .recv_timeout(Duration::from_secs(10))
        .expect("the second message never reached the stalling server");
    flush.kill().unwrap(); // SIGKILL between the final dot and the reply
    flush.wait().unwrap();
    let l = list(&c, &[]);
    assert!(
        !l.contains("subject: survivor 1")
            && l.contains("subject: survivor 2")
            && l.contains("subject: survivor 3")
            && l.contains("2 message(s)"),
        "{l}"
    );
    // The dead flush's lock went with it; the next one sends the two, once each.
    assert_ok(&c.email(&["--flush"], &[], None), "--flush after the crash");
    wait_count(&m.inbox("carol"), 2);
    assert!(list(&c, &[]).contains("is empty"));
    // All the server acknowledged is delivered once its spool is empty.
    let t = Instant::now();
    while std::fs::read_dir(m.srv.path("queue/msg")).unwrap().count() > 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", m.srv.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut subjects: Vec<String> = files(&m.inbox("carol"))
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["survivor 2", "survivor 3"]);
}

/// The default log target, syslog: as root, the client runs in a private mount
/// namespace whose /dev/log is our datagram socket, and the line it sends must
/// be facility mail with the envelope and the server's reply.
#[test]
fn sends_are_logged_to_syslog_facility_mail() {
    if !is_root() {
        eprintln!("skipped: needs root for a private /dev/log");
        return;
    }
    let m = Mail::start();
    let c = Client::new(&m.client_config("SMTP_PASS=pw-bob-1"));
    let sock = c.path("log.sock");
    let log = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    log.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cfg = c.config.to_string_lossy().into_owned();
    let mut cmd = c.command("unshare", &[("SMTP_LOG", "syslog")]);
    cmd.args([
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs none /dev && touch /dev/log && mount --bind \"$0\" /dev/log && \
         exec \"$1\" email --config \"$2\" --to carol@a.test --subject syslogged --body b",
    ])
    .arg(&sock)
    .arg(SX)
    .arg(&cfg);
    let o = output_with_input(cmd, None);
    assert_ok(&o, "sx email with syslog");
    let mut buf = [0u8; 2048];
    let n = log.recv(&mut buf).expect("no syslog datagram");
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    // <22> = facility mail (2) * 8 + severity info (6), RFC 3164.
    assert!(line.starts_with("<22>"), "{line}");
    assert!(
        line.contains("sx-email[")
            && line.contains("from=<bob@a.test> to=<carol@a.test>")
            && line.contains("status=sent (250 2.0.0 Ok: queued as"),
        "{line}"
    );
    assert!(!line.contains("pw-bob-1"), "password in the log");
}

/// Local submission with the process tree: `sx sendmail` over the submit
/// socket as root and as an unprivileged user (the kernel says who: the
/// sender is theirs whatever they claim, bare names are the host's users),
/// the socket's session (no STARTTLS, no AUTH), and the maildrop while the
/// server is down, hostile files in it included. The package test does the
/// same with no configuration at all, in a private root.
mod local_submission {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};

    /// `sx sendmail ARGS` with the test server's config, as root or as nobody.
    fn sendmail(srv: &Server, as_nobody: bool, args: &[&str], message: &str) -> Output {
        let mut c = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(srv.path("sx"));
            c
        } else {
            Command::new(SX)
        };
        c.arg("sendmail")
            .arg("-C")
            .arg(&srv.config)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .env("SMTP_LOG", "none")
            .current_dir("/");
        output_with_input(c, Some(message.as_bytes()))
    }

    fn messages(srv: &Server, user: &str) -> Vec<String> {
        ["new", "cur"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(srv.path(&format!("mail/a.test/{user}/{d}")))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect()
    }

    fn wait_for(srv: &Server, user: &str, text: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(m) = messages(srv, user).into_iter().find(|m| m.contains(text)) {
                return m;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "{text:?} not delivered to {user}:\n{}",
                srv.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A server nobody can reach the socket of, and run our binary from.
    fn server() -> Server {
        let srv = Server::prepare("").start();
        srv.add_account("bob@a.test", "pw-bob-1");
        srv.add_account("carol@a.test", "pw-carol");
        std::fs::set_permissions(srv.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::copy(SX, srv.path("sx")).unwrap();
        std::fs::set_permissions(srv.path("sx"), std::fs::Permissions::from_mode(0o755)).unwrap();
        srv
    }

    #[test]
    fn sendmail_on_this_host_is_submitted_as_the_calling_user() {
        if !is_root() {
            eprintln!("skipped: needs root (setpriv to another user)");
            return;
        }
        let srv = server();
        // root: `To: root` and a bare system user go to the first account.
        let o = sendmail(
            &srv,
            false,
            &["-t", "www-data"],
            "To: root\nSubject: cron\n\nfrom root's cron\n",
        );
        assert!(o.status.success(), "{o:?}");
        let m = wait_for(&srv, "bob", "from root's cron");
        assert!(m.contains("Return-Path: <root@mail.a.test>"), "{m}");
        assert!(m.contains("(local user root, uid 0)"), "{m}");
        // nobody: whatever -f says, the sender is theirs; a local account by name.
        let o = sendmail(
            &srv,
            true,
            &["-t", "-f", "ceo@a.test"],
            "To: carol@a.test\nSubject: hi\n\nnobody says hi\n",
        );
        assert!(o.status.success(), "{o:?}");
        let m = wait_for(&srv, "carol", "nobody says hi");
        assert!(m.contains("Return-Path: <nobody@mail.a.test>"), "{m}");
        assert!(m.contains("(local user nobody, uid 65534)"), "{m}");
        assert!(
            srv.log().contains("auth=local:nobody"),
            "the log names the local user:\n{}",
            srv.log()
        );
        // Root alone may choose the sender (sendmail -f, as Postfix trusts root).
        let o = sendmail(
            &srv,
            false,
            &["-f", "alerts@a.test", "carol"],
            "Subject: alert\n\nroot as alerts\n",
        );
        assert!(o.status.success(), "{o:?}");
        let m = wait_for(&srv, "carol", "root as alerts");
        assert!(m.contains("Return-Path: <alerts@a.test>"), "{m}");

        // The socket's session offers neither TLS nor AUTH: the kernel said who.
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\nf=s.makefile('rwb')\n\
             def rd():\n  out=[]\n  while True:\n    l=f.readline().decode(); out.append(l.strip())\n    if l[3:4]!='-': return out\n\
             rd()\nfor c in ['EHLO x','STARTTLS','AUTH PLAIN AGJvYgBwdy1ib2I=']:\n  f.write((c+'\\r\\n').encode()); f.flush(); print(c, rd())\n",
            srv.path("submit.sock").display().to_string()
        );
        let o = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
            ])
            .arg(&script)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{o:?}");
        assert!(
            !text.contains("250-STARTTLS") && !text.contains("AUTH PLAIN LOGIN"),
            "{text}"
        );
        assert!(text.contains("STARTTLS ['502"), "{text}");
        assert!(text.contains("AUTH PLAIN AGJvYgBwdy1ib2I= ['503"), "{text}");
    }

    /// With the server down sendmail leaves the message in the maildrop; the
    /// server picks it up once back, as its owner. Files nobody should be able
    /// to send that way (a link to root's file, a symlink, a wrong format) are set
    /// aside as `.bad`, not sent.
    #[test]
    fn the_maildrop_keeps_mail_while_the_server_is_down() {
        if !is_root() {
            eprintln!("skipped: needs root (setpriv to another user)");
            return;
        }
        let mut srv = server();
        assert_eq!(srv.stop(), Some(0));
        assert!(
            !srv.path("submit.sock").exists(),
            "the socket goes with the server"
        );
        let o = sendmail(
            &srv,
            true,
            &["carol"],
            "Subject: while down\n\nsent while the server was down\n",
        );
        assert!(o.status.success(), "{o:?}");
        let drop = srv.path("maildrop");
        assert_eq!(std::fs::read_dir(&drop).unwrap().count(), 1);
        // What others might try: root's file linked in, a symlink, garbage.
        let secret = srv.path("secret");
        std::fs::write(
            &secret,
            "SXDROP1\nfrom \nrcpt carol\n\nSubject: root's secret\n\nsecret\n",
        )
        .unwrap();
        std::fs::hard_link(&secret, drop.join("linked.msg")).unwrap();
        std::os::unix::fs::symlink(&secret, drop.join("sym.msg")).unwrap();
        std::fs::write(drop.join("junk.msg"), "GET / HTTP/1.0\r\n\r\n").unwrap();
        srv.launch();
        wait_for(&srv, "carol", "sent while the server was down");
        let t = Instant::now();
        loop {
            let names: Vec<String> = std::fs::read_dir(&drop)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if names.iter().all(|n| n.ends_with(".bad")) && names.len() == 3 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "{names:?}\n{}",
                srv.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        srv.wait_spool(0);
        assert!(
            messages(&srv, "carol")
                .iter()
                .all(|m| !m.contains("root's secret")),
            "a linked file was sent"
        );
        let log = srv.log();
        assert!(
            log.contains("maildrop: linked.msg of uid 0: 2 links"),
            "{log}"
        );
        assert!(log.contains("maildrop: cannot open sym.msg"), "{log}");
        assert!(log.contains("not a maildrop file"), "{log}");
        let m = wait_for(&srv, "carol", "sent while the server was down");
        assert!(m.contains("Return-Path: <nobody@mail.a.test>"), "{m}");
    }
}
