//! The queue's on-disk envelope: its own versioned format, independent of the
//! IPC `Envelope` (whose bincode layout changes whenever a field is added).
//! Touches no files itself: spool.rs frames it into the spool files.
//!
//! Version 3 (written): as version 2, first line `SXENV3`, and one more
//! envelope key, `junk` (DMARC said quarantine: local recipients get it in
//! their Junk folder).
//!
//! Version 2 (read only): UTF-8 text, one `key value` per line, first line
//! `SXENV2`. A value is the rest of the line with `%`, controls, DEL and
//! non-UTF-8 bytes escaped as `%XX`. Envelope keys: `id from arrived size ret
//! envid body smtputf8 helo client-ip auth warned` (`ret`, `envid` and `auth`
//! only when set). Each `rcpt <address>` line starts a recipient; the keys after
//! it (`orcpt notify dest state attempts next-attempt error remote-mta`) are its own. An
//! unknown key is an error: a new key means a new version.
//!
//! Version 1 (read only): `SXENV1\n` then the bincode (standard config) of the
//! envelope as it was in release 0.1, frozen here in [`v1`].
//!
//! A higher version is [`Decoded::Future`]: the caller keeps the file as it is.

use ipc::messages::{Dest, Envelope, RcptState, Recipient};
use smtp_proto::{RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS};
use std::fmt::Write as _;

/// The version [`encode`] writes.
pub const VERSION: u32 = 3;
const MAX_V1: usize = 16 << 20;

pub enum Decoded {
    Envelope(Envelope),
    /// Written by a newer release: not ours to read, never to delete.
    Future(u32),
}

