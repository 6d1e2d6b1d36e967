//! The MTA side of smtp: queue hands over one message and the recipients of one
//! domain (`QueueToMta::Send` + read-only fd); this sends it to the domain's next
//! hop (see route.rs) and answers one outcome per recipient. STARTTLS is used when
//! offered, without certificate checks (opportunistic, as an MTA does without
//! DANE/MTA-STS); the handshake signature is still verified.

use super::Shared;
use ipc::messages::{MtaToQueue, Outcome, QueueToMta};
use ipc::Channel;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Connect to ready-for-MAIL, all steps together (RFC 5321 4.5.3.2 allows a
/// greeting 5 minutes).
const OPEN_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn serve(chan: Channel<MtaToQueue, QueueToMta>, sh: Arc<Shared>) {
    let chan = Arc::new(chan);
    loop {
        let Some(r) = chan.recv_logged("queue (outbound)").await else {
            return;
        };
        let (chan, sh) = (chan.clone(), sh.clone());
        tokio::spawn(async move {
            let QueueToMta::Send { .. } = &r.msg;
            let reply = send(&sh, r.msg, r.fds.into_iter().next()).await;
            let _ = chan.send(r.id, &reply, &[]).await;
        });
    }
}

fn all(n: usize, o: Outcome) -> Vec<Outcome> {
    vec![o; n]
}

async fn send(sh: &Shared, msg: QueueToMta, fd: Option<OwnedFd>) -> MtaToQueue {
    let QueueToMta::Send {
        id, domain, rcpts, ..
    } = &msg;
    let n = rcpts.len();
    let st = sh.settings();
    let resolver = sh.resolver();
    let hop = match super::route::find(
        resolver.as_deref(),
        &st.routes,
        st.relay_host.as_deref(),
        domain,
    )
    .await
    {
        Ok(h) => h,
        Err(o) => {
            return MtaToQueue::Result {
                relay: "none".into(),
                outcomes: all(n, o),
                dsn: false,
            }
        }
    };
    let Some(fd) = fd else {
        return MtaToQueue::Result {
            relay: "none".into(),
            outcomes: all(
                n,
                Outcome::Deferred {
                    reply: "no message fd".into(),
                },
            ),
            dsn: false,
        };
    };
    // At most EMAIL_DOMAIN_CONCURRENCY connections to one domain at a time.
    let slots = match sh.domain_slots.lock() {
        Ok(mut m) => {
            if m.len() > 10_000 {
                m.retain(|_, s| Arc::strong_count(s) > 1);
            }
            m.entry(domain.to_ascii_lowercase())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(
                        st.domain_concurrency.max(1) as usize
                    ))
                })
                .clone()
        }
        Err(_) => Arc::new(tokio::sync::Semaphore::new(1)),
    };
    let _slot = slots.acquire_owned().await;
    // AUTH only towards the smarthost, and then only over TLS.
    let auth = if hop.relay {
        st.relay_auth.clone()
    } else {
        None
    };
    let need_tls = st.outbound_tls_required || auth.is_some();
    let mut last = String::from("no address to try");
    let mut last_relay = String::from("none");
    for t in &hop.targets {
        let (relay, addr) = (t.label(), t.addr);
        // A session left open by an earlier message to this address, if any.
        if let Some(mut sess) = take_idle(&sh.idle, addr) {
            let reset = tokio::time::timeout(TIMEOUT, cmd(&mut sess.s, "RSET")).await;
            if matches!(reset, Ok(Ok((250, _)))) {
                if let Ok(Ok(outcomes)) = tokio::time::timeout(
                    Duration::from_secs(600),
                    transaction(&mut sess, &msg, &fd),
                )
                .await
                {
                    log::info!("{id}: sent to {relay} for {domain}: {n} recipient(s) (connection reused, message {})", sess.uses);
                    let dsn = has(&sess.ehlo, "DSN");
                    put_idle(&sh.idle, addr, sess);
                    return MtaToQueue::Result {
                        relay,
                        outcomes,
                        dsn,
                    };
                }
            }
            // Stale or broken: fall through to a new connection.
        }
        // RFC 5321 5.1: a host that cannot give a usable session (no
        // connection, a 421 or 554 greeting, EHLO refused, no TLS where it is
        // required, AUTH refused) sends us on to the next address and MX.
        let opened =
            tokio::time::timeout(OPEN_TIMEOUT, open_usable(sh, addr, need_tls, auth.as_ref()))
                .await
                .unwrap_or_else(|_| Err("timed out opening a session".into()));
        let mut sess = match opened {
            Ok(sess) => sess,
            Err(why) => {
                log::info!("{id}: {relay}: {why}; trying the next host");
                last = format!("{relay}: {why}");
                last_relay = relay;
                continue;
            }
        };
        let dsn = has(&sess.ehlo, "DSN");
        let outcomes =
            match tokio::time::timeout(Duration::from_secs(600), transaction(&mut sess, &msg, &fd))
                .await
            {
                Ok(Ok(o)) => {
                    put_idle(&sh.idle, addr, sess);
                    o
                }
                Ok(Err(e)) => all(
                    n,
                    Outcome::Deferred {
                        reply: format!("{relay}: {e}"),
                    },
                ),
                Err(_) => all(
                    n,
                    Outcome::Deferred {
                        reply: format!("{relay}: timed out"),
                    },
                ),
            };
        log::info!("{id}: sent to {relay} for {domain}: {n} recipient(s)");
        return MtaToQueue::Result {
            relay,
            outcomes,
            dsn,
        };
    }
    MtaToQueue::Result {
        relay: last_relay,
        outcomes: all(n, Outcome::Deferred { reply: last }),
        dsn: false,
    }
}

