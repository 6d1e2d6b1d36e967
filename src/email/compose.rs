//! Building the message `sx email` sends, with mail-builder: From/To/Cc/Reply-To,
//! RFC 2047 encoded text, multipart/alternative for HTML, attachments typed by
//! their names, Message-ID and Date. Every flag value is checked before it gets
//! near a header: a CR or LF would let a caller forge headers (or a whole second
//! message), so it is refused with exit 65.

use super::{Envelope, Failure};
use crate::cli::EmailArgs;
use crate::exit;
use mail_builder::headers::address::Address as BAddress;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::MessageBuilder;
use std::io::{IsTerminal, Read};
use std::path::Path;

/// Bodies and attachments larger than this are refused instead of eating memory.
pub const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// One address with its optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub addr: String,
}

impl Mailbox {
    fn to_builder(&self) -> BAddress<'static> {
        BAddress::new_address(self.name.clone(), self.addr.clone())
    }
}

fn data_err(msg: String) -> Failure {
    Failure::new(exit::DATAERR, msg)
}

/// Refuse the characters that would end a header line early.
pub fn no_line_breaks(flag: &str, value: &str) -> Result<(), Failure> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(data_err(format!(
            "{flag} contains a line break or NUL: refused (header injection)"
        )));
    }
    Ok(())
}

/// Check the syntax of a bare address (no display name): `local@domain`, ASCII,
/// nothing an SMTP command line or header could trip on.
pub fn check_address(addr: &str) -> Result<(), String> {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(format!("{addr:?} is not an address (no @)"));
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    if local.is_empty() || local.len() > 64 || !local.chars().all(atext) {
        return Err(format!("{addr:?} has an invalid local part"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let literal = domain.starts_with('[')
        && domain.ends_with(']')
        && domain[1..domain.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':' || c == 'v' || c == 'V');
    if domain.len() > 255 || !(literal || domain.split('.').all(label_ok)) {
        return Err(format!("{addr:?} has an invalid domain"));
    }
    Ok(())
}

/// Parse address-list flag values (each may be a comma-separated list with display
/// names, as in a To: header). A bare local name gets `default_domain`.
pub fn parse_list(
    flag: &str,
    values: &[String],
    default_domain: Option<&str>,
) -> Result<Vec<Mailbox>, Failure> {
    let mut out = Vec::new();
    for v in values {
        no_line_breaks(flag, v)?;
        if v.trim().is_empty() {
            continue;
        }
        let header = format!("To: {v}\r\n\r\n");
        let parsed = mail_parser::MessageParser::new().parse_headers(header.as_bytes());
        let Some(list) = parsed.as_ref().and_then(|m| m.to()) else {
            return Err(data_err(format!("{flag} {v:?}: not an address list")));
        };
        for a in list.iter() {
            // A bare word (`root`, cron's MAILTO=carol) parses as a name alone.
            let bare = a
                .name()
                .filter(|n| a.address().is_none() && !n.contains(char::is_whitespace));
            let Some(addr) = a
                .address()
                .or(bare)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            else {
                return Err(data_err(format!("{flag} {v:?}: an entry has no address")));
            };
            let addr = match (addr.contains('@'), default_domain) {
                (false, Some(d)) => format!("{addr}@{d}"),
                _ => addr.to_string(),
            };
            check_address(&addr).map_err(|e| data_err(format!("{flag}: {e}")))?;
            out.push(Mailbox {
                name: a
                    .name()
                    .filter(|_| bare.is_none())
                    .map(str::to_string)
                    .filter(|n| !n.is_empty()),
                addr,
            });
        }
    }
    Ok(out)
}

pub fn parse_one(
    flag: &str,
    value: &str,
    default_domain: Option<&str>,
) -> Result<Mailbox, Failure> {
    let mut v = parse_list(flag, &[value.to_string()], default_domain)?;
    if v.len() != 1 {
        return Err(data_err(format!("{flag} takes exactly one address")));
    }
    Ok(v.remove(0))
}

/// The sender when neither a flag nor SMTP_FROM says: the login name at this host,
/// as sendmail does.
pub fn default_sender() -> String {
    let user = login_name();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| h.contains('.'))
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// Who is running us: LOGNAME, USER, or the name of our uid.
pub fn login_name() -> String {
    std::env::var("LOGNAME")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".into())
}

/// Headers the flags own, or that describe the MIME structure mail-builder writes.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
];

fn parse_header(h: &str) -> Result<(String, String), Failure> {
    no_line_breaks("--header", h)?;
    let Some((name, value)) = h.split_once(':') else {
        return Err(data_err(format!("--header {h:?}: expected 'Name: value'")));
    };
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(data_err(format!("--header {h:?}: invalid header name")));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        return Err(data_err(format!(
            "--header {name}: set by its own flag or by the MIME structure"
        )));
    }
    // mail-builder only skips its own Date/Message-ID for these exact spellings.
    let name = match lower.as_str() {
        "date" => "Date".to_string(),
        "message-id" => "Message-ID".to_string(),
        _ => name.to_string(),
    };
    Ok((name, value.trim().to_string()))
}

fn read_limited(mut r: impl Read, what: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::new(exit::IOERR, format!("cannot read {what}: {e}")))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(data_err(format!("{what} is larger than {MAX_INPUT} bytes")));
    }
    Ok(buf)
}

pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let f = std::fs::File::open(path)
        .map_err(|e| Failure::new(exit::NOINPUT, format!("{what} {}: {e}", path.display())))?;
    read_limited(f, &format!("{what} {}", path.display()))
}

