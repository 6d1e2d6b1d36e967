//! One IMAP session: the connection loop (greeting, reading commands with
//! their literals under the limits, decoding with imap-codec and, for the
//! extensions it lacks, ext.rs) and the dispatch of each command to its
//! handler in cmd/ for the state the session is in. Replies are written by
//! the loop, once per command (io.rs).

use super::appends;
use super::cmd::{self, copy::Transfer, search::Search};
use super::ext;
use super::io::{read_line_into, Io, AUTOLOGOUT, PREAUTH_TIMEOUT};
use super::metadata;
use super::parts::{self, Parts};
use super::search_keys;
use super::sort::{self, Order};
use super::state::{Login, State};
use super::Shared;
use crate::net::Conn;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::CommandCodec;
use ipc::messages::Service;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// One command line (literals excluded); RFC 7162 asks for at least 8192.
const MAX_LINE: usize = 64 * 1024;
/// How much of an over-long command line is read and dropped before the
/// session ends (an endless line, or a deflate stream that inflates to one).
const MAX_DROPPED: usize = 16 << 20;
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

pub struct Session {
    pub io: Io,
    pub state: State,
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
    let state = match preauth {
        Some((user, account)) => State::Authenticated(Login {
            user,
            account,
            _slot: None,
        }),
        None => State::NotAuthenticated,
    };
    let mut s = Session {
        io: Io {
            sh,
            service,
            peer,
            // Small buffer: idle sessions are many, commands are short.
            r: BufReader::with_capacity(2048, conn),
            out: Vec::new(),
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            bytes_in: 0,
            bytes_out: 0,
            enabled: Default::default(),
            notify: None,
        },
        state,
    };
    let _counted = crate::drain::global().session();
    match crate::drain::contained(s.serve()).await {
        Some(Ok(Err(e))) if !crate::net::is_disconnect(&e) => {
            log::info!("{}: session with {peer} ended: {e}", service.name());
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            // Logged with its location by the hook; only this session ends.
            s.io.out.clear();
            s.io.push("* BYE Internal error, closing connection\r\n");
            let _ = s.io.flush().await;
        }
        None => {
            // Busy past the stop's deadline (a command that had started, an
            // APPEND still uploading): its unfinished reply is dropped.
            s.io.out.clear();
            s.io.push("* BYE Server shutting down\r\n");
            let _ = tokio::time::timeout(Duration::from_secs(1), s.io.flush()).await;
        }
    }
    crate::net::close(s.io.r.get_mut()).await;
    if let Some(l) = s.state.login() {
        log::info!(
            "{}: logout user={} rip={} in={} out={}",
            service.name(),
            l.user,
            peer.ip(),
            s.io.bytes_in,
            s.io.bytes_out
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
        let logged_in = self.state.login().is_some();
        let greeting = format!(
            "* {} [CAPABILITY {}] {} IMAP4rev1 ready\r\n",
            if logged_in { "PREAUTH" } else { "OK" },
            self.io.capability(logged_in),
            self.io.sh.hostname
        );
        self.io.push(&greeting);
        self.io.flush().await?;
        let mut bad = 0u32;
        let drain = crate::drain::global();
        loop {
            let timeout = if self.state.login().is_some() {
                AUTOLOGOUT
            } else {
                PREAUTH_TIMEOUT
            };
            // Stopping: end between commands (RFC 3501 7.1.5 BYE).
            if drain.draining() {
                self.io.push("* BYE Server shutting down\r\n");
                let _ = self.io.flush().await;
                return Ok(());
            }
            // NOTIFY (RFC 5465): changes are told between commands too.
            if self.io.notify.is_some() {
                match Box::pin(self.between_commands(timeout, drain)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        self.io.push("* BYE Autologout; idle for too long\r\n");
                        let _ = self.io.flush().await;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                if drain.draining() {
                    continue;
                }
            }
            let read = tokio::select! {
                r = self.read_command(timeout) => r,
                _ = drain.reached(crate::drain::Phase::Draining) => continue,
            };
            let input = match read {
                Ok(i) => i,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.io.push("* BYE Autologout; idle for too long\r\n");
                    let _ = self.io.flush().await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let buf = match input {
                Input::Command(b) => b,
                Input::Refused => {
                    self.io.flush().await?;
                    continue;
                }
                Input::Eof => return Ok(()),
            };
            // UTF-8 in quoted strings, once enabled (utf8.rs).
            let buf = match self.io.enabled.utf8 {
                true => super::utf8::quoted_to_literals(&buf).unwrap_or(buf),
                false => buf,
            };
            // APPEND is read here (MULTIAPPEND, literal8: appends.rs), before
            // anything looks through what may be megabytes of message.
            if ext::is_append(&buf) {
                let go_on = match appends::parse(&buf) {
                    Some(a) => {
                        bad = 0;
                        self.append(&a, &buf)?;
                        true
                    }
                    None => self.bad_command(&buf, &mut bad),
                };
                self.context_updates();
                self.io.flush().await?;
                if !go_on {
                    return Ok(());
                }
                continue;
            }
            // Each pass below looks only at the commands it is for: a
            // 64 KiB LIST pattern is not scanned for SEARCH keys.
            let word = ext::command_word(&buf);
            // SORT and THREAD (RFC 5256) are decoded as the SEARCH they run.
            let (buf, order) = match word.as_str() {
                "SORT" | "THREAD" => match sort::take(&buf) {
                    Some((plain, order)) => (plain, Some(order)),
                    None => (buf, None),
                },
                _ => (buf, None),
            };
            let searching = word == "SEARCH" || order.is_some();
            // RFC 4731: `SEARCH RETURN (...)` is decoded as a plain SEARCH, its
            // options kept for the ESEARCH reply.
            let (buf, ret) = match ext::search_return(&buf).filter(|_| searching) {
                Some((plain, opts)) => (plain, Some(opts)),
                None => (buf, None),
            };
            // RFC 7162 parameters and modifiers likewise.
            let (buf, mut cond) = match word.as_str() {
                "SELECT" | "EXAMINE" | "FETCH" | "STORE" => match parts::take(&buf) {
                    Some((plain, cond)) => (plain, cond),
                    None => (buf, Parts::default()),
                },
                _ => (buf, Parts::default()),
            };
            // SEARCH keys imap-codec lacks, and `$` (RFC 5182).
            let buf = match word.as_str() {
                _ if searching => self.rewrite_keys(buf, &mut cond),
                "FETCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" => {
                    self.rewrite_keys(buf, &mut cond)
                }
                _ => buf,
            };
            // RFC 5267 UPDATE: the command is kept, to be run again.
            let has_update = |o: &Option<Vec<String>>| {
                o.as_ref().is_some_and(|o| o.iter().any(|x| x == "UPDATE"))
            };
            let command = (has_update(&ret)
                || matches!(&order, Some(Order::Sort { ret, .. }) if has_update(ret)))
            .then(|| buf.clone());
            let decoded = CommandCodec::default().decode(&buf);
            let go_on = match decoded {
                Ok((_, cmd)) => {
                    bad = 0;
                    let x = Extras {
                        ret,
                        cond,
                        order,
                        command,
                    };
                    self.command(cmd, x).await?
                }
                Err(_) => match metadata::parse(&buf) {
                    Some(m) => {
                        bad = 0;
                        self.metadata(m);
                        true
                    }
                    None if word == "NOTIFY" => match super::notify::parse(&buf) {
                        Some(n) => {
                            bad = 0;
                            let Session { io, state } = self;
                            blocking(|| cmd::notify::notify(io, state, n));
                            true
                        }
                        None => self.bad_command(&buf, &mut bad),
                    },
                    None => match ext::parse(&buf) {
                        Some(x) => {
                            bad = 0;
                            self.extension(x);
                            true
                        }
                        None => self.bad_command(&buf, &mut bad),
                    },
                },
            };
            self.context_updates();
            if let (Some(_), Some(login)) = (&self.io.notify, self.state.login()) {
                cmd::notify::after_own(&mut self.io, login, &word);
            }
            self.io.flush().await?;
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
        let authed = self.state.login().is_some();
        // Before login everything is small; after it only APPEND may carry a
        // message-sized literal (as Dovecot's imap_max_line_length): a
        // mailbox name or a search string has no use for megabytes.
        let (max_line, mut max_total, mut max_literal) = if authed {
            (
                MAX_LINE,
                self.io.sh.max_literal.saturating_add(MAX_LINE as u64),
                self.io.sh.max_literal,
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
            let n =
                tokio::time::timeout_at(deadline, read_line_into(&mut self.io.r, &mut buf, room))
                    .await
                    .map_err(|_| timed_out())??;
            self.io.bytes_in += n as u64;
            if n == 0 {
                return Ok(Input::Eof);
            }
            if !buf.ends_with(b"\n") {
                // Over the limit: drop the rest of the line (bounded by the
                // same deadline) and refuse the command.
                let tag = ext::tag_of(&buf);
                // At most this much more is read and dropped: past it (a
                // line without end, or a deflate stream of one) the session
                // ends rather than spend its time on it.
                let mut dropped = 0usize;
                loop {
                    let mut rest = Vec::new();
                    let m = tokio::time::timeout_at(
                        deadline,
                        read_line_into(&mut self.io.r, &mut rest, MAX_LINE),
                    )
                    .await
                    .map_err(|_| timed_out())??;
                    if m == 0 || rest.ends_with(b"\n") {
                        break;
                    }
                    dropped += m;
                    if dropped > MAX_DROPPED {
                        self.io.tagged(&tag, "BAD", "Command line too long");
                        self.io.push("* BYE Command line without end\r\n");
                        self.io.flush().await?;
                        return Ok(Input::Eof);
                    }
                }
                self.io.tagged(&tag, "BAD", "Command line too long");
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
                    self.io
                        .push(&format!("{tag} NO {code} {text}\r\n* BYE {text}\r\n"));
                    self.io.flush().await?;
                    return Ok(Input::Eof);
                }
                self.io.tagged(&tag, "NO", &format!("{code} {text}"));
                return Ok(Input::Refused);
            }
            if sync {
                self.io.push("+ Ready for literal data\r\n");
                self.io.flush().await?;
            }
            self.io.r.get_ref().quickack();
            deadline += Duration::from_secs(length / 100);
            let mut lit = (&mut self.io.r).take(length);
            let got = tokio::time::timeout_at(deadline, lit.read_to_end(&mut buf))
                .await
                .map_err(|_| timed_out())??;
            self.io.bytes_in += got as u64;
            if (got as u64) < length {
                return Ok(Input::Eof);
            }
        }
    }

    /// One decoded command, to its handler for the state the session is in;
    /// false ends the session. Handlers that touch files run where blocking
    /// is allowed (block_in_place), so other sessions' tasks move on.
    async fn command(&mut self, cmd: Command<'_>, x: Extras) -> std::io::Result<bool> {
        let tag = cmd.tag.inner().to_string();
        let tag = tag.as_str();
        // A fault point for the tests of panic containment (crate::fault).
        if crate::fault::armed() && tag == "sx-fault-panic" {
            panic!("fault injected by tag sx-fault-panic");
        }
        let Session { io, state } = self;
        let logged_in = state.login().is_some();
        let utf8 = io.enabled.utf8;
        match cmd.body {
            CommandBody::Capability => cmd::any_state::capability(io, tag, logged_in),
            CommandBody::Noop | CommandBody::Check => {
                let sel = match state {
                    State::Selected(_, s) => Some(&mut **s),
                    _ => None,
                };
                blocking(|| cmd::any_state::noop(io, sel, tag));
            }
            CommandBody::Logout => {
                cmd::any_state::logout(io, tag);
                return Ok(false);
            }
            // The rarer, bigger futures are boxed: a session's future is as
            // big as its biggest await, and idle sessions are the many.
            CommandBody::StartTLS => return Box::pin(cmd::auth::starttls(io, tag)).await,
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                return Box::pin(cmd::auth::login(io, state, tag, user, pass)).await;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let ir = initial_response.map(|r| r.declassify().to_vec());
                let m = mechanism.to_string();
                return Box::pin(cmd::auth::authenticate(io, state, tag, &m, ir)).await;
            }
            _ if !logged_in => io.tagged(tag, "BAD", "Log in first"),
            CommandBody::Compress { .. } => {
                return Box::pin(cmd::compress::compress(io, tag))
                    .await
                    .map(|()| true)
            }
            CommandBody::Enable { capabilities } => {
                let names: Vec<String> = capabilities
                    .as_ref()
                    .iter()
                    .map(|c| c.to_string().to_ascii_uppercase())
                    .collect();
                cmd::any_state::enable(io, tag, &names)
            }
            CommandBody::Idle => {
                let (login, sel) = match state {
                    State::Selected(l, s) => (Some(&*l), Some(&mut **s)),
                    State::Authenticated(l) => (Some(&*l), None),
                    State::NotAuthenticated => (None, None),
                };
                cmd::idle::idle(io, login, sel, tag).await?
            }
            CommandBody::Select { mailbox } => blocking(|| {
                cmd::select::select(io, state, tag, &mbox(&mailbox, utf8), false, &x.cond)
            }),
            CommandBody::Examine { mailbox } => blocking(|| {
                cmd::select::select(io, state, tag, &mbox(&mailbox, utf8), true, &x.cond)
            }),
            CommandBody::Create { mailbox } => {
                blocking(|| cmd::mailbox::create(io, state, tag, &mbox(&mailbox, utf8), &[]))
            }
            CommandBody::Delete { mailbox } => {
                blocking(|| cmd::mailbox::delete(io, state, tag, &mbox(&mailbox, utf8)))
            }
            CommandBody::Rename { from, to } => blocking(|| {
                cmd::mailbox::rename(io, state, tag, &mbox(&from, utf8), &mbox(&to, utf8))
            }),
            CommandBody::SetQuota { .. } => cmd::quota::set_quota(io, tag),
            CommandBody::Close if state.selected().is_some() => {
                blocking(|| cmd::select::close(io, state, tag, true))
            }
            CommandBody::Unselect if state.selected().is_some() => {
                blocking(|| cmd::select::close(io, state, tag, false))
            }
            body => Box::pin(self.authenticated(tag, body, x)).await?,
        }
        Ok(true)
    }

    /// Commands that need a login but leave the state as it is.
    async fn authenticated(
        &mut self,
        tag: &str,
        body: CommandBody<'_>,
        x: Extras,
    ) -> std::io::Result<()> {
        let Session { io, state } = self;
        let (login, sel) = match state {
            State::NotAuthenticated => {
                io.tagged(tag, "BAD", "Log in first");
                return Ok(());
            }
            State::Authenticated(l) => (&*l, None),
            State::Selected(l, s) => (&*l, Some(s)),
        };
        let utf8 = io.enabled.utf8;
        match body {
            CommandBody::Subscribe { mailbox } => {
                blocking(|| cmd::subscribe::subscribe(io, login, tag, &mbox(&mailbox, utf8), true))
            }
            CommandBody::Unsubscribe { mailbox } => {
                blocking(|| cmd::subscribe::subscribe(io, login, tag, &mbox(&mailbox, utf8), false))
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let pattern = list_pattern(&mailbox_wildcard);
                blocking(|| {
                    cmd::list::list(
                        io,
                        login,
                        tag,
                        &mbox(&reference, false),
                        &[pattern],
                        Default::default(),
                    )
                })
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let pattern = list_pattern(&mailbox_wildcard);
                blocking(|| cmd::list::lsub(io, login, tag, &mbox(&reference, false), &pattern))
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                let sel = sel.map(|s| &**s);
                blocking(|| {
                    cmd::status::status(io, login, sel, tag, &mbox(&mailbox, utf8), &item_names)
                })
            }
            CommandBody::GetQuotaRoot { mailbox } => {
                blocking(|| cmd::quota::get_quota_root(io, login, tag, &mbox(&mailbox, utf8)))
            }
            CommandBody::GetQuota { root } => {
                let root = String::from_utf8_lossy(root.as_ref()).into_owned();
                blocking(|| cmd::quota::get_quota(io, login, tag, &root))
            }
            body => match sel {
                Some(sel) => selected(io, login, sel, tag, body, x).await?,
                None => io.tagged(tag, "BAD", "No mailbox selected"),
            },
        }
        Ok(())
    }

    /// A command no decoder took: BAD, and after MAX_BAD in a row a BYE;
    /// false when the session ends.
    fn bad_command(&mut self, buf: &[u8], bad: &mut u32) -> bool {
        *bad += 1;
        let tag = ext::tag_of(buf);
        self.io
            .tagged(&tag, "BAD", "Unknown command or bad arguments");
        if *bad >= MAX_BAD {
            self.io.push("* BYE Too many bad commands\r\n");
            return false;
        }
        true
    }

    /// `buf` with search_keys.rs's rewrites (extension keys, `$`).
    fn rewrite_keys(&self, buf: Vec<u8>, cond: &mut Parts) -> Vec<u8> {
        let saved = self.state.selected().map(|s| s.saved_sets());
        match search_keys::rewrite(&buf, saved.as_ref()) {
            Some((plain, found)) => {
                cond.search_modseq = found.modseq;
                plain
            }
            None => buf,
        }
    }

    /// APPEND, in the authenticated and selected states.
    fn append(&mut self, a: &appends::Append, buf: &[u8]) -> std::io::Result<()> {
        let Session { io, state } = self;
        if state.login().is_none() {
            io.tagged(&a.tag, "BAD", "Log in first");
            return Ok(());
        }
        blocking(|| cmd::append::append(io, state, a, buf))
    }

    /// With NOTIFY on, wait for the client's next command while telling it
    /// of changes as they are heard; returns when input is there (or the
    /// server is stopping).
    async fn between_commands(
        &mut self,
        timeout: Duration,
        drain: &crate::drain::Drain,
    ) -> std::io::Result<()> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        enum Heard {
            Input,
            Changes(Vec<Arc<PathBuf>>),
            Poll,
            Overflow,
        }
        let deadline = tokio::time::Instant::now() + timeout;
        // Its own beat, however often news wakes the loop (as IDLE's).
        let mut poll_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + cmd::notify::POLL,
            cmd::notify::POLL,
        );
        poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Session { io, state } = self;
            let Some(w) = io.notify.as_mut() else {
                return Ok(());
            };
            let poll = state.selected().is_some()
                && w.spec.selected().is_some_and(|g| g.events.messages());
            let heard = tokio::select! {
                biased;
                r = io.r.fill_buf() => {
                    r?;
                    Heard::Input
                }
                c = w.rx.recv() => match c {
                    Ok(p) => {
                        let mut v = vec![p];
                        // Whatever else is waiting, in one go (bounded).
                        while v.len() < 256 {
                            match w.rx.try_recv() {
                                Ok(p) => v.push(p),
                                Err(TryRecvError::Lagged(_)) => break,
                                Err(_) => break,
                            }
                        }
                        Heard::Changes(v)
                    }
                    Err(RecvError::Lagged(_)) => Heard::Overflow,
                    Err(RecvError::Closed) => Heard::Input,
                },
                _ = poll_tick.tick(), if poll => Heard::Poll,
                _ = drain.reached(crate::drain::Phase::Draining) => return Ok(()),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            };
            let (login, sel) = match state {
                State::Selected(l, s) => (&*l, Some(&mut **s)),
                State::Authenticated(l) => (&*l, None),
                State::NotAuthenticated => return Ok(()),
            };
            match heard {
                Heard::Input => return Ok(()),
                // RFC 5465 5.8: fallen behind; the client resynchronizes.
                Heard::Overflow => {
                    io.push(
                        "* OK [NOTIFICATIONOVERFLOW] Too many changes, notifications stopped\r\n",
                    );
                    io.notify = None;
                }
                Heard::Changes(paths) => {
                    cmd::notify::deliver(io, login, sel, &paths, false).await?;
                }
                Heard::Poll => cmd::notify::deliver(io, login, sel, &[], true).await?,
            }
            self.context_updates();
            self.io.flush().await?;
        }
    }