/// Connect, greeting, EHLO, STARTTLS when offered, AUTH when due: a session
/// ready for MAIL, or why this host cannot give one.
async fn open_usable(
    sh: &Shared,
    addr: SocketAddr,
    need_tls: bool,
    auth: Option<&(String, ipc::messages::Redacted)>,
) -> Result<Session, String> {
    let tcp = match tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => {
            let _ = t.set_nodelay(true);
            t
        }
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connect timeout".into()),
    };
    let mut sess = match open_session(sh, tcp, addr).await {
        Ok(Ok(sess)) => sess,
        Ok(Err(reply)) => return Err(reply),
        Err(e) => return Err(e.to_string()),
    };
    if need_tls && !sess.tls {
        return Err("TLS required but STARTTLS not offered".into());
    }
    if let Some((user, pass)) = auth {
        let blob = super::auth::b64(&format!("\0{user}\0{}", pass.0));
        match cmd(&mut sess.s, &format!("AUTH PLAIN {blob}")).await {
            Ok((235, _)) => {}
            Ok((_, text)) => return Err(format!("AUTH as {user}: {text}")),
            Err(e) => return Err(format!("AUTH as {user}: {e}")),
        }
    }
    Ok(sess)
}

/// Read one (possibly multi-line) reply: code and text lines joined by a space.
async fn reply<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<(u16, String)> {
    let mut text = Vec::new();
    for _ in 0..100 {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, (&mut *r).take(2048).read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "reply timeout"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = line.trim_end();
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
            std::io::Error::other(format!(
                "bad reply {:?}",
                line.chars().take(60).collect::<String>()
            ))
        })?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, format!("{code} {}", text.join(" "))));
        }
    }
    Err(std::io::Error::other("reply too long"))
}

async fn cmd<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    line: &str,
) -> std::io::Result<(u16, String)> {
    // One write per command: two small writes would wait on Nagle and the
    // peer's delayed ACK (40 ms a command).
    s.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await?;
    s.get_mut().flush().await?;
    reply(s).await
}

