//! A queue envelope as read back from the spool, either version (a corrupt file
//! must not crash queue); what decodes re-encodes (version 2) to an envelope
//! that decodes to the same value.
#![no_main]
use sxproc::queue::envelope_file::{decode, encode, Decoded};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Decoded::Envelope(env)) = decode(data) {
        match decode(&encode(&env)) {
            Ok(Decoded::Envelope(again)) => assert_eq!(again, env),
            _ => panic!("version 2 re-encoding does not decode"),
        }
    }
});
