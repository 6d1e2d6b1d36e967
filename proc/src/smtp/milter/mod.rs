//! Milter client (the Sendmail milter protocol, version 6) so the filters
//! operators run (rspamd, OpenDKIM, OpenDMARC, spamass-milter, clamav-milter)
//! see each message that arrives on port 25 and say what becomes of it.
//! Each milter of EMAIL_MILTERS gets one connection per transaction, opened
//! at MAIL: the client, HELO and MAIL then (its answer is MAIL's), each RCPT
//! as it comes (its answer is that RCPT's), and after DATA and our own checks
//! the header fields, the body and end of message; every read has the
//! milter's timeout. What it says: reject (its reply or 550 5.7.1), tempfail
//! (451 4.7.1), discard (250, nothing kept), accept, or at the end header and
//! body changes and a quarantine (the Junk folder). A milter that cannot be
//! reached or breaks the protocol is dropped (fail=open) or gives 451 4.7.1
//! (fail=closed). A transaction that ends otherwise (RSET, QUIT, a refusal)
//! closes the connections.

mod connect;
pub mod wire;

use connect::Conn;
use ipc::messages::MilterSpec;
use std::time::Duration;
use wire::*;

/// Who is sending, for the opening steps.
pub struct Begin<'a> {
    pub hostname: &'a str,
    pub client: std::net::SocketAddr,
    pub helo: &'a str,
    pub from: &'a str,
    /// How unix: milters are reached (None: directly).
    pub broker: Option<&'a super::broker::Broker>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (with any changes).
    Continue,
    /// The whole reply line.
    Reject(String),
    Tempfail(String),
    Discard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Append a header field.
    Add(String, String),
    /// Insert at this position among the fields (0 is the top).
    Insert(usize, String, String),
    /// The n-th (from 1) field of this name gets this value; empty deletes it.
    Set(usize, String, String),
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub changes: Vec<Change>,
    /// The replacement body, when a milter sent one.
    pub body: Option<Vec<u8>>,
    pub quarantine: bool,
}

/// Changes one milter may send (header changes, body chunks).
const MAX_CHANGES: usize = 1000;

/// One milter's connection for one transaction.
pub struct Live {
    spec: MilterSpec,
    s: Conn,
    /// The steps it asked to leave out or not to answer.
    proto: u32,
    step: Duration,
}

/// A milter that failed: dropped (fail=open) or 451 (fail=closed).
fn failed(m: &MilterSpec, e: &str) -> Option<Verdict> {
    log::warn!(
        "milter {}: {}; {}",
        m.address,
        crate::log::cut(e, 200),
        if m.fail_open {
            "skipped (fail=open)"
        } else {
            "451 (fail=closed)"
        }
    );
    (!m.fail_open)
        .then(|| Verdict::Tempfail("451 4.7.1 Service unavailable - try again later\r\n".into()))
}

/// At MAIL: every milter connected and told the client, HELO and MAIL. The
/// connections to go on with, or MAIL's verdict (Discard: the transaction
/// goes on and is dropped at its end).
pub async fn begin(milters: &[MilterSpec], b: &Begin<'_>) -> (Vec<Live>, Verdict) {
    let mut lives = Vec::new();
    for m in milters {
        match Live::open(m, b).await {
            Ok((Some(l), Verdict::Continue)) => lives.push(l),
            Ok((_, Verdict::Continue)) => {}
            Ok((l, v)) => {
                lives.extend(l);
                return (lives, v);
            }
            Err(e) => {
                if let Some(v) = failed(m, &e) {
                    return (lives, v);
                }
            }
        }
    }
    (lives, Verdict::Continue)
}

/// At RCPT: each milter's answer for this recipient; the first that is not
/// Continue. A milter that fails is dropped (or 451, fail=closed).
pub async fn rcpt(lives: &mut Vec<Live>, rcpt: &str) -> Verdict {
    let mut i = 0;
    while let Some(l) = lives.get_mut(i) {
        match l.rcpt(rcpt).await {
            Ok(None) => i += 1,
            Ok(Some(Verdict::Continue)) => {
                // Accept: it wants nothing more of this message.
                lives.remove(i);
            }
            Ok(Some(v)) => return v,
            Err(e) => {
                let spec = lives.remove(i).spec;
                if let Some(v) = failed(&spec, &e) {
                    return v;
                }
            }
        }
    }
    Verdict::Continue
}

