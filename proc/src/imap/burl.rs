//! The imap side of BURL (RFC 4468): smtp asks, on its edge, for what a
//! URLAUTH URL names for a message its authenticated user is submitting;
//! imap, which alone reads the Maildir, checks the URL as for URLFETCH with
//! the submission server's rights (`submit+<user>`, anonymous, authuser;
//! only the user's own mailboxes) and hands back the bytes as an unnamed
//! file (an fd), so a message-sized answer never goes through a frame.

use super::urlauth;
use ipc::messages::{ImapToSmtp, SmtpToImap};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

/// Answer smtp's requests on this edge until it closes.
pub async fn serve(ch: ipc::Channel<ImapToSmtp, SmtpToImap>) {
    let ch = Arc::new(ch);
    while let Some(r) = ch.recv_logged("smtp").await {
        let ch = ch.clone();
        tokio::spawn(async move {
            let SmtpToImap::UrlFetch { user, url } = r.msg;
            let got = tokio::task::spawn_blocking(move || fetch(&user, &url))
                .await
                .ok()
                .flatten();
            let _ = match got {
                Some((file, len)) => {
                    let reply = ImapToSmtp::Fetched { start: 0, len };
                    ch.send(r.id, &reply, &[file.as_fd()]).await
                }
                None => ch.send(r.id, &ImapToSmtp::Refused, &[]).await,
            };
        });
    }
}

fn fetch(user: &str, url: &str) -> Option<(std::fs::File, u64)> {
    let u = urlauth::parse(url)?;
    let account = crate::maildir::account_dir(Path::new(""), user)?;
    let now = chrono::Utc::now().timestamp();
    let data = urlauth::fetch_as(&account, user, &u, now, true);
    log::info!(
        "imap: BURL user={user} url={} {}",
        crate::log::cut(urlauth::path_of(&u), 200),
        if data.is_some() { "served" } else { "refused" }
    );
    let data = data?;
    let mut f = unnamed_file().ok()?;
    f.write_all(&data).ok()?;
    Some((f, data.len() as u64))
}

/// A file with no name in the Maildir root (the working directory), gone
/// when the last fd to it closes: O_TMPFILE, or made and unlinked at once
/// where the filesystem lacks it.
fn unnamed_file() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).mode(0o600);
    match o.clone().custom_flags(libc::O_TMPFILE).open(".") {
        Ok(f) => Ok(f),
        Err(_) => {
            let name = format!(".sx-burl.{}.{}", std::process::id(), rand::random::<u64>());
            let f = o.create_new(true).open(&name)?;
            std::fs::remove_file(&name)?;
            Ok(f)
        }
    }
}