fn classify(code: u16, text: String) -> Outcome {
    match code {
        200..=299 => Outcome::Sent { reply: text },
        500..=599 => Outcome::Failed { reply: text },
        _ => Outcome::Deferred { reply: text },
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open SMTP client session after EHLO (and STARTTLS when offered).
pub struct Session {
    s: BufReader<Box<dyn Io>>,
    ehlo: String,
    tls: bool,
    /// Delivered over this connection so far (for the log).
    uses: u32,
}

/// Idle sessions kept for the next message to the same address.
pub type Pool =
    std::sync::Mutex<std::collections::HashMap<SocketAddr, Vec<(Session, std::time::Instant)>>>;

const IDLE_MAX: Duration = Duration::from_secs(30);
const IDLE_PER_ADDR: usize = 4;

pub fn take_idle(pool: &Pool, addr: SocketAddr) -> Option<Session> {
    let mut m = pool.lock().ok()?;
    let v = m.get_mut(&addr)?;
    while let Some((sess, t)) = v.pop() {
        if t.elapsed() < IDLE_MAX {
            return Some(sess);
        }
    }
    None
}

pub fn put_idle(pool: &Pool, addr: SocketAddr, sess: Session) {
    if let Ok(mut m) = pool.lock() {
        m.retain(|_, v| {
            v.retain(|(_, t)| t.elapsed() < IDLE_MAX);
            !v.is_empty()
        });
        let v = m.entry(addr).or_default();
        if v.len() < IDLE_PER_ADDR {
            v.push((sess, std::time::Instant::now()));
        }
    }
}

/// Greeting, EHLO, STARTTLS when offered, EHLO again. `Ok(Err(reply))` when the
/// server does not want to talk (deferred).
async fn open_session(
    sh: &Shared,
    tcp: TcpStream,
    addr: SocketAddr,
) -> std::io::Result<Result<Session, String>> {
    let hostname = sh.settings().hostname;
    let mut s: BufReader<Box<dyn Io>> = BufReader::new(Box::new(tcp));
    let (code, text) = reply(&mut s).await?;
    if code != 220 {
        return Ok(Err(format!("greeting: {text}")));
    }
    let (code, ehlo) = cmd(&mut s, &format!("EHLO {hostname}")).await?;
    if code != 250 {
        return Ok(Err(format!("EHLO: {ehlo}")));
    }
    if has(&ehlo, "STARTTLS") {
        let (c, _) = cmd(&mut s, "STARTTLS").await?;
        if c == 220 {
            let tcp = s.into_inner();
            let connector = tokio_rustls::TlsConnector::from(client_config());
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            let t = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout")
                })??;
            let mut s: BufReader<Box<dyn Io>> = BufReader::new(Box::new(t));
            let (code, ehlo) = cmd(&mut s, &format!("EHLO {hostname}")).await?;
            if code != 250 {
                return Ok(Err(format!("EHLO after STARTTLS: {ehlo}")));
            }
            return Ok(Ok(Session {
                s,
                ehlo,
                tls: true,
                uses: 0,
            }));
        }
    }
    Ok(Ok(Session {
        s,
        ehlo,
        tls: false,
        uses: 0,
    }))
}

fn has(ehlo: &str, ext: &str) -> bool {
    ehlo.split(' ').any(|w| w.eq_ignore_ascii_case(ext))
}

