//! Sending one message over SMTP with mail-send: connect, TLS (STARTTLS that must
//! be offered, implicit TLS, or none), EHLO, AUTH, MAIL/RCPT/DATA, QUIT. Every
//! server reply is kept in a transcript for `--test`, `-v` and error lines, and
//! every failure is classified into a sysexits code and whether it is worth
//! trying again later (what `--queue-on-fail` and `--flush` act on).

use super::settings::{Settings, TlsMode};
use super::{Envelope, Failure};
use crate::exit;
use mail_send::smtp::tls::build_tls_connector;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::{EhloResponse, Response, EXT_8BIT_MIME, EXT_SIZE, EXT_START_TLS};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What the server said, step by step.
#[derive(Default)]
pub struct Transcript {
    pub lines: Vec<String>,
}

impl Transcript {
    fn note(&mut self, step: &str, what: impl std::fmt::Display) {
        self.lines.push(format!("{step}: {what}"));
    }
}

/// "250 2.0.0 text" on one line.
pub fn show(r: &Response<String>) -> String {
    let text = r.message.replace(['\r', '\n'], " ");
    if r.esc[0] == 0 {
        format!("{} {}", r.code, text.trim())
    } else {
        format!(
            "{} {}.{}.{} {}",
            r.code,
            r.esc[0],
            r.esc[1],
            r.esc[2],
            text.trim()
        )
    }
}

/// Failure for a reply: 4xx can be tried again later, 5xx can't.
fn refused(step: &str, r: &Response<String>) -> Failure {
    let msg = format!("{step} refused: {}", show(r));
    if (400..500).contains(&r.code) {
        Failure::retry(exit::TEMPFAIL, msg)
    } else {
        Failure::new(exit::UNAVAILABLE, msg)
    }
}

fn lib_error(step: &str, server: &str, e: mail_send::Error) -> Failure {
    use mail_send::Error as E;
    match e {
        E::Timeout => Failure::retry(exit::TEMPFAIL, format!("{step}: {server} timed out")),
        E::Io(e) => Failure::retry(exit::TEMPFAIL, format!("{step}: {server}: {e}")),
        E::UnparseableReply => Failure::retry(
            exit::TEMPFAIL,
            format!("{step}: {server} closed the connection or sent no valid reply"),
        ),
        E::Tls(e) => Failure::new(exit::UNAVAILABLE, format!("TLS with {server} failed: {e}")),
        E::InvalidTLSName => Failure::new(
            exit::CONFIG,
            format!("SMTP_HOST {server} is not a valid name for TLS"),
        ),
        E::AuthenticationFailed(r) => Failure::new(
            if r.code == 535 || r.code == 534 {
                exit::NOPERM
            } else if (400..500).contains(&r.code) {
                exit::TEMPFAIL
            } else {
                exit::UNAVAILABLE
            },
            format!("authentication failed at {server}: {}", show(&r)),
        ),
        E::UnsupportedAuthMechanism => Failure::new(
            exit::UNAVAILABLE,
            format!("{server} offers neither AUTH PLAIN nor AUTH LOGIN"),
        ),
        E::UnexpectedReply(r) => refused(step, &r),
        e => Failure::new(exit::UNAVAILABLE, format!("{step}: {server}: {e}")),
    }
}