/// The version in an envelope's first line (`SXENV<n>`), if it has one.
pub fn version(bytes: &[u8]) -> Option<u32> {
    let rest = bytes.strip_prefix(b"SXENV")?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    match version(bytes) {
        Some(1) => v1::decode(bytes).map(Decoded::Envelope),
        Some(v @ (2 | 3)) => decode_text(bytes, v).map(Decoded::Envelope),
        Some(n) if n > VERSION => Ok(Decoded::Future(n)),
        _ => Err("not a queue envelope".into()),
    }
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        if c == '%' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

fn unescape(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad % escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escaped value is not UTF-8".to_string())
}

fn line(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push(' ');
    escape(out, value);
    out.push('\n');
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

const NOTIFY: [(u64, &str); 4] = [
    (RCPT_NOTIFY_SUCCESS, "success"),
    (RCPT_NOTIFY_FAILURE, "failure"),
    (RCPT_NOTIFY_DELAY, "delay"),
    (RCPT_NOTIFY_NEVER, "never"),
];

/// Version 3 bytes of `env`. Every field is named here on purpose: a field
/// added to the IPC type does not compile until this format says how it is kept.
pub fn encode(env: &Envelope) -> Vec<u8> {
    let Envelope {
        id,
        from,
        recipients,
        arrived,
        size,
        ret_full,
        envid,
        body_8bit,
        smtputf8,
        helo,
        client_ip,
        auth,
        warned,
        junk,
    } = env;
    let mut o = format!("SXENV{VERSION}\n");
    line(&mut o, "id", id);
    line(&mut o, "from", from);
    line(&mut o, "arrived", &arrived.to_string());
    line(&mut o, "size", &size.to_string());
    if let Some(full) = ret_full {
        line(&mut o, "ret", if *full { "full" } else { "hdrs" });
    }
    if let Some(e) = envid {
        line(&mut o, "envid", e);
    }
    line(&mut o, "body", if *body_8bit { "8bit" } else { "7bit" });
    line(&mut o, "smtputf8", yes(*smtputf8));
    line(&mut o, "helo", helo);
    line(&mut o, "client-ip", client_ip);
    if let Some(a) = auth {
        line(&mut o, "auth", a);
    }
    line(&mut o, "warned", yes(*warned));
    line(&mut o, "junk", yes(*junk));
    for r in recipients {
        let Recipient {
            address,
            orcpt,
            notify,
            dest,
            state,
            remote_mta,
        } = r;
        line(&mut o, "rcpt", address);
        if let Some(a) = orcpt {
            line(&mut o, "orcpt", a);
        }
        let names: Vec<&str> = NOTIFY
            .iter()
            .filter(|(bit, _)| notify & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if !names.is_empty() {
            line(&mut o, "notify", &names.join(","));
        }
        match dest {
            Dest::Local { mailbox } => line(&mut o, "dest", &format!("local {mailbox}")),
            Dest::Remote { address } => line(&mut o, "dest", &format!("remote {address}")),
        }
        match state {
            RcptState::Pending => line(&mut o, "state", "pending"),
            RcptState::Delivered => line(&mut o, "state", "delivered"),
            RcptState::Deferred {
                attempts,
                next_attempt,
                last_error,
            } => {
                line(&mut o, "state", "deferred");
                line(&mut o, "attempts", &attempts.to_string());
                line(&mut o, "next-attempt", &next_attempt.to_string());
                line(&mut o, "error", last_error);
            }
            RcptState::Failed { error } => {
                line(&mut o, "state", "failed");
                line(&mut o, "error", error);
            }
        }
        if let Some(m) = remote_mta {
            line(&mut o, "remote-mta", m);
        }
    }
    o.into_bytes()
}

/// A recipient as its lines are read.
#[derive(Default)]
struct RcptLines {
    address: String,
    orcpt: Option<String>,
    notify: u64,
    dest: Option<Dest>,
    state: Option<String>,
    attempts: Option<u32>,
    next_attempt: Option<u64>,
    error: Option<String>,
    remote_mta: Option<String>,
}

impl RcptLines {
    fn finish(self) -> Result<Recipient, String> {
        let who = &self.address;
        let state = match self.state.as_deref() {
            Some("pending") => RcptState::Pending,
            Some("delivered") => RcptState::Delivered,
            Some("deferred") => RcptState::Deferred {
                attempts: self
                    .attempts
                    .ok_or(format!("{who}: deferred without attempts"))?,
                next_attempt: self
                    .next_attempt
                    .ok_or(format!("{who}: deferred without next-attempt"))?,
                last_error: self.error.unwrap_or_default(),
            },
            Some("failed") => RcptState::Failed {
                error: self.error.unwrap_or_default(),
            },
            Some(s) => return Err(format!("{who}: unknown state {s}")),
            None => return Err(format!("{who}: no state")),
        };
        Ok(Recipient {
            dest: self.dest.ok_or(format!("{who}: no dest"))?,
            address: self.address,
            orcpt: self.orcpt,
            notify: self.notify,
            state,
            remote_mta: self.remote_mta,
        })
    }
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{key}: not a number"))
}

fn flag(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{key}: not yes or no")),
    }
}

/// Versions 2 and 3 (which adds `junk`).
fn decode_text(bytes: &[u8], version: u32) -> Result<Envelope, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "envelope is not UTF-8")?;
    let mut lines = text.split_terminator('\n');
    lines.next();
    let mut env = Envelope {
        id: String::new(),
        from: String::new(),
        recipients: Vec::new(),
        arrived: 0,
        size: 0,
        ret_full: None,
        envid: None,
        body_8bit: false,
        smtputf8: false,
        helo: String::new(),
        client_ip: String::new(),
        auth: None,
        warned: false,
        junk: false,
    };
    let (mut seen_id, mut seen_size) = (false, false);
    let mut rcpt: Option<RcptLines> = None;
    for l in lines {
        let (key, raw) = l
            .split_once(' ')
            .ok_or(format!("line without value: {l:.40}"))?;
        let v = unescape(raw)?;
        if key == "rcpt" {
            if let Some(r) = rcpt.take() {
                env.recipients.push(r.finish()?);
            }
            rcpt = Some(RcptLines {
                address: v,
                ..Default::default()
            });
            continue;
        }
        if let Some(r) = rcpt.as_mut() {
            match key {
                "orcpt" => r.orcpt = Some(v),
                "notify" => {
                    for name in v.split(',') {
                        let (bit, _) = NOTIFY
                            .iter()
                            .find(|(_, n)| *n == name)
                            .ok_or(format!("notify: unknown {name}"))?;
                        r.notify |= bit;
                    }
                }
                "dest" => {
                    r.dest = Some(match v.split_once(' ') {
                        Some(("local", m)) => Dest::Local {
                            mailbox: m.to_string(),
                        },
                        Some(("remote", a)) => Dest::Remote {
                            address: a.to_string(),
                        },
                        _ => return Err(format!("dest: {v:.40}")),
                    })
                }
                "state" => r.state = Some(v),
                "attempts" => r.attempts = Some(number(key, &v)?),
                "next-attempt" => r.next_attempt = Some(number(key, &v)?),
                "error" => r.error = Some(v),
                "remote-mta" => r.remote_mta = Some(v),
                _ => return Err(format!("unknown recipient key {key:.40}")),
            }
            continue;
        }
        match key {
            "id" => {
                env.id = v;
                seen_id = true;
            }
            "from" => env.from = v,
            "arrived" => env.arrived = number(key, &v)?,
            "size" => {
                env.size = number(key, &v)?;
                seen_size = true;
            }
            "ret" => {
                env.ret_full = Some(match v.as_str() {
                    "full" => true,
                    "hdrs" => false,
                    _ => return Err("ret: not full or hdrs".into()),
                })
            }
            "envid" => env.envid = Some(v),
            "body" => {
                env.body_8bit = match v.as_str() {
                    "8bit" => true,
                    "7bit" => false,
                    _ => return Err("body: not 7bit or 8bit".into()),
                }
            }
            "smtputf8" => env.smtputf8 = flag(key, &v)?,
            "helo" => env.helo = v,
            "client-ip" => env.client_ip = v,
            "auth" => env.auth = Some(v),
            "warned" => env.warned = flag(key, &v)?,
            "junk" if version >= 3 => env.junk = flag(key, &v)?,
            _ => return Err(format!("unknown key {key:.40}")),
        }
    }
    if let Some(r) = rcpt.take() {
        env.recipients.push(r.finish()?);
    }
    if !seen_id || !seen_size {
        return Err("envelope without id or size".into());
    }
    Ok(env)
}

