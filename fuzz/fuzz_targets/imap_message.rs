//! A delivered message through what IMAP FETCH renders from it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sxproc::imap::fuzz::message(data));
