//! Reaching a milter: inet: over TCP from smtp itself; unix: through the
//! parent (smtp's chroot is empty), which hands back the connected socket on
//! the broker edge. In process (tests, no chroot) smtp connects unix: itself.

use super::super::broker::Broker;
use ipc::messages::MilterAddress;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A milter connection, TCP or unix.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Conn = Box<dyn Io>;

/// Connect within `step`.
pub async fn connect(
    addr: &MilterAddress,
    broker: Option<&Broker>,
    step: Duration,
) -> Result<Conn, String> {
    let go = async {
        Ok::<Conn, String>(match addr {
            MilterAddress::Inet(a) => Box::new(
                tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            MilterAddress::Unix(p) => Box::new(match broker {
                Some(b) => {
                    let s = std::os::unix::net::UnixStream::from(b.connect_unix(p).await?);
                    s.set_nonblocking(true).map_err(|e| e.to_string())?;
                    tokio::net::UnixStream::from_std(s).map_err(|e| e.to_string())?
                }
                None => tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| e.to_string())?,
            }),
        })
    };
    tokio::time::timeout(step, go)
        .await
        .map_err(|_| "connect timed out".to_string())?
}
