//! Message bodies: DATA (dot-stuffed, ended by CRLF.CRLF) and BDAT (counted).
//! Streaming, so memory stays bounded whatever the client sends. Only CRLF ends a
//! line: a bare LF or bare CR (the SMTP smuggling class) never starts a line. A
//! dot line after a bare LF (`\n.\r\n`, `\n.\n`, `\r\n.\n`) is what such a client
//! means as the end: DATA ends there with `ended_bare`, so the client gets its
//! answer at once, and the session refuses the message and closes the
//! connection: nothing after it is ever read as commands (as Postfix does).

use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// The message's header section, kept to check it (submission's From).
    pub head: Head,
    /// Bytes of message content (after dot-unstuffing).
    pub size: u64,
    pub bare_newline: bool,
    /// DATA ended at a dot line that a bare LF started or ended.
    pub ended_bare: bool,
    pub too_big: bool,
    /// Writing the spool failed; the rest was read and dropped.
    pub write_failed: bool,
    /// ... because the filesystem is full (or over quota).
    pub no_space: bool,
    /// BDAT: the last byte so far was a CR (a line end if an LF comes next,
    /// also at the start of the next chunk).
    pub cr_pending: bool,
}

impl Outcome {
    /// Already refused, whatever the rest of the content is.
    pub fn refused(&self) -> bool {
        self.bare_newline || self.too_big || self.head.too_big
    }

    /// The last BDAT chunk was read: a CR left at the very end is bare.
    pub fn finish_chunks(&mut self) {
        if self.cr_pending {
            self.bare_newline = true;
            self.cr_pending = false;
        }
    }
}

/// Look for bare CR and bare LF in BDAT content, as DATA does, carrying a CR
/// at a chunk's end into the next chunk.
fn scan_line_ends(bytes: &[u8], out: &mut Outcome) {
    let mut cr = out.cr_pending;
    for &b in bytes {
        if (cr && b != b'\n') || (!cr && b == b'\n') {
            out.bare_newline = true;
        }
        cr = b == b'\r';
    }
    out.cr_pending = cr;
}

/// The header section of a message as it streams past: kept up to and
/// including the empty line that ends it, at most MAX_HEADER bytes.
#[derive(Debug, Default, Clone)]
pub struct Head {
    pub bytes: Vec<u8>,
    /// The empty line was seen (or the message has no header at all).
    pub complete: bool,
    /// Longer than MAX_HEADER: the message is refused.
    pub too_big: bool,
}

/// Largest header section accepted (Postfix's header_size_limit). RFC 5322
/// lines are at most 998 bytes; this leaves room for long received chains.
pub const MAX_HEADER: usize = 100 * 1024;

impl Head {
    fn feed(&mut self, b: &[u8]) {
        if self.complete || self.too_big || b.is_empty() {
            return;
        }
        if self.bytes.is_empty() && b.starts_with(b"\r\n") {
            // No header fields at all: the body starts at once.
            self.complete = true;
            return;
        }
        let from = self.bytes.len().saturating_sub(3);
        let room = MAX_HEADER + 4 - self.bytes.len();
        self.bytes.extend_from_slice(&b[..b.len().min(room)]);
        if let Some(i) = self.bytes[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            self.bytes.truncate(from + i + 4);
            self.complete = true;
        } else if self.bytes.len() > MAX_HEADER {
            self.too_big = true;
            self.bytes = Vec::new();
        }
    }
}

/// ENOSPC or EDQUOT: worth a 452 4.3.1 rather than a generic 451.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    /// At the start of a line (after CRLF, or at the very beginning).
    LineStart,
    Mid,
    /// Saw CR in the middle of a line.
    Cr,
    /// Saw "." at line start.
    Dot,
    /// Saw ".\r" at line start.
    DotCr,
    /// Just after a bare LF (not a line start, but a dot here ends DATA).
    BareLf,
    /// Saw "\n.".
    BareDot,
    /// Saw "\n.\r".
    BareDotCr,
}

struct Sink<'a, W> {
    w: Option<&'a mut W>,
    buf: Vec<u8>,
    out: Outcome,
    max: u64,
}

