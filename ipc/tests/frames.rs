//! Frames over a real SEQPACKET socketpair: typed round trip with request ids,
//! fd passing, and rejection of oversize and undecodable frames without losing
//! the channel.

use ipc::messages::{KeyReply, KeyRequest};
use ipc::{Channel, FrameError, Rpc};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn round_trip_with_fd() {
    rt().block_on(async {
        let (a, b) = ipc::seqpacket_pair().unwrap();
        let a: Channel<KeyRequest, KeyReply> = Channel::new(a).unwrap();
        let b: Channel<KeyReply, KeyRequest> = Channel::new(b).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"message body").unwrap();
        f.rewind().unwrap();
        a.send(
            42,
            &KeyRequest::DkimSign {
                domain: "a.test".into(),
                size: None,
            },
            &[f.as_fd()],
        )
        .await
        .unwrap();
        let r = b.recv().await.unwrap();
        assert_eq!(r.id, 42);
        assert!(matches!(r.msg, KeyRequest::DkimSign { ref domain, .. } if domain == "a.test"));
        assert_eq!(r.fds.len(), 1);
        let mut got = String::new();
        std::fs::File::from(r.fds.into_iter().next().unwrap())
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "message body");
    });
}

#[test]
fn oversize_and_garbage_are_rejected_channel_survives() {
    rt().block_on(async {
        let (a, b) = ipc::seqpacket_pair().unwrap();
        let b: Channel<KeyReply, KeyRequest> = Channel::new(b).unwrap();
        let raw = a.as_raw_fd();
        // Blocking sends from the "compromised" side.
        ipc::frame::send_raw(raw, &vec![7u8; ipc::MAX_FRAME + 1], &[]).unwrap();
        ipc::frame::send_raw(raw, &[0xfe, 0xfe, 0xfe], &[]).unwrap();
        // Trailing bytes after a valid frame are rejected too.
        let mut padded = ipc::frame::encode(
            1,
            &KeyRequest::CheckPassword {
                user: "u".into(),
                password: "p".into(),
                client: std::net::Ipv4Addr::LOCALHOST.into(),
            },
        )
        .unwrap();
        padded.push(0);
        ipc::frame::send_raw(raw, &padded, &[]).unwrap();
        ipc::frame::send(
            raw,
            9,
            &KeyRequest::TlsSign {
                key_id: 1,
                scheme: 0x0804,
                data: vec![1, 2, 3],
            },
            &[],
        )
        .unwrap();
        assert!(matches!(b.recv().await, Err(FrameError::Oversize)));
        assert!(matches!(b.recv().await, Err(FrameError::Decode(_))));
        assert!(matches!(b.recv().await, Err(FrameError::Decode(e)) if e.contains("trailing")));
        let ok = b.recv().await.unwrap();
        assert_eq!(ok.id, 9);
        drop(a);
        assert!(matches!(b.recv().await, Err(FrameError::Closed)));
    });
}

#[test]
fn encode_refuses_oversize_messages() {
    let big = KeyRequest::TlsSign {
        key_id: 1,
        scheme: 1,
        data: vec![0; ipc::MAX_FRAME],
    };
    assert!(ipc::frame::encode(1, &big).is_err());
}

#[test]
fn rpc_matches_replies_to_concurrent_calls() {
    rt().block_on(async {
        let (a, b) = ipc::seqpacket_pair().unwrap();
        let (client, _unsolicited) =
            Rpc::<KeyRequest, KeyReply>::start(Channel::new(a).unwrap(), "test");
        let server: Channel<KeyReply, KeyRequest> = Channel::new(b).unwrap();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            for _ in 0..3 {
                pending.push(server.recv().await.unwrap());
            }
            // Answer in reverse order: ids must route each reply to its caller.
            for r in pending.into_iter().rev() {
                let KeyRequest::CheckPassword { user, .. } = r.msg else {
                    panic!()
                };
                server
                    .send(r.id, &KeyReply::Password(Some(user)), &[])
                    .await
                    .unwrap();
            }
        });
        let calls = ["a", "b", "c"].map(|u| {
            let c = client.clone();
            async move {
                let req = KeyRequest::CheckPassword {
                    user: u.into(),
                    password: String::new(),
                    client: std::net::Ipv4Addr::LOCALHOST.into(),
                };
                c.call(&req, &[]).await.unwrap().0
            }
        });
        let [x, y, z] = calls;
        let (x, y, z) = tokio::join!(x, y, z);
        for (got, want) in [(x, "a"), (y, "b"), (z, "c")] {
            assert!(
                matches!(got, KeyReply::Password(Some(ref u)) if u == want),
                "{got:?}"
            );
        }
    });
}