    /// After each command: what changed in the searches kept up to date
    /// (RFC 5267 UPDATE).
    fn context_updates(&mut self) {
        if let State::Selected(_, sel) = &mut self.state {
            if !sel.contexts.is_empty() {
                let io = &mut self.io;
                blocking(|| cmd::context::updates(io, sel));
            }
        }
    }

    /// SETMETADATA and GETMETADATA (RFC 5464).
    fn metadata(&mut self, m: metadata::Command) {
        let Session { io, state } = self;
        let Some(login) = state.login() else {
            let tag = match &m {
                metadata::Command::Set { tag, .. } | metadata::Command::Get { tag, .. } => tag,
            };
            io.tagged(tag, "BAD", "Log in first");
            return;
        };
        blocking(|| cmd::metadata::metadata(io, login, m))
    }

    /// An extension command imap-codec does not decode (ext.rs).
    fn extension(&mut self, x: ext::Ext) {
        let Session { io, state } = self;
        match (x, &mut *state) {
            (ext::Ext::Id(tag), _) => cmd::any_state::id(io, &tag),
            (ext::Ext::Create(tag, ..), State::NotAuthenticated) => {
                io.tagged(&tag, "BAD", "Log in first")
            }
            (ext::Ext::Create(tag, name, uses), _) => {
                let name = super::utf8::name_in(name.as_bytes(), io.enabled.utf8);
                blocking(|| cmd::mailbox::create(io, state, &tag, &name, &uses))
            }
            (
                ext::Ext::Namespace(tag) | ext::Ext::List(tag, _) | ext::Ext::Status(tag, ..),
                State::NotAuthenticated,
            )
            | (ext::Ext::UidExpunge(tag, _), State::NotAuthenticated) => {
                io.tagged(&tag, "BAD", "Log in first")
            }
            (ext::Ext::Namespace(tag), _) => cmd::any_state::namespace(io, &tag),
            (ext::Ext::UidExpunge(tag, set), State::Selected(_, sel)) => {
                if let Err(e) = blocking(|| cmd::expunge::expunge(io, sel, &tag, Some(&set))) {
                    log::warn!("{}: expunge: {e}", io.service.name());
                    io.tagged(&tag, "NO", "[SERVERBUG] Expunge failed");
                }
            }
            (ext::Ext::UidExpunge(tag, _), _) => io.tagged(&tag, "BAD", "No mailbox selected"),
            (ext::Ext::CancelUpdate(tag, tags), State::Selected(_, sel)) => {
                cmd::context::cancel(io, sel, &tag, &tags)
            }
            (ext::Ext::CancelUpdate(tag, _), _) => io.tagged(&tag, "BAD", "No mailbox selected"),
            (
                ext::Ext::GenUrlAuth(tag, _)
                | ext::Ext::UrlFetch(tag, _)
                | ext::Ext::ResetKey(tag, ..),
                State::NotAuthenticated,
            ) => io.tagged(&tag, "BAD", "Log in first"),
            (ext::Ext::GenUrlAuth(tag, urls), State::Authenticated(l) | State::Selected(l, _)) => {
                blocking(|| cmd::urlauth::genurlauth(io, l, &tag, &urls))
            }
            (ext::Ext::UrlFetch(tag, urls), State::Authenticated(l) | State::Selected(l, _)) => {
                blocking(|| cmd::urlauth::urlfetch(io, l, &tag, &urls))
            }
            (
                ext::Ext::ResetKey(tag, mbox, mechs),
                State::Authenticated(l) | State::Selected(l, _),
            ) => blocking(|| cmd::urlauth::resetkey(io, l, &tag, mbox.as_deref(), &mechs)),
            (ext::Ext::List(tag, l), State::Authenticated(login) | State::Selected(login, _)) => {
                blocking(|| cmd::list::list(io, login, &tag, &l.reference, &l.patterns, l.opts))
            }
            (ext::Ext::Status(tag, name, items), State::Authenticated(login)) => {
                let name = if super::names::is_inbox(&name) {
                    "INBOX".to_string()
                } else {
                    super::utf8::name_in(name.as_bytes(), io.enabled.utf8)
                };
                blocking(|| cmd::status::status_of(io, login, None, &tag, &name, items))
            }
            (ext::Ext::Status(tag, name, items), State::Selected(login, sel)) => {
                let name = if super::names::is_inbox(&name) {
                    "INBOX".to_string()
                } else {
                    super::utf8::name_in(name.as_bytes(), io.enabled.utf8)
                };
                blocking(|| cmd::status::status_of(io, login, Some(sel), &tag, &name, items))
            }
        }
    }
}