fn tls_connector(s: &Settings) -> Result<(TlsConnector, String), Failure> {
    if !s.verify {
        let c = build_tls_connector(true).map_err(|e| Failure::new(exit::SOFTWARE, e))?;
        return Ok((c, "certificate NOT verified (SMTP_TLS_VERIFY=no)".into()));
    }
    if let Some(ca) = &s.ca_file {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                Failure::new(exit::CONFIG, format!("SMTP_CA_FILE {}: {e}", ca.display()))
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Failure::new(
                exit::CONFIG,
                format!("SMTP_CA_FILE {}: no usable certificate", ca.display()),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::new(exit::SOFTWARE, format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        return Ok((
            TlsConnector::from(Arc::new(config)),
            format!("certificate verified against {}", ca.display()),
        ));
    }
    let c = build_tls_connector(false).map_err(|e| Failure::new(exit::SOFTWARE, e))?;
    Ok((c, "certificate verified against the system roots".into()))
}

/// Our name in EHLO: the host name when it is a domain, else the loopback literal.
fn helo_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| {
            h.contains('.')
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .unwrap_or_else(|| "[127.0.0.1]".into())
}

struct Run<'a> {
    s: &'a Settings,
    env: &'a Envelope,
    server: String,
    helo: String,
    tr: &'a mut Transcript,
}

/// Send `env`; on success the DATA reply (e.g. "250 2.0.0 ... queued as X").
pub async fn send(s: &Settings, env: &Envelope, tr: &mut Transcript) -> Result<String, Failure> {
    if let Some(l) = &s.local {
        return send_local(s, l.socket.as_deref(), env, tr).await;
    }
    let server = s.server();
    let mut run = Run {
        s,
        env,
        server: server.clone(),
        helo: helo_name(),
        tr,
    };
    let tcp = connect(s, &server, TcpStream::connect((s.host.as_str(), s.port))).await?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    run.tr
        .note(&format!("connect {server}"), format!("connected to {peer}"));
    let mut client = SmtpClient {
        stream: tcp,
        timeout: s.timeout,
    };
    match s.tls {
        TlsMode::Implicit => {
            let (conn, how) = tls_connector(s)?;
            let mut client = client
                .into_tls(&conn, &s.host)
                .await
                .map_err(|e| lib_error("TLS", &server, e))?;
            note_tls(run.tr, client.tls_connection(), &how);
            run.greeting(&mut client).await?;
            let caps = run.ehlo(&mut client).await?;
            run.transaction(&mut client, &caps).await
        }
        TlsMode::StartTls => {
            run.greeting(&mut client).await?;
            let caps = run.ehlo(&mut client).await?;
            if !caps.has_capability(EXT_START_TLS) {
                let _ = client.cmd(b"QUIT\r\n").await;
                return Err(Failure::new(
                    exit::UNAVAILABLE,
                    format!(
                        "{server} does not offer STARTTLS; nothing sent (SMTP_TLS=starttls requires it)"
                    ),
                ));
            }
            let (conn, how) = tls_connector(s)?;
            let r = client
                .cmd(b"STARTTLS\r\n")
                .await
                .map_err(|e| lib_error("STARTTLS", &server, e))?;
            run.tr.note("STARTTLS", show(&r));
            if r.code != 220 {
                return Err(refused("STARTTLS", &r));
            }
            let mut client = client
                .into_tls(&conn, &s.host)
                .await
                .map_err(|e| lib_error("TLS", &server, e))?;
            note_tls(run.tr, client.tls_connection(), &how);
            let caps = run.ehlo(&mut client).await?;
            run.transaction(&mut client, &caps).await
        }
        TlsMode::None => {
            run.greeting(&mut client).await?;
            let caps = run.ehlo(&mut client).await?;
            run.transaction(&mut client, &caps).await
        }
    }
}

/// A connection within SMTP_TIMEOUT; failing is "unreachable" (worth a retry).
async fn connect<T>(
    s: &Settings,
    server: &str,
    how: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(s.timeout, how).await {
        Err(_) => Err(Failure::unreachable(
            exit::TEMPFAIL,
            format!("cannot connect to {server}: timed out"),
        )),
        Ok(Err(e)) => Err(Failure::unreachable(
            exit::UNAVAILABLE,
            format!("cannot connect to {server}: {e}"),
        )),
        Ok(Ok(t)) => Ok(t),
    }
}

/// Local mode: SMTP over the server's submit socket, no TLS, no AUTH (the
/// kernel tells the server who we are).
async fn send_local(
    s: &Settings,
    socket: Option<&std::path::Path>,
    env: &Envelope,
    tr: &mut Transcript,
) -> Result<String, Failure> {
    let server = s.server();
    let Some(path) = socket else {
        return Err(Failure::unreachable(
            exit::TEMPFAIL,
            "the server's submit socket is disabled (EMAIL_SUBMIT_SOCKET)".into(),
        ));
    };
    let stream = connect(s, &server, tokio::net::UnixStream::connect(path)).await?;
    tr.note(&format!("connect {server}"), "connected");
    let mut run = Run {
        s,
        env,
        server,
        helo: "localhost".into(),
        tr,
    };
    let mut client = SmtpClient {
        stream,
        timeout: s.timeout,
    };
    run.greeting(&mut client).await?;
    let caps = run.ehlo(&mut client).await?;
    run.transaction(&mut client, &caps).await
}

fn note_tls(tr: &mut Transcript, c: &rustls::ClientConnection, how: &str) {
    let version = c
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .replace("TLSv1_", "TLSv1.");
    let suite = c
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("?");
    tr.note("TLS", format!("{version} {suite}, {how}"));
}

impl Run<'_> {
    async fn greeting<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        c: &mut SmtpClient<T>,
    ) -> Result<(), Failure> {
        let r = tokio::time::timeout(self.s.timeout, c.read())
            .await
            .map_err(|_| lib_error("greeting", &self.server, mail_send::Error::Timeout))?
            .map_err(|e| lib_error("greeting", &self.server, e))?;
        self.tr.note("greeting", show(&r));
        if r.code != 220 {
            return Err(refused("greeting", &r));
        }
        Ok(())
    }

    async fn ehlo<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        c: &mut SmtpClient<T>,
    ) -> Result<EhloResponse<String>, Failure> {
        let caps = c
            .ehlo(&self.helo)
            .await
            .map_err(|e| lib_error("EHLO", &self.server, e))?;
        let mut ext = Vec::new();
        for (bit, name) in [
            (EXT_START_TLS, "STARTTLS"),
            (EXT_SIZE, "SIZE"),
            (EXT_8BIT_MIME, "8BITMIME"),
            (smtp_proto::EXT_PIPELINING, "PIPELINING"),
            (smtp_proto::EXT_SMTP_UTF8, "SMTPUTF8"),
            (smtp_proto::EXT_DSN, "DSN"),
            (smtp_proto::EXT_AUTH, "AUTH"),
        ] {
            if caps.has_capability(bit) {
                ext.push(name);
            }
        }
        let mut auth = Vec::new();
        for (bit, name) in [
            (smtp_proto::AUTH_PLAIN, "PLAIN"),
            (smtp_proto::AUTH_LOGIN, "LOGIN"),
        ] {
            if caps.auth_mechanisms & bit != 0 {
                auth.push(name);
            }
        }
        let mut line = format!("250 {}; {}", caps.hostname, ext.join(" "));
        if !auth.is_empty() {
            line.push_str(&format!(" (AUTH {})", auth.join(" ")));
        }
        self.tr.note(&format!("EHLO {}", self.helo), line);
        Ok(caps)
    }

    /// One envelope command that must get a 2xx; otherwise QUIT and fail.
    async fn command<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        c: &mut SmtpClient<T>,
        step: &str,
        params: &str,
        what: &str,
    ) -> Result<(), Failure> {
        let r = c
            .cmd(format!("{step}{params}\r\n"))
            .await
            .map_err(|e| lib_error(step, &self.server, e))?;
        self.tr.note(step, show(&r));
        if !(200..300).contains(&r.code) {
            let _ = c.cmd(b"QUIT\r\n").await;
            return Err(refused(what, &r));
        }
        Ok(())
    }

    async fn transaction<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        c: &mut SmtpClient<T>,
        caps: &EhloResponse<String>,
    ) -> Result<String, Failure> {
        let server = self.server.clone();
        if let Some(user) = &self.s.user {
            let pass = self.s.password()?;
            let creds = Credentials::new(user.clone(), pass);
            c.authenticate(&creds, caps)
                .await
                .map_err(|e| lib_error("AUTH", &server, e))?;
            self.tr.note(&format!("AUTH as {user}"), "235 accepted");
        }
        let mut params = String::new();
        if caps.has_capability(EXT_SIZE) {
            params.push_str(&format!(" SIZE={}", self.env.message.len()));
        }
        if caps.has_capability(EXT_8BIT_MIME) && !self.env.message.is_ascii() {
            params.push_str(" BODY=8BITMIME");
        }
        let from = &self.env.from;
        self.command(
            c,
            &format!("MAIL FROM:<{from}>"),
            &params,
            &format!("sender <{from}>"),
        )
        .await?;
        for rcpt in &self.env.rcpts {
            // All or nothing: a partial delivery would be hard to retry correctly.
            self.command(
                c,
                &format!("RCPT TO:<{rcpt}>"),
                "",
                &format!("recipient <{rcpt}>"),
            )
            .await?;
        }
        let r = match c.data(&self.env.message).await {
            Ok(r) => r,
            Err(mail_send::Error::UnexpectedReply(r)) => {
                self.tr.note("DATA", show(&r));
                let _ = c.cmd(b"QUIT\r\n").await;
                return Err(refused("message", &r));
            }
            Err(e) => return Err(lib_error("DATA", &server, e)),
        };
        let accepted = show(&r);
        self.tr.note("DATA", &accepted);
        // The message is the server's now; a failed QUIT changes nothing.
        if let Ok(r) = c.cmd(b"QUIT\r\n").await {
            self.tr.note("QUIT", show(&r));
        }
        Ok(accepted)
    }
}
