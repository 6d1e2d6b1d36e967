//! A client's bytes through the SMTP session's input path.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sxproc::smtp::fuzz::session_input(data));
