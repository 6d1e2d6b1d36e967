//! What FETCH reports about a message's MIME structure, with mail-parser for
//! the parsing and imap-codec for the serialization: ENVELOPE, BODYSTRUCTURE,
//! BODY, and the bytes of `BODY[section]`.

use imap_codec::encode::Encoder;
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, NonEmptyVec};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::{MessageDataItem, Section};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::ResponseCodec;
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use std::borrow::Cow;
use std::num::NonZeroU32;

pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// The header block of a raw message, with its empty line.
pub fn header_block(raw: &[u8]) -> &[u8] {
    // One pass: the first line end followed by an empty line (CRLF or LF).
    for (i, b) in raw.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        match &raw[i + 1..] {
            [b'\n', ..] => return &raw[..i + 2],
            [b'\r', b'\n', ..] => return &raw[..i + 3],
            _ => {}
        }
    }
    raw
}

/// `* 1 FETCH (NAME value)\r\n` -> `value`: imap-codec serializes one item.
fn encode_item(item: MessageDataItem<'_>) -> Vec<u8> {
    let resp = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: NonEmptyVec::from(item),
    });
    let bytes = ResponseCodec::default().encode(&resp).dump();
    let open = bytes.iter().position(|b| *b == b'(').unwrap_or(0);
    let value = bytes[open + 1..]
        .iter()
        .position(|b| *b == b' ')
        .map_or(open + 1, |i| open + 2 + i);
    let end = bytes.len().saturating_sub(3).max(value);
    bytes[value..end].to_vec()
}

fn istr(s: &str) -> IString<'static> {
    let clean: String = s.chars().filter(|c| *c != '\0').collect();
    IString::try_from(clean).unwrap_or_else(|_| IString::try_from("").expect("empty string"))
}

fn nstr(s: Option<&str>) -> NString<'static> {
    NString(s.map(istr))
}

/// Header value as sent: folding removed, surrounding space trimmed.
fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// RFC 2047 for a decoded display name that is not ASCII.
fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

fn addr(name: Option<&str>, address: Option<&str>) -> Address<'static> {
    // A source route (`<@a.test,@b.test:user@c.test>`, RFC 5322 obs-route)
    // goes to the adl field, not into the mailbox name.
    let (adl, address) = match address.and_then(|a| a.strip_prefix('@').zip(Some(a))) {
        Some((_, a)) if a.contains(':') => {
            let (route, rest) = a.split_once(':').unwrap_or((a, ""));
            (Some(route.to_string()), Some(rest))
        }
        _ => (None, address),
    };
    let (mailbox, host) = match address.and_then(|a| a.rsplit_once('@')) {
        Some((l, d)) => (Some(l.to_string()), Some(d.to_string())),
        None => (address.map(str::to_string), None),
    };
    Address {
        name: nstr(name.map(encode_word).as_deref()),
        adl: nstr(adl.as_deref()),
        mailbox: nstr(mailbox.as_deref()),
        host: nstr(host.as_deref()),
    }
}

