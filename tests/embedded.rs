//! The embedded default: no config file anywhere, a normal user, `sx server-email`
//! starts on localhost with a self-signed certificate in ./scorpiox-data/.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn starts_with_no_config_as_a_normal_user() {
    let _system = system_lock();
    if std::path::Path::new("/etc/scorpiox/scorpiox-env.txt").exists() {
        eprintln!("skipped: /etc/scorpiox/scorpiox-env.txt exists on this machine");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("sx-embedded-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let (smtp, imaps) = (free_port(), free_port());
    let mut cmd = if is_root() {
        // Run as nobody, as a developer would run it: no privilege drop, no chroot.
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        std::os::unix::fs::chown(d, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).unwrap();
        // A copy nobody can reach whatever the checkout's path permissions are.
        let bin = d.join("sx");
        std::fs::copy(SX, &bin).unwrap();
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", nobody.uid))
            .arg(format!("--regid={}", nobody.gid))
            .arg("--clear-groups")
            .arg(&bin);
        c
    } else {
        Command::new(SX)
    };
    let out = std::fs::File::create(d.join("out.log")).unwrap();
    let err = std::fs::File::create(d.join("err.log")).unwrap();
    // Ports come from the environment so tests can run in parallel; every other
    // value is the embedded default.
    let mut child = cmd
        .arg("server-email")
        .current_dir(d)
        .env_remove("SCORPIOX_ENV")
        .env("HOME", d)
        .env("XDG_CONFIG_HOME", d.join("xdg"))
        .env("EMAIL_SMTP_PORT", smtp.to_string())
        .env("EMAIL_IMAP_PORT", imaps.to_string())
        .env("EMAIL_SUBMISSION_PORT", "0")
        .env("EMAIL_SUBMISSIONS_PORT", "0")
        .env("EMAIL_IMAP_STARTTLS_PORT", "0")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let t = Instant::now();
    let announce = loop {
        let s = std::fs::read_to_string(d.join("out.log")).unwrap_or_default();
        if s.contains("control socket") && smtp_greets(smtp) {
            break s;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "exited {st}: {}",
                std::fs::read_to_string(d.join("err.log")).unwrap()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(d.join("err.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(announce.contains("embedded default"), "{announce}");
    assert!(
        announce.contains(&format!("127.0.0.1:{smtp}")),
        "{announce}"
    );
    let cert = d.join("scorpiox-data/tls/cert.pem");
    assert!(cert.exists());
    assert_eq!(served_cert_fingerprint(imaps), file_fingerprint(&cert));
    let log = std::fs::read_to_string(d.join("err.log")).unwrap();
    assert!(log.contains("not running as root"), "{log}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
