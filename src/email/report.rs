//! One log line per send, queueing or failure, so cron jobs leave a trail: syslog
//! (facility mail, ident `sx-email`) by default, stderr or nowhere per SMTP_LOG.
//! Lines carry addresses, sizes and the server's reply; never a password or body.

use super::settings::LogTo;

pub fn log(to: LogTo, line: &str) {
    let line = line.replace(['\r', '\n'], " ");
    match to {
        LogTo::Nowhere => {}
        LogTo::Stderr => eprintln!("sx-email[{}]: {line}", std::process::id()),
        LogTo::Syslog => {
            let f = syslog::Formatter3164 {
                facility: syslog::Facility::LOG_MAIL,
                hostname: None,
                process: "sx-email".into(),
                pid: std::process::id(),
            };
            // No syslog socket (containers): the exit code and stderr still tell.
            if let Ok(mut l) = syslog::unix(f) {
                let _ = l.info(&line);
            }
        }
    }
}