/// What was taken out of a command before decoding: SEARCH's RETURN options
/// (RFC 4731), the RFC 7162 parts, and whether it was SORT or THREAD.
struct Extras {
    ret: Option<Vec<String>>,
    cond: Parts,
    /// The command was SORT or THREAD.
    order: Option<Order>,
    /// The command as decoded, when a search is to be kept up to date.
    command: Option<Vec<u8>>,
}

/// Selected-state commands (RFC 3501 6.4).
async fn selected(
    io: &mut Io,
    login: &Login,
    sel: &mut super::view::Selected,
    tag: &str,
    body: CommandBody<'_>,
    x: Extras,
) -> std::io::Result<()> {
    if x.cond.enables() {
        cmd::any_state::turn_on_condstore(io, Some(sel));
    }
    match body {
        CommandBody::Expunge => blocking(|| cmd::expunge::expunge(io, sel, tag, None))?,
        CommandBody::Search {
            charset,
            criteria,
            uid,
        } if x.order.is_some() => {
            let Some(order) = x.order else {
                return Ok(());
            };
            let req = cmd::sort::Ordered {
                tag,
                charset: charset.as_ref(),
                key: &criteria,
                uid,
                order,
                command: x.command,
            };
            blocking(|| cmd::sort::ordered(io, sel, req))?
        }
        CommandBody::Search {
            charset,
            criteria,
            uid,
        } => blocking(|| {
            cmd::search::search(
                io,
                sel,
                Search {
                    tag,
                    charset: charset.as_ref(),
                    key: &criteria,
                    uid,
                    ret: x.ret,
                    modseq: x.cond.search_modseq,
                    command: x.command,
                },
            )
        })?,
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
        } => {
            let req = cmd::fetch::Fetch {
                set: &sequence_set,
                items: macro_or_item_names,
                uid,
                cond: &x.cond,
            };
            cmd::fetch::fetch(io, sel, tag, req).await?
        }
        CommandBody::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
        } => {
            let req = cmd::store::Store {
                set: &sequence_set,
                kind: &kind,
                response: &response,
                list: &flags,
                uid,
                unchanged_since: x.cond.unchanged_since,
            };
            blocking(|| cmd::store::store(io, sel, tag, req))?
        }
        CommandBody::Copy {
            sequence_set,
            mailbox,
            uid,
        } => transfer(io, login, sel, tag, (&sequence_set, &mailbox, uid, false))?,
        CommandBody::Move {
            sequence_set,
            mailbox,
            uid,
        } => transfer(io, login, sel, tag, (&sequence_set, &mailbox, uid, true))?,
        _ => io.tagged(tag, "BAD", "Command not supported"),
    }
    Ok(())
}

/// COPY or MOVE (`mv`) of `set` to `mailbox`.
fn transfer(
    io: &mut Io,
    login: &Login,
    sel: &mut super::view::Selected,
    tag: &str,
    (set, mailbox, uid, mv): (&SequenceSet, &Mailbox<'_>, bool, bool),
) -> std::io::Result<()> {
    let dest = mbox(mailbox, io.enabled.utf8);
    let t = Transfer {
        set,
        dest: &dest,
        uid,
        mv,
    };
    blocking(|| cmd::copy::copy(io, login, sel, tag, t))
}

/// Run a handler that works on files where blocking is allowed: the
/// runtime moves this thread's other tasks elsewhere meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A mailbox name as stored (utf8.rs: converted from UTF-8 when the client
/// enabled it).
fn mbox(m: &Mailbox<'_>, utf8: bool) -> String {
    match m {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => super::utf8::name_in(o.inner().as_ref(), utf8),
    }
}

fn list_pattern(m: &ListMailbox<'_>) -> String {
    match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}
