//! A client's bytes through the IMAP session's command decoders and name checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sxproc::imap::fuzz::command(data));