/// After DATA: the message through every milter still with us.
pub async fn end(
    lives: Vec<Live>,
    queue_id: &str,
    message: &[u8],
    max_body: u64,
) -> (Verdict, Outcome) {
    let mut all = Outcome::default();
    for l in lives {
        let spec = l.spec.clone();
        let limit = Duration::from_secs(spec.timeout.max(1) * 4);
        match tokio::time::timeout(limit, l.finish(queue_id, message, max_body, &mut all)).await {
            Ok(Ok(Verdict::Continue)) => {}
            Ok(Ok(v)) => return (v, all),
            Ok(Err(e)) => {
                if let Some(v) = failed(&spec, &e) {
                    return (v, all);
                }
            }
            Err(_) => {
                if let Some(v) = failed(&spec, "no end of message in time") {
                    return (v, all);
                }
            }
        }
    }
    (Verdict::Continue, all)
}

impl Live {
    async fn send(&mut self, cmd: u8, data: &[u8]) -> Result<(), String> {
        tokio::time::timeout(self.step, write_packet(&mut self.s, cmd, data))
            .await
            .map_err(|_| "write timed out".to_string())?
            .map_err(|e| e.to_string())
    }

    fn skip(&self, f: u32) -> bool {
        self.proto & f != 0
    }

    /// Macros, the command, and unless told otherwise its answer.
    async fn step(
        &mut self,
        cmd: u8,
        data: &[u8],
        no: u32,
        no_reply: u32,
        macros: &[(&str, &str)],
    ) -> Result<Option<Verdict>, String> {
        if self.skip(no) {
            return Ok(None);
        }
        if !macros.is_empty() {
            let mut d = vec![cmd];
            for (k, v) in macros {
                d.extend(strings(&[k.as_bytes(), v.as_bytes()]));
            }
            self.send(b'D', &d).await?;
        }
        self.send(cmd, data).await?;
        if self.skip(no_reply) {
            return Ok(None);
        }
        answer(&mut self.s, self.step).await
    }

    /// Connect, negotiate, then client, HELO and MAIL.
    async fn open(m: &MilterSpec, b: &Begin<'_>) -> Result<(Option<Live>, Verdict), String> {
        let step = Duration::from_secs(m.timeout.max(1));
        let s = connect::connect(&m.address, b.broker, step).await?;
        let mut l = Live {
            spec: m.clone(),
            s,
            proto: 0,
            step,
        };
        l.send(
            b'O',
            &[
                VERSION.to_be_bytes(),
                ACTIONS.to_be_bytes(),
                PROTOCOL.to_be_bytes(),
            ]
            .concat(),
        )
        .await?;
        let (cmd, data) = read(&mut l.s, step).await?;
        if cmd != b'O' {
            return Err(format!("negotiation answered with {:?}", cmd as char));
        }
        l.proto = optneg(&data).ok_or("short negotiation reply")?.2;
        let ip = b.client.ip();
        let connect = [
            strings(&[format!("[{ip}]").as_bytes()]),
            vec![if ip.is_ipv4() { b'4' } else { b'6' }],
            b.client.port().to_be_bytes().to_vec(),
            strings(&[ip.to_string().as_bytes()]),
        ]
        .concat();
        let ip_s = ip.to_string();
        let c_macros = [
            ("j", b.hostname),
            ("{daemon_name}", "scorpiox"),
            ("{client_addr}", ip_s.as_str()),
        ];
        if let Some(v) = l
            .step(b'C', &connect, P_NOCONNECT, P_NR_CONN, &c_macros)
            .await?
        {
            return Ok((None, v));
        }
        if let Some(v) = l
            .step(
                b'H',
                &strings(&[b.helo.as_bytes()]),
                P_NOHELO,
                P_NR_HELO,
                &[],
            )
            .await?
        {
            return Ok((None, v));
        }
        let from = format!("<{}>", b.from);
        let m_macros = [("{mail_addr}", b.from)];
        if let Some(v) = l
            .step(
                b'M',
                &strings(&[from.as_bytes()]),
                P_NOMAIL,
                P_NR_MAIL,
                &m_macros,
            )
            .await?
        {
            return Ok(match v {
                // Accept at MAIL: nothing more of this message for it.
                Verdict::Continue => (None, Verdict::Continue),
                v => (Some(l), v),
            });
        }
        Ok((Some(l), Verdict::Continue))
    }

