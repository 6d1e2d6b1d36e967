//! One IMAP session: reading commands (imap-codec, literals with `+` or
//! LITERAL+), the not-authenticated state (CAPABILITY, STARTTLS, LOGIN,
//! AUTHENTICATE PLAIN, ID), and the dispatch of everything else to
//! mailboxes.rs (authenticated state) and selected.rs (selected state). The
//! session's state and its one writer are in state.rs.

use super::state::Session;
use super::{ext, wire, Shared};
use crate::net::{Conn, Reader};
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::CommandCodec;
use ipc::messages::{KeyReply, KeyRequest, Service};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// One command line (literals excluded); RFC 7162 asks for at least 8192.
const MAX_LINE: usize = 64 * 1024;
/// RFC 3501 §5.4: the autologout timer is at least 30 minutes.
pub const AUTOLOGOUT: Duration = Duration::from_secs(30 * 60);
/// Before login the client gets less time.
const PREAUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Bad commands in a row before the session is closed.
const MAX_BAD: u32 = 20;
/// Before login a whole command (lines and literals) is at most this big:
/// LOGIN, AUTHENTICATE and ID need little, and nobody is accountable yet.
const PREAUTH_MAX: usize = 8 * 1024;
/// Literals in one command.
const MAX_LITERALS: usize = 1000;

pub async fn run(sh: Arc<Shared>, service: Service, tcp: TcpStream, peer: SocketAddr) {
    let conn = if service.implicit_tls() {
        match sh.tls.accept(tcp, PREAUTH_TIMEOUT).await {
            Ok(c) => c,
            Err(e) => {
                log::info!("{}: TLS handshake with {peer} failed: {e}", service.name());
                return;
            }
        }
    } else {
        Conn::Plain(tcp)
    };
    serve_conn(sh, service, conn, peer, None).await;
}

/// One session over an established connection (TCP, TLS, or any byte stream).
/// `preauth` (user, account directory) starts it logged in, with a PREAUTH
/// greeting (RFC 3501 7.1.4): only in-process tests and the fuzz target do.
pub async fn serve_conn(
    sh: Arc<Shared>,
    service: Service,
    conn: Conn,
    peer: SocketAddr,
    preauth: Option<(String, PathBuf)>,
) {
    static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let (user, account) = match preauth {
        Some((u, a)) => (Some(u), a),
        None => (None, PathBuf::new()),
    };
    let mut s = Session {
        sh,
        service,
        peer,
        // Small buffer: idle sessions are many, commands are short.
        r: BufReader::with_capacity(2048, conn),
        out: Vec::new(),
        user,
        account,
        sel: None,
        id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        bytes_in: 0,
        bytes_out: 0,
        user_slot: None,
        search_return: None,
    };
    let _counted = crate::drain::global().session();
    match crate::drain::contained(s.serve()).await {
        Some(Ok(Err(e))) if !crate::net::is_disconnect(&e) => {
            log::info!("{}: session with {peer} ended: {e}", service.name());
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            // Logged with its location by the hook; only this session ends.
            s.out.clear();
            s.push("* BYE Internal error, closing connection\r\n");
            let _ = s.flush().await;
        }
        None => {
            // Busy past the stop's deadline (a command that had started, an
            // APPEND still uploading): its unfinished reply is dropped.
            s.out.clear();
            s.push("* BYE Server shutting down\r\n");
            let _ = tokio::time::timeout(Duration::from_secs(1), s.flush()).await;
        }
    }
    crate::net::close(s.r.get_mut()).await;
    if let Some(u) = &s.user {
        log::info!(
            "{}: logout user={u} rip={} in={} out={}",
            service.name(),
            peer.ip(),
            s.bytes_in,
            s.bytes_out
        );
    }
}

/// What reading a command gave.
enum Input {
    Command(Vec<u8>),
    /// A command was refused while reading (too long, literal too big); go on.
    Refused,
    Eof,
}

