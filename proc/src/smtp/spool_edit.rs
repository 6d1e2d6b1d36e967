//! Edits of a spool file smtp holds (the fd queue handed over): fields added
//! to the top of a message, or a header rewritten, after the body was
//! written.

/// Replace the `old` bytes at offset `at` of the file with `new`, moving
/// what follows in bounded chunks (no copy of the message in memory): up from
/// the end backwards, or down from the front and then shortened. Writes by
/// lseek + write: smtp's seccomp list has no pwrite.
pub fn splice(f: &std::fs::File, at: u64, old: u64, new: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::FileExt;
    let write_at = |bytes: &[u8], off: u64| -> std::io::Result<()> {
        let mut w = f;
        w.seek(SeekFrom::Start(off))?;
        w.write_all(bytes)
    };
    let len = f.metadata()?.len();
    let tail = (at + old).min(len);
    let k = new.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    if k > old {
        let shift = k - old;
        let mut end = len;
        while end > tail {
            let n = (end - tail).min(buf.len() as u64);
            let start = end - n;
            let chunk = buf
                .get_mut(..n as usize)
                .ok_or_else(|| std::io::Error::other("chunk"))?;
            f.read_exact_at(chunk, start)?;
            write_at(chunk, start + shift)?;
            end = start;
        }
    } else if k < old {
        let shift = old - k;
        let mut pos = tail;
        while pos < len {
            let n = (len - pos).min(buf.len() as u64);
            let chunk = buf
                .get_mut(..n as usize)
                .ok_or_else(|| std::io::Error::other("chunk"))?;
            f.read_exact_at(chunk, pos)?;
            write_at(chunk, pos - shift)?;
            pos += n;
        }
        f.set_len(len - shift)?;
    }
    write_at(new, at)
}
