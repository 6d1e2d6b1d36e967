//! Client side of the control socket: --status, --reload, --dkim-sign.

use crate::exit;
use ipc::messages::{ControlReply, ControlRequest, Event, Service};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use sxproc::config::ServerConfig;

/// One request on the control socket; failures as (exit code, message), for
/// callers that can't print (the TUI).
pub fn request(
    cfg: &ServerConfig,
    req: &ControlRequest,
    fds: &[BorrowedFd<'_>],
) -> Result<ControlReply, (i32, String)> {
    let path = &cfg.control_socket;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| (exit::SOFTWARE, format!("socket: {e}")))?;
    let addr = UnixAddr::new(path.as_path()).map_err(|_| {
        (
            exit::CONFIG,
            format!("{}: not a socket path", path.display()),
        )
    })?;
    if let Err(e) = socket::connect(fd.as_raw_fd(), &addr) {
        let code = match e {
            nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => exit::NOPERM,
            _ => exit::UNAVAILABLE,
        };
        // Which configuration said where to look: a wrong file found by the
        // lookup is the usual reason for looking in the wrong place.
        let from = match &cfg.raw.file {
            Some(f) => format!("configuration {}", f.display()),
            None => "embedded defaults: no configuration file found".into(),
        };
        return Err((
            code,
            format!("server not reachable at {} ({from}): {e}", path.display()),
        ));
    }
    let tv = nix::sys::time::TimeVal::new(60, 0);
    let _ = socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv);
    ipc::frame::send(fd.as_raw_fd(), 1, req, fds)
        .map_err(|e| (exit::UNAVAILABLE, format!("control socket: {e}")))?;
    match ipc::frame::recv::<ControlReply>(fd.as_raw_fd()) {
        Ok((_, r, _)) => Ok(r),
        Err(ipc::FrameError::Closed) => Err((
            exit::NOPERM,
            "the server closed the control connection (not allowed?)".into(),
        )),
        Err(e) => Err((exit::UNAVAILABLE, format!("control socket: {e}"))),
    }
}

pub fn call(
    cfg: &ServerConfig,
    req: &ControlRequest,
    fds: &[BorrowedFd<'_>],
) -> Result<ControlReply, i32> {
    request(cfg, req, fds).map_err(|(code, msg)| {
        eprintln!("sx server-email: {msg}");
        code
    })
}

pub fn status(cfg: &ServerConfig, json: bool) -> i32 {
    match call(cfg, &ControlRequest::Status, &[]) {
        Ok(ControlReply::Status(s)) => {
            if json {
                println!("{}", status_json(&s));
            } else {
                print!("{}", status_text(&s));
            }
            exit::OK
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn status_text(s: &ipc::messages::Status) -> String {
    let up = s.uptime_secs;
    let mut out = format!(
        "sx server-email running: pid {} up {}d {:02}:{:02}:{:02}, {} restart(s)\n",
        s.pid,
        up / 86_400,
        up / 3600 % 24,
        up / 60 % 60,
        up % 60,
        s.restarts
    );
    for (role, pid) in &s.children {
        out.push_str(&format!("  {:<14} pid {pid}\n", role.title()));
    }
    let conns: Vec<String> = Service::ALL
        .iter()
        .map(|v| format!("{} {}", v.name(), s.stats.connections_of(*v)))
        .collect();
    out.push_str(&format!("connections: {}\n", conns.join(", ")));
    out.push_str(&format!(
        "queue: {} message(s), {} held\n",
        s.stats.gauge("queue_messages"),
        s.stats.gauge("queue_held")
    ));
    let minute: Vec<String> = Event::ALL
        .iter()
        .map(|e| format!("{} {}", s.stats.event(*e).1, e.name()))
        .collect();
    let total: Vec<String> = Event::ALL
        .iter()
        .map(|e| format!("{} {}", s.stats.event(*e).0, e.name()))
        .collect();
    out.push_str(&format!("last minute: {}\n", minute.join(", ")));
    out.push_str(&format!("since start: {}\n", total.join(", ")));
    out
}

/// The same figures for scripts; every counter is present, zero or not.
pub fn status_json(s: &ipc::messages::Status) -> String {
    use serde_json::{json, Map, Value};
    let processes: Vec<Value> = s
        .children
        .iter()
        .map(|(r, pid)| json!({"role": r.name(), "pid": pid}))
        .collect();
    let mut conns = Map::new();
    for v in Service::ALL {
        conns.insert(v.name().into(), json!(s.stats.connections_of(v)));
    }
    let mut events = Map::new();
    for e in Event::ALL {
        let (t, m) = s.stats.event(e);
        events.insert(e.name().into(), json!({"total": t, "last_minute": m}));
    }
    json!({
        "pid": s.pid,
        "uptime_secs": s.uptime_secs,
        "restarts": s.restarts,
        "processes": processes,
        "connections": conns,
        "queue": {"messages": s.stats.gauge("queue_messages"), "held": s.stats.gauge("queue_held")},
        "events": events,
    })
    .to_string()
}

pub fn reload(cfg: &ServerConfig) -> i32 {
    match call(cfg, &ControlRequest::Reload, &[]) {
        Ok(ControlReply::Ok) => {
            println!("reloaded");
            exit::OK
        }
        Ok(ControlReply::Error(e)) => {
            eprintln!("sx server-email: reload failed: {e}");
            exit::CONFIG
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn queue(cfg: &ServerConfig, cmd: ipc::messages::QueueCmd) -> i32 {
    use ipc::messages::QueueReply;
    match call(cfg, &ControlRequest::Queue(cmd), &[]) {
        Ok(ControlReply::Queue(QueueReply::List(list))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if list.is_empty() {
                println!("queue is empty");
            }
            for e in &list {
                let age = now.saturating_sub(e.arrived);
                println!(
                    "{}  {:>6}  {:>8}  <{}>{}",
                    e.id,
                    format!("{}m", age / 60),
                    e.size,
                    e.from,
                    if e.held { "  HELD" } else { "" }
                );
                for (r, state) in &e.recipients {
                    println!("    {r}  {state}");
                }
                if let Some(err) = &e.last_error {
                    println!("    ({err})");
                }
            }
            if !list.is_empty() {
                println!("-- {} message(s)", list.len());
            }
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Show(text))) => {
            print!("{text}");
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Done(text))) => {
            println!("{text}");
            exit::OK
        }
        Ok(ControlReply::Queue(QueueReply::Error(e))) => {
            eprintln!("sx server-email: {e}");
            exit::NOINPUT
        }
        Ok(other) => unexpected(other),
        Err(c) => c,
    }
}

pub fn unexpected(r: ControlReply) -> i32 {
    match r {
        ControlReply::Error(e) => {
            eprintln!("sx server-email: {e}");
            exit::SOFTWARE
        }
        other => {
            eprintln!("sx server-email: unexpected answer {other:?}");
            exit::SOFTWARE
        }
    }
}
