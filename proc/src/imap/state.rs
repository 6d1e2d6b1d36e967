//! The state of one IMAP session, and how its replies are written: every
//! handler (session.rs, mailboxes.rs, selected.rs) adds to `out`, and `flush`
//! is the one place that writes to the client.

use super::view::Selected;
use super::Shared;
use crate::net::Reader;
use ipc::messages::Service;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Output is written out whenever this much is pending.
const OUT_CHUNK: usize = 128 * 1024;

pub struct Session {
    pub sh: Arc<Shared>,
    pub service: Service,
    pub peer: SocketAddr,
    pub r: Reader,
    pub out: Vec<u8>,
    pub user: Option<String>,
    /// The account's Maildir, relative to the Maildir root.
    pub account: PathBuf,
    pub sel: Option<Selected>,
    pub id: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub(super) user_slot: Option<crate::counter::Slot<String>>,
    /// RFC 4731: the RETURN options of the SEARCH being run (ESEARCH reply).
    pub(super) search_return: Option<Vec<String>>,
}

impl Session {
    pub fn tls(&self) -> bool {
        self.r.get_ref().is_tls()
    }

    pub fn capability(&self) -> String {
        let mut c = String::from("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS QUOTA QUOTA=RES-STORAGE STATUS=SIZE ESEARCH");
        c.push_str(&format!(" APPENDLIMIT={}", self.sh.max_literal));
        if self.user.is_none() {
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

    pub fn push(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    pub fn push_bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
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

    pub fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.push(&format!("{tag} {status} {text}\r\n"));
    }

    /// Tell other sessions (IDLE) that `folder` changed.
    pub fn changed(&self, folder: &std::path::Path) {
        let _ = self.sh.changes.send(Arc::new(folder.to_path_buf()));
    }
}