fn addresses(v: Option<&mail_parser::Address<'_>>) -> Vec<Address<'static>> {
    let mut out = Vec::new();
    match v {
        Some(mail_parser::Address::List(list)) => {
            for a in list {
                out.push(addr(a.name.as_deref(), a.address.as_deref()));
            }
        }
        Some(mail_parser::Address::Group(groups)) => {
            for g in groups {
                // RFC 3501 group syntax: (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
                let named = g.name.is_some();
                if named {
                    out.push(Address {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: nstr(g.name.as_deref()),
                        host: NString(None),
                    });
                }
                // A comment inside a group (`group: (foo) ;`) is no address.
                for a in g.addresses.iter().filter(|a| a.address.is_some()) {
                    out.push(addr(a.name.as_deref(), a.address.as_deref()));
                }
                if named {
                    out.push(Address {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: NString(None),
                        host: NString(None),
                    });
                }
            }
        }
        None => {}
    }
    out
}

fn envelope_of(m: &Message<'_>) -> Envelope<'static> {
    let raw = |name: &str| m.header_raw(name).map(unfold);
    let from = addresses(m.from());
    let sender = match m.sender() {
        Some(s) => addresses(Some(s)),
        None => from.clone(),
    };
    let reply_to = match m.reply_to() {
        Some(s) => addresses(Some(s)),
        None => from.clone(),
    };
    Envelope {
        date: nstr(raw("Date").as_deref()),
        subject: nstr(raw("Subject").as_deref()),
        from,
        sender,
        reply_to,
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        bcc: addresses(m.bcc()),
        in_reply_to: nstr(raw("In-Reply-To").as_deref()),
        message_id: nstr(raw("Message-ID").as_deref()),
    }
}

/// The ENVELOPE of a message (only its header is needed).
pub fn envelope(raw: &[u8]) -> Vec<u8> {
    let env = match MessageParser::default().parse_headers(raw) {
        Some(m) => envelope_of(&m),
        None => Envelope {
            date: NString(None),
            subject: NString(None),
            from: vec![],
            sender: vec![],
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            bcc: vec![],
            in_reply_to: NString(None),
            message_id: NString(None),
        },
    };
    encode_item(MessageDataItem::Envelope(env))
}

fn params(ct: Option<&mail_parser::ContentType<'_>>) -> Vec<(IString<'static>, IString<'static>)> {
    ct.and_then(|c| c.attributes.as_ref())
        .map(|a| {
            a.iter()
                .map(|at| (istr(&at.name.to_ascii_uppercase()), istr(&at.value)))
                .collect()
        })
        .unwrap_or_default()
}

fn lines(b: &[u8]) -> u32 {
    b.iter().filter(|c| **c == b'\n').count() as u32
}

fn disposition(p: &MessagePart<'_>) -> Option<Disposition<'static>> {
    let disp = p
        .content_disposition()
        .map(|d| (istr(&d.c_type.to_ascii_uppercase()), params(Some(d))));
    let language: Vec<IString<'static>> = match p.content_language() {
        HeaderValue::Text(t) => vec![istr(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| istr(t)).collect(),
        _ => vec![],
    };
    Some(Disposition {
        disposition: disp,
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: nstr(p.content_location()),
                extensions: vec![],
            }),
        }),
    })
}

/// Most body parts rendered for one FETCH of one message, nested messages included.
const MAX_PARTS: u32 = 1000;

/// The walk over one message's parts: each part is rendered once, children only
/// after their parent (mail-parser's part lists of a malformed message can point
/// back or share children, which made this walk exponential: 595 bytes took
/// gigabytes), and at most MAX_PARTS parts in all.
struct Walk {
    seen: Vec<bool>,
    budget: u32,
}

impl Walk {
    fn new(m: &Message<'_>) -> Walk {
        Walk {
            seen: vec![false; m.parts.len()],
            budget: MAX_PARTS,
        }
    }

    /// May part `child` of `parent` be rendered now?
    fn visit(&mut self, parent: usize, child: usize) -> bool {
        if child <= parent || self.budget == 0 || self.seen.get(child) != Some(&false) {
            return false;
        }
        self.seen[child] = true;
        self.budget -= 1;
        true
    }
}

fn structure_of(
    m: &Message<'_>,
    idx: usize,
    ext: bool,
    depth: usize,
    walk: &mut Walk,
) -> BodyStructure<'static> {
    let raw = m.raw_message.as_ref();
    let Some(p) = m.parts.get(idx) else {
        return empty_text();
    };
    let ct = p.content_type();
    let (ty, sub) = match ct {
        Some(c) => (
            c.c_type.to_ascii_uppercase(),
            c.c_subtype
                .as_deref()
                .unwrap_or(if c.c_type.eq_ignore_ascii_case("text") {
                    "plain"
                } else {
                    ""
                })
                .to_ascii_uppercase(),
        ),
        None => ("TEXT".to_string(), "PLAIN".to_string()),
    };
    if let PartType::Multipart(children) = &p.body {
        if depth < 32 {
            let mut bodies = Vec::new();
            for c in children {
                if walk.visit(idx, *c as usize) {
                    bodies.push(structure_of(m, *c as usize, ext, depth + 1, walk));
                }
            }
            if let Ok(bodies) = NonEmptyVec::try_from(bodies) {
                return BodyStructure::Multi {
                    bodies,
                    subtype: istr(if sub.is_empty() { "MIXED" } else { &sub }),
                    extension_data: ext.then(|| MultiPartExtensionData {
                        parameter_list: params(ct),
                        tail: disposition(p),
                    }),
                };
            }
        }
    }
    let body = raw
        .get(p.offset_body as usize..p.offset_end as usize)
        .unwrap_or_default();
    let mut parameter_list = params(ct);
    if ct.is_none() {
        parameter_list.push((istr("CHARSET"), istr("US-ASCII")));
    }
    let basic = BasicFields {
        parameter_list,
        id: nstr(p.content_id().map(|s| format!("<{s}>")).as_deref()),
        description: nstr(p.content_description()),
        content_transfer_encoding: istr(
            &p.content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
        ),
        size: body.len() as u32,
    };
    let specific = match &p.body {
        PartType::Message(nested) if depth < 32 => SpecificFields::Message {
            envelope: Box::new(envelope_of(nested)),
            body_structure: Box::new({
                // A nested message has its own parts, but shares the budget.
                let mut inner = Walk::new(nested);
                inner.budget = walk.budget;
                let b = structure_of(nested, 0, ext, depth + 1, &mut inner);
                walk.budget = inner.budget;
                b
            }),
            number_of_lines: lines(body),
        },
        _ if ty == "TEXT" => SpecificFields::Text {
            subtype: istr(&sub),
            number_of_lines: lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: istr(&ty),
            subtype: istr(if sub.is_empty() { "OCTET-STREAM" } else { &sub }),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: ext.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: disposition(p),
        }),
    }
}