    async fn rcpt(&mut self, rcpt: &str) -> Result<Option<Verdict>, String> {
        let r = format!("<{rcpt}>");
        self.step(
            b'R',
            &strings(&[r.as_bytes()]),
            P_NORCPT,
            P_NR_RCPT,
            &[("{rcpt_addr}", rcpt)],
        )
        .await
    }

    /// DATA, the header fields, the body, end of message; the changes it asks
    /// for go into `all`.
    async fn finish(
        mut self,
        queue_id: &str,
        message: &[u8],
        max_body: u64,
        all: &mut Outcome,
    ) -> Result<Verdict, String> {
        let step = self.step;
        if let Some(v) = self
            .step(b'T', &[], P_NODATA, P_NR_DATA, &[("i", queue_id)])
            .await?
        {
            return Ok(v);
        }
        let head = crate::imap::mime::header_block(message);
        let body = message.get(head.len()..).unwrap_or_default();
        if !self.skip(P_NOHDRS) {
            for (name, value) in header_fields(head) {
                let value = if self.skip(P_HDR_LEADSPC) {
                    value
                } else {
                    value.trim_start().to_string()
                };
                if let Some(v) = self
                    .step(
                        b'L',
                        &strings(&[name.as_bytes(), value.as_bytes()]),
                        0,
                        P_NR_HDR,
                        &[],
                    )
                    .await?
                {
                    return Ok(v);
                }
            }
        }
        if let Some(v) = self.step(b'N', &[], P_NOEOH, P_NR_EOH, &[]).await? {
            return Ok(v);
        }
        if !self.skip(P_NOBODY) {
            for chunk in body.chunks(CHUNK) {
                self.send(b'B', chunk).await?;
                if !self.skip(P_NR_BODY) {
                    match read(&mut self.s, step).await? {
                        (b'c', _) => {}
                        (b's', _) => break,
                        (cmd, data) => {
                            if let Some(v) = verdict(cmd, &data)? {
                                return Ok(v);
                            }
                        }
                    }
                }
            }
        }
        self.send(b'E', &[]).await?;
        // Changes, then the verdict; progress packets keep the milter alive.
        let mut body_out: Option<Vec<u8>> = None;
        let mut n = 0usize;
        let v = loop {
            let (cmd, data) = read(&mut self.s, step).await?;
            n += 1;
            if n > MAX_CHANGES {
                return Err("too many changes".into());
            }
            let strs = |d: &[u8]| {
                split_strings(d)
                    .into_iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
            };
            match cmd {
                b'p' => {}
                b'h' => {
                    if let [name, value, ..] = strs(&data).as_slice() {
                        all.changes.push(Change::Add(name.clone(), value.clone()));
                    }
                }
                b'i' | b'm' => {
                    let i = data
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes)
                        .unwrap_or(0) as usize;
                    if let [name, value, ..] = strs(data.get(4..).unwrap_or_default()).as_slice() {
                        all.changes.push(if cmd == b'i' {
                            Change::Insert(i, name.clone(), value.clone())
                        } else {
                            Change::Set(i.max(1), name.clone(), value.clone())
                        });
                    }
                }
                b'b' => {
                    let b = body_out.get_or_insert_with(Vec::new);
                    if (b.len() + data.len()) as u64 > max_body {
                        return Err("replacement body over the size limit".into());
                    }
                    b.extend_from_slice(&data);
                }
                b'q' => all.quarantine = true,
                b'+' | b'-' | b'2' | b'e' => {
                    // Not offered in the negotiation: a milter that does it anyway.
                    log::info!(
                        "milter {}: ignored change {:?}",
                        self.spec.address,
                        cmd as char
                    );
                }
                b'a' | b'c' => break Verdict::Continue,
                other => match verdict(other, &data)? {
                    Some(v) => break v,
                    None => {
                        return Err(format!("unexpected {:?} at end of message", other as char))
                    }
                },
            }
        };
        if body_out.is_some() {
            all.body = body_out;
        }
        let _ = self.send(b'Q', &[]).await;
        Ok(v)
    }
}

