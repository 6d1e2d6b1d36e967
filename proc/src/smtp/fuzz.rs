//! Fuzzing entry point (fuzz/fuzz_targets/smtp_session.rs): a client's bytes
//! through the session's input path without the network or the queue: the
//! line reader, smtp-proto's command parser, AUTH PLAIN decoding, the address
//! checks and directory lookup, the trace header built from client text, and the
//! DATA and BDAT body readers (dot-unstuffing, size and bare-LF checks).

use super::auth::{parse_plain, unb64};
use super::data::{read_chunk, read_data, Outcome};
use super::received::Trace;
use crate::directory::Dir;
use crate::net::{read_line, Line};
use ipc::messages::Directory;
use smtp_proto::Request;
use std::time::Duration;

/// Small, so the body readers' size limit is reached by fuzz inputs too.
const MAX_SIZE: u64 = 64 * 1024;

pub fn session_input(data: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(session(data));
}

async fn session(data: &[u8]) {
    let dir = Dir::new(
        Directory {
            accounts: vec!["bob@a.test".into(), "carol@a.test".into()],
            aliases: vec![
                (
                    "all@a.test".into(),
                    vec!["bob@a.test".into(), "carol@a.test".into()],
                ),
                ("@b.test".into(), vec!["bob@a.test".into()]),
            ],
        },
        &["a.test".into(), "b.test".into()],
    );
    let idle = Duration::from_secs(5);
    let mut r = tokio::io::BufReader::new(data);
    let mut sink = tokio::io::sink();
    let mut helo = String::new();
    loop {
        let mut line = match read_line(&mut r, super::session::MAX_LINE, idle).await {
            Ok(Line::Ok(l)) => l,
            Ok(Line::TooLong) => continue,
            _ => return,
        };
        line.extend_from_slice(b"\r\n");
        let Ok(req) = Request::parse(&mut line.iter()).map(|r| r.into_owned()) else {
            continue;
        };
        match req {
            Request::Ehlo { host } | Request::Helo { host } => helo = host,
            Request::Auth {
                initial_response, ..
            } => {
                if let Some(raw) = unb64(&initial_response) {
                    let _ = parse_plain(&raw);
                }
            }
            Request::Mail { from } => {
                let a = from.address.trim().to_ascii_lowercase();
                if let Some((_, d)) = a.rsplit_once('@') {
                    let _ = dir.is_local_domain(d);
                }
                let _ = Dir::base(&a);
            }
            Request::Rcpt { to } => {
                let a = to.address.trim().to_ascii_lowercase();
                let _ = dir.resolve(&a);
                let _ = dir.owns("bob@a.test", &a);
            }
            Request::Data => {
                let trace = Trace {
                    helo: &helo,
                    ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    hostname: "mail.a.test",
                    proto: "ESMTP",
                    id: "0123456789ABCDEF",
                    tls: None,
                    auth: None,
                    rcpt: None,
                    time: 0,
                }
                .header();
                // A header built from client text must stay one header.
                assert!(
                    !trace
                        .trim_end()
                        .split("\r\n")
                        .any(|l| !l.starts_with(['R', '\t'])),
                    "trace header broken by client text: {trace:?}"
                );
                if read_data(&mut r, Some(&mut sink), MAX_SIZE, idle, || {})
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Request::Bdat {
                chunk_size,
                is_last: _,
            } => {
                let mut out = Outcome::default();
                let res = read_chunk(
                    &mut r,
                    Some(&mut sink),
                    chunk_size as u64,
                    &mut out,
                    MAX_SIZE,
                    idle,
                );
                if res.await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}
