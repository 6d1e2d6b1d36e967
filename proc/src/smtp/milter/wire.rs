//! The Sendmail milter protocol's packets (version 6, as libmilter speaks
//! it): a 4-byte big-endian length (of what follows), a command byte, the
//! data. Pure encoding and decoding, bounded: a packet longer than
//! MAX_PACKET is an error, never an allocation.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest packet we take from a milter (a body chunk is at most 64 KiB;
/// header values are short).
pub const MAX_PACKET: usize = 1 << 20;
/// Body chunks we send (libmilter's MILTER_CHUNK_SIZE).
pub const CHUNK: usize = 65535;

pub const VERSION: u32 = 6;
/// What we let a milter do: add, insert and change header fields, replace
/// the body, quarantine. Recipients and the sender stay as smtp checked them.
pub const ACTIONS: u32 = 0x01 | 0x02 | 0x10 | 0x20;
/// Steps a milter may ask us to leave out or not to answer (all of them).
pub const PROTOCOL: u32 = 0x1F_FFFF;
pub const P_NOCONNECT: u32 = 0x01;
pub const P_NOHELO: u32 = 0x02;
pub const P_NOMAIL: u32 = 0x04;
pub const P_NORCPT: u32 = 0x08;
pub const P_NOBODY: u32 = 0x10;
pub const P_NOHDRS: u32 = 0x20;
pub const P_NOEOH: u32 = 0x40;
pub const P_NR_HDR: u32 = 0x80;
pub const P_NODATA: u32 = 0x200;
pub const P_NR_CONN: u32 = 0x1000;
pub const P_NR_HELO: u32 = 0x2000;
pub const P_NR_MAIL: u32 = 0x4000;
pub const P_NR_RCPT: u32 = 0x8000;
pub const P_NR_DATA: u32 = 0x10000;
pub const P_NR_EOH: u32 = 0x40000;
pub const P_NR_BODY: u32 = 0x80000;
pub const P_HDR_LEADSPC: u32 = 0x100000;

pub async fn write_packet<W: AsyncWrite + Unpin>(
    w: &mut W,
    cmd: u8,
    data: &[u8],
) -> std::io::Result<()> {
    let len =
        u32::try_from(data.len() + 1).map_err(|_| std::io::Error::other("packet too long"))?;
    let mut buf = Vec::with_capacity(5 + data.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(cmd);
    buf.extend_from_slice(data);
    w.write_all(&buf).await
}

pub async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_PACKET {
        return Err(std::io::Error::other(format!(
            "milter packet of {len} bytes"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    let cmd = buf.remove(0);
    Ok((cmd, buf))
}

/// NUL-terminated strings, each with its NUL.
pub fn strings(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        // A NUL inside would end the string early: the milter sees it cut.
        out.extend(p.iter().copied().filter(|&b| b != 0));
        out.push(0);
    }
    out
}

/// The NUL-terminated strings of `data`.
pub fn split_strings(data: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    if data.last() == Some(&0) {
        v.pop();
    }
    v
}

/// The three numbers of an option negotiation packet.
pub fn optneg(data: &[u8]) -> Option<(u32, u32, u32)> {
    let n = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(data.get(i..i + 4)?.try_into().ok()?))
    };
    Some((n(0)?, n(4)?, n(8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packets_round_trip_and_are_bounded() {
        let mut buf = Vec::new();
        write_packet(&mut buf, b'L', &strings(&[b"Subject", b"hi\0there"]))
            .await
            .unwrap();
        assert_eq!(&buf[..5], &[0, 0, 0, 17, b'L']);
        let (cmd, data) = read_packet(&mut buf.as_slice()).await.unwrap();
        assert_eq!(cmd, b'L');
        assert_eq!(split_strings(&data), vec![&b"Subject"[..], &b"hithere"[..]]);
        let huge = ((MAX_PACKET + 1) as u32).to_be_bytes();
        assert!(read_packet(&mut &huge[..]).await.is_err());
        assert!(read_packet(&mut &[0u8, 0, 0, 0][..]).await.is_err());
        assert_eq!(
            optneg(&[0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2]),
            Some((6, 1, 2))
        );
        assert_eq!(optneg(&[0, 0, 0, 6]), None);
    }
}
