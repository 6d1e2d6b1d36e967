//! Reading the Secrets memfd the parent hands keyholder.

use ipc::messages::Secrets;
use std::io::Read;
use std::os::fd::OwnedFd;

/// Secrets are bounded too: many accounts, never gigabytes.
const MAX_SECRETS: u64 = 64 << 20;

pub fn read(fd: OwnedFd) -> Result<Secrets, String> {
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_SECRETS + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_SECRETS {
        return Err("secrets blob too large".into());
    }
    let cfg = bincode::config::standard().with_limit::<{ MAX_SECRETS as usize }>();
    bincode::serde::decode_from_slice(&buf, cfg)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

/// Parent side: a sealed, read-only memfd holding `s`, positioned at 0.
pub fn write(s: &Secrets) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::{Seek, Write};
    let cfg = bincode::config::standard().with_limit::<{ MAX_SECRETS as usize }>();
    let bytes = bincode::serde::encode_to_vec(s, cfg).map_err(std::io::Error::other)?;
    let fd = memfd_create(
        c"sx-secrets",
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