impl Session {
    async fn serve(&mut self) -> std::io::Result<()> {
        let greeting = format!(
            "* {} [CAPABILITY {}] {} IMAP4rev1 ready\r\n",
            if self.user.is_some() { "PREAUTH" } else { "OK" },
            self.capability(),
            self.sh.hostname
        );
        self.push(&greeting);
        self.flush().await?;
        let mut bad = 0u32;
        let drain = crate::drain::global();
        loop {
            let timeout = if self.user.is_some() {
                AUTOLOGOUT
            } else {
                PREAUTH_TIMEOUT
            };
            // Stopping: end between commands (RFC 3501 7.1.5 BYE).
            if drain.draining() {
                self.push("* BYE Server shutting down\r\n");
                let _ = self.flush().await;
                return Ok(());
            }
            let read = tokio::select! {
                r = self.read_command(timeout) => r,
                _ = drain.reached(crate::drain::Phase::Draining) => continue,
            };
            let input = match read {
                Ok(i) => i,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.push("* BYE Autologout; idle for too long\r\n");
                    let _ = self.flush().await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let buf = match input {
                Input::Command(b) => b,
                Input::Refused => {
                    self.flush().await?;
                    continue;
                }
                Input::Eof => return Ok(()),
            };
            // RFC 4731: `SEARCH RETURN (...)` is decoded as a plain SEARCH, its
            // options kept for the ESEARCH reply.
            let (buf, ret) = match ext::search_return(&buf) {
                Some((plain, opts)) => (plain, Some(opts)),
                None => (buf, None),
            };
            self.search_return = ret;
            let decoded = CommandCodec::default().decode(&buf);
            let go_on = match decoded {
                Ok((_, cmd)) => {
                    bad = 0;
                    self.command(cmd).await?
                }
                Err(_) => match ext::parse(&buf) {
                    Some(x) => {
                        bad = 0;
                        self.extension(x).await?;
                        true
                    }
                    None => {
                        bad += 1;
                        let tag = ext::tag_of(&buf);
                        self.tagged(&tag, "BAD", "Unknown command or bad arguments");
                        if bad >= MAX_BAD {
                            self.push("* BYE Too many bad commands\r\n");
                            false
                        } else {
                            true
                        }
                    }
                },
            };
            self.flush().await?;
            if !go_on {
                return Ok(());
            }
        }
    }

    /// Read one complete command: lines plus the literals they announce.
    ///
    /// A literal is announced only at the end of a line (`{N}` or `{N+}`
    /// before CRLF), so each line is looked at once when it arrives and the
    /// decoder runs once per command: linear in what the client sends. Before
    /// login the whole command is held to PREAUTH_MAX bytes; after it, to one
    /// APPENDLIMIT literal plus MAX_LINE. Literals are read as they arrive,
    /// never reserved at the size announced, and the whole command shares one
    /// deadline (stretched for big literals at 100 bytes/s, as SMTP's DATA).
    async fn read_command(&mut self, timeout: Duration) -> std::io::Result<Input> {
        let authed = self.user.is_some();
        // Before login everything is small; after it only APPEND may carry a
        // message-sized literal (as Dovecot's imap_max_line_length): a
        // mailbox name or a search string has no use for megabytes.
        let (max_line, mut max_total, mut max_literal) = if authed {
            (
                MAX_LINE,
                self.sh.max_literal.saturating_add(MAX_LINE as u64),
                self.sh.max_literal,
            )
        } else {
            (PREAUTH_MAX, PREAUTH_MAX as u64, PREAUTH_MAX as u64)
        };
        let mut append = false;
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "idle");
        let mut deadline = tokio::time::Instant::now() + timeout;
        let mut buf = Vec::new();
        let mut literals = 0usize;
        loop {
            let room = max_line.min((max_total as usize).saturating_sub(buf.len()));
            let n = tokio::time::timeout_at(deadline, read_line_into(&mut self.r, &mut buf, room))
                .await
                .map_err(|_| timed_out())??;
            self.bytes_in += n as u64;
            if n == 0 {
                return Ok(Input::Eof);
            }
            if !buf.ends_with(b"\n") {
                // Over the limit: drop the rest of the line (bounded by the
                // same deadline) and refuse the command.
                let tag = ext::tag_of(&buf);
                loop {
                    let mut rest = Vec::new();
                    let m = tokio::time::timeout_at(
                        deadline,
                        read_line_into(&mut self.r, &mut rest, MAX_LINE),
                    )
                    .await
                    .map_err(|_| timed_out())??;
                    if m == 0 || rest.ends_with(b"\n") {
                        break;
                    }
                }
                self.tagged(&tag, "BAD", "Command line too long");
                return Ok(Input::Refused);
            }
            let Some((length, sync)) = ext::literal_at_end(&buf) else {
                return Ok(Input::Command(buf));
            };
            if literals == 0 && authed {
                append = ext::is_append(&buf);
                if !append {
                    (max_total, max_literal) = (MAX_LINE as u64, MAX_LINE as u64);
                }
            }
            literals += 1;
            let tag = ext::tag_of(&buf);
            let total = (buf.len() as u64).saturating_add(length);
            if length > max_literal || total > max_total || literals > MAX_LITERALS {
                let (code, text) = if append && length > max_literal {
                    ("[TOOBIG]", "Literal larger than APPENDLIMIT")
                } else {
                    ("[LIMIT]", "Command too large")
                };
                if !sync {
                    // The bytes are on their way; RFC 7888 lets us close.
                    self.push(&format!("{tag} NO {code} {text}\r\n* BYE {text}\r\n"));
                    self.flush().await?;
                    return Ok(Input::Eof);
                }
                self.tagged(&tag, "NO", &format!("{code} {text}"));
                return Ok(Input::Refused);
            }
            if sync {
                self.push("+ Ready for literal data\r\n");
                self.flush().await?;
            }
            self.r.get_ref().quickack();
            deadline += Duration::from_secs(length / 100);
            let mut lit = (&mut self.r).take(length);
            let got = tokio::time::timeout_at(deadline, lit.read_to_end(&mut buf))
                .await
                .map_err(|_| timed_out())??;
            self.bytes_in += got as u64;
            if (got as u64) < length {
                return Ok(Input::Eof);
            }
        }
    }

