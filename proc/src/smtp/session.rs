//! One SMTP session (RFC 5321) on 25, 587 or 465: commands parsed by smtp-proto,
//! STARTTLS (RFC 3207), AUTH (RFC 4954, submission only, TLS only), DSN
//! parameters (RFC 3461) carried into the envelope, DATA and BDAT (RFC 3030) into
//! a spool fd from queue, and 250 only after queue has committed to disk.

use super::auth::{self, parse_plain};
use super::checks;
use super::data::{self, Outcome};
use super::received::Trace;
use super::Shared;
use crate::directory::Refusal;
use crate::net::{read_line, Conn, Line, Reader};
use ipc::messages::{
    ChildSettings, Dest, Envelope, KeyReply, KeyRequest, QueueToSmtp, RcptState, Recipient,
    Service, SmtpToQueue,
};
use smtp_proto::{
    Request, AUTH_LOGIN, AUTH_PLAIN, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_BY_NOTIFY,
    MAIL_BY_RETURN, MAIL_BY_TRACE, MAIL_CONPERM, MAIL_REQUIRETLS, MAIL_RET_FULL, MAIL_RET_HDRS,
    MAIL_SMTPUTF8,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

/// RFC 5321 §4.5.3.1.4 allows 512 for a command line; ESMTP parameters need more.
pub(super) const MAX_LINE: usize = 2048;
/// The recipients' share of the Commit frame; the rest of the envelope (sender
/// and HELO within MAX_LINE, ENVID, counters) fits in what is left.
const MAX_RCPT_BYTES: usize = ipc::MAX_FRAME - 3 * MAX_LINE;

pub async fn run(sh: Arc<Shared>, service: Service, tcp: TcpStream, peer: SocketAddr) {
    let st = sh.settings();
    let conn = if service.implicit_tls() {
        match sh
            .tls
            .accept(tcp, Duration::from_secs(st.timeout.max(1)))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                log::info!("{}: TLS handshake with {peer} failed: {e}", service.name());
                return;
            }
        }
    } else {
        Conn::Plain(tcp)
    };
    serve_conn(sh, service, conn, peer).await;
}

/// A local user of this host, as the kernel named them (SO_PEERCRED, or the
/// owner of a maildrop file).
#[derive(Debug, Clone)]
pub struct LocalUser {
    pub uid: u32,
    pub name: String,
}

/// One session over an established connection (TCP, TLS, or any byte stream:
/// in-process tests and the fuzz target come in here).
pub async fn serve_conn(sh: Arc<Shared>, service: Service, conn: Conn, peer: SocketAddr) {
    serve_with(sh, service, conn, peer, None).await
}

/// A local submission (the submit socket, or a maildrop file replayed):
/// no TLS or AUTH, the sender is the user's, bare recipients are local users.
pub async fn serve_local(sh: Arc<Shared>, conn: Conn, user: LocalUser) {
    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
    serve_with(sh, Service::Local, conn, peer, Some(user)).await
}

async fn serve_with(
    sh: Arc<Shared>,
    service: Service,
    conn: Conn,
    peer: SocketAddr,
    local: Option<LocalUser>,
) {
    let st = sh.settings();
    let mut s = Session {
        sh: &sh,
        st,
        service,
        local,
        peer,
        r: BufReader::new(conn),
        helo: None,
        esmtp: false,
        auth: None,
        tx: None,
        errors: 0,
        idle: 0,
        out: Vec::new(),
        allowlisted: false,
    };
    let _counted = crate::drain::global().session();
    match crate::drain::contained(s.serve()).await {
        Some(Ok(Err(e))) if !crate::net::is_disconnect(&e) => {
            log::info!("{}: session with {peer} ended: {e}", service.name())
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            // Logged with its location by the hook; only this session ends.
            s.out.clear();
            s.reply("421 4.3.0 Internal error, closing connection\r\n");
            let _ = s.flush().await;
        }
        None => {
            // Still busy when the stop's deadline came: whatever it was
            // doing is dropped (an uncommitted message is aborted below).
            log::info!("{}: session with {peer} cut by the stop", service.name());
            s.out.clear();
            s.reply("421 4.3.2 Service shutting down, closing connection\r\n");
            let _ = tokio::time::timeout(Duration::from_secs(1), s.flush()).await;
        }
    }
    if let Some(tx) = s.tx.take() {
        tx.abort(&sh).await;
    }
    crate::net::close(s.r.get_mut()).await;
}

/// A mail transaction between MAIL and the end of DATA/BDAT LAST.
struct Tx {
    from: String,
    ret_full: Option<bool>,
    envid: Option<String>,
    body_8bit: bool,
    smtputf8: bool,
    rcpts: Vec<Recipient>,
    rcpt_count: u32,
    /// Encoded size of `rcpts`: the envelope must fit one IPC frame.
    rcpt_bytes: usize,
    /// BDAT in progress: spool file and running outcome.
    bdat: Option<(String, BufWriter<tokio::fs::File>, Outcome)>,
    /// Bytes of our Received field at the top of the spool file.
    trace_len: u64,
    /// Milter connections of this transaction (port 25).
    milters: Vec<super::milter::Live>,
    /// A milter said discard: 250 at the end, nothing kept.
    discard: bool,
}

impl Tx {
    async fn abort(self, sh: &Shared) {
        if let Some((id, _, _)) = self.bdat {
            let _ = sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
        }
    }
}

enum Flow {
    Continue,
    Close,
}

struct Session<'a> {
    sh: &'a Shared,
    st: ChildSettings,
    service: Service,
    /// A local submission's user (Service::Local).
    local: Option<LocalUser>,
    peer: SocketAddr,
    r: Reader,
    helo: Option<String>,
    esmtp: bool,
    auth: Option<String>,
    tx: Option<Tx>,
    errors: u32,
    idle: u32,
    /// Replies queued by the handlers, written by `flush`.
    out: Vec<u8>,
    /// A DNSWL lists the client: no greylisting.
    allowlisted: bool,
}