/// Release 0.1's envelope, frozen: bincode is positional, so these types keep
/// exactly the fields, order and variants that release wrote.
pub mod v1 {
    use serde::Deserialize;

    #[derive(Deserialize)]
    enum Dest {
        Local { mailbox: String },
        Remote { address: String },
    }

    #[derive(Deserialize)]
    enum RcptState {
        Pending,
        Delivered,
        Deferred {
            attempts: u32,
            next_attempt: u64,
            last_error: String,
        },
        Failed {
            error: String,
        },
    }

    #[derive(Deserialize)]
    struct Recipient {
        address: String,
        orcpt: Option<String>,
        notify: u64,
        dest: Dest,
        state: RcptState,
    }

    #[derive(Deserialize)]
    struct Envelope {
        id: String,
        from: String,
        recipients: Vec<Recipient>,
        arrived: u64,
        size: u64,
        ret_full: Option<bool>,
        envid: Option<String>,
        body_8bit: bool,
        smtputf8: bool,
        helo: String,
        client_ip: String,
        auth: Option<String>,
        warned: bool,
    }

    pub fn decode(bytes: &[u8]) -> Result<ipc::messages::Envelope, String> {
        use ipc::messages as m;
        let body = bytes
            .strip_prefix(b"SXENV1\n")
            .ok_or("not a version 1 envelope")?;
        let cfg = bincode::config::standard().with_limit::<{ super::MAX_V1 }>();
        let (e, used): (Envelope, usize) =
            bincode::serde::decode_from_slice(body, cfg).map_err(|e| e.to_string())?;
        if used != body.len() {
            return Err("trailing bytes".into());
        }
        let recipients = e
            .recipients
            .into_iter()
            .map(|r| m::Recipient {
                address: r.address,
                orcpt: r.orcpt,
                // Only the NOTIFY bits mean anything in a queue file.
                notify: r.notify & super::NOTIFY.iter().fold(0, |m, (bit, _)| m | bit),
                dest: match r.dest {
                    Dest::Local { mailbox } => m::Dest::Local { mailbox },
                    Dest::Remote { address } => m::Dest::Remote { address },
                },
                state: match r.state {
                    RcptState::Pending => m::RcptState::Pending,
                    RcptState::Delivered => m::RcptState::Delivered,
                    RcptState::Deferred {
                        attempts,
                        next_attempt,
                        last_error,
                    } => m::RcptState::Deferred {
                        attempts,
                        next_attempt,
                        last_error,
                    },
                    RcptState::Failed { error } => m::RcptState::Failed { error },
                },
                remote_mta: None,
            })
            .collect();
        Ok(m::Envelope {
            id: e.id,
            from: e.from,
            recipients,
            arrived: e.arrived,
            size: e.size,
            ret_full: e.ret_full,
            envid: e.envid,
            body_8bit: e.body_8bit,
            smtputf8: e.smtputf8,
            helo: e.helo,
            client_ip: e.client_ip,
            auth: e.auth,
            warned: e.warned,
            junk: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_V2: &[u8] = include_bytes!("../../../tests/data/spool-v2/envelope");
    const GOLDEN_V3: &[u8] = include_bytes!("../../../tests/data/spool-v3/envelope");
    const V1_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/spool-v1");

    /// Every field and every recipient state set, with values that need escaping.
    fn sample() -> Envelope {
        let r = |address: &str, dest: Dest, state: RcptState| Recipient {
            address: address.into(),
            orcpt: None,
            notify: 0,
            dest,
            state,
            remote_mta: None,
        };
        let mut rcpts = vec![
            r(
                "bob@a.test",
                Dest::Local {
                    mailbox: "bob@a.test".into(),
                },
                RcptState::Pending,
            ),
            r(
                "team@a.test",
                Dest::Local {
                    mailbox: "carol@a.test".into(),
                },
                RcptState::Delivered,
            ),
            r(
                "Dave.Smith@b.test",
                Dest::Remote {
                    address: "Dave.Smith@b.test".into(),
                },
                RcptState::Deferred {
                    attempts: 3,
                    next_attempt: 1_796_104_000,
                    last_error: "451-4.7.1 greylisted\r\n451 4.7.1 100% sure".into(),
                },
            ),
            r(
                "jos\u{e9}@b.test",
                Dest::Remote {
                    address: "jos\u{e9}@b.test".into(),
                },
                RcptState::Failed {
                    error: "550 5.1.1 no such user".into(),
                },
            ),
        ];
        rcpts[0].notify = RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE;
        rcpts[2].orcpt = Some("Dave.Smith@b.test".into());
        rcpts[2].remote_mta = Some("mx.b.test".into());
        rcpts[3].notify = RCPT_NOTIFY_NEVER;
        Envelope {
            id: "0640A1B2C3D4E0010001".into(),
            from: "alice@remote.test".into(),
            recipients: rcpts,
            arrived: 1_796_103_906,
            size: 1234,
            ret_full: Some(false),
            envid: Some("QQ 314159".into()),
            body_8bit: true,
            smtputf8: true,
            helo: "mx.remote.test".into(),
            client_ip: "2001:db8::25".into(),
            auth: Some("bob@a.test".into()),
            warned: true,
            junk: true,
        }
    }

    fn decoded(bytes: &[u8]) -> Envelope {
        match decode(bytes) {
            Ok(Decoded::Envelope(e)) => e,
            Ok(Decoded::Future(v)) => panic!("future version {v}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn version_3_round_trips_every_field_and_state() {
        let env = sample();
        assert_eq!(decoded(&encode(&env)), env);
        let mut bare = env.clone();
        bare.ret_full = None;
        bare.envid = None;
        bare.auth = None;
        bare.from = String::new();
        bare.recipients.truncate(1);
        assert_eq!(decoded(&encode(&bare)), bare);
    }

    /// The spool's bytes are this format's, not the IPC type's: a change to
    /// `Envelope` that would alter what is on disk fails here (and adding a
    /// field does not compile until `encode` keeps it).
    #[test]
    fn version_3_bytes_are_the_golden_file_and_version_2_is_read() {
        assert_eq!(
            String::from_utf8_lossy(&encode(&sample())),
            String::from_utf8_lossy(GOLDEN_V3)
        );
        assert_eq!(decoded(GOLDEN_V3), sample());
        // Version 2 had no junk: the same envelope without it.
        let v2 = Envelope {
            junk: false,
            ..sample()
        };
        assert_eq!(decoded(GOLDEN_V2), v2);
    }

    /// The env/ override written by release 0.1 (tests/data/spool-v1).
    #[test]
    fn version_1_files_are_read() {
        let bytes = std::fs::read(format!("{V1_DIR}/env/0640A1B2C3D4E0020002")).unwrap();
        assert_eq!(version(&bytes), Some(1));
        let env = decoded(&bytes);
        assert_eq!(env.id, "0640A1B2C3D4E0020002");
        assert_eq!(env.auth.as_deref(), Some("bob@a.test"));
        assert_eq!(env.ret_full, Some(true));
        assert_eq!(env.envid.as_deref(), Some("ENV-2"));
        assert!(env.body_8bit && env.warned && !env.smtputf8);
        assert_eq!(env.client_ip, "2001:db8::2");
        assert_eq!(env.recipients.len(), 2);
        assert_eq!(env.recipients[0].state, RcptState::Delivered);
        assert_eq!(
            env.recipients[0].notify,
            RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE
        );
        assert_eq!(env.recipients[1].orcpt.as_deref(), Some("Dave@b.test"));
        assert_eq!(
            env.recipients[1].state,
            RcptState::Deferred {
                attempts: 2,
                next_attempt: 1_764_550_800,
                last_error: "451 4.3.0 try later".into()
            }
        );
        // Re-encoded as version 3, nothing is lost.
        assert_eq!(decoded(&encode(&env)), env);
        let junk = Envelope { junk: true, ..env };
        let bytes = encode(&junk);
        assert!(
            bytes.starts_with(b"SXENV3\n"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(decoded(&bytes), junk);
    }

    #[test]
    fn later_versions_are_future_and_damage_is_an_error() {
        assert!(matches!(
            decode(b"SXENV4\nid X\nnew-key y\n"),
            Ok(Decoded::Future(4))
        ));
        for bad in [
            &b"SXENV2\nid X\n"[..],
            // Version 3's key in a version 2 file.
            b"SXENV2\nid X\nsize 1\njunk yes\n",
            b"SXENV3\nid X\nsize 1\njunk maybe\n",
            b"SXENV2\nid X\nsize 1\nnew-key y\n",
            b"SXENV2\nid X\nsize 1\nrcpt a@b\n",
            b"SXENV2\nid X\nsize 1\nrcpt a@b\ndest local a@b\nstate deferred\n",
            b"SXENV2\nid X\nsize 1\nfrom %4\n",
            b"SXENV2\nid X\nsize x\n",
            b"SXENV1\n\x01",
            b"hello",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
