//! IMAP load generator for benches/imap-vs-dovecot.sh, in Rust so that the
//! client side is not what limits the run (one async task per client on a
//! small runtime, instead of one Python process each).
//!
//! usage: cargo bench --bench imap_load -- PORT USER PASSWORD MODE CLIENTS SECONDS
//!   MODE login:   each round is LOGIN SELECT FETCH STORE SEARCH APPEND LOGOUT
//!                 on a new TLS connection (7 operations).
//!   MODE session: one TLS connection and LOGIN per client, then rounds of
//!                 SELECT FETCH STORE SEARCH APPEND (5 operations).
//! Prints: operations per second over all clients, then the generator's own
//! CPU seconds (user+system) on stderr, to show it was not the bottleneck.
//! Any answer but OK fails the run (exit 1).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const MSG: &[u8] =
    b"From: load@b.test\r\nTo: bench@a.test\r\nSubject: appended by load\r\n\r\nhello\r\n";

struct Client {
    r: BufReader<TlsStream<TcpStream>>,
    n: u64,
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Client {
    async fn connect(port: u16, tls: &tokio_rustls::TlsConnector) -> Res<Client> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls_pki_types::ServerName::try_from("bench.test")?;
        let s = tls.connect(name, tcp).await?;
        let mut c = Client {
            r: BufReader::new(s),
            n: 0,
        };
        let mut greeting = String::new();
        c.r.read_line(&mut greeting).await?;
        Ok(c)
    }

    /// One command (with a LITERAL+ literal when given); Ok once tagged OK.
    async fn cmd(&mut self, text: &str, literal: Option<&[u8]>) -> Res<()> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        let mut out = format!("{tag} {text}").into_bytes();
        match literal {
            Some(l) => {
                out.extend_from_slice(format!(" {{{}+}}\r\n", l.len()).as_bytes());
                out.extend_from_slice(l);
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(b"\r\n"),
        }
        self.r.get_mut().write_all(&out).await?;
        let done = format!("{tag} ");
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.r.read_until(b'\n', &mut line).await? == 0 {
                return Err("connection closed".into());
            }
            if line.starts_with(done.as_bytes()) {
                if line.starts_with(format!("{tag} OK").as_bytes()) {
                    return Ok(());
                }
                return Err(String::from_utf8_lossy(&line).into_owned().into());
            }
            if line.ends_with(b"}\r\n") {
                let open = line.iter().rposition(|b| *b == b'{').ok_or("bad literal")?;
                let n: usize = std::str::from_utf8(&line[open + 1..line.len() - 3])?.parse()?;
                let mut skip = vec![0u8; n];
                self.r.read_exact(&mut skip).await?;
            }
        }
    }
}

async fn mix(c: &mut Client, exists: u32) -> Res<()> {
    let seq = 1 + rand::random::<u32>() % (exists - 10);
    c.cmd(
        &format!(
            "FETCH {seq}:{} (FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
            seq + 9
        ),
        None,
    )
    .await?;
    let sign = if rand::random::<bool>() { "+" } else { "-" };
    let n = 1 + rand::random::<u32>() % exists;
    c.cmd(&format!("STORE {n} {sign}FLAGS (\\Seen)"), None)
        .await?;
    c.cmd(
        &format!("UID SEARCH FROM sender{}", rand::random::<u32>() % 7),
        None,
    )
    .await?;
    c.cmd("APPEND Sent", Some(MSG)).await
}

struct Job {
    port: u16,
    login: String,
    session: bool,
    end: Instant,
    tls: tokio_rustls::TlsConnector,
    ops: Arc<AtomicU64>,
}

async fn client(j: Arc<Job>) -> Res<()> {
    if j.session {
        let mut c = Client::connect(j.port, &j.tls).await?;
        c.cmd(&j.login, None).await?;
        while Instant::now() < j.end {
            c.cmd("SELECT INBOX", None).await?;
            mix(&mut c, 1000).await?;
            j.ops.fetch_add(5, Ordering::Relaxed);
        }
        c.cmd("LOGOUT", None).await?;
    } else {
        while Instant::now() < j.end {
            let mut c = Client::connect(j.port, &j.tls).await?;
            c.cmd(&j.login, None).await?;
            c.cmd("SELECT INBOX", None).await?;
            mix(&mut c, 1000).await?;
            c.cmd("LOGOUT", None).await?;
            j.ops.fetch_add(7, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [port, user, pw, mode, clients, seconds] = args.as_slice() else {
        eprintln!("usage: imap_load PORT USER PASSWORD login|session CLIENTS SECONDS");
        std::process::exit(64);
    };
    let (Ok(port), Ok(clients), Ok(seconds)) = (
        port.parse::<u16>(),
        clients.parse::<usize>(),
        seconds.parse::<f64>(),
    ) else {
        eprintln!("imap_load: PORT, CLIENTS and SECONDS are numbers");
        std::process::exit(64);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b
            .dangerous()
            // Its own servers, with a throwaway certificate.
            .with_custom_certificate_verifier(Arc::new(sxproc::net::AnyCert(provider)))
            .with_no_client_auth(),
        Err(e) => {
            eprintln!("imap_load: TLS: {e}");
            std::process::exit(70);
        }
    };
    // One runtime thread: the client side stays small next to the server.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("imap_load: runtime: {e}");
            std::process::exit(70);
        }
    };
    let job = Arc::new(Job {
        port,
        login: format!("LOGIN \"{user}\" \"{pw}\""),
        session: mode == "session",
        end: Instant::now() + Duration::from_secs_f64(seconds),
        tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        ops: Arc::default(),
    });
    let t0 = Instant::now();
    let failed = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(client(job.clone())))
            .collect();
        let mut failed = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("imap_load: client: {e}");
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("imap_load: client task: {e}");
                    failed += 1;
                }
            }
        }
        failed
    });
    let ops = job.ops.load(Ordering::Relaxed) as f64;
    println!("{:.0}", ops / t0.elapsed().as_secs_f64());
    eprintln!("imap_load: {:.1} s CPU", cpu_seconds());
    if failed > 0 {
        std::process::exit(1);
    }
}