async fn read(s: &mut Conn, step: Duration) -> Result<(u8, Vec<u8>), String> {
    tokio::time::timeout(step, read_packet(s))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())
}

/// The answer to one step: None to go on.
async fn answer(s: &mut Conn, step: Duration) -> Result<Option<Verdict>, String> {
    loop {
        let (cmd, data) = read(s, step).await?;
        match cmd {
            b'c' => return Ok(None),
            // Accept: this milter wants nothing more of this message.
            b'a' => return Ok(Some(Verdict::Continue)),
            b'p' => continue,
            other => return verdict(other, &data),
        }
    }
}

/// reject / tempfail / discard / a reply of its own.
fn verdict(cmd: u8, data: &[u8]) -> Result<Option<Verdict>, String> {
    Ok(Some(match cmd {
        b'r' => Verdict::Reject("550 5.7.1 Command rejected\r\n".into()),
        b't' => Verdict::Tempfail("451 4.7.1 Service unavailable - try again later\r\n".into()),
        b'd' => Verdict::Discard,
        b'y' => {
            let text =
                String::from_utf8_lossy(split_strings(data).first().copied().unwrap_or_default())
                    .replace(['\r', '\n'], " ");
            let text = crate::log::cut(text.trim(), 400).to_string();
            match text.as_bytes().first() {
                Some(b'4') => Verdict::Tempfail(format!("{text}\r\n")),
                Some(b'5') => Verdict::Reject(format!("{text}\r\n")),
                _ => return Err(format!("reply {text:?} is not 4xx or 5xx")),
            }
        }
        other => return Err(format!("unexpected answer {:?}", other as char)),
    }))
}

/// (name, value) of each field of a header block, the value unfolded as
/// libmilter passes it (continuation lines joined with "\n").
pub fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push('\n');
                v.push_str(line);
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim_end().to_string(), v.to_string()));
        }
    }
    out
}

