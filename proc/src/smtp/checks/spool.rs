//! The checks on a message in its spool file: read back (within a budget
//! shared by all sessions), assessed, and its top rewritten.

use crate::directory::Dir;
use ipc::messages::InboundChecks;
use std::net::IpAddr;
use std::sync::Arc;

/// A message this small was just written and is in the page cache: reading
/// it back and rewriting its top take microseconds, less than handing them
/// to a blocking thread and back (which cost a fifth of the checked rate).
const INLINE: u64 = 256 * 1024;

pub const READ_FAILED: &str = "451 4.3.0 Error reading message back, try again later\r\n";

/// What one check needs, owned.
pub struct Job {
    pub file: std::fs::File,
    /// Bytes of our Received field at the top of the file.
    pub trace_len: u64,
    pub dir: Arc<Dir>,
    pub resolver: Option<Arc<hickory_resolver::TokioResolver>>,
    pub cfg: InboundChecks,
    pub hostname: String,
    pub ip: IpAddr,
    pub helo: String,
    /// The reverse path, empty for `<>`.
    pub from: String,
}

/// What passing the checks changed.
pub struct Checked {
    /// Bytes the spool file grew by (our field, less any removed).
    pub grew: i64,
    /// DMARC said quarantine.
    pub junk: bool,
    /// For the log line.
    pub summary: String,
}

/// Check the spooled message; on the way through, make the spool's top our
/// Authentication-Results, our Received, then the message's own header
/// without Authentication-Results fields in our name. The refusal or
/// deferral line otherwise.
pub async fn run(job: Job) -> Result<Checked, String> {
    let Job {
        file,
        trace_len,
        dir,
        resolver,
        cfg,
        hostname,
        ip,
        helo,
        from,
    } = job;
    let file = &file;
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let Some(_share) = super::reserve(len).await else {
        return Err("451 4.3.2 Too much mail being checked, try again later\r\n".into());
    };
    let f = file.try_clone().map_err(|_| String::from(READ_FAILED))?;
    let read = move || {
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, 0).map(|()| b)
    };
    let all = if len <= INLINE {
        read().ok()
    } else {
        tokio::task::spawn_blocking(read)
            .await
            .ok()
            .and_then(|r| r.ok())
    }
    .ok_or_else(|| String::from(READ_FAILED))?;
    let trace_len = (trace_len as usize).min(all.len());
    let (trace, message) = all.split_at(trace_len);
    let a = super::assess(
        resolver.as_deref(),
        &cfg,
        &dir,
        super::Input {
            ip,
            helo: &helo,
            mail_from: &from,
            message,
            hostname: &hostname,
        },
    )
    .await;
    let junk = match a.verdict {
        super::Verdict::Deliver => false,
        super::Verdict::Junk => true,
        super::Verdict::Refuse(r) | super::Verdict::Defer(r) => {
            log::info!("checks: [{ip}] {}", a.summary);
            return Err(r);
        }
    };
    let head = crate::imap::mime::header_block(message);
    let kept = super::strip_ours(head, &cfg.authserv_id);
    let mut top = a.field.into_bytes();
    top.extend_from_slice(trace);
    top.extend_from_slice(kept.as_deref().unwrap_or(head));
    let old = (trace.len() + head.len()) as u64;
    let grew = top.len() as i64 - old as i64;
    let f = file.try_clone().map_err(|_| String::from(READ_FAILED))?;
    let edit = move || crate::smtp::spool_edit::splice(&f, 0, old, &top);
    let edited = if len <= INLINE {
        edit().ok()
    } else {
        tokio::task::spawn_blocking(edit)
            .await
            .ok()
            .and_then(|r| r.ok())
    };
    edited.ok_or_else(|| String::from("451 4.3.0 Error writing message, try again later\r\n"))?;
    Ok(Checked {
        grew,
        junk,
        summary: a.summary,
    })
}