    /// One decoded command; false ends the session.
    async fn command(&mut self, cmd: Command<'_>) -> std::io::Result<bool> {
        let tag = cmd.tag.inner().to_string();
        // A fault point for the tests of panic containment; not in release builds.
        #[cfg(debug_assertions)]
        if tag == "sx-fault-panic" {
            panic!("fault injected by tag sx-fault-panic");
        }
        let authed = self.user.is_some();
        let selected = self.sel.is_some();
        match cmd.body {
            CommandBody::Capability => {
                let c = self.capability();
                self.push(&format!("* CAPABILITY {c}\r\n"));
                self.tagged(&tag, "OK", "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => {
                if selected {
                    self.sync(true)?;
                }
                self.tagged(&tag, "OK", "Completed");
            }
            CommandBody::Logout => {
                self.push("* BYE Logging out\r\n");
                self.tagged(&tag, "OK", "LOGOUT completed");
                return Ok(false);
            }
            CommandBody::StartTLS => return self.starttls(&tag).await,
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                return self.login(&tag, user, pass).await;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let ir = initial_response.map(|r| r.declassify().to_vec());
                return self.authenticate(&tag, &mechanism.to_string(), ir).await;
            }
            _ if !authed => {
                self.tagged(&tag, "BAD", "Log in first");
            }
            CommandBody::Enable { .. } => {
                // Nothing this server offers needs enabling.
                self.push("* ENABLED\r\n");
                self.tagged(&tag, "OK", "ENABLE completed");
            }
            CommandBody::Idle => self.idle(&tag).await?,
            CommandBody::Select { mailbox } => self.select(&tag, &mbox(&mailbox), false),
            CommandBody::Examine { mailbox } => self.select(&tag, &mbox(&mailbox), true),
            CommandBody::Create { mailbox } => self.create(&tag, &mbox(&mailbox)),
            CommandBody::Delete { mailbox } => self.delete(&tag, &mbox(&mailbox)),
            CommandBody::Rename { from, to } => self.rename(&tag, &mbox(&from), &mbox(&to)),
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, &mbox(&mailbox), true),
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&tag, &mbox(&mailbox), false),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let pattern = wire::list_pattern(&mailbox_wildcard);
                self.list(&tag, &mbox(&reference), &[pattern], Default::default())
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let pattern = wire::list_pattern(&mailbox_wildcard);
                self.lsub(&tag, &mbox(&reference), &pattern)
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &mbox(&mailbox), &item_names),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(
                &tag,
                &mbox(&mailbox),
                &flags,
                date.as_ref(),
                message.as_ref(),
            )?,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(&tag, &mbox(&mailbox)),
            CommandBody::GetQuota { root } => {
                let root = String::from_utf8_lossy(root.as_ref()).into_owned();
                self.get_quota(&tag, &root)
            }
            CommandBody::SetQuota { .. } => self.tagged(
                &tag,
                "NO",
                "[NOPERM] Quotas are set by the administrator (EMAIL_QUOTA)",
            ),
            _ if !selected => {
                self.tagged(&tag, "BAD", "No mailbox selected");
            }
            CommandBody::Close => self.close(&tag, true),
            CommandBody::Unselect => self.close(&tag, false),
            CommandBody::Expunge => self.expunge(&tag, None)?,
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => self.search(&tag, charset.as_ref(), &criteria, uid).await?,
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
            } => {
                self.fetch(&tag, &sequence_set, macro_or_item_names, uid)
                    .await?
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
            } => {
                self.store(&tag, &sequence_set, &kind, &response, &flags, uid)
                    .await?
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&tag, &sequence_set, &mbox(&mailbox), uid, false)?,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&tag, &sequence_set, &mbox(&mailbox), uid, true)?,
            _ => self.tagged(&tag, "BAD", "Command not supported"),
        }
        // Untagged updates for the selected mailbox go before the tagged reply;
        // they were already added by commands that sync themselves.
        Ok(true)
    }

    async fn starttls(&mut self, tag: &str) -> std::io::Result<bool> {
        if self.tls() || self.sh.tls.acceptor().is_none() {
            self.tagged(tag, "BAD", "TLS already active or not available");
            return Ok(true);
        }
        self.tagged(tag, "OK", "Begin TLS negotiation now");
        self.flush().await?;
        let r = std::mem::replace(&mut self.r, BufReader::new(Conn::Closed));
        // Anything pipelined after STARTTLS is dropped with the buffer.
        let Conn::Plain(tcp) = r.into_inner() else {
            return Ok(false);
        };
        let conn = self.sh.tls.accept(tcp, PREAUTH_TIMEOUT).await?;
        self.r = BufReader::with_capacity(2048, conn);
        Ok(true)
    }

    async fn login(&mut self, tag: &str, user: String, pass: String) -> std::io::Result<bool> {
        if self.user.is_some() {
            self.tagged(tag, "BAD", "Already authenticated");
            return Ok(true);
        }
        if !self.tls() {
            self.tagged(tag, "NO", "[PRIVACYREQUIRED] Log in only after STARTTLS");
            return Ok(true);
        }
        let ip = self.peer.ip();
        // keyholder counts failures for SMTP and IMAP alike and answers a
        // failure only after the guard's delay.
        let req = KeyRequest::CheckPassword {
            user: user.clone(),
            password: pass,
            client: ip,
        };
        match self.sh.keyholder.call(&req, &[]).await {
            Ok((KeyReply::Password(Some(u)), _)) => {
                let slot = match self.sh.per_user.take(u.clone(), self.sh.max_per_user) {
                    Ok(s) => s,
                    Err(n) => {
                        log::warn!(
                            "{}: login refused user={u} rip={ip}: {n} sessions already",
                            self.service.name()
                        );
                        self.tagged(tag, "NO", "[LIMIT] Too many sessions for this user");
                        return Ok(true);
                    }
                };
                let Some(dir) = crate::maildir::account_dir(std::path::Path::new(""), &u) else {
                    self.tagged(tag, "NO", "[SERVERBUG] Account has no mailbox");
                    return Ok(true);
                };
                if !dir.join("cur").is_dir() {
                    // Account added while nothing was delivered yet.
                    if let Err(e) =
                        crate::maildir::create_account(std::path::Path::new("."), &u, None)
                    {
                        log::warn!("{}: cannot create Maildir of {u}: {e}", self.service.name());
                        self.tagged(tag, "NO", "[UNAVAILABLE] Mailbox not available");
                        return Ok(true);
                    }
                }
                log::info!(
                    "{}: login user={u} rip={ip} method=LOGIN tls={}",
                    self.service.name(),
                    self.r.get_ref().tls_info().unwrap_or_default()
                );
                self.user = Some(u);
                self.account = dir;
                self.user_slot = Some(slot);
                let c = self.capability();
                self.tagged(tag, "OK", &format!("[CAPABILITY {c}] Logged in"));
            }
            Ok((KeyReply::Password(None), _)) => {
                log::info!(
                    "{}: login failed user={} rip={ip}",
                    self.service.name(),
                    crate::log::cut(&user, 64)
                );
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Ok((KeyReply::LoginLocked, _)) => {
                log::info!(
                    "{}: login refused user={} rip={ip}: too many failures",
                    self.service.name(),
                    crate::log::cut(&user, 64)
                );
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] Too many login failures, try later",
                );
                self.push("* BYE Too many login failures\r\n");
                return Ok(false);
            }
            Ok((other, _)) => {
                log::warn!("{}: keyholder: {other:?}", self.service.name());
                self.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
            }
            Err(e) => {
                log::warn!("{}: keyholder unavailable: {e}", self.service.name());
                self.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
            }
        }
        Ok(true)
    }

    /// One SASL challenge (`+ <base64 prompt>`) and the client's base64
    /// answer. None when the exchange is over: the client cancelled (`*`) or
    /// sent bad base64 (a tagged BAD is queued), or it hung up (nothing queued).
    async fn sasl_step(&mut self, tag: &str, prompt: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.push(&format!("+ {prompt}\r\n"));
        self.flush().await?;
        let mut line = Vec::new();
        let n = tokio::time::timeout(
            PREAUTH_TIMEOUT,
            read_line_into(&mut self.r, &mut line, 4096),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if text == "*" {
            self.tagged(tag, "BAD", "Authentication cancelled");
            return Ok(None);
        }
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(d) => Ok(Some(d)),
            Err(_) => {
                self.tagged(tag, "BAD", "Invalid base64");
                Ok(None)
            }
        }
    }

    async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> std::io::Result<bool> {
        if self.user.is_some() {
            self.tagged(tag, "BAD", "Already authenticated");
            return Ok(true);
        }
        if !self.tls() {
            self.tagged(
                tag,
                "NO",
                "[PRIVACYREQUIRED] Authenticate only after STARTTLS",
            );
            return Ok(true);
        }
        let login = mechanism.eq_ignore_ascii_case("LOGIN");
        if !login && !mechanism.eq_ignore_ascii_case("PLAIN") {
            self.tagged(tag, "NO", "[CANNOT] AUTHENTICATE PLAIN or LOGIN");
            return Ok(true);
        }
        // LOGIN (for old clients): "Username:" then "Password:", each base64.
        if login {
            let user = match initial {
                Some(u) => u,
                None => match self.sasl_step(tag, "VXNlcm5hbWU6").await? {
                    Some(u) => u,
                    None => return Ok(!self.out.is_empty()),
                },
            };
            let Some(pass) = self.sasl_step(tag, "UGFzc3dvcmQ6").await? else {
                return Ok(!self.out.is_empty());
            };
            let user = String::from_utf8_lossy(&user).into_owned();
            let pass = String::from_utf8_lossy(&pass).into_owned();
            return self.login(tag, user, pass).await;
        }
        let data = match initial {
            Some(d) => d,
            None => match self.sasl_step(tag, "").await? {
                Some(d) => d,
                None => return Ok(!self.out.is_empty()),
            },
        };
        // authzid \0 authcid \0 password; authzid must be empty or the same user.
        let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
        if parts.len() != 3 || (!parts[0].is_empty() && parts[0] != parts[1]) {
            self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            return Ok(true);
        }
        let user = String::from_utf8_lossy(parts[1]).into_owned();
        let pass = String::from_utf8_lossy(parts[2]).into_owned();
        self.login(tag, user, pass).await
    }

    async fn extension(&mut self, x: ext::Ext) -> std::io::Result<()> {
        match x {
            ext::Ext::Id(tag) => {
                self.push("* ID (\"name\" \"scorpiox-email\" \"version\" \"");
                self.push(env!("CARGO_PKG_VERSION"));
                self.push("\")\r\n");
                self.tagged(&tag, "OK", "ID completed");
            }
            ext::Ext::Namespace(tag) if self.user.is_some() => {
                self.push("* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
                self.tagged(&tag, "OK", "NAMESPACE completed");
            }
            ext::Ext::UidExpunge(tag, set) if self.sel.is_some() => {
                self.expunge(&tag, Some(&set))?
            }
            ext::Ext::List(tag, l) if self.user.is_some() => {
                self.list(&tag, &l.reference, &l.patterns, l.opts)
            }
            ext::Ext::Status(tag, name, items) if self.user.is_some() => {
                let name = if super::names::is_inbox(&name) {
                    "INBOX".to_string()
                } else {
                    name
                };
                self.status_of(&tag, &name, items)
            }
            ext::Ext::Namespace(tag) | ext::Ext::List(tag, _) | ext::Ext::Status(tag, ..) => {
                self.tagged(&tag, "BAD", "Log in first")
            }
            ext::Ext::UidExpunge(tag, _) => self.tagged(&tag, "BAD", "No mailbox selected"),
        }
        Ok(())
    }

    async fn idle(&mut self, tag: &str) -> std::io::Result<()> {
        let mut changes = self.sh.changes.subscribe();
        self.push("+ idling\r\n");
        if self.sel.is_some() {
            self.sync(true)?;
        }
        self.flush().await?;
        let deadline = tokio::time::Instant::now() + AUTOLOGOUT;
        let watching = self.sel.as_ref().map(|s| s.folder.path.clone());
        loop {
            let mut poll = tokio::time::interval(Duration::from_secs(5));
            poll.tick().await;
            tokio::select! {
                r = self.r.fill_buf() => {
                    if r?.is_empty() {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    let mut line = Vec::new();
                    read_line_into(&mut self.r, &mut line, 1024).await?;
                    if String::from_utf8_lossy(&line).trim().eq_ignore_ascii_case("DONE") {
                        self.tagged(tag, "OK", "IDLE terminated");
                    } else {
                        self.tagged(tag, "BAD", "Expected DONE");
                    }
                    return Ok(());
                }
                c = changes.recv() => {
                    let relevant = match &c {
                        Ok(p) => Some(p.as_path()) == watching.as_deref(),
                        Err(_) => true,
                    };
                    if relevant && self.sel.is_some() {
                        self.sync(true)?;
                        self.flush().await?;
                    }
                }
                _ = poll.tick() => {
                    // Changes made by other programs are noticed by mtime.
                    if self.sel.is_some() {
                        self.sync(true)?;
                        self.flush().await?;
                    }
                }
                _ = crate::drain::global().reached(crate::drain::Phase::Draining) => {
                    self.push("* BYE Server shutting down\r\n");
                    self.flush().await?;
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.push("* BYE Autologout; idle for too long\r\n");
                    self.flush().await?;
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

fn mbox(m: &imap_codec::imap_types::mailbox::Mailbox<'_>) -> String {
    use imap_codec::imap_types::mailbox::Mailbox;
    match m {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
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