/// Read stdin whole (for the body, or sendmail's message).
pub fn read_stdin(what: &str) -> Result<Vec<u8>, Failure> {
    read_limited(std::io::stdin().lock(), what)
}

fn body_text(args: &EmailArgs) -> Result<String, Failure> {
    let bytes = if let Some(b) = &args.body {
        return Ok(b.clone());
    } else if let Some(p) = &args.body_file {
        read_file(p, "--body-file")?
    } else if !std::io::stdin().is_terminal() {
        read_stdin("the body on stdin")?
    } else {
        return Err(Failure::new(
            exit::USAGE,
            "no body: give --body, --body-file, or pipe it on stdin".into(),
        ));
    };
    String::from_utf8(bytes)
        .map_err(|_| data_err("the body is not UTF-8 text; send binary data with --attach".into()))
}

fn domain_of(addr: &str) -> Option<&str> {
    addr.rsplit_once('@').map(|(_, d)| d)
}

/// `<time.pid.random@sender-domain>`: unique without asking the network.
pub fn message_id(from: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:06}.{}.{:08x}@{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        rand::random::<u32>(),
        domain_of(from).unwrap_or("localhost")
    )
}

/// Build the envelope and message from `sx email` flags. `test` builds the
/// `--test` message to the sender itself.
pub fn build(args: &EmailArgs, config_from: Option<&str>, test: bool) -> Result<Envelope, Failure> {
    let from_value = args
        .from
        .clone()
        .or_else(|| config_from.map(str::to_string))
        .unwrap_or_else(default_sender);
    let from = parse_one("--from", &from_value, None)?;
    let dom = domain_of(&from.addr).map(str::to_string);
    let dom = dom.as_deref();
    let (to, cc, bcc) = if test {
        (vec![from.clone()], Vec::new(), Vec::new())
    } else {
        (
            parse_list("--to", &args.to, dom)?,
            parse_list("--cc", &args.cc, dom)?,
            parse_list("--bcc", &args.bcc, dom)?,
        )
    };
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "no recipient: give --to, --cc or --bcc".into(),
        ));
    }
    let reply_to = match &args.reply_to {
        Some(r) => Some(parse_one("--reply-to", r, dom)?),
        None => None,
    };
    let subject = if test {
        format!("sx email --test from {}", from.addr)
    } else {
        match &args.subject {
            Some(s) => s.clone(),
            None => return Err(Failure::new(exit::USAGE, "--subject is required".into())),
        }
    };
    no_line_breaks("--subject", &subject)?;
    let headers = args
        .header
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = if test {
        "This is a test message sent by `sx email --test`.\n".to_string()
    } else {
        body_text(args)?
    };
    let mut attachments = Vec::new();
    for p in &args.attach {
        let data = read_file(p, "--attach")?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        no_line_breaks("--attach", &name)?;
        let ctype = mime_guess::from_path(p)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        attachments.push((ctype, name, data));
    }

    let mut b = MessageBuilder::new()
        .from(from.to_builder())
        .subject(Text::new(subject.clone()))
        .message_id(MessageId::new(message_id(&from.addr)));
    if !to.is_empty() {
        b = b.to(BAddress::new_list(
            to.iter().map(Mailbox::to_builder).collect(),
        ));
    }
    if !cc.is_empty() {
        b = b.cc(BAddress::new_list(
            cc.iter().map(Mailbox::to_builder).collect(),
        ));
    }
    if let Some(r) = &reply_to {
        b = b.reply_to(r.to_builder());
    }
    for (name, value) in headers {
        b = b.header(name, Text::new(value));
    }
    b = if args.html && !test {
        let text = super::html_text::html_to_text(&body);
        b.text_body(text).html_body(body)
    } else {
        b.text_body(body)
    };
    for (ctype, name, data) in attachments {
        b = b.attachment(ctype, name, data);
    }
    let message = b
        .write_to_vec()
        .map_err(|e| Failure::new(exit::SOFTWARE, format!("cannot build the message: {e}")))?;

    let mut rcpts: Vec<String> = Vec::new();
    for m in to.iter().chain(&cc).chain(&bcc) {
        if !rcpts.iter().any(|r| r.eq_ignore_ascii_case(&m.addr)) {
            rcpts.push(m.addr.clone());
        }
    }
    Ok(Envelope {
        from: from.addr,
        rcpts,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_address("a.b+c@x-y.test").is_ok());
        assert!(check_address("a@[127.0.0.1]").is_ok());
        assert!(check_address("a b@x.test").is_err());
        assert!(check_address("a@x..test").is_err());
        assert!(check_address("@x.test").is_err());
        assert!(check_address("a@-x.test").is_err());
        let l = parse_list(
            "--to",
            &["\"Doe, J\" <j@a.test>, b@a.test".into(), "root".into()],
            Some("h.test"),
        )
        .unwrap();
        let addrs: Vec<_> = l.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(addrs, ["j@a.test", "b@a.test", "root@h.test"]);
        assert_eq!(l[0].name.as_deref(), Some("Doe, J"));
        assert!(parse_list("--to", &["a@b.test\r\nBcc: x@y".into()], None).is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("x-job:  nightly ").unwrap(),
            ("x-job".into(), "nightly".into())
        );
        assert_eq!(parse_header("date: x").unwrap().0, "Date");
        assert!(parse_header("Subject: x").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("novalue").is_err());
    }
}
