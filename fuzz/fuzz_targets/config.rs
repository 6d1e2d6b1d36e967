//! scorpiox-env.txt: parsed, then validated into a server configuration.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = std::path::Path::new("fuzz.txt");
    if let Ok(raw) = sxproc::config::RawConfig::parse(path, &text) {
        if let Err(e) = sxproc::config::ServerConfig::from_raw(raw) {
            // Every error names where it came from.
            let _ = e.to_string();
        }
    }
});
