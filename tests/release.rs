//! The crash, fault and security suites once more, against the release build
//! (`cargo build --release`, the binary the package ships): each suite's test
//! executable, as this `cargo test` built it, runs with SX_UNDER_TEST naming
//! target/release/sx, so every server and client those tests start is the
//! release binary. Together with the harness's health check (a child's panic
//! or unexpected death fails the test) this is what shows the shipped build
//! contains a panic to its session and loses nothing acknowledged.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The suites that run again: kill -9 and durability, faults and floods,
/// panics and crash loops, confinement, privilege separation, hostile input.
const SUITES: [&str; 6] = [
    "crash",
    "faults",
    "isolation",
    "confine",
    "privsep",
    "hostile",
];

/// The newest `<name>-<hash>` executable beside this one.
fn suite(deps: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-");
    std::fs::read_dir(deps)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix)
                .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no test executable for {name} in {}", deps.display()))
}

#[test]
fn crash_fault_and_security_suites_pass_against_the_release_build() {
    let sx = release::sx();
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let mut failed = Vec::new();
    for name in SUITES {
        let bin = suite(deps, name);
        let o = Command::new(&bin)
            .env("SX_UNDER_TEST", &sx)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let result = out
            .lines()
            .rfind(|l| l.starts_with("test result:"))
            .unwrap_or("no result line");
        eprintln!("release build, {name}: {result}");
        if !o.status.success() {
            failed.push(format!(
                "{name} against {}:\n{out}\n{}",
                sx.display(),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    // The suites did run the release binary, not the test build's.
    assert_ne!(sx, PathBuf::from(SX.path()));
}
