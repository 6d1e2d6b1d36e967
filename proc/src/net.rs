//! Pieces shared by the network-facing processes (smtp, imap): a connection that is
//! plain or TLS, bounded line reading, the TLS acceptor whose key is in keyholder,
//! and accept loops over the listeners the parent handed down.

use crate::tls::SignClient;
use ipc::messages::{Service, TlsPublic};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Any byte stream a session can run over besides TCP (in-process tests and
/// the fuzz targets use an in-memory pipe).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Another byte stream: no STARTTLS, no socket options.
    Other(Box<dyn Stream>),
    /// Any of these with COMPRESS=DEFLATE on (RFC 4978).
    Deflate(Box<crate::compress::Deflate<Conn>>),
    /// Placeholder while a connection is being upgraded to TLS.
    Closed,
}

impl Conn {
    pub fn is_tls(&self) -> bool {
        match self {
            Conn::Deflate(d) => d.get_ref().is_tls(),
            c => matches!(c, Conn::Tls(_)),
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self, Conn::Deflate(_))
    }

    /// ACK the next bytes at once: a client that writes a literal and its
    /// final CRLF separately (Nagle) otherwise waits for our delayed ACK.
    pub fn quickack(&self) {
        if let Some(fd) = self.raw_fd() {
            quickack(fd);
        }
    }

    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Conn::Plain(t) => Some(t.as_raw_fd()),
            Conn::Tls(t) => Some(t.get_ref().0.as_raw_fd()),
            Conn::Deflate(d) => d.get_ref().raw_fd(),
            Conn::Other(_) | Conn::Closed => None,
        }
    }

    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384" for logs and Received: headers.
    pub fn tls_info(&self) -> Option<String> {
        match self {
            Conn::Plain(_) | Conn::Other(_) | Conn::Closed => None,
            Conn::Deflate(d) => d.get_ref().tls_info(),
            Conn::Tls(t) => {
                let c = t.get_ref().1;
                let v = c
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .unwrap_or("TLS")
                    .replace('_', ".");
                let s = c
                    .negotiated_cipher_suite()
                    .and_then(|s| s.suite().as_str())
                    .unwrap_or("unknown");
                Some(format!("{v} {s}"))
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Other(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Other(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Other(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Other(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}

pub enum Line {
    Ok(Vec<u8>),
    /// Longer than the limit; the rest of the line was consumed and dropped.
    TooLong,
    Eof,
}

/// Read one line (without CRLF) of at most `max` bytes, never buffering more.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    idle: Duration,
) -> io::Result<Line> {
    let mut out = Vec::new();
    let mut too_long = false;
    // The whole line, not each read, must arrive in time: a client trickling a
    // byte at a time (slowloris) would otherwise hold the session for ever.
    let deadline = tokio::time::Instant::now() + idle;
    loop {
        let buf = match tokio::time::timeout_at(deadline, r.fill_buf()).await {
            Ok(b) => b?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
        };
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if !too_long {
            if out.len() + n > max + 2 {
                too_long = true;
                out.clear();
            } else {
                out.extend_from_slice(chunk);
            }
        }
        r.consume(n);
        if done {
            if too_long {
                return Ok(Line::TooLong);
            }
            while matches!(out.last(), Some(b'\n' | b'\r')) {
                out.pop();
            }
            return Ok(Line::Ok(out));
        }
    }
}

/// The current TLS server config; replaced on reload, sessions keep theirs.
pub struct TlsState {
    signer: Arc<SignClient>,
    config: RwLock<Option<Arc<rustls::ServerConfig>>>,
}

impl TlsState {
    pub fn new(signer: OwnedFd, public: Option<&TlsPublic>) -> io::Result<Arc<TlsState>> {
        let st = Arc::new(TlsState {
            signer: Arc::new(SignClient::new(signer)?),
            config: RwLock::new(None),
        });
        st.update(public);
        Ok(st)
    }

    /// keyholder was restarted: sign over its fresh edge.
    pub fn replace_signer(&self, fd: OwnedFd) {
        if let Err(e) = self.signer.replace(fd) {
            log::error!("new TLS signer edge: {e}");
        }
    }

    pub fn update(&self, public: Option<&TlsPublic>) {
        let cfg = public.and_then(
            |p| match crate::tls::server_config(p, self.signer.clone()) {
                Ok(c) => Some(c),
                Err(e) => {
                    log::error!("TLS config: {e}");
                    None
                }
            },
        );
        if let Ok(mut c) = self.config.write() {
            *c = cfg;
        }
    }

    pub fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.config
            .read()
            .ok()
            .and_then(|c| c.clone())
            .map(tokio_rustls::TlsAcceptor::from)
    }

    /// Handshake with a time limit (at most 30 s, less when the session's own
    /// timeout is shorter), so a stalled client cannot hold a slot.
    pub async fn accept(&self, tcp: TcpStream, session_timeout: Duration) -> io::Result<Conn> {
        let limit = session_timeout.min(Duration::from_secs(30));
        let acc = self
            .acceptor()
            .ok_or_else(|| io::Error::other("TLS is not configured"))?;
        match tokio::time::timeout(limit, acc.accept(tcp)).await {
            Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timeout",
            )),
        }
    }
}

/// Errors that are just a client going away, not worth a log line.
/// End a connection: TLS close_notify (RFC 8446 6.1; clients otherwise see a
/// truncation), then FIN. Bounded: a peer that stopped reading does not hold it.
pub async fn close(conn: &mut Conn) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncWriteExt::shutdown(conn),
    )
    .await;
}

pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Turn a handed-down listening fd into a tokio listener.
pub fn listener(fd: OwnedFd) -> io::Result<TcpListener> {
    let std = std::net::TcpListener::from(fd);
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

/// How a service admits connections: at most `max` sessions at once, and at
/// most `max_per_ip()` from one address (read per connection, so a reload
/// applies to the next one). The refusals are one protocol line each, written
/// inside TLS on the implicit-TLS ports so the client can read them.
#[derive(Clone)]
pub struct Admission {
    pub max: usize,
    pub max_per_ip: Arc<dyn Fn() -> u32 + Send + Sync>,
    pub refuse_busy: &'static [u8],
    pub refuse_ip: &'static [u8],
    pub tls: Arc<TlsState>,
}

/// Refusals being written at once; past this a connection is just closed, so a
/// flood cannot make the refusals themselves (TLS handshakes) the load.
const MAX_REFUSING: usize = 64;
/// How long a refusal (handshake and line) may take.
const REFUSE_TIME: Duration = Duration::from_secs(5);
/// How long a connection over the per-address limit waits for a slot to come
/// free before it is refused (see Counter::take_wait).
const SLOT_WAIT: Duration = Duration::from_secs(1);
/// Connections of one address that may wait so at once; more are refused at
/// once, so a flood from one address cannot fill the service's slots with
/// waiters.
const MAX_WAITING: u32 = 4;

async fn refuse(service: Service, tls: &TlsState, tcp: TcpStream, line: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let write = async {
        let mut conn = if service.implicit_tls() {
            tls.accept(tcp, REFUSE_TIME).await?
        } else {
            Conn::Plain(tcp)
        };
        conn.write_all(line).await?;
        conn.flush().await?;
        conn.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSE_TIME, write).await;
}

/// Accept forever under `adm`'s limits. The per-address count is per service
/// (each listener has its own) and a slot is given back the moment the
/// session's task ends.
pub async fn accept_loop<F, Fut>(service: Service, l: TcpListener, adm: Admission, session: F)
where
    F: Fn(TcpStream, std::net::SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(adm.max));
    let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
    let per_ip: Arc<crate::counter::Counter<std::net::IpAddr>> = Arc::default();
    let waiting: Arc<crate::counter::Counter<std::net::IpAddr>> = Arc::default();
    let session = Arc::new(session);
    let drain = crate::drain::global();
    loop {
        let accepted = tokio::select! {
            a = l.accept() => a,
            _ = drain.reached(crate::drain::Phase::Draining) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                log::warn!("{}: accept: {e}", service.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Replies are small and often wait on the client's next bytes
        // (IMAP literals, SMTP pipelining): Nagle would add 40 ms stalls.
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            log::warn!(
                "{}: connection from {peer} refused: too many connections",
                service.name()
            );
            if let Ok(r) = refusing.clone().try_acquire_owned() {
                let tls = adm.tls.clone();
                let line = adm.refuse_busy;
                tokio::spawn(async move {
                    refuse(service, &tls, tcp, line).await;
                    drop(r);
                });
            }
            continue;
        };
        let (s, per_ip, adm) = (session.clone(), per_ip.clone(), adm.clone());
        let (waiting, refusing) = (waiting.clone(), refusing.clone());
        let counted = crate::stats::connection(service);
        tokio::spawn(async move {
            let max = (adm.max_per_ip)();
            let slot = match per_ip.take(peer.ip(), max) {
                Ok(slot) => Ok(slot),
                Err(n) => match waiting.take(peer.ip(), MAX_WAITING) {
                    Ok(_waiter) => per_ip.take_wait(peer.ip(), max, SLOT_WAIT).await,
                    Err(_) => Err(n),
                },
            };
            match slot {
                Ok(slot) => {
                    s(tcp, peer).await;
                    drop(slot);
                    drop(counted);
                    drop(permit);
                }
                Err(_) => {
                    log::warn!(
                        "{}: connection from {peer} refused: too many from this address ({max})",
                        service.name()
                    );
                    // The refusal holds no session slot, and is one of the
                    // bounded number being written.
                    drop(counted);
                    drop(permit);
                    if let Ok(r) = refusing.try_acquire_owned() {
                        refuse(service, &adm.tls, tcp, adm.refuse_ip).await;
                        drop(r);
                    }
                }
            }
        });
    }
}

/// Serve every handed-down listener with `session`; `Err(exit code)` when a
/// listener cannot be used.
pub fn serve_listeners<F, Fut>(
    listeners: Vec<(Service, OwnedFd)>,
    adm: Admission,
    session: F,
) -> Result<(), i32>
where
    F: Fn(Service, TcpStream, std::net::SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for (service, fd) in listeners {
        let l = listener(fd).map_err(|e| {
            log::error!("{}: {e}", service.name());
            71
        })?;
        let s = session.clone();
        tokio::spawn(accept_loop(service, l, adm.clone(), move |tcp, peer| {
            s(service, tcp, peer)
        }));
    }
    Ok(())
}

/// A BufReader over a connection, for line protocols.
pub type Reader = BufReader<Conn>;

/// Send any pending ACK now and leave delayed-ACK mode (TCP_QUICKACK), for
/// readers of bulk input whose clients wait on Nagle for our ACK.
pub fn quickack(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a socket fd owned by a live Conn, and a c_int option of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Any certificate, but a real handshake: opportunistic TLS between MTAs
/// (RFC 7435), and the benches' clients of their own servers.
#[derive(Debug)]
pub struct AnyCert(pub std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
