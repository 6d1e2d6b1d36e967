//! Bulk data between processes as sealed memfds holding one bincode value
//! (secrets for keyholder, the account directory for smtp): never in a frame.

use serde::{de::DeserializeOwned, Serialize};
use std::io::Read;
use std::os::fd::OwnedFd;

/// Blobs are bounded too: many accounts, never gigabytes.
pub const MAX_BLOB: usize = 64 << 20;

pub fn read<T: DeserializeOwned>(fd: OwnedFd) -> Result<T, String> {
    let f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    f.take(MAX_BLOB as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_BLOB {
        return Err("blob too large".into());
    }
    let cfg = bincode::config::standard().with_limit::<MAX_BLOB>();
    bincode::serde::decode_from_slice(&buf, cfg)
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

/// A sealed, read-only memfd holding `v`, positioned at 0.
pub fn write<T: Serialize>(v: &T) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::{Seek, Write};
    let cfg = bincode::config::standard().with_limit::<MAX_BLOB>();
    let bytes = bincode::serde::encode_to_vec(v, cfg).map_err(std::io::Error::other)?;
    let fd = memfd_create(
        c"sx-blob",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&bytes)?;
    f.rewind()?;
    fcntl(
        &f,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_SEAL,
        ),
    )
    .map_err(std::io::Error::from)?;
    Ok(f.into())
}