impl<W: AsyncWrite + Unpin> Sink<'_, W> {
    fn push(&mut self, b: &[u8]) {
        self.out.head.feed(b);
        self.out.size += b.len() as u64;
        if self.out.size > self.max {
            self.out.too_big = true;
        }
        if self.out.refused() {
            // Refused at the end whatever follows: what is left is only
            // counted, never written (a client sending megabytes it knows
            // will be refused costs the disk nothing).
            self.w = None;
            self.buf.clear();
        } else if self.w.is_some() {
            self.buf.extend_from_slice(b);
        }
    }

    /// Write out the buffer. A failed write is remembered, not returned: the
    /// client's bytes must still be read to the end so the reply lands in step.
    async fn flush(&mut self, force: bool) -> io::Result<()> {
        if let Some(w) = self.w.as_mut() {
            if (force || self.buf.len() >= 64 * 1024) && !self.buf.is_empty() {
                if let Err(e) = w.write_all(&self.buf).await {
                    log::error!("cannot write spool file: {e}");
                    self.out.write_failed = true;
                    self.out.no_space = is_no_space(&e);
                    self.w = None;
                }
                self.buf.clear();
            }
        }
        Ok(())
    }
}

/// How long the rest of a message body may take: at most `idle` without data,
/// and on average at least MIN_RATE bytes a second, so a client trickling bytes
/// (slowloris) is cut off while a slow but steady sender is not.
struct Pace {
    deadline: tokio::time::Instant,
    idle: Duration,
}

const MIN_RATE: u64 = 100;

impl Pace {
    fn new(idle: Duration) -> Pace {
        Pace {
            deadline: tokio::time::Instant::now() + idle,
            idle,
        }
    }

    /// `n` bytes arrived: credit for them, never more than `idle` ahead.
    fn got(&mut self, n: usize) {
        let credit = Duration::from_millis(n as u64 * 1000 / MIN_RATE);
        let cap = tokio::time::Instant::now() + self.idle;
        self.deadline = (self.deadline + credit).min(cap);
    }
}

async fn fill<'a, R: AsyncBufRead + Unpin>(r: &'a mut R, pace: &mut Pace) -> io::Result<&'a [u8]> {
    match tokio::time::timeout_at(pace.deadline, r.fill_buf()).await {
        Ok(Ok([])) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in DATA",
        )),
        Ok(Ok(b)) => {
            pace.got(b.len());
            Ok(b)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timeout in DATA")),
    }
}