fn empty_text() -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istr("CHARSET"), istr("US-ASCII"))],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istr("7BIT"),
                size: 0,
            },
            specific: SpecificFields::Text {
                subtype: istr("PLAIN"),
                number_of_lines: 0,
            },
        },
        extension_data: None,
    }
}

/// BODYSTRUCTURE (`ext`) or BODY of a whole message.
pub fn structure(raw: &[u8], ext: bool) -> Vec<u8> {
    let s = match parse(raw) {
        Some(m) => structure_of(&m, 0, ext, 0, &mut Walk::new(&m)),
        None => empty_text(),
    };
    if ext {
        encode_item(MessageDataItem::BodyStructure(s))
    } else {
        encode_item(MessageDataItem::Body(s))
    }
}

/// The part a section path names: its message and index in that message.
fn find<'a, 'x>(m: &'a Message<'x>, path: &[NonZeroU32]) -> Option<(&'a Message<'x>, usize)> {
    let (mut msg, mut idx, mut at_root) = (m, 0usize, true);
    for n in path {
        let n = n.get() as usize;
        if !at_root {
            match &msg.parts.get(idx)?.body {
                PartType::Message(nested) => {
                    msg = nested;
                    idx = 0;
                }
                PartType::Multipart(_) => {}
                _ => return None,
            }
        }
        match &msg.parts.get(idx)?.body {
            PartType::Multipart(children) => idx = *children.get(n - 1)? as usize,
            _ if n == 1 && (at_root || idx == 0) => {}
            _ => return None,
        }
        at_root = false;
    }
    Some((msg, idx))
}

fn slice<'a>(m: &'a Message<'_>, from: u32, to: u32) -> &'a [u8] {
    m.raw_message
        .get(from as usize..to as usize)
        .unwrap_or_default()
}

/// The message a HEADER/TEXT section of `path` is about (a message/rfc822 part).
fn message_at<'a, 'x>(m: &'a Message<'x>, path: Option<&[NonZeroU32]>) -> Option<&'a Message<'x>> {
    let Some(path) = path else {
        return Some(m);
    };
    let (msg, idx) = find(m, path)?;
    match &msg.parts.get(idx)?.body {
        PartType::Message(nested) => Some(nested),
        _ => None,
    }
}

