//! COMPRESS DEFLATE (RFC 4978): from the tagged OK on, both directions of
//! the session are raw deflate (compress.rs), over TLS when there is TLS.
//! At most compress::MAX_ACTIVE sessions of the process are compressed at
//! once (each holds ~300 KB of compressor state); past that the client gets
//! NO and goes on uncompressed.

use crate::compress::{Deflate, Slot};
use crate::imap::io::Io;
use crate::net::Conn;
use tokio::io::BufReader;

pub async fn compress(io: &mut Io, tag: &str) -> std::io::Result<()> {
    if io.r.get_ref().is_compressed() {
        io.tagged(tag, "NO", "[COMPRESSIONACTIVE] DEFLATE active via COMPRESS");
        return Ok(());
    }
    let Some(slot) = Slot::take() else {
        log::info!(
            "{}: COMPRESS refused rip={}: {} compressed sessions already",
            io.service.name(),
            io.peer.ip(),
            crate::compress::MAX_ACTIVE
        );
        io.tagged(
            tag,
            "NO",
            "[LIMIT] Too many compressed sessions, go on without",
        );
        return Ok(());
    };
    io.tagged(tag, "OK", "DEFLATE active");
    io.flush().await?;
    let r = std::mem::replace(&mut io.r, BufReader::new(Conn::Closed));
    // What the client sent after COMPRESS is already compressed.
    let pending = r.buffer().to_vec();
    let conn = Deflate::start(r.into_inner(), &pending, slot);
    io.r = BufReader::with_capacity(2048, Conn::Deflate(Box::new(conn)));
    Ok(())
}
