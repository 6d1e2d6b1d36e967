//! IMAP URLs (RFC 5092) naming a message or part in the logged-in account,
//! as CATENATE (RFC 4469) uses them: `/<mailbox>[;UIDVALIDITY=n]/;UID=n
//! [/;SECTION=s][/;PARTIAL=o.l]`, absolute (`imap://user@host/...`) or
//! from the server's root.

use super::folder::Folder;
use super::names;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::CommandCodec;
use std::path::Path;

/// What a URL names.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    /// The section text, as in `BODY[...]`.
    pub section: Option<String>,
    pub partial: Option<(usize, usize)>,
}

/// `%xx` escapes undone; None when one is malformed or the result is not
/// UTF-8.
pub(super) fn pct_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn parse(url: &str) -> Option<Target> {
    // `imap://user;AUTH=*@host:port/path`: only the path matters here.
    let path = match strip_prefix_ci(url, "imap://") {
        Some(rest) => &rest[rest.find('/')?..],
        None => url,
    };
    let path = path.strip_prefix('/')?;
    // Keywords are matched without case (RFC 5092 is ABNF: `;UID=` is
    // `;uid=` too); an ASCII lower-cased copy keeps every offset.
    let lower = path.to_ascii_lowercase();
    let at = lower.find("/;uid=")?;
    let (mbox, rest) = (&path[..at], &path[at + "/;uid=".len()..]);
    let (mbox, uidvalidity) = match mbox.to_ascii_lowercase().find(";uidvalidity=") {
        Some(i) => (
            &mbox[..i],
            Some(
                mbox[i + ";uidvalidity=".len()..]
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)?,
            ),
        ),
        None => (mbox, None),
    };
    let mut parts = rest.split("/;");
    let uid: u32 = parts.next()?.parse().ok().filter(|u| *u > 0)?;
    let (mut section, mut partial) = (None, None);
    for p in parts {
        if let Some(s) = strip_prefix_ci(p, "SECTION=") {
            section = Some(pct_decode(s)?);
        } else if let Some(r) = strip_prefix_ci(p, "PARTIAL=") {
            let (o, l) = r.split_once('.').unwrap_or((r, ""));
            let l = if l.is_empty() {
                usize::MAX
            } else {
                l.parse().ok()?
            };
            partial = Some((o.parse().ok()?, l));
        } else {
            return None;
        }
    }
    Some(Target {
        mailbox: pct_decode(mbox)?,
        uidvalidity,
        uid,
        section,
        partial,
    })
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `f` of the section text as imap-codec reads it from `BODY[...]`; None
/// when it is not one.
fn with_section<R>(s: &str, f: impl FnOnce(&Option<Section<'_>>) -> R) -> Option<R> {
    let cmd = format!("a FETCH 1 BODY.PEEK[{s}]\r\n");
    let (_, c) = CommandCodec::default().decode(cmd.as_bytes()).ok()?;
    let CommandBody::Fetch {
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(items),
        ..
    } = c.body
    else {
        return None;
    };
    match items.first()? {
        MessageDataItemName::BodyExt { section, .. } => Some(f(section)),
        _ => None,
    }
}

/// The bytes `url` names in `account`, or None when it names nothing here.
pub fn fetch(account: &Path, url: &str) -> Option<Vec<u8>> {
    let t = parse(url)?;
    // RFC 5092 names mailboxes in UTF-8; older clients (RFC 2192) in
    // modified UTF-7, which is how they are stored.
    let dir = [super::utf8::encode(&t.mailbox), t.mailbox.clone()]
        .into_iter()
        .filter_map(|m| names::folder(account, &m).ok())
        .find(|d| d.join("cur").is_dir())?;
    let folder = Folder::open(&dir).ok()?;
    let file = {
        let st = folder.lock().ok()?;
        if t.uidvalidity.is_some_and(|v| v != st.uidvalidity) {
            return None;
        }
        let j = st.msgs.binary_search_by_key(&t.uid, |m| m.uid).ok()?;
        folder.file_path(&st.msgs[j])
    };
    let raw = std::fs::read(file).ok()?;
    let data = match &t.section {
        None => raw,
        Some(s) => with_section(s, |sec| {
            super::mime::section(&raw, sec).map(|c| c.into_owned())
        })??,
    };
    Some(match t.partial {
        None => data,
        Some((o, l)) => {
            let start = o.min(data.len());
            let end = start.saturating_add(l).min(data.len());
            data[start..end].to_vec()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse("/INBOX;UIDVALIDITY=785799047/;UID=113330/;SECTION=1.5.9").unwrap();
        assert_eq!(t.mailbox, "INBOX");
        assert_eq!(t.uidvalidity, Some(785799047));
        assert_eq!(t.uid, 113330);
        assert_eq!(t.section.as_deref(), Some("1.5.9"));
        let t = parse("imap://joe@example.com/Sent%20Items/;UID=20/;SECTION=HEADER.FIELDS%20(SUBJECT)/;PARTIAL=0.10").unwrap();
        assert_eq!(t.mailbox, "Sent Items");
        assert_eq!(t.section.as_deref(), Some("HEADER.FIELDS (SUBJECT)"));
        assert_eq!(t.partial, Some((0, 10)));
        assert_eq!(
            with_section("HEADER.FIELDS (SUBJECT)", |s| s.is_some()),
            Some(true)
        );
        assert_eq!(with_section("BOGUS", |_| ()), None);
        // RFC 4467's examples are lower case.
        let t = parse("imap://joe@example.com/INBOX/;uid=20/;section=1.2").unwrap();
        assert_eq!((t.uid, t.section.as_deref()), (20, Some("1.2")));
        assert!(parse("/INBOX/;UID=0").is_none());
        assert!(parse("INBOX/;UID=1").is_none());
        assert!(parse("/INBOX/;UID=1/;BOGUS=1").is_none());
    }
}
