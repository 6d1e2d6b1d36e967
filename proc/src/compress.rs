//! COMPRESS=DEFLATE (RFC 4978): a byte stream with raw deflate (RFC 1951)
//! both ways, over whatever the connection was (TLS included). Reads inflate
//! what the peer sent, never more than the reader asked for, so a small
//! stream that inflates to gigabytes costs no memory, only the reader's
//! limits (a command's size) and time. Writes are deflated, and every flush
//! ends in a sync flush, so the peer can decode all it was sent without
//! waiting for more (RFC 4978 4).
//!
//! Each stream holds the compressor's and the decompressor's state (about
//! 300 KB with flate2's default backend); at most MAX_ACTIVE streams exist
//! in a process at once, so what COMPRESS can cost is bounded.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Streams that may exist in one process at once.
pub const MAX_ACTIVE: usize = 64;
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// How much compressed data is buffered each way.
const CHUNK: usize = 8 * 1024;

/// One of the MAX_ACTIVE places for a stream, taken before compression is
/// agreed to (so the OK is only given when it can be kept).
pub struct Slot(());

impl Slot {
    pub fn take() -> Option<Slot> {
        ACTIVE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_ACTIVE).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Deflate<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes from the peer not inflated yet: `raw_in[in_pos..in_end]`.
    raw_in: Vec<u8>,
    in_pos: usize,
    in_end: usize,
    /// Deflated bytes not written to the peer yet: `raw_out[out_pos..]`.
    raw_out: Vec<u8>,
    out_pos: usize,
    /// Bytes were deflated since the last sync flush.
    dirty: bool,
    /// The peer ended its deflate stream.
    ended: bool,
    _slot: Slot,
}

