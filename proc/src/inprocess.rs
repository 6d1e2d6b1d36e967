//! Sessions driven in-process: the real SMTP and IMAP session code over an
//! in-memory byte stream, with its peers on real IPC edges (socketpairs) in
//! the same process: keyholder's own request loop, and for smtp a queue end
//! that spools into a temporary directory and records each committed
//! envelope. Session tests run in milliseconds this way, and the fuzz targets
//! (fuzz/fuzz_targets/smtp_session.rs, imap_command.rs) drive the same code a
//! client reaches over TCP.
//!
//! May touch: a directory of its own under /dev/shm (or the temp directory).

use crate::directory::Dir;
use crate::net::{Conn, TlsState};
use ipc::messages::{ChildSettings, Directory, Envelope, QueueToSmtp, Service, SmtpToQueue};
use ipc::{Channel, PeerRpc};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The accounts every harness knows (address, password).
pub const ACCOUNTS: [(&str, &str); 2] = [("bob@a.test", "pw-bob"), ("carol@a.test", "pw-carol")];

fn settings() -> ChildSettings {
    ChildSettings {
        hostname: "mail.a.test".into(),
        domains: vec!["a.test".into(), "b.test".into()],
        tls: None,
        max_message_size: 1 << 20,
        max_recipients: 1000,
        max_connections: 100,
        max_connections_per_ip: 50,
        imap_max_user_connections: 50,
        imap_max_folders: 50,
        auth_max_failures: 10,
        auth_max_account_failures: 30,
        max_errors: 10,
        shutdown_timeout: 10,
        max_idle_commands: 100,
        timeout: 10,
        routes: Vec::new(),
        relay_host: None,
        relay_auth: None,
        outbound_tls_required: false,
        domain_concurrency: 10,
        quota: 0,
        dns_servers: Vec::new(),
        queue_retry: vec![60],
        queue_lifetime: 3600,
        queue_warn: 0,
        auth_cache_ttl: 0,
        checks: ipc::messages::InboundChecks {
            enabled: false,
            authserv_id: "mail.a.test".into(),
            on_reject: ipc::messages::DmarcAction::Reject,
            on_quarantine: ipc::messages::DmarcAction::Quarantine,
        },
        abuse: ipc::messages::AbuseSettings {
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
            rate_client: (0, 0),
            rate_sender: (0, 0),
            greylist: None,
            milters: Vec::new(),
        },
    }
}

fn directory() -> Directory {
    Directory {
        accounts: ACCOUNTS.iter().map(|(a, _)| a.to_string()).collect(),
        aliases: vec![
            (
                "all@a.test".into(),
                vec!["bob@a.test".into(), "carol@a.test".into()],
            ),
            ("fwd@a.test".into(), vec!["x@remote.test".into()]),
            ("@b.test".into(), vec!["bob@a.test".into()]),
        ],
    }
}

/// A directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> std::io::Result<Scratch> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // tmpfs where there is one: the sessions fsync what they write, and
        // the fuzz targets write a fresh account for every input.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!("sx-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// keyholder's loop on one end of a fresh edge; the other end, for a session.