/// One mail transaction on an open session; leaves it ready for the next one
/// (RSET after a refusal). An I/O error means the session is unusable.
async fn transaction(
    sess: &mut Session,
    msg: &QueueToMta,
    fd: &OwnedFd,
) -> std::io::Result<Vec<Outcome>> {
    let QueueToMta::Send {
        from,
        rcpts,
        rcpt_dsn,
        size,
        dkim,
        ret_full,
        envid,
        body_8bit,
        smtputf8,
        ..
    } = msg;
    let ehlo = sess.ehlo.clone();
    // A hop without 8BITMIME or SMTPUTF8 gets the message only if it does not
    // need them (RFC 6152 3, RFC 6531 3.2); we do not convert, so it bounces,
    // as Postfix does for SMTPUTF8 (5.6.7).
    let lacks_8bit = *body_8bit && !has(&ehlo, "8BITMIME");
    let lacks_utf8 = *smtputf8 && !has(&ehlo, "SMTPUTF8");
    if lacks_8bit || lacks_utf8 {
        let f = fd.try_clone()?;
        let size = *size;
        let content = tokio::task::spawn_blocking(move || Content::scan(&f.into(), size))
            .await
            .map_err(std::io::Error::other)??;
        let utf8_addr = !from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if lacks_utf8 && (utf8_addr || content.utf8_header) {
            let reply = "5.6.7 the next hop does not offer SMTPUTF8, which this message needs";
            return Ok(vec![
                Outcome::Failed {
                    reply: reply.into()
                };
                rcpts.len()
            ]);
        }
        if lacks_8bit && content.eight_bit {
            let reply =
                "5.6.3 the next hop does not offer 8BITMIME and 8-bit content is not converted";
            return Ok(vec![
                Outcome::Failed {
                    reply: reply.into()
                };
                rcpts.len()
            ]);
        }
    }
    let s = &mut sess.s;
    let dkim_len = dkim.as_ref().map(|d| d.len()).unwrap_or(0) as u64;
    let mut mail = format!("MAIL FROM:<{from}>");
    if has(&ehlo, "SIZE") {
        mail.push_str(&format!(" SIZE={}", size + dkim_len));
    }
    if *body_8bit && has(&ehlo, "8BITMIME") {
        mail.push_str(" BODY=8BITMIME");
    }
    if *smtputf8 && has(&ehlo, "SMTPUTF8") {
        mail.push_str(" SMTPUTF8");
    }
    if has(&ehlo, "DSN") {
        match ret_full {
            Some(true) => mail.push_str(" RET=FULL"),
            Some(false) => mail.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(e) = envid {
            if e.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'+' && b != b'=')
            {
                mail.push_str(&format!(" ENVID={e}"));
            }
        }
    }
    let dsn = has(&ehlo, "DSN");
    let rcpt_lines: Vec<String> = rcpts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut line = format!("RCPT TO:<{r}>");
            if let (true, Some((notify, orcpt))) = (dsn, rcpt_dsn.get(i)) {
                line.push_str(&dsn_params(*notify, orcpt.as_deref().unwrap_or(r)));
            }
            line
        })
        .collect();
    let (code, text) = if has(&ehlo, "PIPELINING") {
        // RFC 2920: MAIL, every RCPT and DATA in one write, the replies read
        // in order: one round trip instead of 2 + recipients.
        let mut batch = format!("{mail}\r\n");
        for l in &rcpt_lines {
            batch.push_str(l);
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        s.get_mut().write_all(batch.as_bytes()).await?;
        s.get_mut().flush().await?;
        let (mcode, mtext) = reply(s).await?;
        let mut outcomes = Vec::new();
        for _ in &rcpt_lines {
            let (c, t) = reply(s).await?;
            outcomes.push(classify(c, t));
        }
        let (dcode, dtext) = reply(s).await?;
        let refused = !(200..300).contains(&mcode)
            || !outcomes.iter().any(|o| matches!(o, Outcome::Sent { .. }));
        if refused {
            if dcode == 354 {
                // A server that said 354 anyway gets an empty message ended
                // at once, and RSET throws it away.
                let _ = cmd(s, ".").await?;
            }
            let _ = cmd(s, "RSET").await?;
            if !(200..300).contains(&mcode) {
                return Ok(vec![classify(mcode, mtext); rcpts.len()]);
            }
            return Ok(outcomes);
        }
        return finish_data(sess, outcomes, (dcode, dtext), dkim, fd, *size).await;
    } else {
        cmd(s, &mail).await?
    };
    if !(200..300).contains(&code) {
        let _ = cmd(s, "RSET").await?;
        return Ok(vec![classify(code, text); rcpts.len()]);
    }
    let mut outcomes = Vec::new();
    for line in &rcpt_lines {
        let (code, text) = cmd(s, line).await?;
        outcomes.push(classify(code, text));
    }
    if !outcomes.iter().any(|o| matches!(o, Outcome::Sent { .. })) {
        let _ = cmd(s, "RSET").await?;
        return Ok(outcomes);
    }
    let data = cmd(s, "DATA").await?;
    finish_data(sess, outcomes, data, dkim, fd, *size).await
}

