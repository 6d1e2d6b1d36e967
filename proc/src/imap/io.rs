//! The connection side of one IMAP session: the reader, the pending output
//! and how it is written. Every handler (cmd/) adds its replies to `out`;
//! `flush` (and `stream`, for message bodies written straight from the file)
//! are the one place that writes to the client.

use super::Shared;
use crate::net::Reader;
use ipc::messages::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Output is written out whenever this much is pending.
const OUT_CHUNK: usize = 128 * 1024;
/// RFC 3501 §5.4: the autologout timer is at least 30 minutes.
pub const AUTOLOGOUT: Duration = Duration::from_secs(30 * 60);
/// Before login the client gets less time.
pub const PREAUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Extensions the client turned on (RFC 5161 ENABLE, or RFC 7162's
/// CONDSTORE-enabling commands); they change what responses carry.
#[derive(Clone, Copy, Default, Debug)]
pub struct Enabled {
    /// FETCH responses carry MODSEQ; SELECT says HIGHESTMODSEQ.
    pub condstore: bool,
    /// Expunges are told as VANISHED; SELECT takes QRESYNC.
    pub qresync: bool,
    /// Mailbox names and quoted strings are UTF-8 (RFC 9755; utf8.rs).
    pub utf8: bool,
    /// IMAP4rev2 (RFC 9051): UTF-8 as above, SEARCH answered by ESEARCH, no
    /// RECENT response, no UNSEEN code and a LIST response at SELECT.
    pub rev2: bool,
}

pub struct Io {
    pub sh: Arc<Shared>,
    pub service: Service,
    pub peer: SocketAddr,
    pub r: Reader,
    pub out: Vec<u8>,
    /// This session's number (\Recent goes to one session).
    pub id: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub enabled: Enabled,
    /// RFC 5465 NOTIFY in force (cmd/notify.rs).
    pub notify: Option<Box<super::notify::Watch>>,
}

impl Io {
    pub fn tls(&self) -> bool {
        self.r.get_ref().is_tls()
    }

    pub fn capability(&self, logged_in: bool) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS QUOTA QUOTA=RES-STORAGE STATUS=SIZE ESEARCH CONDSTORE QRESYNC SEARCHRES WITHIN SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND BINARY OBJECTID CREATE-SPECIAL-USE METADATA NOTIFY SAVEDATE CATENATE URLAUTH UTF8=ACCEPT COMPRESS=DEFLATE");
        c.push_str(&format!(" APPENDLIMIT={}", self.sh.max_literal));
        if !logged_in {
            if self.tls() {
                c.push_str(" AUTH=PLAIN AUTH=LOGIN");
            } else {
                if self.sh.tls.acceptor().is_some() {
                    c.push_str(" STARTTLS");
                }
                c.push_str(" LOGINDISABLED");
            }
        }
        c
    }

    /// A stored mailbox name as this client is told it (utf8.rs).
    pub fn name_out<'a>(&self, stored: &'a str) -> std::borrow::Cow<'a, str> {
        super::utf8::name_out(stored, self.enabled.utf8)
    }

    /// A mailbox name in the client's form, written for a response.
    pub fn quote_name(&self, shown: &str) -> String {
        super::respond::quote_name(shown, self.enabled.utf8)
    }

    pub fn push(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    pub fn push_bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    pub fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.push(&format!("{tag} {status} {text}\r\n"));
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let w = self.r.get_mut();
        w.write_all(&self.out).await?;
        w.flush().await?;
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        if self.out.capacity() > OUT_CHUNK * 2 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Write out when a lot is pending (long FETCH responses).
    pub async fn flush_if_big(&mut self) -> std::io::Result<()> {
        if self.out.len() >= OUT_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Write `len` bytes of `f` from `start` to the client (after what is
    /// pending), a chunk at a time. A file cut short meanwhile is padded with
    /// spaces: the literal's announced length must hold.
    pub async fn stream(&mut self, f: &std::fs::File, start: u64, len: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.flush().await?;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(chunk.len() as u64) as usize;
            let n = tokio::task::block_in_place(|| f.read_at(&mut chunk[..want], start + done))?;
            if n == 0 {
                log::warn!(
                    "{}: a message file shrank while being sent",
                    self.service.name()
                );
                chunk[..want].fill(b' ');
                self.push_bytes(&chunk[..want]);
                done += want as u64;
            } else {
                self.push_bytes(&chunk[..n]);
                done += n as u64;
            }
            self.flush().await?;
        }
        Ok(())
    }

    /// Tell other sessions (IDLE) that `folder` changed.
    pub fn changed(&self, folder: &std::path::Path) {
        let _ = self.sh.changes.send(Arc::new(folder.to_path_buf()));
    }

    /// One line of at most `max` bytes (see `read_line_into`), within `timeout`.
    pub async fn line(&mut self, max: usize, timeout: Duration) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(timeout, read_line_into(&mut self.r, &mut line, max))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        self.bytes_in += n as u64;
        Ok(line)
    }
}

/// Append one line (with its LF) of at most `max` bytes to `buf`; returns the
/// bytes read, 0 at end of input. A longer line stops at `max` without its LF.
pub async fn read_line_into(
    r: &mut Reader,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(total);
        }
        let room = max.saturating_sub(total);
        let (n, done) = match avail.iter().take(room).position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len().min(room), room <= avail.len()),
        };
        buf.extend_from_slice(&avail[..n]);
        r.consume(n);
        total += n;
        if done {
            return Ok(total);
        }
    }
}