fn keyholder(
    imap: bool,
) -> std::io::Result<PeerRpc<ipc::messages::KeyRequest, ipc::messages::KeyReply>> {
    let (mine, theirs) = ipc::seqpacket_pair()?;
    let hashes = ACCOUNTS
        .iter()
        .map(|(a, p)| {
            crate::accounts::hash_password(p)
                .map(|h| (a.to_string(), h))
                .map_err(std::io::Error::other)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    crate::keyholder::serve_in_process(theirs, imap, hashes)?;
    Ok(PeerRpc::new(
        Channel::new(mine)?,
        "in-process keyholder",
        ipc::rpc::DEFAULT_TIMEOUT,
    ))
}

/// A TLS state with no certificate: STARTTLS is not offered.
fn no_tls() -> std::io::Result<Arc<TlsState>> {
    let (signer, _unused) = ipc::seqpacket_pair()?;
    TlsState::new(signer, None)
}

/// The queue's side of the smtp edge: spool files in `dir`, envelopes kept.
async fn queue_end(
    chan: Channel<QueueToSmtp, SmtpToQueue>,
    dir: PathBuf,
    log: Arc<Mutex<Vec<Envelope>>>,
) {
    let mut n = 0u64;
    // queue's own greylist, its file in this spool directory.
    let mut grey = crate::queue::greylist::Greylist::load(
        &dir.join(crate::queue::greylist::FILE),
        crate::queue::epoch_now(),
    );
    while let Some(r) = chan.recv_logged("in-process queue").await {
        let reply = match r.msg {
            SmtpToQueue::Create => {
                n += 1;
                let id = format!("{n:020}");
                // Read and write, as queue's spool.rs opens it (smtp reads
                // a message back for its checks).
                match std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(dir.join(&id))
                {
                    Ok(f) => {
                        let _ = chan
                            .send(r.id, &QueueToSmtp::Created { id }, &[f.as_fd()])
                            .await;
                        continue;
                    }
                    Err(e) => QueueToSmtp::Error(e.to_string()),
                }
            }
            SmtpToQueue::Commit { envelope } => {
                let id = envelope.id.clone();
                if let Ok(mut l) = log.lock() {
                    l.push(envelope);
                }
                QueueToSmtp::Committed { id }
            }
            SmtpToQueue::Abort { id } => {
                let _ = std::fs::remove_file(dir.join(id));
                continue;
            }
            SmtpToQueue::Greylist {
                net,
                triplet,
                delay,
                expire,
            } => QueueToSmtp::Greylisted {
                wait: grey.check(&net, &triplet, delay, expire, crate::queue::epoch_now()),
            },
        };
        let _ = chan.send(r.id, &reply, &[]).await;
    }
}

/// smtp's shared state with in-process peers.
pub struct Smtp {
    sh: Arc<crate::smtp::Shared>,
    /// Envelopes the queue end committed, in order.
    pub committed: Arc<Mutex<Vec<Envelope>>>,
    spool: Scratch,
}

impl Smtp {
    /// Must be called inside a tokio runtime (it starts the peers' loops).
    pub fn new() -> std::io::Result<Smtp> {
        Smtp::with_settings(|_| {})
    }

    /// As [`Smtp::new`], with `edit` applied to the settings first (its DNS
    /// servers get a resolver, as smtp would build).
    pub fn with_settings(edit: impl FnOnce(&mut ChildSettings)) -> std::io::Result<Smtp> {
        let spool = Scratch::new("smtp")?;
        let (mine, theirs) = ipc::seqpacket_pair()?;
        let committed = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(queue_end(
            Channel::new(theirs)?,
            spool.0.clone(),
            committed.clone(),
        ));
        let mut st = settings();
        edit(&mut st);
        let resolver = crate::smtp::resolver_for(&st.dns_servers).map(Arc::new);
        let limits = crate::smtp::Limits::new(&st.abuse);
        let sh = Arc::new(crate::smtp::Shared {
            dir: RwLock::new(Arc::new(Dir::new(directory(), &st.domains))),
            settings: RwLock::new(st),
            tls: no_tls()?,
            keyholder: keyholder(false)?,
            queue: PeerRpc::new(
                Channel::new(mine)?,
                "smtp->in-process queue",
                Duration::from_secs(10),
            ),
            // No imap here: BURL's fetches fail (554 5.6.6).
            imap: PeerRpc::new(
                Channel::new(ipc::seqpacket_pair()?.0)?,
                "smtp->no imap",
                Duration::from_secs(1),
            ),
            resolver: RwLock::new(resolver),
            domain_slots: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
            limits: RwLock::new(Arc::new(limits)),
            broker: None,
        });
        Ok(Smtp {
            sh,
            committed,
            spool,
        })
    }

    /// The bytes a spooled message holds (Received: header and body).
    pub fn spooled(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.spool.0.join(id)).ok()
    }

    /// One session on `service` fed `input`, then end of input; what the
    /// server wrote back.
    pub async fn session(&self, service: Service, input: &[u8]) -> Vec<u8> {
        let sh = self.sh.clone();
        drive(input, move |conn, peer| async move {
            crate::smtp::serve_conn(sh, service, conn, peer).await
        })
        .await
    }
}

/// Run `serve` over an in-memory pipe: write `input`, close, collect output.
async fn drive<F, Fut>(input: &[u8], serve: F) -> Vec<u8>
where
    F: FnOnce(Conn, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = ([192, 0, 2, 1], 40000).into();
    let task = tokio::spawn(serve(Conn::Other(Box::new(server)), peer));
    let (mut rd, mut wr) = tokio::io::split(client);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        // Bounded: a session that keeps writing is cut off here.
        let _ = (&mut rd).take(16 << 20).read_to_end(&mut out).await;
        out
    });
    let _ = wr.write_all(input).await;
    let _ = wr.shutdown().await;
    drop(wr);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    reader.await.unwrap_or_default()
}