impl Session<'_> {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.st.timeout.max(1))
    }

    /// Who vouched for the sender: the account that logged in, or for a
    /// local submission `local:<user>` (queue does not DKIM-sign those:
    /// nobody checked their header From).
    fn envelope_auth(&self) -> Option<String> {
        self.auth.clone().or_else(|| {
            self.local
                .as_ref()
                .map(|u| format!("{}{}", ipc::messages::LOCAL_USER, u.name))
        })
    }

    fn submission(&self) -> bool {
        matches!(self.service, Service::Submission | Service::Submissions)
    }

    /// Queue a reply. Handlers only queue; `flush` is the one place that writes.
    fn reply(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Write the queued replies: after each command unless another complete
    /// one is already buffered (RFC 2920 lets pipelined replies go together),
    /// and before waiting on the client mid-command (354, 334, STARTTLS).
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let w = self.r.get_mut();
        w.write_all(&out).await?;
        w.flush().await
    }

    /// An error reply; too many of them end the session.
    async fn error(&mut self, s: &str) -> std::io::Result<Flow> {
        self.errors += 1;
        if self.errors > self.st.max_errors {
            log::info!(
                "{}: too many errors from {}",
                self.service.name(),
                self.peer
            );
            self.reply("421 4.7.0 Too many errors, closing connection\r\n");
            return Ok(Flow::Close);
        }
        self.reply(s);
        Ok(Flow::Continue)
    }

    fn reject_log(&self, cmd: &str, reply: &str) {
        crate::stats::count(ipc::messages::Event::Rejected);
        let from = self.tx.as_ref().map(|t| t.from.as_str()).unwrap_or("");
        log::info!(
            "reject: {cmd} from [{}]: {}; from=<{from}> proto={} helo=<{}>",
            self.peer.ip(),
            reply.trim_end(),
            self.proto(),
            self.helo.as_deref().unwrap_or("")
        );
    }

    /// RFC 3848 protocol name.
    /// The Received `with` keyword: RFC 3848, and RFC 6531 3.7.3 for a
    /// transaction that used SMTPUTF8.
    fn proto(&self) -> &'static str {
        let utf8 = self.tx.as_ref().is_some_and(|t| t.smtputf8);
        match (
            self.esmtp,
            utf8,
            self.r.get_ref().is_tls(),
            self.auth.is_some(),
        ) {
            (false, _, _, _) => "SMTP",
            (true, false, false, false) => "ESMTP",
            (true, false, true, false) => "ESMTPS",
            (true, false, false, true) => "ESMTPA",
            (true, false, true, true) => "ESMTPSA",
            (true, true, false, false) => "UTF8SMTP",
            (true, true, true, false) => "UTF8SMTPS",
            (true, true, false, true) => "UTF8SMTPA",
            (true, true, true, true) => "UTF8SMTPSA",
        }
    }

    /// The session: commands until the end, then whatever is still queued.
    async fn serve(&mut self) -> std::io::Result<()> {
        let r = self.commands().await;
        let flushed = self.flush().await;
        r.and(flushed)
    }

    async fn commands(&mut self) -> std::io::Result<()> {
        let host = self.st.hostname.clone();
        self.reply(&format!("220 {host} ESMTP scorpiox\r\n"));
        let drain = crate::drain::global();
        loop {
            // Stopping: a session between transactions ends here; one in the
            // middle of a transaction goes on until its end (or the deadline).
            if drain.draining() && self.tx.is_none() {
                self.reply("421 4.3.2 Service shutting down, closing connection\r\n");
                return Ok(());
            }
            if !self.r.buffer().contains(&b'\n') {
                self.flush().await?;
            }
            let t = self.timeout();
            let idle = self.tx.is_none();
            let read = tokio::select! {
                r = read_line(&mut self.r, MAX_LINE, t) => r,
                _ = drain.reached(crate::drain::Phase::Draining), if idle => continue,
            };
            let line = match read {
                Ok(Line::Ok(l)) => l,
                Ok(Line::TooLong) => {
                    if let Flow::Close = self.error("500 5.5.2 Line too long\r\n").await? {
                        return Ok(());
                    }
                    continue;
                }
                Ok(Line::Eof) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    log::info!(
                        "timeout: [{}] sent no complete command in time",
                        self.peer.ip()
                    );
                    self.reply("421 4.4.2 Timeout, closing connection\r\n");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let flow = self.command(line).await?;
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, mut line: Vec<u8>) -> std::io::Result<Flow> {
        // RFC 5321 4.5.1: `<Postmaster>` without a domain is a valid recipient,
        // which the parser would refuse: it means postmaster of the primary domain.
        const PM: &[u8] = b"RCPT TO:<POSTMASTER>";
        if line
            .get(..PM.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(PM))
        {
            let domain = self.st.domains.first().cloned().unwrap_or_default();
            let mut l = format!("RCPT TO:<postmaster@{domain}>").into_bytes();
            l.extend_from_slice(&line[PM.len()..]);
            line = l;
        } else if self.local.is_some() {
            // sendmail's bare local names (`root`, `www-data`): the host's
            // users, at the host name (Dir::resolve_local).
            const RCPT: &[u8] = b"RCPT TO:<";
            if line
                .get(..RCPT.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(RCPT))
            {
                if let Some(end) = line.iter().position(|b| *b == b'>') {
                    let name = line.get(RCPT.len()..end).unwrap_or_default();
                    if !name.is_empty() && !name.contains(&b'@') {
                        let mut l = line[..end].to_vec();
                        l.push(b'@');
                        l.extend_from_slice(self.st.hostname.as_bytes());
                        l.extend_from_slice(&line[end..]);
                        line = l;
                    }
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        let parsed = Request::parse(&mut line.iter()).map(|r| r.into_owned());
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                use smtp_proto::Error as E;
                let reply = match e {
                    E::UnknownCommand => "500 5.5.1 Command unrecognized\r\n".to_string(),
                    E::InvalidSenderAddress => {
                        "501 5.1.7 Bad sender address syntax\r\n".to_string()
                    }
                    E::InvalidRecipientAddress => {
                        "501 5.1.3 Bad recipient address syntax\r\n".to_string()
                    }
                    E::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
                    E::InvalidParameter { param } => {
                        format!("501 5.5.4 Invalid parameter {param}\r\n")
                    }
                    E::UnsupportedParameter { param } => {
                        format!(
                            "555 5.5.4 Unsupported parameter {}\r\n",
                            param.chars().take(40).collect::<String>()
                        )
                    }
                    _ => "500 5.5.2 Syntax error\r\n".to_string(),
                };
                self.idle += 1;
                return self.error(&reply).await;
            }
        };
        let in_tx = matches!(
            req,
            Request::Mail { .. }
                | Request::Rcpt { .. }
                | Request::Data
                | Request::Bdat { .. }
                | Request::Burl { .. }
        );
        if !in_tx {
            self.idle += 1;
            if self.idle > self.st.max_idle_commands {
                self.reply("421 4.7.0 Too many commands without mail, closing connection\r\n");
                return Ok(Flow::Close);
            }
        }
        match req {
            Request::Ehlo { host } => self.ehlo(host, true).await,
            Request::Helo { host } => self.ehlo(host, false).await,
            Request::StartTls => self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size as u64, is_last).await,
            Request::Burl { uri, is_last } => Box::pin(self.burl(uri, is_last)).await,
            Request::Rset => {
                if let Some(tx) = self.tx.take() {
                    tx.abort(self.sh).await;
                }
                self.reply("250 2.0.0 Ok\r\n");
                Ok(Flow::Continue)
            }
            Request::Noop { .. } => {
                self.reply("250 2.0.0 Ok\r\n");
                Ok(Flow::Continue)
            }
            Request::Help { .. } => {
                self.reply("214 2.0.0 scorpiox ESMTP; see RFC 5321\r\n");
                Ok(Flow::Continue)
            }
            Request::Vrfy { .. } | Request::Expn { .. } => {
                self.reply(
                    "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n",
                );
                Ok(Flow::Continue)
            }
            Request::Quit => {
                self.reply(&format!(
                    "221 2.0.0 {} closing connection\r\n",
                    self.st.hostname
                ));
                Ok(Flow::Close)
            }
            _ => self.error("502 5.5.1 Command not implemented\r\n").await,
        }
    }

    async fn ehlo(&mut self, host: String, esmtp: bool) -> std::io::Result<Flow> {
        // A fault point for the tests of panic containment (crate::fault).
        if crate::fault::armed() && host == "sx-fault-panic.invalid" {
            panic!("fault injected by EHLO sx-fault-panic.invalid");
        }
        if host.is_empty() || host.len() > 255 {
            return self.error("501 5.5.4 Syntax: EHLO hostname\r\n").await;
        }
        if let Some(tx) = self.tx.take() {
            tx.abort(self.sh).await;
        }
        self.helo = Some(host);
        self.esmtp = esmtp;
        if !esmtp {
            let r = format!("250 {}\r\n", self.st.hostname);
            self.reply(&r);
            return Ok(Flow::Continue);
        }
        let tls = self.r.get_ref().is_tls();
        let mut caps = vec![
            format!("{} Hello [{}]", self.st.hostname, self.peer.ip()),
            "PIPELINING".into(),
            format!("SIZE {}", self.st.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if !tls && self.sh.tls.acceptor().is_some() && self.local.is_none() {
            caps.push("STARTTLS".into());
        }
        if tls && self.submission() && self.auth.is_none() {
            caps.push("AUTH PLAIN LOGIN".into());
        }
        // RFC 4468: message content from URLAUTH URLs of this server's IMAP.
        if tls && self.submission() {
            caps.push(format!("BURL imap://{}", self.st.hostname));
        }
        caps.push("HELP".into());
        let mut r = String::new();
        for (i, c) in caps.iter().enumerate() {
            let sep = if i + 1 == caps.len() { ' ' } else { '-' };
            r.push_str(&format!("250{sep}{c}\r\n"));
        }
        self.reply(&r);
        Ok(Flow::Continue)
    }

    async fn starttls(&mut self) -> std::io::Result<Flow> {
        if self.local.is_some() {
            return self.error("502 5.5.1 No TLS on the local socket\r\n").await;
        }
        if self.r.get_ref().is_tls() {
            return self.error("503 5.5.1 TLS already active\r\n").await;
        }
        if self.sh.tls.acceptor().is_none() {
            return self.error("454 4.7.0 TLS not available\r\n").await;
        }
        self.reply("220 2.0.0 Ready to start TLS\r\n");
        self.flush().await?;
        // RFC 3207 §4.2: forget everything, and drop whatever was pipelined after
        // STARTTLS (the buffered bytes go with the BufReader).
        let reader = std::mem::replace(&mut self.r, BufReader::new(Conn::Closed));
        let Conn::Plain(tcp) = reader.into_inner() else {
            return Ok(Flow::Close);
        };
        match self.sh.tls.accept(tcp, self.timeout()).await {
            Ok(conn) => {
                log::info!(
                    "{}: STARTTLS with {}: {}",
                    self.service.name(),
                    self.peer,
                    conn.tls_info().unwrap_or_default()
                );
                self.r = BufReader::new(conn);
            }
            Err(e) => {
                log::info!(
                    "{}: STARTTLS with {} failed: {e}",
                    self.service.name(),
                    self.peer
                );
                return Ok(Flow::Close);
            }
        }
        if let Some(tx) = self.tx.take() {
            tx.abort(self.sh).await;
        }
        self.helo = None;
        self.esmtp = false;
        self.auth = None;
        Ok(Flow::Continue)
    }

    async fn read_auth_line(&mut self) -> std::io::Result<Option<String>> {
        self.flush().await?;
        let t = self.timeout();
        match read_line(&mut self.r, MAX_LINE, t).await? {
            Line::Ok(l) => Ok(Some(String::from_utf8_lossy(&l).into_owned())),
            Line::TooLong | Line::Eof => Ok(None),
        }
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> std::io::Result<Flow> {
        if !self.submission() {
            return self
                .error("503 5.5.1 AUTH not available on this port\r\n")
                .await;
        }
        if !self.r.get_ref().is_tls() {
            return self
                .error("538 5.7.11 Encryption required: issue STARTTLS first\r\n")
                .await;
        }
        if self.auth.is_some() {
            return self.error("503 5.5.1 Already authenticated\r\n").await;
        }
        if self.tx.is_some() {
            return self
                .error("503 5.5.1 AUTH not allowed during a mail transaction\r\n")
                .await;
        }
        let ip = self.peer.ip();
        let creds = if mechanism == AUTH_PLAIN {
            let resp = if initial.is_empty() {
                self.reply("334 \r\n");
                match self.read_auth_line().await? {
                    Some(l) => l,
                    None => return Ok(Flow::Close),
                }
            } else {
                initial
            };
            if resp.trim() == "*" {
                return self.error("501 5.0.0 Authentication cancelled\r\n").await;
            }
            auth::unb64(&resp).and_then(|raw| parse_plain(&raw))
        } else if mechanism == AUTH_LOGIN {
            let user = if initial.is_empty() {
                self.reply(&format!("334 {}\r\n", auth::b64("Username:")));
                match self.read_auth_line().await? {
                    Some(l) => l,
                    None => return Ok(Flow::Close),
                }
            } else {
                initial
            };
            if user.trim() == "*" {
                return self.error("501 5.0.0 Authentication cancelled\r\n").await;
            }
            self.reply(&format!("334 {}\r\n", auth::b64("Password:")));
            let pw = match self.read_auth_line().await? {
                Some(l) => l,
                None => return Ok(Flow::Close),
            };
            if pw.trim() == "*" {
                return self.error("501 5.0.0 Authentication cancelled\r\n").await;
            }
            let u = auth::unb64(&user).and_then(|u| String::from_utf8(u).ok());
            let p = auth::unb64(&pw).and_then(|p| String::from_utf8(p).ok());
            u.zip(p)
        } else {
            return self
                .error("504 5.5.4 Unrecognized authentication type\r\n")
                .await;
        };
        let Some((user, pw)) = creds else {
            return self
                .error("501 5.5.2 Cannot decode AUTH response\r\n")
                .await;
        };
        let req = KeyRequest::CheckPassword {
            user: user.clone(),
            password: pw,
            client: ip,
        };
        let safe_user = crate::log::cut(&user, 64);
        // keyholder answers a failure only after the guard's delay.
        match self.sh.keyholder.call(&req, &[]).await {
            Ok((KeyReply::Password(Some(account)), _)) => {
                log::info!("{}: auth user={account} rip={}", self.service.name(), ip);
                self.auth = Some(account);
                self.reply("235 2.7.0 Authentication successful\r\n");
                Ok(Flow::Continue)
            }
            Ok((KeyReply::LoginLocked, _)) => {
                log::info!(
                    "{}: auth refused user={safe_user} rip={ip}: too many failures",
                    self.service.name()
                );
                self.reply("421 4.7.0 Too many authentication failures, try later\r\n");
                Ok(Flow::Close)
            }
            Ok((KeyReply::Password(None), _)) => {
                log::info!(
                    "{}: auth failed user={safe_user} rip={ip}",
                    self.service.name()
                );
                self.error("535 5.7.8 Authentication credentials invalid\r\n")
                    .await
            }
            Ok((other, _)) => {
                log::warn!("{}: keyholder: {other:?}", self.service.name());
                self.reply("454 4.7.0 Temporary authentication failure\r\n");
                Ok(Flow::Continue)
            }
            Err(e) => {
                log::warn!("{}: keyholder unavailable: {e}", self.service.name());
                self.reply("454 4.7.0 Temporary authentication failure\r\n");
                Ok(Flow::Continue)
            }
        }
    }

    /// Before a transaction: the rate limits (421 4.7.0, the session ends),
    /// then on port 25 the DNS lists (554 5.7.1). The reply, if refused.
    async fn screen(&mut self, from: &str) -> Option<String> {
        use super::abuse::{dnsbl, rate};
        let ip = self.peer.ip();
        let now = std::time::Instant::now();
        let limits = self.sh.limits();
        if !limits.client.take(&rate::client_key(ip), now) {
            return Some(format!(
                "421 4.7.0 [{ip}] Too many messages from your address, try again later\r\n"
            ));
        }
        // The null sender (bounces) is nobody's to limit.
        let sender = match &self.auth {
            Some(user) => user.to_ascii_lowercase(),
            None => from.to_ascii_lowercase(),
        };
        if !sender.is_empty() && !limits.sender.take(&sender, now) {
            return Some(
                "421 4.7.0 Too many messages from this sender, try again later\r\n".into(),
            );
        }
        let ab = &self.st.abuse;
        if self.auth.is_some() || self.service != Service::Smtp || ab.dnsbl.is_empty() {
            return None;
        }
        let resolver = self.sh.resolver()?;
        let (bl, wl) = (ab.dnsbl.clone(), ab.dnswl.clone());
        if !wl.is_empty() && dnsbl::first_listing(&resolver, ip, &wl).await.is_some() {
            self.allowlisted = true;
            return None;
        }
        let zone = dnsbl::first_listing(&resolver, ip, &bl).await?;
        Some(format!(
            "554 5.7.1 Service unavailable; client [{ip}] blocked using {zone}\r\n"
        ))
    }

    /// Port 25 greylisting (EMAIL_GREYLIST): the 451 for a triplet (client
    /// network, sender, recipient) not yet seen long enough ago. queue keeps
    /// the state; when it cannot answer, the recipient passes.
    async fn greylisted(&mut self, rcpt: &str) -> Option<String> {
        let (delay, expire) = self.st.abuse.greylist?;
        if self.auth.is_some() || self.service != Service::Smtp || self.allowlisted {
            return None;
        }
        let net = super::abuse::rate::network_key(self.peer.ip());
        let from = self.tx.as_ref().map(|t| t.from.to_ascii_lowercase())?;
        let triplet = format!("{net} <{from}> <{}>", rcpt.to_ascii_lowercase());
        let ask = SmtpToQueue::Greylist {
            net,
            triplet,
            delay,
            expire,
        };
        match tokio::time::timeout(Duration::from_secs(5), self.sh.queue.call(&ask, &[])).await {
            Ok(Ok((QueueToSmtp::Greylisted { wait }, _))) if wait > 0 => Some(format!(
                "451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, try again in {wait} seconds\r\n"
            )),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                log::info!("greylist: queue did not answer: {e}");
                None
            }
            Err(_) => {
                log::info!("greylist: queue did not answer in 5 s");
                None
            }
        }
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>) -> std::io::Result<Flow> {
        if self.helo.is_none() {
            return self.error("503 5.5.1 Send EHLO or HELO first\r\n").await;
        }
        if self.submission() && self.auth.is_none() {
            let r = "530 5.7.0 Authentication required\r\n";
            self.reject_log("MAIL", r);
            return self.error(r).await;
        }
        if self.tx.is_some() {
            return self.error("503 5.5.1 Nested MAIL command\r\n").await;
        }
        if from.size as u64 > self.st.max_message_size {
            let r = "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
            self.reject_log("MAIL", r);
            return self.error(r).await;
        }
        // Parameters of extensions not advertised (RFC 5321 4.1.1.11). BINARYMIME
        // would need BDAT-only bodies and binary-safe delivery all the way.
        if let Some(p) = [
            (MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
            (MAIL_REQUIRETLS, "REQUIRETLS"),
            (MAIL_CONPERM, "CONPERM"),
            (MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE, "BY"),
        ]
        .iter()
        .find(|(bit, _)| from.flags & bit != 0)
        .map(|(_, name)| name)
        {
            let r = format!("555 5.5.4 Unsupported option: {p}\r\n");
            self.reject_log("MAIL", &r);
            return self.error(&r).await;
        }
        let mut addr = from.address.trim().to_string();
        if let Some(u) = &self.local {
            // Who sends is who the kernel says; root alone may name another
            // sender (sendmail -f), as Postfix's trusted users may.
            if u.uid != 0 || addr.is_empty() {
                addr = format!("{}@{}", u.name, self.st.hostname);
            } else if !addr.contains('@') {
                addr = format!("{addr}@{}", self.st.hostname);
            }
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !addr.is_ascii() && !smtputf8 {
            return self
                .error("553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n")
                .await;
        }
        if !addr.is_empty()
            && addr
                .rsplit_once('@')
                .is_none_or(|(l, d)| l.is_empty() || d.is_empty())
        {
            return self.error("501 5.1.7 Bad sender address syntax\r\n").await;
        }
        if let Some(r) = self.screen(&addr).await {
            self.reject_log("MAIL", &r);
            if r.starts_with("421") {
                self.reply(&r);
                return Ok(Flow::Close);
            }
            return self.error(&r).await;
        }
        if let Some(user) = &self.auth {
            if addr.is_empty() || !self.sh.dir().owns(user, &addr) {
                let r = format!(
                    "553 5.7.1 <{addr}>: Sender address rejected: not owned by user {user}\r\n"
                );
                self.reject_log("MAIL", &r);
                return self.error(&r).await;
            }
        }
        let ret_full = if from.flags & MAIL_RET_FULL != 0 {
            Some(true)
        } else if from.flags & MAIL_RET_HDRS != 0 {
            Some(false)
        } else {
            None
        };
        let mut milters = Vec::new();
        let mut discard = false;
        if self.auth.is_none() && self.service == Service::Smtp && !self.st.abuse.milters.is_empty()
        {
            let specs = self.st.abuse.milters.clone();
            let hostname = self.st.hostname.clone();
            let helo = self.helo.clone().unwrap_or_default();
            let begin = super::milter::Begin {
                hostname: &hostname,
                client: self.peer,
                helo: &helo,
                from: &addr,
                broker: self.sh.broker.as_ref(),
            };
            let (lives, verdict) = super::milter::begin(&specs, &begin).await;
            match verdict {
                super::milter::Verdict::Continue => milters = lives,
                super::milter::Verdict::Discard => {
                    milters = lives;
                    discard = true;
                }
                super::milter::Verdict::Reject(r) | super::milter::Verdict::Tempfail(r) => {
                    self.reject_log("MAIL", &r);
                    return self.error(&r).await;
                }
            }
        }
        self.tx = Some(Tx {
            from: lower_domain(&addr),
            ret_full,
            envid: from.env_id,
            body_8bit: from.flags & MAIL_BODY_8BITMIME != 0,
            smtputf8,
            rcpts: Vec::new(),
            rcpt_count: 0,
            rcpt_bytes: 0,
            bdat: None,
            trace_len: 0,
            milters,
            discard,
        });
        self.reply("250 2.1.0 Ok\r\n");
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, to: smtp_proto::RcptTo<String>) -> std::io::Result<Flow> {
        let Some(count) = self.tx.as_ref().map(|t| t.rcpt_count) else {
            return self.error("503 5.5.1 Need MAIL before RCPT\r\n").await;
        };
        if count >= self.st.max_recipients {
            let r = "452 4.5.3 Too many recipients\r\n";
            self.reject_log("RCPT", r);
            self.reply(r);
            return Ok(Flow::Continue);
        }
        let addr = lower_domain(to.address.trim());
        if addr.is_empty() {
            return self
                .error("501 5.1.3 Bad recipient address syntax\r\n")
                .await;
        }
        if !addr.is_ascii() && !self.tx.as_ref().is_some_and(|t| t.smtputf8) {
            return self
                .error("553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n")
                .await;
        }
        let resolved = if self.local.is_some() {
            self.sh.dir().resolve_local(&addr)
        } else {
            self.sh.dir().resolve(&addr)
        };
        let trusted = self.auth.is_some() || self.local.is_some();
        let dests = match resolved {
            Ok(d) => d,
            Err(Refusal::Relay) if trusted && !addr.contains(['%', '!', '"']) => {
                match addr.rsplit_once('@') {
                    Some((l, d))
                        if !self.sh.dir().is_local_domain(d)
                            && !l.is_empty()
                            && !l.contains('@') =>
                    {
                        vec![Dest::Remote {
                            address: addr.clone(),
                        }]
                    }
                    _ => {
                        let r =
                            format!("553 5.1.3 <{addr}>: Recipient address syntax not allowed\r\n");
                        self.reject_log("RCPT", &r);
                        return self.error(&r).await;
                    }
                }
            }
            Err(Refusal::Relay) => {
                let r = format!("554 5.7.1 <{addr}>: Relay access denied\r\n");
                self.reject_log("RCPT", &r);
                return self.error(&r).await;
            }
            Err(Refusal::Unknown) => {
                let r = format!("550 5.1.1 <{addr}>: Recipient address rejected: User unknown\r\n");
                self.reject_log("RCPT", &r);
                return self.error(&r).await;
            }
            Err(Refusal::Syntax) => {
                let r = format!("553 5.1.3 <{addr}>: Recipient address syntax not allowed\r\n");
                self.reject_log("RCPT", &r);
                return self.error(&r).await;
            }
        };
        let new: Vec<Recipient> = dests
            .into_iter()
            .map(|dest| Recipient {
                address: addr.clone(),
                orcpt: to.orcpt.clone(),
                notify: to.flags,
                dest,
                state: RcptState::Pending,
                remote_mta: None,
            })
            .collect();
        if let Some(r) = self.greylisted(&addr).await {
            self.reject_log("RCPT", &r);
            self.reply(&r);
            return Ok(Flow::Continue);
        }
        if let Some(tx) = self.tx.as_mut() {
            if !tx.milters.is_empty() {
                let mut lives = std::mem::take(&mut tx.milters);
                let verdict = super::milter::rcpt(&mut lives, &addr).await;
                if let Some(tx) = self.tx.as_mut() {
                    tx.milters = lives;
                    match verdict {
                        super::milter::Verdict::Continue => {}
                        super::milter::Verdict::Discard => tx.discard = true,
                        super::milter::Verdict::Reject(r) | super::milter::Verdict::Tempfail(r) => {
                            self.reject_log("RCPT", &r);
                            self.reply(&r);
                            return Ok(Flow::Continue);
                        }
                    }
                }
            }
        }
        let bytes = ipc::frame::encoded_len(&new);
        // RFC 5321 4.5.3.1.10: a client sends the rest in another transaction.
        // Aliases with many targets count by what they expand to.
        let used = self.tx.as_ref().map_or(0, |t| t.rcpt_bytes);
        if used.saturating_add(bytes) > MAX_RCPT_BYTES {
            let r = "452 4.5.3 Too many recipients\r\n";
            self.reject_log("RCPT", r);
            self.reply(r);
            return Ok(Flow::Continue);
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.rcpt_bytes += bytes;
            tx.rcpt_count += 1;
            tx.rcpts.extend(new);
        }
        self.reply("250 2.1.5 Ok\r\n");
        Ok(Flow::Continue)
    }

    /// Ask queue for a spool file and write the trace header into it.
    async fn open_spool(&mut self) -> Result<(String, BufWriter<tokio::fs::File>), String> {
        let (reply, fds) = self
            .sh
            .queue
            .call(&SmtpToQueue::Create, &[])
            .await
            .map_err(|e| e.to_string())?;
        let id = match reply {
            QueueToSmtp::Created { id } => id,
            QueueToSmtp::Error(e) => return Err(e),
            other => return Err(format!("unexpected {other:?}")),
        };
        let fd = fds.into_iter().next().ok_or("no spool fd")?;
        let mut w = BufWriter::with_capacity(
            64 * 1024,
            tokio::fs::File::from_std(std::fs::File::from(fd)),
        );
        let tls = self.r.get_ref().tls_info();
        let single = self
            .tx
            .as_ref()
            .filter(|t| t.rcpt_count == 1)
            .and_then(|t| t.rcpts.first());
        let trace = Trace {
            helo: self.helo.as_deref().unwrap_or(""),
            ip: self.peer.ip(),
            hostname: &self.st.hostname,
            proto: self.proto(),
            id: &id,
            tls: tls.as_deref(),
            auth: self.auth.as_deref(),
            local: self.local.as_ref().map(|u| (u.name.as_str(), u.uid)),
            rcpt: single.map(|r| r.address.as_str()),
            time: now(),
        };
        let header = trace.header();
        w.write_all(header.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(tx) = self.tx.as_mut() {
            tx.trace_len = header.len() as u64;
        }
        Ok((id, w))
    }

    fn tx_ready(&self) -> Option<&'static str> {
        match &self.tx {
            None => Some("503 5.5.1 Need MAIL command\r\n"),
            Some(t) if t.rcpts.is_empty() => Some("554 5.5.1 No valid recipients\r\n"),
            _ => None,
        }
    }

    async fn data(&mut self) -> std::io::Result<Flow> {
        if let Some(r) = self.tx_ready() {
            return self.error(r).await;
        }
        if self.tx.as_ref().is_some_and(|t| t.bdat.is_some()) {
            return self
                .error("503 5.5.1 DATA not allowed after BDAT\r\n")
                .await;
        }
        let (id, mut w) = match self.open_spool().await {
            Ok(x) => x,
            Err(e) => {
                log::error!("queue unavailable: {e}");
                self.reply("451 4.3.0 Queue unavailable, try again later\r\n");
                return Ok(Flow::Continue);
            }
        };
        self.reply("354 End data with <CR><LF>.<CR><LF>\r\n");
        self.flush().await?;
        let max = self.st.max_message_size;
        let t = self.timeout();
        let fd = self.r.get_ref().raw_fd();
        let ack = move || {
            if let Some(fd) = fd {
                crate::net::quickack(fd);
            }
        };
        let res = data::read_data(&mut self.r, Some(&mut w), max, t, ack).await;
        let out = match res {
            Ok(o) => o,
            Err(e) => {
                let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
                self.tx = None;
                if e.kind() == std::io::ErrorKind::TimedOut {
                    self.reply("421 4.4.2 Timeout in DATA, closing connection\r\n");
                }
                return Err(e);
            }
        };
        self.finish(id, w, out).await
    }

    async fn bdat(&mut self, len: u64, last: bool) -> std::io::Result<Flow> {
        if let Some(r) = self.tx_ready() {
            // RFC 3030: the chunk must still be read (and dropped) to stay in sync.
            let mut o = Outcome::default();
            let t = self.timeout();
            data::read_chunk::<_, tokio::fs::File>(&mut self.r, None, len, &mut o, 0, t).await?;
            return self.error(r).await;
        }
        let Some((id, mut w, mut out)) = self.chunk_spool().await else {
            let mut o = Outcome::default();
            let t = self.timeout();
            data::read_chunk::<_, tokio::fs::File>(&mut self.r, None, len, &mut o, 0, t).await?;
            self.reply("451 4.3.0 Queue unavailable, try again later\r\n");
            return Ok(Flow::Continue);
        };
        let (max, t) = (self.st.max_message_size, self.timeout());
        if let Err(e) = data::read_chunk(&mut self.r, Some(&mut w), len, &mut out, max, t).await {
            let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
            self.tx = None;
            return Err(e);
        }
        if !last {
            if let Some(tx) = self.tx.as_mut() {
                tx.bdat = Some((id, w, out));
            }
            self.reply(&format!("250 2.0.0 {len} octets received\r\n"));
            return Ok(Flow::Continue);
        }
        out.finish_chunks();
        self.finish(id, w, out).await
    }

    /// The spool file and running outcome a BDAT or BURL chunk goes into:
    /// the transaction's, or a new one from queue at its first chunk; None
    /// (logged) when queue cannot give one.
    async fn chunk_spool(&mut self) -> Option<(String, BufWriter<tokio::fs::File>, Outcome)> {
        if let Some(open) = self.tx.as_mut().and_then(|t| t.bdat.take()) {
            return Some(open);
        }
        match self.open_spool().await {
            Ok((id, w)) => Some((id, w, Outcome::default())),
            Err(e) => {
                log::error!("queue unavailable: {e}");
                None
            }
        }
    }

    /// BURL (RFC 4468): a chunk of the message from a URLAUTH URL, which
    /// imap resolves for the authenticated user and hands over as an fd; as
    /// a BDAT chunk from there on (bare CR/LF and size checks included).
    async fn burl(&mut self, url: String, last: bool) -> std::io::Result<Flow> {
        let Some(user) = self.auth.clone() else {
            return self
                .error("530 5.7.0 Authentication required for BURL\r\n")
                .await;
        };
        if let Some(r) = self.tx_ready() {
            return self.error(r).await;
        }
        let req = ipc::messages::SmtpToImap::UrlFetch {
            user,
            url: url.clone(),
        };
        let fetched = match self.sh.imap.call(&req, &[]).await {
            Ok((ipc::messages::ImapToSmtp::Fetched { start, len }, fds)) => fds
                .into_iter()
                .next()
                .map(|fd| (std::fs::File::from(fd), start, len)),
            Ok(_) => None,
            Err(e) => {
                log::warn!("BURL: imap: {e}");
                None
            }
        };
        let Some((file, start, len)) = fetched else {
            self.reject_log("BURL", "554 5.6.6 IMAP URL resolution failed");
            self.reply("554 5.6.6 IMAP URL resolution failed\r\n");
            return Ok(Flow::Continue);
        };
        let Some((id, mut w, mut out)) = self.chunk_spool().await else {
            self.reply("451 4.3.0 Queue unavailable, try again later\r\n");
            return Ok(Flow::Continue);
        };
        let mut src = {
            use std::io::Seek;
            let mut f = file;
            f.seek(std::io::SeekFrom::Start(start))?;
            tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(
                tokio::fs::File::from_std(f),
                len,
            ))
        };
        let (max, t) = (self.st.max_message_size, self.timeout());
        if let Err(e) = data::read_chunk(&mut src, Some(&mut w), len, &mut out, max, t).await {
            log::warn!("{id}: BURL content: {e}");
            let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
            self.tx = None;
            self.reply("451 4.3.0 Cannot read the URL's content, try again later\r\n");
            return Ok(Flow::Continue);
        }
        if !last {
            if let Some(tx) = self.tx.as_mut() {
                tx.bdat = Some((id, w, out));
            }
            self.reply(&format!("250 2.0.0 {len} octets received\r\n"));
            return Ok(Flow::Continue);
        }
        out.finish_chunks();
        self.finish(id, w, out).await
    }

    /// End of a message: refuse it, or have queue commit it and only then say 250.
    /// Port 25: who sent it (`checks/spool.rs`), on owned values: the
    /// session is not Sync.
    fn check(&self, file: &std::fs::File, tx: &Tx) -> Result<checks::Job, String> {
        Ok(checks::Job {
            file: file
                .try_clone()
                .map_err(|_| String::from(checks::READ_FAILED))?,
            trace_len: tx.trace_len,
            dir: self.sh.dir(),
            resolver: self.sh.resolver(),
            cfg: self.st.checks.clone(),
            hostname: self.st.hostname.clone(),
            ip: self.peer.ip(),
            helo: self.helo.clone().unwrap_or_default(),
            from: tx.from.clone(),
        })
    }
}

impl Session<'_> {
    async fn finish(
        &mut self,
        id: String,
        mut w: BufWriter<tokio::fs::File>,
        out: Outcome,
    ) -> std::io::Result<Flow> {
        let Some(mut tx) = self.tx.take() else {
            return Ok(Flow::Close);
        };
        if out.ended_bare {
            let r = "521 5.5.2 Bare LF line end received (RFC 5321 2.3.8); closing connection\r\n";
            let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
            self.reject_log("END-OF-MESSAGE", r);
            self.reply(r);
            return Ok(Flow::Close);
        }
        let refusal = if out.bare_newline {
            Some("550 5.6.0 Message contains bare CR or LF characters (RFC 5321 2.3.8)\r\n".into())
        } else if out.too_big {
            Some("552 5.3.4 Message size exceeds fixed maximum message size\r\n".into())
        } else if out.head.too_big {
            Some("552 5.3.4 Message header size exceeds limit\r\n".into())
        } else {
            self.auth
                .as_deref()
                .and_then(|user| foreign_from(&self.sh.dir(), user, &out.head.bytes))
        };
        if let Some(r) = refusal {
            let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
            self.reject_log("END-OF-MESSAGE", &r);
            self.reply(&r);
            return Ok(Flow::Continue);
        }
        let flushed = if out.write_failed {
            Ok(())
        } else {
            w.flush().await
        };
        let file = w.into_inner().into_std().await;
        let no_space = match &flushed {
            Err(e) => {
                log::error!("{id}: cannot write spool file: {e}");
                Some(data::is_no_space(e))
            }
            Ok(()) if out.write_failed => Some(out.no_space),
            Ok(()) => None,
        };
        if let Some(no_space) = no_space {
            log::warn!(
                "{id}: message from [{}] refused: spool {}",
                self.peer.ip(),
                if no_space { "full" } else { "write error" }
            );
            let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
            self.reply(if no_space {
                "452 4.3.1 Insufficient system storage, try again later\r\n"
            } else {
                "451 4.3.0 Error writing message, try again later\r\n"
            });
            return Ok(Flow::Continue);
        }
        let mut size = out.size;
        let mut junk = false;
        let mut summary = None;
        if self.auth.is_none() && self.service == Service::Smtp && self.st.checks.enabled {
            let checked = match self.check(&file, &tx) {
                Ok(job) => checks::run(job).await,
                Err(r) => Err(r),
            };
            match checked {
                Ok(c) => {
                    size = (size as i64 + c.grew).max(0) as u64;
                    junk = c.junk;
                    summary = Some(c.summary);
                }
                Err(reply) => {
                    let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
                    self.reject_log("END-OF-MESSAGE", &reply);
                    self.reply(&reply);
                    return Ok(Flow::Continue);
                }
            }
        }
        use super::milter::Filtered;
        let filtered = if tx.discard {
            Some(Filtered::Discard)
        } else if tx.milters.is_empty() {
            None
        } else {
            let lives = std::mem::take(&mut tx.milters);
            Some(match file.try_clone() {
                Ok(f) => {
                    super::milter::filter(super::milter::Job {
                        file: f,
                        lives,
                        queue_id: id.clone(),
                        max_size: self.st.max_message_size,
                    })
                    .await
                }
                Err(_) => Filtered::Refuse(checks::READ_FAILED.into()),
            })
        };
        match filtered {
            None => {}
            Some(Filtered::Go { grew, junk: j }) => {
                size = (size as i64 + grew).max(0) as u64;
                junk |= j;
            }
            Some(Filtered::Refuse(reply)) => {
                let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
                self.reject_log("END-OF-MESSAGE", &reply);
                self.reply(&reply);
                return Ok(Flow::Continue);
            }
            Some(Filtered::Discard) => {
                // The client is told it was taken; nothing is kept.
                let _ = self
                    .sh
                    .queue
                    .notify(&SmtpToQueue::Abort { id: id.clone() }, &[])
                    .await;
                log::info!("{id}: from=<{}> discarded by a milter", tx.from);
                self.reply(&format!("250 2.0.0 Ok: queued as {id}\r\n"));
                return Ok(Flow::Continue);
            }
        }
        // RFC 6409 8.2, 8.3: a submission server adds what the client left out,
        // before anything is signed (a next hop adding them breaks DKIM).
        if self.auth.is_some() && out.head.complete {
            let add = missing_fields(&out.head.bytes, &id, &self.st.hostname, now());
            if !add.is_empty() {
                let (at, ins) = (tx.trace_len, add.clone().into_bytes());
                let res = match file.try_clone() {
                    Ok(f) => tokio::task::spawn_blocking(move || {
                        super::spool_edit::splice(&f, at, 0, &ins)
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r),
                    Err(e) => Err(e),
                };
                if res.is_err() {
                    log::error!("{id}: cannot add {}", add.trim_end());
                    let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
                    self.reply("451 4.3.0 Error writing message, try again later\r\n");
                    return Ok(Flow::Continue);
                }
                size += add.len() as u64;
            }
        }
        drop(file);
        let envelope = Envelope {
            id: id.clone(),
            from: tx.from.clone(),
            recipients: tx.rcpts,
            arrived: now(),
            size,
            ret_full: tx.ret_full,
            envid: tx.envid,
            body_8bit: tx.body_8bit,
            smtputf8: tx.smtputf8,
            helo: self.helo.clone().unwrap_or_default(),
            client_ip: self.peer.ip().to_string(),
            auth: self.envelope_auth(),
            warned: false,
            junk,
        };
        let nrcpt = envelope.recipients.len();
        match self
            .sh
            .queue
            .call(&SmtpToQueue::Commit { envelope }, &[])
            .await
        {
            Ok((QueueToSmtp::Committed { id: cid }, _)) if cid == id => {
                let tls = self.r.get_ref().tls_info();
                let checks = match &summary {
                    Some(c) if junk => format!(" {c} folder=Junk"),
                    Some(c) => format!(" {c}"),
                    None => String::new(),
                };
                log::info!(
                    "{id}: from=<{}> size={} nrcpt={nrcpt} proto={} tls={} auth={} client=[{}] helo=<{}>{checks}",
                    tx.from,
                    out.size,
                    self.proto(),
                    tls.as_deref().and_then(|t| t.split(' ').next()).unwrap_or("none"),
                    self.envelope_auth().as_deref().unwrap_or("-"),
                    self.peer.ip(),
                    self.helo.as_deref().unwrap_or("")
                );
                crate::stats::count(ipc::messages::Event::Accepted);
                self.reply(&format!("250 2.0.0 Ok: queued as {id}\r\n"));
            }
            Ok((other, _)) => {
                log::error!("{id}: queue did not commit: {other:?}");
                self.reply("451 4.3.0 Queue error, try again later\r\n");
            }
            Err(e) => {
                // Never a false 250: without the commit the message is not ours.
                // A queue that is alive but did not answer drops the file.
                log::error!("{id}: queue unavailable at commit: {e}");
                let _ = self.sh.queue.notify(&SmtpToQueue::Abort { id }, &[]).await;
                self.reply("451 4.3.0 Queue unavailable, try again later\r\n");
            }
        }
        Ok(Flow::Continue)
    }
}

/// Submission: the header `From:` (what DKIM vouches for and DMARC checks) must
/// be one field whose every address the user may send as; the refusal
/// otherwise. A message with no From at all vouches for nobody and goes on.
fn foreign_from(dir: &crate::directory::Dir, user: &str, head: &[u8]) -> Option<String> {
    use mail_parser::HeaderName;
    let parsed = mail_parser::MessageParser::new().parse_headers(head);
    let froms: Vec<_> = parsed
        .as_ref()
        .map(|m| {
            m.headers()
                .iter()
                .filter(|h| h.name == HeaderName::From)
                .collect()
        })
        .unwrap_or_default();
    let from = match froms.as_slice() {
        [] => return None,
        [from] => from,
        _ => return Some("550 5.6.0 Message has more than one From: header field\r\n".into()),
    };
    let Some(list) = from.value().as_address() else {
        return Some("553 5.7.1 From: header has no address\r\n".into());
    };
    let mut any = false;
    for a in list.iter() {
        let addr = a.address().unwrap_or("");
        any = true;
        if addr.is_empty() || !dir.owns(user, addr) {
            let shown: String = addr.chars().filter(|c| !c.is_control()).take(256).collect();
            return Some(format!(
                "553 5.7.1 <{shown}>: From: header address rejected: not owned by user {user}\r\n"
            ));
        }
    }
    if !any {
        return Some("553 5.7.1 From: header has no address\r\n".into());
    }
    None
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Date:` and `Message-ID:` lines for what a submitted header lacks.
fn missing_fields(head: &[u8], id: &str, hostname: &str, t: u64) -> String {
    let has = |name: &[u8]| {
        head.split(|&b| b == b'\n').any(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l[name.len()..].trim_ascii_start().starts_with(b":")
        })
    };
    let mut add = String::new();
    if !has(b"Date") {
        add.push_str(&format!("Date: {}\r\n", super::received::rfc5322_date(t)));
    }
    if !has(b"Message-ID") {
        add.push_str(&format!("Message-ID: <{id}@{hostname}>\r\n"));
    }
    add
}

/// The domain lower-cased, the local part as given: only the receiving
/// server may interpret it (RFC 5321 2.4); local accounts are looked up
/// without case by the directory.
fn lower_domain(a: &str) -> String {
    match a.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => a.to_string(),
    }
}