/// Header lines of `block` whose names are (or, with `not`, are not) in `names`.
pub fn header_fields(block: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in block.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|b| *b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name);
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name.trim()));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of `BODY[section]`; None when the section does not exist (an
/// empty string is returned to the client then).
pub fn section<'r>(raw: &'r [u8], section: &Option<Section<'_>>) -> Option<Cow<'r, [u8]>> {
    let names = |v: &NonEmptyVec<imap_codec::imap_types::core::AString<'_>>| -> Vec<String> {
        v.as_ref()
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect()
    };
    match section {
        None => return Some(Cow::Borrowed(raw)),
        Some(Section::Header(None)) => return Some(Cow::Borrowed(header_block(raw))),
        Some(Section::HeaderFields(None, v)) => {
            return Some(Cow::Owned(header_fields(
                header_block(raw),
                &names(v),
                false,
            )))
        }
        Some(Section::HeaderFieldsNot(None, v)) => {
            return Some(Cow::Owned(header_fields(
                header_block(raw),
                &names(v),
                true,
            )))
        }
        _ => {}
    }
    let m = parse(raw)?;
    let owned = |b: &[u8]| Some(Cow::Owned(b.to_vec()));
    match section {
        Some(Section::Part(p)) => {
            let (msg, idx) = find(&m, p.0.as_ref())?;
            let part = msg.parts.get(idx)?;
            owned(slice(msg, part.offset_body, part.offset_end))
        }
        Some(Section::Mime(p)) => {
            let (msg, idx) = find(&m, p.0.as_ref())?;
            let part = msg.parts.get(idx)?;
            owned(slice(msg, part.offset_header, part.offset_body))
        }
        Some(Section::Header(p)) => {
            let msg = message_at(&m, p.as_ref().map(|p| p.0.as_ref()))?;
            let root = msg.parts.first()?;
            owned(slice(msg, root.offset_header, root.offset_body))
        }
        Some(Section::Text(p)) => {
            let msg = message_at(&m, p.as_ref().map(|p| p.0.as_ref()))?;
            let root = msg.parts.first()?;
            owned(slice(msg, root.offset_body, root.offset_end))
        }
        Some(Section::HeaderFields(p, v)) | Some(Section::HeaderFieldsNot(p, v)) => {
            let not = matches!(section, Some(Section::HeaderFieldsNot(..)));
            let msg = message_at(&m, p.as_ref().map(|p| p.0.as_ref()))?;
            let root = msg.parts.first()?;
            Some(Cow::Owned(header_fields(
                slice(msg, root.offset_header, root.offset_body),
                &names(v),
                not,
            )))
        }
        None => None,
    }
}

/// Why BINARY could not give a part.
#[derive(Debug, PartialEq)]
pub enum NotBinary {
    /// No such part.
    Missing,
    /// A Content-Transfer-Encoding this server cannot undo (RFC 3516
    /// UNKNOWN-CTE), or content its encoding cannot hold.
    Unknown,
}