/// imap's shared state with keyholder in-process, and a Maildir of its own.
pub struct Imap {
    sh: Arc<crate::imap::Shared>,
    maildir: Scratch,
}

/// Messages every fresh account holds (a plain one and a MIME one).
const MESSAGES: [&[u8]; 2] = [
    b"From: a@b.test\r\nTo: bob@a.test\r\nSubject: first\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@b.test>\r\n\r\nhello\r\n",
    b"From: c@d.test\r\nTo: bob@a.test\r\nSubject: second\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\npart one\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--x--\r\n",
];

impl Imap {
    /// Must be called inside a tokio runtime.
    pub fn new() -> std::io::Result<Imap> {
        let maildir = Scratch::new("imap")?;
        let st = settings();
        let (changes, _) = tokio::sync::broadcast::channel(64);
        let sh = Arc::new(crate::imap::Shared {
            hostname: st.hostname.clone(),
            tls: no_tls()?,
            keyholder: keyholder(true)?,
            changes,
            per_user: Arc::default(),
            max_literal: st.max_message_size,
            max_per_user: st.imap_max_user_connections,
            max_folders: st.imap_max_folders as usize,
            quota: st.quota,
        });
        Ok(Imap { sh, maildir })
    }

    /// bob's account as new: INBOX with MESSAGES, the special folders.
    pub fn reset(&self) -> std::io::Result<PathBuf> {
        let account = self.maildir.0.join("a.test").join("bob");
        crate::imap::forget_folders(&account);
        let _ = std::fs::remove_dir_all(&account);
        let dir = crate::maildir::create_account(&self.maildir.0, "bob@a.test", None)?;
        for (i, m) in MESSAGES.iter().enumerate() {
            std::fs::write(dir.join("new").join(format!("100{i}.M{i}.test")), m)?;
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.maildir.0
    }

    /// One session logged in as bob (PREAUTH) when `logged_in`, else at the
    /// greeting; fed `input`, then end of input.
    pub async fn session(&self, logged_in: bool, input: &[u8]) -> Vec<u8> {
        let sh = self.sh.clone();
        let account = self.maildir.0.join("a.test").join("bob");
        let preauth = logged_in.then(|| ("bob@a.test".to_string(), account));
        drive(input, move |conn, peer| async move {
            crate::imap::serve_conn(sh, Service::Imap, conn, peer, preauth).await
        })
        .await
    }
}

/// A session driven a line at a time (for what happens between commands:
/// NOTIFY, IDLE): bob logged in, as `Imap::session`.
pub struct Client {
    wr: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    rd: tokio::io::BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
}

impl Imap {
    pub fn client(&self) -> Client {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = ([192, 0, 2, 1], 40000).into();
        let sh = self.sh.clone();
        let account = self.maildir.0.join("a.test").join("bob");
        let preauth = Some(("bob@a.test".to_string(), account));
        tokio::spawn(crate::imap::serve_conn(
            sh,
            Service::Imap,
            Conn::Other(Box::new(server)),
            peer,
            preauth,
        ));
        let (rd, wr) = tokio::io::split(client);
        Client {
            wr,
            rd: tokio::io::BufReader::new(rd),
        }
    }
}

impl Client {
    pub async fn send(&mut self, s: &str) {
        let _ = self.wr.write_all(s.as_bytes()).await;
    }

