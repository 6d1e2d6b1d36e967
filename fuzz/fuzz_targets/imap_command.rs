//! A client's bytes to the IMAP command decoders and name checks, then to the
//! real IMAP session (in-process, logged in over a fresh account, and at the
//! greeting): nothing may escape the account.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sxproc::imap::fuzz::command(data);
    sxproc::inprocess::fuzz::imap_session(data);
});
