//! The accounts file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(accounts) = sxproc::accounts::parse(std::path::Path::new("accounts"), &text) {
        for a in accounts {
            // What was accepted is a normalized address.
            assert_eq!(
                sxproc::accounts::normalize_address(&a.address).as_deref(),
                Some(a.address.as_str())
            );
        }
    }
});
