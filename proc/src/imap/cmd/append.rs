//! APPEND (RFC 3501 6.3.11, APPENDUID of RFC 4315): the message is written
//! to tmp/ with CRLF line ends, synced, and added to the folder; a client that
//! has the folder selected hears of it in the same response.

use crate::imap::folder;
use crate::imap::io::Io;
use crate::imap::state::State;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

pub fn append(
    io: &mut Io,
    state: &mut State,
    tag: &str,
    name: &str,
    list: &[Flag<'_>],
    date: Option<&DateTime>,
    data: &[u8],
) -> std::io::Result<()> {
    let Some(login) = state.login() else {
        return Ok(());
    };
    let Some(dst) = super::target(io, login, tag, name) else {
        return Ok(());
    };
    if data.len() as u64 > io.sh.max_literal {
        io.tagged(tag, "NO", "[TOOBIG] Message larger than APPENDLIMIT");
        return Ok(());
    }
    if data.is_empty() {
        io.tagged(tag, "NO", "Empty message");
        return Ok(());
    }
    let base = folder::unique_base(&io.sh.hostname);
    let tmp = dst.path.join("tmp").join(&base);
    let written = (|| -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut w = std::io::BufWriter::new(f);
        // IMAP messages have CRLF line ends; a bare LF gets its CR.
        let mut prev = 0u8;
        for chunk in data.split_inclusive(|b| *b == b'\n') {
            let bare = chunk.ends_with(b"\n")
                && match chunk.len() {
                    1 => prev != b'\r',
                    n => chunk[n - 2] != b'\r',
                };
            if bare {
                w.write_all(&chunk[..chunk.len() - 1])?;
                w.write_all(b"\r\n")?;
            } else {
                w.write_all(chunk)?;
            }
            prev = chunk.last().copied().unwrap_or(0);
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        let when = date
            .map(|d| d.as_ref().timestamp())
            .unwrap_or_else(folder::now_secs);
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(when.max(0) as u64))?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        log::warn!(
            "{}: append to {}: {e}",
            io.service.name(),
            dst.path.display()
        );
        io.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
        return Ok(());
    }
    let (validity, uid) = {
        let mut st = dst.lock()?;
        let bits = super::store::flag_bits(&dst, &mut st, list)?;
        match dst.add(&mut st, &tmp, &base, bits) {
            Ok(uid) => (st.uidvalidity, uid),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                log::warn!(
                    "{}: append to {}: {e}",
                    io.service.name(),
                    dst.path.display()
                );
                io.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
                return Ok(());
            }
        }
    };
    if let Err(e) = dst.sync_cur() {
        log::warn!(
            "{}: append to {}: {e}",
            io.service.name(),
            dst.path.display()
        );
        io.tagged(tag, "NO", "[SERVERBUG] Cannot store message");
        return Ok(());
    }
    io.changed(&dst.path);
    if let State::Selected(_, sel) = state {
        if sel.folder.path == dst.path {
            let updates = sel.sync(io.enabled, true);
            io.push(&updates);
        }
    }
    io.tagged(
        tag,
        "OK",
        &format!("[APPENDUID {validity} {uid}] APPEND completed"),
    );
    Ok(())
}
