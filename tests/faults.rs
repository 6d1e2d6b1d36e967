//! Hostile and broken clients: slowloris on commands and on DATA, connection
//! floods past the limits, TLS handshakes that stall and records that are not
//! TLS. For each: the offender is cut off with the right reply, the outcome is
//! logged, nothing it sent is acknowledged, and a normal client is served.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn server(extra: &str) -> Server {
    let srv = Server::prepare(extra).start();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    srv
}

fn inbox_count(srv: &Server) -> usize {
    std::fs::read_dir(srv.path("mail/a.test/bob/new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A normal client delivers one message on port 25 and it arrives.
fn served_normally(srv: &Server, subject: &str) {
    let before = inbox_count(srv);
    let r = smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO ok.test",
            "MAIL FROM:<x@b.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("Subject: {subject}\r\n\r\nfine\r\n."),
            "QUIT",
        ],
    );
    assert!(r[5].starts_with("250 2.0.0 Ok: queued as"), "{r:?}");
    let t = Instant::now();
    while inbox_count(srv) <= before {
        assert!(t.elapsed() < Duration::from_secs(10), "not delivered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Send `data` a byte every `gap` until the server closes; returns what it
/// said and how long it took.
fn trickle(mut s: TcpStream, data: &[u8], gap: Duration) -> (String, Duration) {
    let t = Instant::now();
    let mut r = s.try_clone().unwrap();
    r.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = r.read_to_end(&mut got);
        (String::from_utf8_lossy(&got).to_string(), t.elapsed())
    });
    for b in data.iter().cycle() {
        if s.write_all(&[*b]).is_err() || reader.is_finished() {
            break;
        }
        std::thread::sleep(gap);
        if t.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    reader.join().unwrap()
}

#[test]
fn slowloris_on_commands_and_data_is_cut_off_while_others_are_served() {
    let srv = server("EMAIL_SMTP_TIMEOUT=2");
    // Commands: "EHLO ..." one byte every 200 ms, never a whole line in 2 s.
    let s = TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
    let cmd = std::thread::spawn(move || {
        trickle(s, b"EHLO slow.example.test", Duration::from_millis(200))
    });

    // DATA: a valid envelope, then the body at 5 bytes a second.
    let s = TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut rd = std::io::BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    rd.read_line(&mut line).unwrap();
    for c in [
        "EHLO slow.test",
        "MAIL FROM:<x@b.test>",
        "RCPT TO:<bob@a.test>",
        "DATA",
    ] {
        w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        loop {
            line.clear();
            rd.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    }
    assert!(line.starts_with("354"), "{line}");
    let data = std::thread::spawn(move || {
        trickle(
            s,
            b"Subject: slow\r\n\r\nvery slow body ",
            Duration::from_millis(200),
        )
    });

    // Meanwhile others are served.
    served_normally(&srv, "while slowloris");

    let (said, took) = cmd.join().unwrap();
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(
        took < Duration::from_secs(6),
        "command trickle held {took:?}"
    );
    let (said, took) = data.join().unwrap();
    assert!(!said.contains("queued as"), "{said}");
    assert!(said.contains("421 4.4.2 Timeout in DATA"), "{said}");
    assert!(took < Duration::from_secs(8), "DATA trickle held {took:?}");
    // Only the normal message arrived; the trickled one is not acknowledged.
    srv.wait_spool(0);
    assert_eq!(inbox_count(&srv), 1);
    let log = srv.log();
    assert!(log.contains("timeout: [127.0.0.1]"), "{log}");
    assert!(log.contains("ended: timeout in DATA"), "{log}");
    served_normally(&srv, "after slowloris");
}

#[test]
fn connection_flood_past_the_limits_is_refused_then_service_resumes() {
    let srv = server("EMAIL_MAX_CONNECTIONS_PER_IP=5\nEMAIL_MAX_CONNECTIONS=50");
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut s = TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap_or(0);
        let greet = String::from_utf8_lossy(&buf[..n]).to_string();
        if greet.starts_with("421") {
            assert!(greet.contains("Too many connections"), "{greet}");
            refused += 1;
        } else {
            assert!(greet.starts_with("220"), "{greet}");
            held.push(s);
        }
    }
    assert_eq!(held.len(), 5, "per-IP limit");
    assert_eq!(refused, 7);
    let log = srv.log();
    assert!(log.contains("refused: too many from this address"), "{log}");
    // The flood goes away; the next client is served.
    drop(held);
    let t = Instant::now();
    loop {
        let mut s = TcpStream::connect(("127.0.0.1", srv.ports.smtp)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        if buf[..n].starts_with(b"220") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "slots not freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    served_normally(&srv, "after the flood");
}

#[test]
fn stalled_tls_handshakes_and_garbage_records_are_dropped() {
    let srv = server("EMAIL_SMTP_TIMEOUT=2");
    // Implicit TLS port: connect and say nothing.
    let t = Instant::now();
    let mut stalled = TcpStream::connect(("127.0.0.1", srv.ports.submissions)).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Not TLS at all on the implicit TLS port.
    let mut junk = TcpStream::connect(("127.0.0.1", srv.ports.submissions)).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Closed at once (not left to the timeout), with at most a TLS alert.
    let sent = Instant::now();
    let mut buf = Vec::new();
    let r = junk.read_to_end(&mut buf);
    assert!(r.is_ok(), "junk on the TLS port: not closed: {r:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "junk on the TLS port held {:?}",
        sent.elapsed()
    );
    assert!(
        buf.is_empty() || buf.starts_with(&[0x15, 0x03]),
        "junk on the TLS port was answered {buf:?}"
    );
    // STARTTLS, then a malformed record.
    let mut st = TcpStream::connect(("127.0.0.1", srv.ports.submission)).unwrap();
    st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 512];
    let _ = st.read(&mut b).unwrap();
    st.write_all(b"EHLO x\r\n").unwrap();
    // The whole EHLO reply, up to its last line.
    let mut ehlo = Vec::new();
    while !(ehlo.starts_with(b"250 ") || ehlo.windows(6).any(|w| w == b"\r\n250 ")) {
        let n = st.read(&mut b).unwrap();
        assert!(n > 0, "closed during EHLO");
        ehlo.extend_from_slice(&b[..n]);
    }
    st.write_all(b"STARTTLS\r\n").unwrap();
    let n = st.read(&mut b).unwrap();
    assert!(
        b[..n].starts_with(b"220"),
        "{}",
        String::from_utf8_lossy(&b[..n])
    );
    // A handshake record header announcing 16 KiB, then nonsense.
    st.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00, 0xde, 0xad, 0xbe, 0xef])
        .unwrap();
    st.write_all(&[0u8; 64]).unwrap();

    // Others are served meanwhile, in clear and over TLS.
    served_normally(&srv, "during the TLS junk");
    let o = python(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=10)
s.login('bob@a.test', 'pw-bob-1'); s.sendmail('bob@a.test', ['bob@a.test'], b'Subject: tls ok\r\n\r\nx\r\n'); s.quit()
print('ok')
"#,
        &[
            &srv.ports.submissions.to_string(),
            &srv.cert.to_string_lossy(),
        ],
    );
    assert_ok(&o, "submission over 465 during the junk");

    // The stalled handshake is closed within the session timeout (2 s).
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stalled handshake held {:?}",
        t.elapsed()
    );
    // The malformed record's connection is closed too, by the end of the
    // handshake timeout at the latest, with at most a TLS alert.
    rest.clear();
    let r = st.read_to_end(&mut rest);
    assert!(r.is_ok(), "malformed record: not closed: {r:?}");
    assert!(
        rest.is_empty() || rest.starts_with(&[0x15, 0x03]),
        "malformed record was answered {rest:?}"
    );
    // Each of the three has its line (the junk's and the stall's on 465, the
    // bad record's after STARTTLS on 587); log lines may trail the close.
    srv.wait_log(
        "submissions: TLS handshake with 127.0.0.1",
        2,
        Duration::from_secs(5),
    );
    srv.wait_log(
        "submission: STARTTLS with 127.0.0.1",
        1,
        Duration::from_secs(5),
    );
    let log = srv.log();
    assert!(log.contains("TLS handshake with 127.0.0.1"), "{log}");
    assert!(
        log.contains("handshake timeout") || log.contains("timed out"),
        "{log}"
    );
}

