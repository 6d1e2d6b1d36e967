//! A queue envelope as read back from the spool (a corrupt file must not crash
//! queue); what decodes re-encodes to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(env) = sxproc::queue::spool::decode_env(data) {
        let again = sxproc::queue::spool::encode_env(&env).expect("re-encode");
        assert_eq!(
            sxproc::queue::spool::decode_env(&again).map(|e| e.id),
            Ok(env.id)
        );
    }
});