/// RFC 3516 `BINARY[part]`: the part's body with its Content-Transfer-
/// Encoding undone (no charset conversion); the whole message as it is for
/// an empty part.
pub fn binary<'r>(raw: &'r [u8], part: &[u32]) -> Result<Cow<'r, [u8]>, NotBinary> {
    if part.is_empty() {
        return Ok(Cow::Borrowed(raw));
    }
    let path: Vec<NonZeroU32> = part
        .iter()
        .map(|n| NonZeroU32::new(*n))
        .collect::<Option<_>>()
        .ok_or(NotBinary::Missing)?;
    let m = parse(raw).ok_or(NotBinary::Missing)?;
    let (msg, idx) = find(&m, &path).ok_or(NotBinary::Missing)?;
    let p = msg.parts.get(idx).ok_or(NotBinary::Missing)?;
    let body = slice(msg, p.offset_body, p.offset_end);
    let cte = p
        .headers
        .iter()
        .find(|h| h.name == mail_parser::HeaderName::ContentTransferEncoding)
        .and_then(|h| h.value().as_text())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Cow::Owned(body.to_vec())),
        "base64" => mail_parser::decoders::base64::base64_decode(body)
            .map(Cow::Owned)
            .ok_or(NotBinary::Unknown),
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                .map(Cow::Owned)
                .ok_or(NotBinary::Unknown)
        }
        _ => Err(NotBinary::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b1--\r\n";

    #[test]
    fn structure_and_sections() {
        let s = String::from_utf8(structure(MULTI, true)).unwrap();
        assert!(
            s.starts_with("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\")"),
            "{s}"
        );
        assert!(s.contains("\"APPLICATION\" \"PDF\""), "{s}");
        assert!(s.contains("\"MIXED\""), "{s}");
        let p = |n: &[u32]| {
            Some(Section::Part(imap_codec::imap_types::fetch::Part(
                NonEmptyVec::try_from(
                    n.iter()
                        .map(|x| NonZeroU32::new(*x).unwrap())
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
            )))
        };
        assert_eq!(&*section(MULTI, &p(&[1])).unwrap(), b"hello");
        assert_eq!(&*section(MULTI, &p(&[2])).unwrap(), b"AAAA");
        assert!(section(MULTI, &p(&[3])).is_none());
        // BINARY undoes the transfer encoding.
        assert_eq!(&*binary(MULTI, &[2]).unwrap(), b"\0\0\0");
        assert_eq!(&*binary(MULTI, &[1]).unwrap(), b"hello");
        assert_eq!(binary(MULTI, &[3]), Err(NotBinary::Missing));
        let uu = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
        assert_eq!(binary(uu, &[1]), Err(NotBinary::Unknown));
        let e = String::from_utf8(envelope(MULTI)).unwrap();
        assert!(
            e.contains("\"hi\"") && e.contains("(\"Alice\" NIL \"alice\" \"example.test\")"),
            "{e}"
        );
    }

    /// An attached message, not the last part, with a multipart inside.
    const NESTED: &[u8] = b"From: a@x.test\r\nSubject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nouter text\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y.test\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--i--\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nlast\r\n--o--\r\n";

    /// An attached message as the last part, single-part inside.
    const NESTED_LAST: &[u8] = b"From: a@x.test\r\nSubject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nouter text\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y.test\r\nSubject: inner\r\n\r\njust text\r\n--o--\r\n";

    fn path(n: &[u32]) -> Option<imap_codec::imap_types::fetch::Part> {
        Some(imap_codec::imap_types::fetch::Part(
            NonEmptyVec::try_from(
                n.iter()
                    .map(|x| NonZeroU32::new(*x).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        ))
    }

    fn text(raw: &[u8], s: Option<Section<'_>>) -> String {
        String::from_utf8(section(raw, &s).map(|c| c.into_owned()).unwrap_or_default()).unwrap()
    }

    /// Issue 16.1: sections inside a message/rfc822 part (RFC 3501 6.4.5) came
    /// back empty or shifted: mail-parser's `raw_message()` of a nested
    /// message starts at its header, while its offsets count from the outer
    /// message's first byte.
    #[test]
    fn sections_inside_an_attached_message() {
        assert_eq!(
            text(NESTED, Some(Section::Header(path(&[2])))),
            "From: b@y.test\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n"
        );
        let body = text(NESTED, Some(Section::Text(path(&[2]))));
        assert!(
            body.starts_with("--i\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--i\r\n"),
            "{body:?}"
        );
        assert!(body.trim_end().ends_with("--i--"), "{body:?}");
        assert_eq!(
            text(NESTED, Some(Section::Part(path(&[2, 1]).unwrap()))),
            "inner plain"
        );
        assert_eq!(
            text(NESTED, Some(Section::Part(path(&[2, 2]).unwrap()))),
            "<p>inner</p>"
        );
        assert_eq!(
            text(NESTED, Some(Section::Part(path(&[3]).unwrap()))),
            "last"
        );
        let names = NonEmptyVec::try_from(vec![imap_codec::imap_types::core::AString::try_from(
            "SUBJECT",
        )
        .unwrap()])
        .unwrap();
        assert_eq!(
            text(NESTED, Some(Section::HeaderFields(path(&[2]), names))),
            "Subject: inner\r\n\r\n"
        );
        assert_eq!(
            text(NESTED_LAST, Some(Section::Header(path(&[2])))),
            "From: b@y.test\r\nSubject: inner\r\n\r\n"
        );
        // The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
        assert_eq!(
            text(NESTED_LAST, Some(Section::Text(path(&[2])))),
            "just text"
        );
        assert_eq!(
            text(NESTED_LAST, Some(Section::Part(path(&[2, 1]).unwrap()))),
            "just text"
        );
        // BODYSTRUCTURE: the inner parts have their sizes and lines.
        let s = String::from_utf8(structure(NESTED, true)).unwrap();
        assert!(
            s.contains("\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 11 0"),
            "{s}"
        );
        assert!(
            s.contains("\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 12 0"),
            "{s}"
        );
    }

    /// Issue 16.6: a comment in a group is not an address; a source route
    /// is the adl.
    #[test]
    fn envelope_groups_and_routes() {
        let m = b"From: Al <@route.test:al@x.test>\r\nTo: group1: a@x.test, b@x.test;\r\nCc: group2: (foo) ;\r\nSubject: s\r\n\r\n";
        let e = String::from_utf8(envelope(m)).unwrap();
        assert!(
            e.contains("((\"Al\" \"@route.test\" \"al\" \"x.test\"))"),
            "{e}"
        );
        assert!(
            e.contains("((NIL NIL \"group1\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL \"b\" \"x.test\")(NIL NIL NIL NIL))"),
            "{e}"
        );
        assert!(
            e.contains("((NIL NIL \"group2\" NIL)(NIL NIL NIL NIL))"),
            "{e}"
        );
    }
}
