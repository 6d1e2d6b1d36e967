//! A client's bytes to the real SMTP session (in-process, peers on real IPC
//! edges): every reply must be a reply line and port 25 must never relay.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sxproc::inprocess::fuzz::smtp_session(data));