    /// What the server says up to and including the first line starting
    /// with `prefix`; what came before it if that takes over 10 s.
    pub async fn until(&mut self, prefix: &str) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut out = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut line = String::new();
            match tokio::time::timeout_at(deadline, self.rd.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 => {
                    out.push_str(&line);
                    if line.starts_with(prefix) {
                        return out;
                    }
                }
                _ => return out,
            }
        }
    }

    /// What the server says within `d` (nothing expected).
    pub async fn quiet_for(&mut self, d: Duration) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut out = String::new();
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let mut line = String::new();
            match tokio::time::timeout_at(deadline, self.rd.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 => out.push_str(&line),
                _ => return out,
            }
        }
    }
}

/// The fuzz targets' entry points: one runtime and one harness per process,
/// reused for every input.
pub mod fuzz {
    use super::*;
    use std::sync::OnceLock;

    fn runtime() -> Option<&'static tokio::runtime::Runtime> {
        static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
    }

    /// A client's bytes to the real SMTP session on port 25 and on
    /// submission (no TLS in memory, so AUTH is refused there as on the wire).
    pub fn smtp_session(data: &[u8]) {
        static H: OnceLock<Option<Smtp>> = OnceLock::new();
        let Some(rt) = runtime() else { return };
        let Some(h) = H
            .get_or_init(|| rt.block_on(async { Smtp::new().ok() }))
            .as_ref()
        else {
            return;
        };
        rt.block_on(async {
            let out = h.session(Service::Smtp, data).await;
            assert!(out.starts_with(b"220 "), "no greeting");
            // Every reply line is a reply: three digits, then space or dash.
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                assert!(
                    line.len() >= 4
                        && line[..3].iter().all(u8::is_ascii_digit)
                        && matches!(line[3], b' ' | b'-'),
                    "not a reply line: {:?}",
                    String::from_utf8_lossy(line)
                );
            }
            if let Ok(mut c) = h.committed.lock() {
                for env in c.drain(..) {
                    // Port 25 never takes a remote recipient: no open relay.
                    assert!(
                        env.recipients.iter().all(|r| match &r.dest {
                            ipc::messages::Dest::Local { .. } => true,
                            ipc::messages::Dest::Remote { address } => address == "x@remote.test",
                        }),
                        "relayed: {env:?}"
                    );
                    let _ = std::fs::remove_file(h.spool.0.join(&env.id));
                }
            }
        });
    }

    /// A client's bytes to the real IMAP session, logged in as bob over a
    /// fresh account, and (the first line's fate) at the greeting.
    pub fn imap_session(data: &[u8]) {
        static H: OnceLock<Option<Imap>> = OnceLock::new();
        let Some(rt) = runtime() else { return };
        let Some(h) = H
            .get_or_init(|| rt.block_on(async { Imap::new().ok() }))
            .as_ref()
        else {
            return;
        };
        if h.reset().is_err() {
            return;
        }
        rt.block_on(async {
            let out = h.session(true, data).await;
            assert!(out.starts_with(b"* PREAUTH "), "no greeting");
            let out = h.session(false, data).await;
            assert!(out.starts_with(b"* OK "), "no greeting");
        });
        // Nothing the client did may reach outside the account.
        let outside: Vec<_> = std::fs::read_dir(h.root().join("a.test"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(outside.iter().all(|n| n == "bob"), "{outside:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[tokio::test]
    async fn smtp_transaction_in_process() {
        let h = Smtp::new().unwrap();
        let t = std::time::Instant::now();
        let out = text(
            &h.session(
                Service::Smtp,
                b"EHLO c.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<all@a.test>\r\nRCPT TO:<y@remote.test>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
            )
            .await,
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            out.contains("554 5.7.1 <y@remote.test>: Relay access denied"),
            "{out}"
        );
        assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
        assert!(
            out.ends_with("221 2.0.0 mail.a.test closing connection\r\n"),
            "{out}"
        );
        let env = h.committed.lock().unwrap().pop().unwrap();
        assert_eq!(env.recipients.len(), 2);
        let spooled = text(&h.spooled(&env.id).unwrap());
        assert!(spooled.starts_with("Received: from c.test"), "{spooled}");
        assert!(
            spooled.ends_with("Subject: hi\r\n\r\n.dot\r\n"),
            "{spooled}"
        );
    }

    #[tokio::test]
    async fn smtp_auth_needs_tls_in_process() {
        let h = Smtp::new().unwrap();
        let out = text(
            &h.session(
                Service::Submission,
                b"EHLO c.test\r\nAUTH PLAIN AGJvYkBhLnRlc3QAcHctYm9i\r\nMAIL FROM:<bob@a.test>\r\n",
            )
            .await,
        );
        assert!(out.contains("538 5.7.11"), "{out}");
        assert!(out.contains("530 5.7.0 Authentication required"), "{out}");
    }

    // FETCH reads files with block_in_place, as in the imap process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn imap_session_in_process() {
        let h = Imap::new().unwrap();
        h.reset().unwrap();
        let out = text(
            &h.session(
                true,
                b"a SELECT INBOX\r\nb FETCH 2 (BODY[1] BODY[HEADER.FIELDS (SUBJECT)])\r\nc LIST \"\" \"*******************x\"\r\nd LOGOUT\r\n",
            )
            .await,
        );
        assert!(out.starts_with("* PREAUTH"), "{out}");
        assert!(out.contains("* 2 EXISTS"), "{out}");
        assert!(out.contains("part one"), "{out}");
        assert!(out.contains("Subject: second"), "{out}");
        assert!(out.contains("c OK LIST completed"), "{out}");
        assert!(out.contains("d OK LOGOUT completed"), "{out}");
        // Before login: a literal larger than the pre-login budget is refused.
        let out = text(&h.session(false, b"a LOGIN {9000}\r\n").await);
        assert!(out.contains("a NO [LIMIT] Command too large"), "{out}");
    }

    #[test]
    fn fuzz_entry_points_take_arbitrary_input() {
        for input in [
            &b""[..],
            b"EHLO x\r\nBDAT 5 LAST\r\nab",
            b"\xff\xfe\r\n.\r\n",
            b"a CREATE x\r\nb APPEND x {3+}\r\nabc\r\nc RENAME x y\r\n",
        ] {
            fuzz::smtp_session(input);
            fuzz::imap_session(input);
        }
    }

    /// Deeply nested SEARCH keys are refused by the decoder's depth limit,
    /// not followed down the stack.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deeply_nested_search_is_refused() {
        let h = Imap::new().unwrap();
        h.reset().unwrap();
        for cmd in [
            format!("a SEARCH {}ALL\r\n", "NOT ".repeat(15000)),
            format!("a SEARCH {}ALL{}\r\n", "(".repeat(30000), ")".repeat(30000)),
            format!("a SEARCH {}ALL\r\n", "OR ALL ".repeat(9000)),
        ] {
            let out = text(&h.session(true, cmd.as_bytes()).await);
            assert!(out.contains("a BAD"), "{out}");
        }
    }

    /// Subscriptions, which need not name existing folders, are bounded like
    /// folders (EMAIL_IMAP_MAX_FOLDERS, 50 here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscriptions_are_bounded() {
        let h = Imap::new().unwrap();
        h.reset().unwrap();
        let mut cmds = String::new();
        for i in 0..60 {
            cmds.push_str(&format!("s{i} SUBSCRIBE n{i}\r\n"));
        }
        cmds.push_str("u UNSUBSCRIBE n0\r\nv SUBSCRIBE again\r\nw SUBSCRIBE n59\r\n");
        let out = text(&h.session(true, cmds.as_bytes()).await);
        assert!(out.contains("s50 OK"), "{out}");
        assert!(
            out.contains("s51 NO [LIMIT] Too many subscriptions"),
            "{out}"
        );
        assert!(out.contains("u OK") && out.contains("v OK"), "{out}");
        assert!(out.contains("w NO [LIMIT]"), "{out}");
    }
}
