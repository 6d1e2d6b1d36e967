//! The operator-facing documents stay in step with the code: every config key is
//! in scorpiox-env.txt(5) and the sample config; every flag is in the man pages.

use std::process::Command;

const SX: &str = env!("CARGO_BIN_EXE_sx");

fn read(p: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + p).unwrap()
}

/// roff escapes hyphens as \- ; compare on the unescaped text.
fn unroff(s: &str) -> String {
    s.replace("\\-", "-")
}

#[test]
fn every_config_key_is_documented() {
    let man = unroff(&read("man/scorpiox-env.txt.5"));
    let sample = read("etc/scorpiox-env.txt");
    let keys = sxproc::config::keys::SERVER_KEYS
        .iter()
        .chain(sxproc::config::keys::CLIENT_KEYS);
    for k in keys {
        assert!(
            man.contains(&format!(".B {}", k.name)),
            "{} missing from scorpiox-env.txt.5",
            k.name
        );
        assert!(
            sample.contains(&format!("#{}=", k.name)),
            "{} missing from etc/scorpiox-env.txt",
            k.name
        );
    }
}

fn long_flags(help: &str) -> Vec<String> {
    help.split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches([',', '.'])
                .split(['=', '[', '<'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn every_flag_is_in_the_man_pages() {
    for (sub, page) in [
        ("server-email", "man/sx-server-email.8"),
        ("email", "man/sx-email.1"),
    ] {
        let help = Command::new(SX).args([sub, "--help"]).output().unwrap();
        let man = unroff(&read(page));
        for f in long_flags(&String::from_utf8_lossy(&help.stdout)) {
            assert!(man.contains(&f), "{f} of `sx {sub}` missing from {page}");
        }
    }
}

/// docs/SECURITY.md lists the seccomp allow-lists exactly as the code has them.
#[test]
fn seccomp_allow_lists_are_documented_as_they_are() {
    let doc = read("docs/SECURITY.md");
    for g in sxproc::confine::seccomp::GROUPS {
        let roles: Vec<&str> = g.roles.iter().map(|r| r.title()).collect();
        let calls: Vec<String> = g
            .calls
            .iter()
            .map(|c| match c.only {
                Some((i, _)) => format!("`{}`(arg {i} limited)", c.name),
                None => format!("`{}`", c.name),
            })
            .collect();
        let want = format!("| {} | {} | {} |", g.name, roles.join(" "), calls.join(" "));
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", g.name)))
            .unwrap_or("(no row)");
        assert_eq!(row, want, "docs/SECURITY.md row for the {} group", g.name);
    }
}

/// Issue 18.7: what the man pages say of the exit codes and --version holds.
#[test]
fn documented_version_flags_and_usage_exit_code_hold() {
    for sub in [
        &["--version"][..],
        &["server-email", "--version"],
        &["email", "--version"],
    ] {
        let o = Command::new(SX).args(sub).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "sx {sub:?}: {o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
    // 64 (EX_USAGE) for a flag that does not exist, as sysexits(3) and the pages say.
    let o = Command::new(SX)
        .args(["server-email", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64), "{o:?}");
    let man = unroff(&read("man/sx-server-email.8"));
    assert!(man.contains("64"), "sx-server-email.8 lacks exit code 64");
}

/// Each key's default (and embedded default) in scorpiox-env.txt(5) and the
/// sample config is the one the code uses.
#[test]
fn documented_defaults_are_the_code_defaults() {
    let man = unroff(&read("man/scorpiox-env.txt.5"));
    let sample = read("etc/scorpiox-env.txt");
    let quote = |v: &str| {
        if v.is_empty() {
            "empty".to_string()
        } else {
            format!("\\(lq{v}\\(rq")
        }
    };
    let keys = sxproc::config::keys::SERVER_KEYS
        .iter()
        .chain(sxproc::config::keys::CLIENT_KEYS);
    for k in keys {
        let head = format!(".TP\n.B {}\n", k.name);
        let start = man
            .find(&head)
            .unwrap_or_else(|| panic!("{} has no entry in the man page", k.name));
        // The entry runs to the next .TP (the next key) or section.
        let rest = &man[start + head.len()..];
        let end = [rest.find("\n.TP"), rest.find("\n.SH")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(rest.len());
        let entry = rest[..end].replace('\n', " ");
        let mut want = format!("Default: {}", quote(k.default));
        if let Some(e) = k.embedded {
            want.push_str(&format!("; embedded: {}", quote(e)));
        }
        assert!(
            entry.contains(&want),
            "{}: the man page does not say {want:?}:\n{entry}",
            k.name
        );
        assert!(
            sample.contains(&format!("#{}={}\n", k.name, k.default)),
            "{}: etc/scorpiox-env.txt does not show the default {:?}",
            k.name,
            k.default
        );
    }
}

/// SECURITY.md says release builds unwind (so a panic ends one session) and
/// check overflow in our crates as test builds do: the profiles say so too.
#[test]
fn the_release_profile_unwinds_and_checks_overflow_like_the_test_build() {
    let toml = read("Cargo.toml");
    let section = |name: &str| -> String {
        let head = format!("[{name}]\n");
        let Some(start) = toml.find(&head) else {
            return String::new();
        };
        let body = &toml[start + head.len()..];
        body[..body.find("\n[").unwrap_or(body.len())].to_string()
    };
    for p in [
        "profile.release",
        "profile.dev",
        "profile.release.package.\"*\"",
    ] {
        assert!(
            !section(p)
                .lines()
                .any(|l| l.trim_start().starts_with("panic")),
            "[{p}] sets a panic strategy"
        );
    }
    assert!(section("profile.release").contains("overflow-checks = true"));
    assert!(!section("profile.dev").contains("overflow-checks = false"));
    let deps_release = section("profile.release.package.\"*\"");
    let deps_dev = section("profile.dev.package.\"*\"");
    let k = "overflow-checks = false";
    assert!(deps_release.contains(k) && deps_dev.contains(k), "{k}");
    assert!(deps_dev.contains("debug-assertions = false"));
}
