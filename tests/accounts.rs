//! Account commands against the files and a running server; config and accounts
//! errors that name file and line.

mod common;
use common::*;
use std::time::Duration;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn account_commands_round_trip_with_running_server() {
    let srv = Server::prepare("").start();
    srv.add_account("Bob@A.test", "first-pw");
    let maildir = srv.path("mail/a.test/bob");
    for sub in [
        "cur",
        "new",
        "tmp",
        ".Sent/cur",
        ".Drafts/new",
        ".Trash/tmp",
        ".Junk/cur",
    ] {
        assert!(maildir.join(sub).is_dir(), "missing {sub}");
    }
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        let uid = nix::unistd::User::from_name("_sxmail")
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        assert_eq!(std::fs::metadata(maildir.join("new")).unwrap().uid(), uid);
    }
    let list = srv.sx(&["--list-accounts"], "");
    assert_ok(&list, "list");
    assert_eq!(stdout(&list), "bob@a.test\n");
    // Duplicate and foreign-domain accounts are refused with EX_DATAERR.
    let dup = srv.sx(&["--add-account", "bob@a.test"], "x\n");
    assert_eq!(dup.status.code(), Some(65), "{}", stderr(&dup));
    let foreign = srv.sx(&["--add-account", "eve@elsewhere.test"], "x\n");
    assert_eq!(foreign.status.code(), Some(65));
    assert!(stderr(&foreign).contains("not a local domain"));
    let empty = srv.sx(&["--add-account", "dan@a.test"], "\n");
    assert_eq!(empty.status.code(), Some(65));

    srv.wait_log("1 account(s)", 1, Duration::from_secs(5));
    assert_eq!(imap_login(&srv, "bob@a.test", "first-pw"), "OK");
    // Twice more: the second is served from keyholder's cache, same answer.
    assert_eq!(imap_login(&srv, "BOB@a.test", "first-pw"), "OK");
    assert!(imap_login(&srv, "bob@a.test", "wrong").starts_with("NO"));
    assert!(imap_login(&srv, "nobody@a.test", "first-pw").starts_with("NO"));

    // --passwd: the old password stops working at once (cache dropped on reload).
    assert_ok(
        &srv.sx(&["--passwd", "bob@a.test"], "second-pw\n"),
        "passwd",
    );
    srv.wait_log("reloaded configuration", 1, Duration::from_secs(10));
    assert!(imap_login(&srv, "bob@a.test", "first-pw").starts_with("NO"));
    assert_eq!(imap_login(&srv, "bob@a.test", "second-pw"), "OK");

    let rm = srv.sx(&["--remove-account", "bob@a.test"], "");
    assert_ok(&rm, "remove");
    srv.wait_log("reloaded configuration", 2, Duration::from_secs(10));
    assert!(imap_login(&srv, "bob@a.test", "second-pw").starts_with("NO"));
    assert!(maildir.join("cur").is_dir(), "mail must be kept");
    assert_eq!(stdout(&srv.sx(&["--list-accounts"], "")), "");
    let again = srv.sx(&["--remove-account", "bob@a.test"], "");
    assert_eq!(again.status.code(), Some(66));
    // The log never shows a password.
    for pw in ["first-pw", "second-pw"] {
        assert!(!srv.log().contains(pw), "password in log");
    }
    // Wrong passwords are logged as failures, by user and address.
    assert!(srv
        .log()
        .contains("login failed user=bob@a.test rip=127.0.0.1"));
}

#[test]
fn malformed_accounts_line_names_file_and_line() {
    let mut srv = Server::prepare("");
    srv.add_account("bob@a.test", "pw-bob-1");
    let acc = srv.path("accounts");
    let mut text = std::fs::read_to_string(&acc).unwrap();
    text.push_str("carol@a.test-no-hash\n");
    std::fs::write(&acc, &text).unwrap();
    let line = text.lines().count();
    let o = srv.sx(&["--list-accounts"], "");
    assert_eq!(o.status.code(), Some(65));
    assert!(
        stderr(&o).contains(&format!("{}:{line}:", acc.display())),
        "{}",
        stderr(&o)
    );
    // The server refuses to start on it, naming file:line, exit 78.
    let o = srv.sx(&[], "");
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:{line}:", acc.display())),
        "{}",
        stderr(&o)
    );
    srv.child = None;
}

#[test]
fn bad_config_value_names_file_line_and_key() {
    let srv = Server::prepare("EMAIL_MAX_RECIPIENTS=lots");
    let o = srv.sx(&[], "");
    assert_eq!(o.status.code(), Some(78));
    let lines = std::fs::read_to_string(&srv.config).unwrap();
    let n = lines
        .lines()
        .position(|l| l.starts_with("EMAIL_MAX_RECIPIENTS"))
        .unwrap()
        + 1;
    let want = format!("{}:{n}: EMAIL_MAX_RECIPIENTS:", srv.config.display());
    assert!(stderr(&o).contains(&want), "want {want} in {}", stderr(&o));

    let srv = Server::prepare("this is not a setting");
    let o = srv.sx(&["--list-accounts"], "");
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).contains("expected KEY=VALUE"), "{}", stderr(&o));

    // Unknown keys are only warnings.
    let srv = Server::prepare("EMAIL_NO_SUCH_KEY=1").start();
    assert!(
        srv.log().contains("unknown key EMAIL_NO_SUCH_KEY"),
        "{}",
        srv.log()
    );
}

#[test]
fn bad_port_from_environment_is_reported() {
    let srv = Server::prepare("");
    let o = std::process::Command::new(SX)
        .args(["server-email", "--config"])
        .arg(&srv.config)
        .env("EMAIL_IMAP_PORT", "99999")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    assert!(
        stderr(&o).contains("environment: EMAIL_IMAP_PORT:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_64() {
    let o = std::process::Command::new(SX)
        .args(["server-email", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64));
    let o = std::process::Command::new(SX)
        .args(["server-email", "--list-accounts", "--status"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64));
    let o = std::process::Command::new(SX)
        .arg("--version")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("sx "));
}

/// Issue 18.8: a password has a minimum length, and the refusal says it.
#[test]
fn a_short_password_is_refused_with_the_minimum() {
    let srv = Server::prepare("");
    for short in ["", "x", "1234567"] {
        let o = srv.sx(&["--add-account", "bob@a.test"], &format!("{short}\n"));
        assert_eq!(o.status.code(), Some(65), "{short:?}: {o:?}");
        assert!(
            stderr(&o).contains("at least 8 characters"),
            "{}",
            stderr(&o)
        );
    }
    assert_ok(
        &srv.sx(&["--add-account", "bob@a.test"], "12345678\n"),
        "8 characters",
    );
}
