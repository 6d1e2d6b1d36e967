//! Local submission with the process tree: `sx sendmail` over the submit
//! socket as root and as an unprivileged user (the kernel says who: the
//! sender is theirs whatever they claim, bare names are the host's users),
//! the socket's session (no STARTTLS, no AUTH), and the maildrop while the
//! server is down, hostile files in it included. The package test does the
//! same with no configuration at all, in a private root.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
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
    let mut ch = c
        .arg("sendmail")
        .arg("-C")
        .arg(&srv.config)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("SMTP_LOG", "none")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    ch.stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    ch.wait_with_output().unwrap()
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
    std::thread::sleep(Duration::from_millis(300));
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