impl<S> Deflate<S> {
    /// `inner` with deflate both ways from here on; `pending` is what was
    /// already read from it past the command that turned compression on
    /// (compressed).
    pub fn start(inner: S, pending: &[u8], slot: Slot) -> Deflate<S> {
        let mut raw_in = vec![0u8; CHUNK.max(pending.len())];
        if let Some(head) = raw_in.get_mut(..pending.len()) {
            head.copy_from_slice(pending);
        }
        Deflate {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::fast(), false),
            raw_in,
            in_pos: 0,
            in_end: pending.len(),
            raw_out: Vec::with_capacity(CHUNK),
            out_pos: 0,
            dirty: false,
            ended: false,
            _slot: slot,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if buf.remaining() == 0 || me.ended {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Also with no input left: output the last call had no room for
            // waits in the inflater, and the peer may send nothing more
            // until it has it.
            let (in0, out0) = (me.inflate.total_in(), me.inflate.total_out());
            let input = me.raw_in.get(me.in_pos..me.in_end).unwrap_or_default();
            let status = me
                .inflate
                .decompress(input, buf.initialize_unfilled(), FlushDecompress::None)
                .map_err(bad)?;
            let used = (me.inflate.total_in() - in0) as usize;
            let made = (me.inflate.total_out() - out0) as usize;
            me.in_pos += used;
            buf.advance(made);
            if matches!(status, Status::StreamEnd) {
                me.ended = true;
                return Poll::Ready(Ok(()));
            }
            if made > 0 {
                return Poll::Ready(Ok(()));
            }
            if used > 0 {
                continue;
            }
            // More compressed input is needed: keep what is left at the front.
            me.raw_in.copy_within(me.in_pos..me.in_end, 0);
            me.in_end -= me.in_pos;
            me.in_pos = 0;
            if me.in_end >= me.raw_in.len() {
                return Poll::Ready(Err(bad("a full buffer inflates to nothing")));
            }
            let mut rb = ReadBuf::new(me.raw_in.get_mut(me.in_end..).unwrap_or_default());
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            me.in_end += n;
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Write out every deflated byte waiting.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.raw_out.len() {
            let pending = self.raw_out.get(self.out_pos..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.raw_out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        loop {
            // At most a chunk of deflated output waits for the peer.
            if me.raw_out.len() >= CHUNK {
                ready!(me.poll_drain(cx))?;
            }
            me.raw_out.reserve(CHUNK);
            let before = me.deflate.total_in();
            me.deflate
                .compress_vec(buf, &mut me.raw_out, FlushCompress::None)
                .map_err(bad)?;
            let used = (me.deflate.total_in() - before) as usize;
            if used > 0 || buf.is_empty() {
                me.dirty |= used > 0;
                return Poll::Ready(Ok(used));
            }
            ready!(me.poll_drain(cx))?;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        while me.dirty {
            if me.raw_out.len() >= CHUNK {
                ready!(me.poll_drain(cx))?;
            }
            me.raw_out.reserve(CHUNK);
            let room = me.raw_out.capacity() - me.raw_out.len();
            let before = me.deflate.total_out();
            me.deflate
                .compress_vec(&[], &mut me.raw_out, FlushCompress::Sync)
                .map_err(bad)?;
            // Room left over: the sync flush is complete.
            if ((me.deflate.total_out() - before) as usize) < room {
                me.dirty = false;
            }
        }
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(Pin::new(&mut *me).poll_flush(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// The peer's side, for tests: a whole buffer deflated (ending in a sync
/// flush) or inflated (up to 8 MB).
#[cfg(test)]
pub mod peer {
    use super::*;

    pub fn deflate_all(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out
    }

    pub fn inflate_all(data: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(8 << 20);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::peer::{deflate_all, inflate_all};
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_ways_with_pending_input_and_flushes_the_peer_can_read() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let first = deflate_all(b"a NOOP\r\nb LOGOUT\r\n");
        let (pending, rest) = first.split_at(3);
        let mut s = Deflate::start(a, pending, Slot::take().unwrap());
        b.write_all(rest).await.unwrap();
        let mut got = vec![0u8; 18];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"a NOOP\r\nb LOGOUT\r\n");
        // Each flush is decodable on its own.
        let big = vec![b'x'; 200_000];
        s.write_all(b"* OK hi\r\n").await.unwrap();
        s.write_all(&big).await.unwrap();
        s.flush().await.unwrap();
        drop(s);
        let mut wire = Vec::new();
        b.read_to_end(&mut wire).await.unwrap();
        let plain = inflate_all(&wire);
        assert_eq!(&plain[..9], b"* OK hi\r\n");
        assert_eq!(plain.len(), 9 + big.len());
        assert!(wire.len() < 5_000, "{}", wire.len());
    }

    /// Regression (mbsync stalled): output the inflater kept for lack of
    /// room must come out before more is read from the peer.
    #[tokio::test]
    async fn small_reads_get_everything_already_received() {
        let commands: Vec<u8> = (0..500)
            .flat_map(|i| format!("{i} UID FETCH {i} (BODY.PEEK[])\r\n").into_bytes())
            .collect();
        let (a, mut b) = tokio::io::duplex(1 << 20);
        b.write_all(&deflate_all(&commands)).await.unwrap();
        let mut s = Deflate::start(a, &[], Slot::take().unwrap());
        let mut got = Vec::new();
        let mut small = [0u8; 7];
        while got.len() < commands.len() {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut small))
                .await
                .expect("stalled with input received")
                .unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, commands);
    }

    #[tokio::test]
    async fn a_bomb_costs_no_memory_and_garbage_is_an_error() {
        // 1 GB of zeros in a few hundred kilobytes: read through a small
        // buffer, only what is asked for is ever inflated.
        let mut c = Compress::new(Compression::best(), false);
        let zeros = vec![0u8; 1 << 20];
        let mut bomb = Vec::with_capacity(4 << 20);
        for _ in 0..64 {
            c.compress_vec(&zeros, &mut bomb, FlushCompress::None)
                .unwrap();
        }
        c.compress_vec(&[], &mut bomb, FlushCompress::Sync).unwrap();
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut s = Deflate::start(a, &[], Slot::take().unwrap());
        tokio::spawn(async move {
            let _ = b.write_all(&bomb).await;
        });
        let mut small = [0u8; 100];
        s.read_exact(&mut small).await.unwrap();
        assert_eq!(small, [0u8; 100]);
        drop(s);

        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut s = Deflate::start(a, &[], Slot::take().unwrap());
        b.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 10];
        assert!(s.read(&mut buf).await.is_err());
    }

    #[test]
    fn at_most_max_active_streams() {
        let held: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_ACTIVE + 5)
            .collect();
        // Other tests may hold some at the same time.
        assert!(held.len() <= MAX_ACTIVE);
        assert!(Slot::take().is_none());
        drop(held);
        assert!(Slot::take().is_some());
    }
}
