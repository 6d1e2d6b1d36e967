//! The aliases file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sxproc::aliases::parse(std::path::Path::new("aliases"), &text);
});
