#!/bin/sh
# RUSTC_WORKSPACE_WRAPPER for the fuzz build (proc/tests/fuzz.rs): Cargo runs
# it for workspace members only (our crates), and keeps what it builds apart
# from the plain build. It adds cargo-fuzz's coverage instrumentation (no
# sanitizer: ASan needs nightly), `--cfg fuzzing`, our debug assertions and
# overflow checks, and line tables for the crash backtraces. Dependencies are
# built as the release profile ships them, shared with `cargo build --release`.
rustc=$1
shift
exec "$rustc" "$@" \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing \
    -Cdebug-assertions=on \
    -Coverflow-checks=on \
    -Cdebuginfo=line-tables-only
