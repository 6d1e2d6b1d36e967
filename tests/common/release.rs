//! The release build in the test step: `target/release/sx` (what the package
//! ships; package.rs and release.rs use it) and the fuzz targets built on the
//! same release dependencies (proc/tests/fuzz.rs). Cargo's lock on
//! target/release makes a caller wait for a build already running, e.g. the
//! one `start_in_background` began while the other suites ran.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's target directory (this test executable is in
/// `<target>/debug/deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("test executable under <target>/debug/deps")
}

fn root() -> &'static Path {
    // tests/common is the top package's; proc/tests reach it by path.
    Path::new(concat!(env!("CARGO_MANIFEST_DIR")))
}

/// The workspace root (the directory with the top Cargo.toml).
pub fn workspace() -> PathBuf {
    let mut d = root().to_path_buf();
    while !d.join("fuzz").is_dir() {
        if !d.pop() {
            panic!("no workspace root above {}", root().display());
        }
    }
    d
}

/// A cargo command with none of the CARGO_* variables `cargo test` gave this
/// test process: they differ from suite to suite (CARGO_MANIFEST_DIR is the
/// suite's package), and a build script that watches one (ring's does) would
/// make each suite's build of the same thing rebuild it.
fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k == "OUT_DIR" {
            c.env_remove(k.as_ref());
        }
    }
    c
}

/// `cargo build --release --bin sx`.
pub fn sx_command() -> Command {
    let mut c = cargo();
    c.current_dir(workspace())
        .args(["build", "--release", "--bin", "sx", "--target-dir"])
        .arg(target_dir());
    c
}

/// The fuzz targets on the release dependencies, our crates instrumented
/// (fuzz/instrument.sh, for workspace members only).
pub fn fuzz_command() -> Command {
    let ws = workspace();
    let mut c = cargo();
    c.current_dir(&ws)
        .args([
            "build",
            "--release",
            "-p",
            "scorpiox-fuzz",
            "--bins",
            "--target-dir",
        ])
        .arg(target_dir())
        .env("RUSTC_WORKSPACE_WRAPPER", ws.join("fuzz/instrument.sh"));
    c
}

fn run(mut c: Command, what: &str) {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Written by the background job once its build of `sx` succeeded.
fn sx_built_marker() -> PathBuf {
    target_dir().join("release-sx.built")
}

/// target/release/sx, built (or waited for) now. When this run's background
/// job has built it (its marker is newer than this test executable and the
/// test build's sx, so no source changed since), Cargo is not asked again:
/// that would wait for Cargo's lock, which the background fuzz build holds.
pub fn sx() -> PathBuf {
    let sx = target_dir().join("release/sx");
    let newer = |a: &Path, b: &Path| -> bool {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(a), m(b)), (Some(x), Some(y)) if x > y)
    };
    // Newer than this executable and than the test build's sx, which Cargo
    // relinks whenever a source of sx changed.
    let exe = std::env::current_exe().unwrap_or_default();
    let dev_sx = Path::new(option_env!("CARGO_BIN_EXE_sx").unwrap_or("/"));
    let marker = sx_built_marker();
    if !(newer(&marker, &exe) && newer(&marker, dev_sx) && sx.exists()) {
        run(sx_command(), "cargo build --release --bin sx");
    }
    sx
}

/// The directory of the instrumented fuzz targets, built (or waited for) now.
pub fn fuzz_targets() -> PathBuf {
    run(fuzz_command(), "building the fuzz targets");
    target_dir().join("release")
}

/// Start both builds, one after the other, in the background at the lowest
/// CPU and I/O priority: they take what the suites leave idle, and the tests
/// that need them find them built (or wait for the rest).
pub fn start_in_background() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(target_dir().join("release-build.log"))?;
    let quote = |w: &str| format!("'{}'", w.replace('\'', r"'\''"));
    let mut jobs = Vec::new();
    for c in [sx_command(), fuzz_command()] {
        // What a command sets (the wrapper) goes on its line; what it removes
        // is removed from the shell, for both.
        let mut line = vec!["env".to_string()];
        line.extend(
            c.get_envs()
                .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
                .map(|kv| quote(&kv)),
        );
        line.push(quote(&c.get_program().to_string_lossy()));
        line.extend(c.get_args().map(|a| quote(&a.to_string_lossy())));
        jobs.push(line.join(" "));
    }
    let marker = sx_built_marker();
    let _ = std::fs::remove_file(&marker);
    let script = format!(
        "cd {} && {} && touch {} ; {}",
        quote(&workspace().to_string_lossy()),
        jobs[0],
        quote(&marker.to_string_lossy()),
        jobs[1]
    );
    let mut c = Command::new("nice");
    for (k, v) in cargo().get_envs() {
        if v.is_none() {
            c.env_remove(k);
        }
    }
    c.args([
        "-n", "19", "ionice", "-c", "3", "chrt", "--idle", "0", "sh", "-c",
    ])
    .arg(script)
    .stdin(std::process::Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log)
    .process_group(0);
    c.spawn().map(drop)
}
