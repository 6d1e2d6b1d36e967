//! smtp's end of the broker edge: what the parent does for smtp because its
//! chroot is empty (see `parent/broker`). Every call waits at most 5 s.

use ipc::messages::{BrokerReply, BrokerRequest};
use std::os::fd::OwnedFd;
use std::time::Duration;

pub struct Broker(ipc::Rpc<BrokerRequest, BrokerReply>);

/// A maildrop file handed over by the parent.
pub struct Dropped {
    pub file: String,
    pub uid: u32,
    pub user: String,
    pub fd: OwnedFd,
}

impl Broker {
    pub fn new(ch: ipc::Channel<BrokerRequest, BrokerReply>) -> Broker {
        // The parent answers each request at once, from local state.
        let (rpc, _unsolicited) = ipc::Rpc::start(ch, "smtp->parent broker");
        Broker(rpc.with_timeout(Duration::from_secs(5)))
    }

    async fn call(&self, req: BrokerRequest) -> Result<(BrokerReply, Vec<OwnedFd>), String> {
        self.0.call(&req, &[]).await.map_err(|e| e.to_string())
    }

    /// A connected socket to a unix: milter of the configuration.
    pub async fn connect_unix(&self, path: &str) -> Result<OwnedFd, String> {
        let req = BrokerRequest::ConnectUnix {
            path: path.to_string(),
        };
        match self.call(req).await? {
            (BrokerReply::Connected, fds) => fds
                .into_iter()
                .next()
                .ok_or_else(|| "the parent sent no socket".to_string()),
            (BrokerReply::Refused(e), _) => Err(e),
            (other, _) => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// The login name of a local user.
    pub async fn user_name(&self, uid: u32) -> Result<String, String> {
        match self.call(BrokerRequest::UserName { uid }).await? {
            (BrokerReply::User(n), _) => Ok(n),
            (other, _) => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// The next maildrop file, if any.
    pub async fn next_drop(&self) -> Result<Option<Dropped>, String> {
        match self.call(BrokerRequest::NextDrop).await? {
            (BrokerReply::Drop { file, uid, user }, fds) => match fds.into_iter().next() {
                Some(fd) => Ok(Some(Dropped {
                    file,
                    uid,
                    user,
                    fd,
                })),
                None => Err("the parent sent no file".into()),
            },
            (BrokerReply::NoDrop, _) => Ok(None),
            (other, _) => Err(format!("unexpected answer {other:?}")),
        }
    }

    pub async fn drop_done(&self, file: &str, outcome: ipc::messages::DropOutcome) {
        let req = BrokerRequest::DropDone {
            file: file.to_string(),
            outcome,
        };
        if let Err(e) = self.call(req).await {
            log::warn!("maildrop {file}: {e}");
        }
    }
}