/// After the reply to DATA: the message (354) or the refusal for every
/// recipient that had been accepted.
async fn finish_data(
    sess: &mut Session,
    outcomes: Vec<Outcome>,
    (code, text): (u16, String),
    dkim: &Option<String>,
    fd: &OwnedFd,
    size: u64,
) -> std::io::Result<Vec<Outcome>> {
    let s = &mut sess.s;
    if code != 354 {
        let o = if code < 400 {
            classify(451, format!("451 4.5.0 Unexpected reply to DATA: {text}"))
        } else {
            classify(code, text)
        };
        let _ = cmd(s, "RSET").await?;
        return Ok(outcomes
            .into_iter()
            .map(|x| {
                if matches!(x, Outcome::Sent { .. }) {
                    o.clone()
                } else {
                    x
                }
            })
            .collect());
    }
    {
        let w = s.get_mut();
        if let Some(h) = dkim {
            w.write_all(h.as_bytes()).await?;
        }
        // Our own file description, read from 0 whatever else read the fd.
        let mut file = tokio::fs::File::from_std(std::fs::File::from(fd.try_clone()?));
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(0)).await?;
        write_stuffed(&mut file.take(size), w).await?;
        w.flush().await?;
    }
    let (code, text) = reply(s).await?;
    let end = classify(code, text);
    sess.uses += 1;
    Ok(outcomes
        .into_iter()
        .map(|x| {
            if matches!(x, Outcome::Sent { .. }) {
                end.clone()
            } else {
                x
            }
        })
        .collect())
}

/// ` NOTIFY=... ORCPT=rfc822;...` for a RCPT to a hop that offers DSN (RFC
/// 3461 4.1, 4.2): the sender's NOTIFY as given, and the address the
/// recipient had here (an alias, before expansion), xtext-encoded; an address
/// that is not ASCII is not passed (utf-8-addr needs RFC 6533).
fn dsn_params(notify: u64, orcpt: &str) -> String {
    use smtp_proto::{
        RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS,
    };
    let mut out = String::new();
    if notify & RCPT_NOTIFY_NEVER != 0 {
        out.push_str(" NOTIFY=NEVER");
    } else {
        let names: Vec<&str> = [
            (RCPT_NOTIFY_SUCCESS, "SUCCESS"),
            (RCPT_NOTIFY_FAILURE, "FAILURE"),
            (RCPT_NOTIFY_DELAY, "DELAY"),
        ]
        .iter()
        .filter(|(bit, _)| notify & bit != 0)
        .map(|(_, n)| *n)
        .collect();
        if !names.is_empty() {
            out.push_str(&format!(" NOTIFY={}", names.join(",")));
        }
    }
    if orcpt.is_ascii() && !orcpt.is_empty() {
        out.push_str(" ORCPT=rfc822;");
        for b in orcpt.bytes() {
            if (33..=126).contains(&b) && b != b'+' && b != b'=' {
                out.push(b as char);
            } else {
                out.push_str(&format!("+{b:02X}"));
            }
        }
    }
    out
}

/// What a message holds that the next hop must be able to take.
#[derive(Debug, Default, PartialEq)]
struct Content {
    /// Any byte over 127 anywhere.
    eight_bit: bool,
    /// Non-ASCII in the header section.
    utf8_header: bool,
}

impl Content {
    /// Read the first `size` bytes of the spool file (its own offsets).
    fn scan(f: &std::fs::File, size: u64) -> std::io::Result<Content> {
        use std::os::unix::fs::FileExt;
        let mut c = Content::default();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut at, mut in_header, mut tail) = (0u64, true, [0u8; 3]);
        while at < size && !c.eight_bit {
            let want = buf.len().min((size - at) as usize);
            let n = f.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if in_header && tail == *b"\r\n\r" && b == b'\n' {
                    in_header = false;
                }
                tail = [tail[1], tail[2], b];
                if b > 127 {
                    c.eight_bit = true;
                    c.utf8_header |= in_header;
                }
            }
            at += n as u64;
        }
        Ok(c)
    }
}

/// Copy the message with dot-stuffing and the final `CRLF . CRLF`. Every bare
/// CR and bare LF goes out as CRLF, so the next hop sees the same line ends we
/// do (`\r.\r` is a stuffed line, never an end of data), and NULs at the start
/// of a line keep it a line start, for receivers that drop NULs.
async fn write_stuffed<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(140 * 1024);
    let mut st = Stuffer::default();
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.clear();
        for &b in &buf[..n] {
            st.byte(b, &mut out);
        }
        w.write_all(&out).await?;
    }
    out.clear();
    st.end(&mut out);
    w.write_all(&out).await
}

