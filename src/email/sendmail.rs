//! `sx sendmail` (and `sx` installed as `sendmail`): the interface cron's MAILTO
//! and other programs use. Reads a whole message on stdin, takes recipients from
//! the arguments and, with -t, from To/Cc/Bcc (Bcc is then removed), adds From,
//! Date and Message-ID when missing, and sends it like `sx email`. A failure
//! worth retrying is kept in the offline queue and counts as accepted, as with
//! any sendmail: a cron job's output is not lost because the server was down.

use super::compose::{self, Mailbox};
use super::settings::Settings;
use super::{deliver, Envelope, Failure};
use crate::exit;
use std::ffi::OsString;

#[derive(Debug, Default, PartialEq)]
struct Opts {
    extract: bool,
    ignore_dots: bool,
    from: Option<String>,
    name: Option<String>,
    verbose: bool,
    config: Option<std::path::PathBuf>,
    rcpts: Vec<String>,
}

fn usage(msg: String) -> Failure {
    Failure::new(exit::USAGE, msg)
}

/// sendmail's option syntax: clustered flags, `-fADDR` or `-f ADDR`, `-oi`,
/// and the options other programs pass that mean nothing here (-oem, -odi, -B...).
fn parse(args: &[OsString]) -> Result<Opts, Failure> {
    let mut o = Opts::default();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    let mut only_rcpts = false;
    while let Some(a) = it.next() {
        if only_rcpts || !a.starts_with('-') || a == "-" {
            o.rcpts.push(a);
            continue;
        }
        if a == "--" {
            only_rcpts = true;
            continue;
        }
        let body = &a[1..];
        let mut value = |flag: char, rest: &str| -> Result<String, Failure> {
            if !rest.is_empty() {
                return Ok(rest.to_string());
            }
            it.next()
                .ok_or_else(|| usage(format!("option -{flag} needs a value")))
        };
        match body.chars().next() {
            Some('f') | Some('r') => o.from = Some(value('f', &body[1..])?),
            Some('F') => o.name = Some(value('F', &body[1..])?),
            Some('C') => o.config = Some(value('C', &body[1..])?.into()),
            // Delivery mode, error mode and the like mean nothing here: we deliver now.
            Some('o') => o.ignore_dots |= &body[1..] == "i",
            Some('B') | Some('N') | Some('R') | Some('V') | Some('X') => {
                // Body type, DSN and verbose-trace options: accepted, no effect.
                if body.len() == 1 {
                    it.next();
                }
            }
            Some('b') => match &body[1..] {
                "m" => {}
                m => return Err(usage(format!("mode -b{m} is not supported (only -bm)"))),
            },
            _ => {
                for c in body.chars() {
                    match c {
                        't' => o.extract = true,
                        'i' => o.ignore_dots = true,
                        'v' => o.verbose = true,
                        'n' | 'U' | 'm' => {}
                        c => return Err(usage(format!("unsupported option -{c}"))),
                    }
                }
            }
        }
    }
    Ok(o)
}

/// Without -i a line holding a single dot ends the message (traditional sendmail).
/// Line ends become CRLF, as SMTP needs.
fn normalize(input: &[u8], dot_ends: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    for line in input.split_inclusive(|&b| b == b'\n') {
        let mut bare = line;
        if let Some(b) = bare.strip_suffix(b"\n") {
            bare = b;
        }
        if let Some(b) = bare.strip_suffix(b"\r") {
            bare = b;
        }
        if dot_ends && bare == b"." {
            break;
        }
        out.extend_from_slice(bare);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Split at the blank line ending the header; a message with no header gets one.
fn split_header(msg: &[u8]) -> (&[u8], &[u8]) {
    if msg.starts_with(b"\r\n") {
        return (&msg[..0], &msg[2..]);
    }
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&msg[..i + 2], &msg[i + 4..]),
        None => (msg, &msg[msg.len()..]),
    }
}

/// Header fields as (name, whole field including folded lines).
fn fields(header: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| i + p + 2)
            .unwrap_or(header.len());
        let folded = matches!(header.get(end), Some(b' ') | Some(b'\t'));
        if !folded {
            let field = &header[start..end];
            let name = field
                .iter()
                .position(|&b| b == b':')
                .map(|p| {
                    String::from_utf8_lossy(&field[..p])
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            out.push((name, field));
            start = end;
        }
        i = end;
    }
    out
}

fn addresses(field: &[u8]) -> Result<Vec<String>, Failure> {
    let mut h = field.to_vec();
    h.extend_from_slice(b"\r\n");
    // Parse as a To: field whatever the name was (To, Cc or Bcc).
    let colon = h.iter().position(|&b| b == b':').unwrap_or(0);
    let mut as_to = b"To".to_vec();
    as_to.extend_from_slice(&h[colon..]);
    let Some(m) = mail_parser::MessageParser::new().parse_headers(&as_to) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if let Some(list) = m.to() {
        for a in list.iter() {
            // `To: root` (cron, the man page's example) parses as a name alone.
            let bare = a
                .name()
                .filter(|n| a.address().is_none() && !n.trim().contains(char::is_whitespace));
            if let Some(addr) = a
                .address()
                .or(bare)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                out.push(addr.to_string());
            }
        }
    }
    Ok(out)
}

pub fn run(args: &[OsString]) -> i32 {
    match run_checked(args) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sendmail: {}", f.msg);
            f.code
        }
    }
}

