//! Runs among the first suites (Cargo runs them in name order) and starts the release
//! build of `sx` and the fuzz targets in the background at idle priority
//! (tests/common/release.rs): they take the CPU the suites leave idle, and
//! package.rs, release.rs and proc/tests/fuzz.rs, which need them, wait for
//! whatever is left instead of building everything while nothing else runs.

mod common;

#[test]
fn release_builds_start_in_the_background() {
    common::release::start_in_background().expect("start the release builds");
}