/// Read a DATA body up to the terminating `CRLF . CRLF`, writing the unstuffed
/// content (with CRLF line ends) to `w` until `max` bytes; past that it is only
/// counted and dropped.
/// `ack` runs after each read: the session ACKs at once there, since clients
/// such as msmtp send the final `.` in a small segment held back by Nagle
/// until our (otherwise delayed) ACK of the previous one.
pub async fn read_data<R, W>(
    r: &mut R,
    w: Option<&mut W>,
    max: u64,
    idle: Duration,
    ack: impl Fn(),
) -> io::Result<Outcome>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sink = Sink {
        w,
        buf: Vec::with_capacity(64 * 1024),
        out: Outcome::default(),
        max,
    };
    let mut st = St::LineStart;
    let mut pace = Pace::new(idle);
    loop {
        let buf = fill(r, &mut pace).await?;
        ack();
        let n = buf.len();
        let mut i = 0;
        let mut done = false;
        // Bytes from `start` up to `i` are plain content, pushed in one go.
        let mut start = 0;
        while i < n {
            let b = buf[i];
            match st {
                St::Mid | St::LineStart
                    if b != b'\r' && b != b'\n' && !(st == St::LineStart && b == b'.') =>
                {
                    st = St::Mid;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            sink.push(&buf[start..i]);
            match (st, b) {
                (St::LineStart, b'.') => st = St::Dot,
                (St::LineStart | St::Mid, b'\r') => st = St::Cr,
                (St::LineStart | St::Mid | St::BareLf, b'\n') => {
                    // Bare LF: kept, flagged, and it does not start a line.
                    sink.out.bare_newline = true;
                    sink.push(b"\n");
                    st = St::BareLf;
                }
                (St::BareLf, b'.') => st = St::BareDot,
                (St::BareLf, b'\r') => st = St::Cr,
                (St::BareLf, _) => {
                    st = St::Mid;
                    start = i;
                    i += 1;
                    continue;
                }
                (St::BareDot, b'\r') => st = St::BareDotCr,
                (St::BareDot | St::BareDotCr, b'\n') => {
                    sink.out.ended_bare = true;
                    done = true;
                    i += 1;
                    break;
                }
                (St::BareDot, _) => {
                    sink.push(b".");
                    st = St::Mid;
                    start = i;
                    i += 1;
                    continue;
                }
                (St::BareDotCr, _) => {
                    sink.push(b".\r");
                    st = if b == b'\r' { St::Cr } else { St::Mid };
                    if b != b'\r' {
                        sink.push(&[b]);
                    }
                }
                (St::Cr, b'\n') => {
                    sink.push(b"\r\n");
                    st = St::LineStart;
                }
                (St::Cr, b'\r') => {
                    sink.out.bare_newline = true;
                    sink.push(b"\r");
                }
                (St::Cr, _) => {
                    sink.out.bare_newline = true;
                    sink.push(b"\r");
                    sink.push(&[b]);
                    st = St::Mid;
                }
                (St::Dot, b'\r') => st = St::DotCr,
                (St::Dot, b'\n') => {
                    sink.out.bare_newline = true;
                    sink.out.ended_bare = true;
                    done = true;
                    i += 1;
                    break;
                }
                (St::Dot, _) => {
                    // A stuffed dot: drop it, keep the byte.
                    if b == b'.' {
                        sink.push(b".");
                        st = St::Mid;
                    } else {
                        st = St::Mid;
                        start = i;
                        i += 1;
                        continue;
                    }
                }
                (St::DotCr, b'\n') => {
                    done = true;
                    i += 1;
                    break;
                }
                (St::DotCr, _) => {
                    sink.out.bare_newline = true;
                    sink.push(b"\r");
                    st = if b == b'\r' { St::Cr } else { St::Mid };
                    if b != b'\r' {
                        sink.push(&[b]);
                    }
                }
                _ => {}
            }
            i += 1;
            start = i;
        }
        if !done {
            sink.push(&buf[start..i]);
        }
        r.consume(i);
        sink.flush(done).await?;
        if done {
            return Ok(sink.out);
        }
    }
}

/// Read exactly `len` bytes of a BDAT chunk, writing them while the running
/// total stays within `max` (counted in `out`).
pub async fn read_chunk<R, W>(
    r: &mut R,
    w: Option<&mut W>,
    len: u64,
    out: &mut Outcome,
    max: u64,
    idle: Duration,
) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sink = Sink {
        w,
        buf: Vec::with_capacity(64 * 1024),
        out: std::mem::take(out),
        max,
    };
    let mut left = len;
    let mut pace = Pace::new(idle);
    while left > 0 {
        let buf = fill(r, &mut pace).await?;
        let take = buf.len().min(left as usize);
        scan_line_ends(&buf[..take], &mut sink.out);
        sink.push(&buf[..take]);
        r.consume(take);
        left -= take as u64;
        sink.flush(left == 0).await?;
    }
    *out = sink.out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8]) -> (Outcome, Vec<u8>, Vec<u8>) {
        let mut r = tokio::io::BufReader::with_capacity(7, input);
        let mut out: Vec<u8> = Vec::new();
        let o = read_data(
            &mut r,
            Some(&mut out),
            1 << 20,
            Duration::from_secs(1),
            || {},
        )
        .await
        .unwrap();
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut rest)
            .await
            .unwrap();
        (o, out, rest)
    }

    #[tokio::test]
    async fn unstuffs_and_stops_at_crlf_dot_crlf() {
        let (o, out, rest) = run(b"Subject: x\r\n\r\n..leading dot\r\nline\r\n.\r\nQUIT\r\n").await;
        assert!(!o.bare_newline);
        assert_eq!(out, b"Subject: x\r\n\r\n.leading dot\r\nline\r\n");
        assert_eq!(rest, b"QUIT\r\n");
        assert_eq!(o.size, out.len() as u64);
    }

    #[tokio::test]
    async fn a_dot_line_after_a_bare_lf_ends_data_flagged() {
        // Issue 15.9: the client gets its answer at the dot (and the session
        // closes, so what follows is never read as commands).
        for (input, after) in [
            (
                &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
                &b"MAIL FROM:<x@y>\r\n"[..],
            ),
            (b"a\n.\r\nMAIL FROM:<x@y>\r\n", b"MAIL FROM:<x@y>\r\n"),
            (b"a\r\n.\nNEXT", b"NEXT"),
            (b"a\n\n.\r\n", b""),
        ] {
            let (o, _, rest) = run(input).await;
            assert!(o.bare_newline && o.ended_bare, "{input:?}");
            assert_eq!(rest, after, "{input:?}");
        }
        // A dot after a bare LF that is not a dot line is content (of a
        // message refused, so none of it is written).
        let (o, out, rest) = run(b"a\n.b\n.\rc\r\n.\r\nNEXT").await;
        assert!(o.bare_newline && !o.ended_bare);
        assert!(out.is_empty());
        assert_eq!(rest, b"NEXT");
        let (o, _, rest) = run(b"a\r.\r\nb\r\n.\r\n").await;
        assert!(o.bare_newline);
        assert!(rest.is_empty());
    }

    /// Regression (issue 14.5): BDAT skipped the bare CR / LF check.
    #[tokio::test]
    async fn bdat_flags_bare_line_ends_across_chunks() {
        async fn chunks(parts: &[&[u8]]) -> Outcome {
            let mut o = Outcome::default();
            for p in parts {
                let mut r = tokio::io::BufReader::with_capacity(3, *p);
                read_chunk::<_, Vec<u8>>(
                    &mut r,
                    None,
                    p.len() as u64,
                    &mut o,
                    0,
                    Duration::from_secs(1),
                )
                .await
                .unwrap();
            }
            o.finish_chunks();
            o
        }
        assert!(!chunks(&[b"a: b\r\n\r\nbody\r\n"]).await.bare_newline);
        assert!(
            !chunks(&[b"a: b\r", b"\n\r\nbody\r", b"\n"])
                .await
                .bare_newline
        );
        for bad in [
            &[&b"x\r.\r"[..]][..],
            &[b"x\r.\n"],
            &[b"x\n.\r\n"],
            &[b"x\r", b"y\r\n"],
            &[b"x\r\n", b"\n"],
            &[b"x\r\ny\r"],
        ] {
            assert!(chunks(bad).await.bare_newline, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn oversize_is_counted_not_kept() {
        let mut body = vec![b'x'; 5000];
        body.extend_from_slice(b"\r\n.\r\n");
        let mut r = tokio::io::BufReader::new(&body[..]);
        let mut out: Vec<u8> = Vec::new();
        let o = read_data(&mut r, Some(&mut out), 1000, Duration::from_secs(1), || {})
            .await
            .unwrap();
        assert!(o.too_big);
        assert!(out.len() <= 1000);
    }

    #[tokio::test]
    async fn what_will_be_refused_is_not_written() {
        // A 1 MB header line, or a bare LF early on: the message is refused
        // at the end, so the megabyte after it never reaches the spool.
        for head in [vec![b'h'; 1 << 20], b"a\nb".to_vec()] {
            let mut body = b"X-Long: ".to_vec();
            body.extend_from_slice(&head);
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(&vec![b'y'; 1 << 20]);
            body.extend_from_slice(b"\r\n.\r\n");
            let mut r = tokio::io::BufReader::new(&body[..]);
            let mut out: Vec<u8> = Vec::new();
            let o = read_data(
                &mut r,
                Some(&mut out),
                50 << 20,
                Duration::from_secs(1),
                || {},
            )
            .await
            .unwrap();
            assert!(o.refused());
            assert!(out.len() <= MAX_HEADER + 64 * 1024, "{} written", out.len());
        }
    }
}
