//! Reaching a milter: inet: over TCP from smtp itself; unix: through the
//! parent (smtp's chroot is empty), which hands back the connected socket on
//! the broker edge. In process (tests, no chroot) smtp connects unix: itself.

use ipc::messages::{BrokerReply, BrokerRequest, MilterAddress};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A milter connection, TCP or unix.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Conn = Box<dyn Io>;

/// smtp's end of the broker edge.
pub struct Broker(ipc::Rpc<BrokerRequest, BrokerReply>);

impl Broker {
    pub fn new(ch: ipc::Channel<BrokerRequest, BrokerReply>) -> Broker {
        // The parent only connects a local socket: it answers at once or not at all.
        let (rpc, _unsolicited) = ipc::Rpc::start(ch, "smtp->parent broker");
        Broker(rpc.with_timeout(Duration::from_secs(5)))
    }

    async fn connect(&self, path: &str) -> Result<std::os::fd::OwnedFd, String> {
        let req = BrokerRequest::ConnectUnix {
            path: path.to_string(),
        };
        match self.0.call(&req, &[]).await.map_err(|e| e.to_string())? {
            (BrokerReply::Connected, fds) => fds
                .into_iter()
                .next()
                .ok_or_else(|| "the parent sent no socket".to_string()),
            (BrokerReply::Refused(e), _) => Err(e),
        }
    }
}

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
                    let s = std::os::unix::net::UnixStream::from(b.connect(p).await?);
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