/// A small tmpfs mounted at `dir` (root only), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fill the filesystem at `dir` with one file; returns it (remove to free).
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    p
}

/// A server whose `dir` (queue or mail) is a full 1 MiB tmpfs, with bob's
/// account; `None` unless root. Remove the filler file to make room.
fn server_with_full(extra: &str, dir: &str) -> Option<(Server, Tmpfs, std::path::PathBuf)> {
    if !is_root() {
        return None;
    }
    let mut srv = Server::prepare(extra);
    let fs = Tmpfs::mount(&srv.path(dir), "1m");
    srv.launch();
    srv.add_account("bob@a.test", "pw-bob-1");
    srv.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let filler = fill(&srv.path(dir));
    Some((srv, fs, filler))
}

/// One message to bob on port 25: `lines` copies of `line` as its body.
fn submit(srv: &Server, subject: &str, line: &str, lines: usize) -> Vec<String> {
    smtp_dialog_at(
        "127.0.0.1",
        srv.ports.smtp,
        &[
            "EHLO ok.test",
            "MAIL FROM:<x@b.test>",
            "RCPT TO:<bob@a.test>",
            "DATA",
            &format!("Subject: {subject}\r\n\r\n{}\r\n.", line.repeat(lines)),
            "QUIT",
        ],
    )
}

#[test]
fn disk_full_on_the_spool_refuses_with_4xx_and_recovers() {
    let Some((srv, _fs, filler)) = server_with_full("", "queue") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let r = submit(&srv, "while full", "body line\r\n", 200);
    let all = r.join("");
    assert!(
        !all.contains("queued as"),
        "acknowledged on a full spool: {r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l.starts_with("452 4.3.1 Insufficient system storage")),
        "want 452 4.3.1: {r:?}"
    );
    assert!(srv.log().contains("refused: spool full"), "{}", srv.log());
    // A body larger than the write buffer fails mid-DATA: the rest is read, the
    // reply is still 452, and the session goes on (QUIT answered).
    let big = submit(&srv, "big", "0123456789abcdef\r\n", 20_000);
    assert!(big[5].starts_with("452 4.3.1"), "{big:?}");
    assert!(big[6].starts_with("221"), "{big:?}");
    std::fs::remove_file(filler).unwrap();
    served_normally(&srv, "after the spool had room again");
    drop(srv);
}

#[test]
fn disk_full_on_the_maildir_defers_and_delivers_once_there_is_room() {
    let Some((srv, _fs, filler)) = server_with_full("EMAIL_QUEUE_RETRY=1s", "mail") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let r = submit(&srv, "kept in the queue", "body line\r\n", 200);
    assert!(r[5].starts_with("250 2.0.0 Ok: queued as"), "{r:?}");
    srv.wait_log("status=deferred", 1, Duration::from_secs(10));
    assert_eq!(inbox_count(&srv), 0);
    std::fs::remove_file(filler).unwrap();
    let t = Instant::now();
    while inbox_count(&srv) < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "not delivered after room was made:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.wait_spool(0);
    assert_eq!(inbox_count(&srv), 1, "delivered twice");
    drop(srv);
}