/// The state of write_stuffed between bytes.
struct Stuffer {
    line_start: bool,
    cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            line_start: true,
            cr: false,
        }
    }
}

impl Stuffer {
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.cr {
            self.cr = false;
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
            if b == b'\n' {
                return;
            }
        }
        match b {
            b'\r' => self.cr = true,
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
            }
            _ => {
                if self.line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                self.line_start &= b == 0;
            }
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.cr || !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let provider = crate::tls::provider();
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::net::AnyCert(provider)))
                .with_no_client_auth()
        });
    match cfg {
        Ok(c) => Arc::new(c),
        // The ring provider always supports the default versions.
        Err(_) => Arc::new(
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::net::AnyCert(
                    crate::tls::provider(),
                )))
                .with_no_client_auth(),
        ),
    }
}

#[cfg(test)]
mod stuff_tests {
    use super::{dsn_params, Content, Stuffer};

    #[test]
    fn dsn_parameters_are_passed_as_given_and_xtext_encoded() {
        assert_eq!(
            dsn_params(1 | 2, "team+x=y@a.test"),
            " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;team+2Bx+3Dy@a.test"
        );
        assert_eq!(dsn_params(8, "a@b"), " NOTIFY=NEVER ORCPT=rfc822;a@b");
        assert_eq!(dsn_params(0, "jos\u{e9}@b"), "");
    }

    fn stuff(input: &[u8]) -> Vec<u8> {
        let mut st = Stuffer::default();
        let mut out = Vec::new();
        for &b in input {
            st.byte(b, &mut out);
        }
        st.end(&mut out);
        out
    }

    /// Regression (issue 14.5): only a dot after LF was stuffed.
    /// Issue 15.2/15.8: what decides a 5.6.7 or 5.6.3 bounce.
    #[test]
    fn content_scan_tells_8bit_body_from_utf8_header() {
        let p = std::env::temp_dir().join(format!("sx-scan-{}", std::process::id()));
        let scan = |m: &[u8]| {
            std::fs::write(&p, m).unwrap();
            Content::scan(&std::fs::File::open(&p).unwrap(), m.len() as u64).unwrap()
        };
        let c = |eight_bit, utf8_header| Content {
            eight_bit,
            utf8_header,
        };
        assert_eq!(scan(b"Subject: x\r\n\r\nplain\r\n"), c(false, false));
        assert_eq!(
            scan("Subject: x\r\n\r\ncaf\u{e9}\r\n".as_bytes()),
            c(true, false)
        );
        assert_eq!(
            scan("Subject: caf\u{e9}\r\n\r\nx\r\n".as_bytes()),
            c(true, true)
        );
        // Only the first `size` bytes are the message.
        std::fs::write(&p, "a\r\n\r\nb\u{e9}").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        assert_eq!(Content::scan(&f, 5).unwrap(), c(false, false));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn no_end_of_data_can_be_smuggled_out() {
        assert_eq!(stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuff(b"a\r.\rb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff(b"a\r.\nb\r\n"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(stuff(b"a\n.\n"), b"a\r\n..\r\n.\r\n");
        assert_eq!(stuff(b"a\r\n\0.\r\n"), b"a\r\n\0..\r\n.\r\n");
        assert_eq!(stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(stuff(b"x\r"), b"x\r\n.\r\n");
        assert_eq!(stuff(b""), b".\r\n");
        // What comes out never holds CRLF . CRLF before the real end.
        for input in [
            &b"\r.\r"[..],
            b"\r.\n",
            b"\r\n\0.\r\n",
            b"\n.\r\n",
            b"\r\n.\r\n",
        ] {
            let out = stuff(input);
            let body = &out[..out.len() - 3];
            assert!(
                !body.windows(5).any(|w| w == b"\r\n.\r\n") && !body.starts_with(b".\r\n"),
                "{input:?} -> {out:?}"
            );
        }
    }
}