/// The message with the milters' changes made.
pub fn apply(message: &[u8], o: &Outcome) -> Vec<u8> {
    let head = crate::imap::mime::header_block(message);
    let mut fields = header_fields(head);
    // A milter's value stays one field: every line after the first folded.
    let clean = |s: &str| {
        s.replace('\r', "")
            .split('\n')
            .map(|l| l.trim_start_matches([' ', '\t']).to_string())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n\t")
    };
    // RFC 5322 2.2: printable ASCII but the colon.
    let field_name =
        |n: &str| !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    for c in &o.changes {
        let name = match c {
            Change::Add(n, _) | Change::Insert(_, n, _) | Change::Set(_, n, _) => n,
        };
        if !field_name(name) {
            log::info!("milter: header change with a bad field name ignored");
            continue;
        }
        match c {
            Change::Add(n, v) => fields.push((n.clone(), format!(" {}", clean(v).trim_start()))),
            Change::Insert(i, n, v) => {
                let at = (*i).min(fields.len());
                fields.insert(at, (n.clone(), format!(" {}", clean(v).trim_start())));
            }
            Change::Set(k, n, v) => {
                let pos = fields
                    .iter()
                    .enumerate()
                    .filter(|(_, (name, _))| name.eq_ignore_ascii_case(n))
                    .nth(k - 1)
                    .map(|(j, _)| j);
                match (pos, v.is_empty()) {
                    (Some(j), true) => {
                        fields.remove(j);
                    }
                    (Some(j), false) => {
                        if let Some(f) = fields.get_mut(j) {
                            f.1 = format!(" {}", clean(v).trim_start());
                        }
                    }
                    (None, false) => {
                        fields.push((n.clone(), format!(" {}", clean(v).trim_start())))
                    }
                    (None, true) => {}
                }
            }
        }
    }
    let mut out = Vec::with_capacity(message.len() + 256);
    for (n, v) in &fields {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.replace("\n", "\r\n").replace("\r\r\n", "\r\n").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match &o.body {
        Some(b) => out.extend_from_slice(b),
        None => out.extend_from_slice(message.get(head.len()..).unwrap_or_default()),
    }
    out
}

/// What the milters made of a spooled message.
pub enum Filtered {
    /// Go on; the file grew by this much (changes), and maybe to Junk.
    Go { grew: i64, junk: bool },
    /// The reply line (4xx or 5xx).
    Refuse(String),
    /// Say 250 and keep nothing.
    Discard,
}

/// What the end of one filtering needs, owned (the session is not Sync).
pub struct Job {
    pub file: std::fs::File,
    pub lives: Vec<Live>,
    pub queue_id: String,
    pub max_size: u64,
}

/// The spooled message through every milter; changes written back.
pub async fn filter(job: Job) -> Filtered {
    use std::os::unix::fs::FileExt;
    let unreadable = || Filtered::Refuse(super::checks::READ_FAILED.into());
    let len = job.file.metadata().map(|m| m.len()).unwrap_or(0);
    let Ok(f) = job.file.try_clone() else {
        return unreadable();
    };
    let read = tokio::task::spawn_blocking(move || {
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, 0).map(|()| b)
    })
    .await;
    let Ok(Ok(message)) = read else {
        return unreadable();
    };
    let (v, outcome) = end(job.lives, &job.queue_id, &message, job.max_size).await;
    match v {
        Verdict::Continue => {}
        Verdict::Reject(r) | Verdict::Tempfail(r) => return Filtered::Refuse(r),
        Verdict::Discard => return Filtered::Discard,
    }
    if outcome.changes.is_empty() && outcome.body.is_none() {
        return Filtered::Go {
            grew: 0,
            junk: outcome.quarantine,
        };
    }
    let changed = apply(&message, &outcome);
    let grew = changed.len() as i64 - message.len() as i64;
    let Ok(f) = job.file.try_clone() else {
        return unreadable();
    };
    let written =
        tokio::task::spawn_blocking(move || crate::smtp::spool_edit::splice(&f, 0, len, &changed))
            .await;
    match written {
        Ok(Ok(())) => Filtered::Go {
            grew,
            junk: outcome.quarantine,
        },
        _ => Filtered::Refuse("451 4.3.0 Error writing message, try again later\r\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_made_where_the_protocol_says() {
        let m = b"Received: x\r\n\ty\r\nSubject: a\r\nX-Spam: old\r\n\r\nbody\r\n";
        let o = Outcome {
            changes: vec![
                Change::Add("X-Spamd-Result".into(), "default: False".into()),
                Change::Insert(0, "X-Top".into(), "t".into()),
                Change::Set(1, "X-Spam".into(), String::new()),
                Change::Set(1, "Subject".into(), "b".into()),
            ],
            body: None,
            quarantine: false,
        };
        let out = String::from_utf8(apply(m, &o)).unwrap();
        assert_eq!(
            out,
            "X-Top: t\r\nReceived: x\r\n\ty\r\nSubject: b\r\nX-Spamd-Result: default: False\r\n\r\nbody\r\n"
        );
        let o = Outcome {
            body: Some(b"new\r\n".to_vec()),
            ..Outcome::default()
        };
        assert!(String::from_utf8(apply(m, &o))
            .unwrap()
            .ends_with("\r\n\r\nnew\r\n"));
    }

    #[test]
    fn a_milter_cannot_add_lines_or_bad_names() {
        let m = b"Subject: a\r\n\r\nbody\r\n";
        let o = Outcome {
            changes: vec![
                Change::Add("X-A".into(), "one\nEvil: two\r\n".into()),
                Change::Add("Bad Name".into(), "x".into()),
                Change::Add("X-B:".into(), "x".into()),
            ],
            body: None,
            quarantine: false,
        };
        let out = String::from_utf8(apply(m, &o)).unwrap();
        assert_eq!(out, "Subject: a\r\nX-A: one\r\n\tEvil: two\r\n\r\nbody\r\n");
    }

    #[test]
    fn replies_of_a_milter_are_checked() {
        assert_eq!(
            verdict(b'y', b"554 5.7.1 Gtube pattern\0").unwrap(),
            Some(Verdict::Reject("554 5.7.1 Gtube pattern\r\n".into()))
        );
        assert!(verdict(b'y', b"250 ok\0").is_err());
        assert!(verdict(b'x', b"").is_err());
    }
}