const USAGE: &str = "usage: sx sendmail [-t] [-i] [-f ADDR] [-F NAME] [-C FILE] [-v] [--] [RCPT...]
Reads a whole message (headers, blank line, body) on stdin and sends it through
SMTP_HOST; see sx-email(1).";

fn run_checked(args: &[OsString]) -> Result<i32, Failure> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(exit::OK);
    }
    let o = parse(args)?;
    let s = Settings::load(o.config.as_deref())?;
    let input = compose::read_stdin("the message on stdin")?;
    let msg = normalize(&input, !o.ignore_dots);
    let env = build(&o, s.from.as_deref(), &msg)?;
    deliver(&s, &env, true, o.verbose)
}

fn build(o: &Opts, config_from: Option<&str>, msg: &[u8]) -> Result<Envelope, Failure> {
    let from_value = o
        .from
        .clone()
        .or_else(|| config_from.map(str::to_string))
        .unwrap_or_else(compose::default_sender);
    let from = compose::parse_one("-f", &from_value, None)?;
    let domain = from.addr.rsplit_once('@').map(|(_, d)| d.to_string());
    let (header, body) = split_header(msg);
    let fields = fields(header);
    let mut wanted: Vec<String> = o.rcpts.clone();
    if o.extract {
        for (name, f) in &fields {
            if matches!(name.as_str(), "to" | "cc" | "bcc") {
                wanted.extend(addresses(f)?);
            }
        }
    }
    let mut rcpts: Vec<String> = Vec::new();
    for m in compose::parse_list("recipient", &wanted, domain.as_deref())? {
        if !rcpts.iter().any(|r| r.eq_ignore_ascii_case(&m.addr)) {
            rcpts.push(m.addr);
        }
    }
    if rcpts.is_empty() {
        return Err(usage(if o.extract {
            "no recipient in the arguments or in To/Cc/Bcc".into()
        } else {
            "no recipient (give addresses, or -t to read them from the message)".into()
        }));
    }
    let has = |n: &str| fields.iter().any(|(name, _)| name == n);
    let mut out = Vec::with_capacity(msg.len() + 256);
    if !has("from") {
        let mbox = Mailbox {
            name: o.name.clone(),
            addr: from.addr.clone(),
        };
        out.extend_from_slice(&from_header(&mbox)?);
    }
    if !has("date") {
        out.extend_from_slice(
            format!("Date: {}\r\n", chrono::Local::now().to_rfc2822()).as_bytes(),
        );
    }
    if !has("message-id") {
        out.extend_from_slice(
            format!("Message-ID: <{}>\r\n", compose::message_id(&from.addr)).as_bytes(),
        );
    }
    for (name, f) in &fields {
        // With -t, Bcc recipients get the message but no one sees the list.
        if o.extract && name == "bcc" {
            continue;
        }
        out.extend_from_slice(f);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(Envelope {
        from: from.addr,
        rcpts,
        message: out,
    })
}

/// `From: Name <addr>` with the name RFC 2047 encoded when it needs to be.
fn from_header(m: &Mailbox) -> Result<Vec<u8>, Failure> {
    if let Some(n) = &m.name {
        compose::no_line_breaks("-F", n)?;
    }
    let built = mail_builder::MessageBuilder::new()
        .from(mail_builder::headers::address::Address::new_address(
            m.name.clone(),
            m.addr.clone(),
        ))
        .write_to_vec()
        .map_err(|e| Failure::new(exit::SOFTWARE, format!("cannot build From: {e}")))?;
    // The builder writes From first; keep just that field (with any folding).
    let (head, _) = split_header(&built);
    let f = fields(head)
        .into_iter()
        .find(|(n, _)| n == "from")
        .map(|(_, f)| f.to_vec())
        .unwrap_or_default();
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn options() {
        let o = parse(&os(&[
            "-t",
            "-oi",
            "-fme@a.test",
            "-F",
            "Me",
            "--",
            "-x@a.test",
        ]))
        .unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.from.as_deref(), Some("me@a.test"));
        assert_eq!(o.name.as_deref(), Some("Me"));
        assert_eq!(o.rcpts, ["-x@a.test"]);
        let o = parse(&os(&["-ti", "-odi", "-oem", "a@b.test"])).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert!(parse(&os(&["-bs"])).is_err());
        assert!(parse(&os(&["-f"])).is_err());
    }

    #[test]
    fn dots_and_line_ends() {
        assert_eq!(normalize(b"a\nb\r\n.\nc\n", true), b"a\r\nb\r\n");
        assert_eq!(normalize(b"a\n.\nc", false), b"a\r\n.\r\nc\r\n");
    }

    #[test]
    fn extract_and_strip_bcc() {
        let o = Opts {
            extract: true,
            ..Default::default()
        };
        let msg = normalize(
            b"To: a@x.test, B <b@x.test>\nBcc: hidden@x.test,\n  other@x.test\nSubject: s\n\nbody\n",
            true,
        );
        let env = build(&o, Some("me@x.test"), &msg).unwrap();
        assert_eq!(
            env.rcpts,
            ["a@x.test", "b@x.test", "hidden@x.test", "other@x.test"]
        );
        let text = String::from_utf8(env.message).unwrap();
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("hidden"), "{text}");
        assert!(
            text.starts_with("From: <me@x.test>\r\n") || text.starts_with("From: me@x.test\r\n"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <") && text.contains("Date: "));
        assert!(text.ends_with("\r\n\r\nbody\r\n"), "{text}");
    }
}
