//! Queue administration through the control socket against a running daemon.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

const SUBMIT_PY: &str = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
ids = []
for subject in sys.argv[3:]:
    code, msg = (None, None)
    s.mail('bob@a.test'); s.rcpt('carol@b.test')
    code, msg = s.data(('Subject: %s\r\n\r\nbody\r\n' % subject).encode())
    ids.append(msg.decode().split()[-1])
s.quit()
print(' '.join(ids))
"#;

#[test]
fn list_show_hold_flush_release_remove() {
    let b_port = free_port();
    let a = Server::prepare(&format!(
        "EMAIL_ROUTES=b.test=127.0.0.1:{b_port}\nEMAIL_QUEUE_RETRY=1h"
    ))
    .start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let o = python(
        SUBMIT_PY,
        &[
            &a.ports.submission.to_string(),
            &a.cert.to_string_lossy(),
            "one",
            "two",
            "three",
        ],
    );
    assert_ok(&o, "submit");
    let ids: Vec<String> = out(&o).split_whitespace().map(String::from).collect();
    assert_eq!(ids.len(), 3);
    a.wait_log("status=deferred ([127.0.0.1]:", 3, Duration::from_secs(10));

    let list = a.sx(&["--queue"], "");
    assert_ok(&list, "--queue");
    let text = out(&list);
    for id in &ids {
        assert!(text.contains(id.as_str()), "{text}");
    }
    assert!(text.contains("carol@b.test  deferred"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains("-- 3 message(s)"), "{text}");

    let show = a.sx(&["--queue-show", &ids[0]], "");
    assert_ok(&show, "--queue-show");
    assert!(out(&show).contains("from: <bob@a.test>"), "{}", out(&show));
    assert!(out(&show).contains("Subject: one"), "{}", out(&show));

    assert_ok(&a.sx(&["--queue-hold", &ids[0]], ""), "--queue-hold");
    assert!(out(&a.sx(&["--queue"], "")).contains(ids[0].as_str()));
    assert!(out(&a.sx(&["--queue"], "")).contains("HELD"));
    assert_ok(&a.sx(&["--queue-remove", &ids[2]], ""), "--queue-remove");
    a.wait_log(
        &format!("{}: removed by the administrator", ids[2]),
        1,
        Duration::from_secs(5),
    );
    assert!(!a.path(&format!("queue/msg/{}", ids[2])).exists());

    // B comes up on the routed port; a flush delivers what is not held.
    let mut b = Server::prepare(&format!("EMAIL_DOMAIN=b.test\nEMAIL_SMTP_PORT={b_port}"));
    b.ports.smtp = b_port;
    let b = b.start();
    b.add_account("carol@b.test", "pw-carol");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    assert_ok(&a.sx(&["--queue-flush"], ""), "--queue-flush");
    let inbox = b.path("mail/b.test/carol/new");
    let wait_count = |n: usize| {
        let t = Instant::now();
        while std::fs::read_dir(&inbox).unwrap().count() < n {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "only {} of {n} at B:\n{}",
                std::fs::read_dir(&inbox).unwrap().count(),
                a.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_count(1);
    // A keeps only the held one; B has delivered what it took.
    a.wait_spool(1);
    b.wait_spool(0);
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        1,
        "the held message must not go"
    );
    let left = out(&a.sx(&["--queue"], ""));
    assert!(
        left.contains(&ids[0]) && left.contains("-- 1 message(s)"),
        "{left}"
    );
    assert_ok(&a.sx(&["--queue-release", &ids[0]], ""), "--queue-release");
    wait_count(2);
    a.wait_log(&format!("{}: removed", ids[0]), 1, Duration::from_secs(5));
    assert!(out(&a.sx(&["--queue"], "")).contains("queue is empty"));
    // Unknown ids are an error.
    assert_eq!(
        a.sx(&["--queue-show", "0123456789ABCDEF0123"], "")
            .status
            .code(),
        Some(66)
    );
}

#[test]
fn queue_commands_are_refused_to_non_admin_users() {
    if !is_root() {
        eprintln!("skipped: needs root to run a command as another user");
        return;
    }
    let srv = Server::prepare("").start();
    // Let nobody read the config, so the refusal comes from the control socket.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(srv.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&srv.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = srv.path("sx-copy");
    std::fs::copy(SX, &bin).unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["server-email", "--config"])
        .arg(&srv.config)
        .arg("--queue")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    // Root is served.
    assert_ok(&srv.sx(&["--queue"], ""), "--queue as root");
}
