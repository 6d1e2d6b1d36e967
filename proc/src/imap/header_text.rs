//! The header fields SEARCH asks for most (From, To, Cc, Bcc, Subject and the
//! Date's day), decoded and lower-cased once per message and kept with its
//! metadata: a client that searches FROM on every sync would otherwise have
//! every header block of the folder parsed again each time.

use mail_parser::{HeaderValue, Message, MessageParser};

/// The searchable text of one message's header block.
#[derive(Default)]
pub struct HeaderText {
    from: Vec<String>,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    subject: Vec<String>,
    /// The day of its Date: field.
    pub sent: Option<chrono::NaiveDate>,
}

impl HeaderText {
    pub fn of(header: &[u8]) -> Self {
        let Some(m) = MessageParser::default().parse_headers(header) else {
            return HeaderText::default();
        };
        HeaderText {
            from: values(&m, "From"),
            to: values(&m, "To"),
            cc: values(&m, "Cc"),
            bcc: values(&m, "Bcc"),
            subject: values(&m, "Subject"),
            sent: m.date().and_then(|d| {
                chrono::NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32)
            }),
        }
    }

    /// Bytes it holds (for the cache's budget).
    pub fn bytes(&self) -> usize {
        [&self.from, &self.to, &self.cc, &self.bcc, &self.subject]
            .iter()
            .flat_map(|v| v.iter())
            .map(|s| s.len() + 24)
            .sum::<usize>()
            + 64
    }

    /// The kept values of field `name`, or None when it is not one kept.
    pub fn field(&self, name: &str) -> Option<&[String]> {
        let kept = [
            ("from", &self.from),
            ("to", &self.to),
            ("cc", &self.cc),
            ("bcc", &self.bcc),
            ("subject", &self.subject),
        ];
        kept.into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

fn value_text(v: &HeaderValue<'_>, out: &mut String) {
    match v {
        HeaderValue::Text(t) => out.push_str(t),
        HeaderValue::TextList(l) => {
            for t in l {
                out.push_str(t);
                out.push(' ');
            }
        }
        HeaderValue::Address(a) => {
            for x in a.iter() {
                if let Some(n) = &x.name {
                    out.push_str(n);
                    out.push(' ');
                }
                if let Some(e) = &x.address {
                    out.push('<');
                    out.push_str(e);
                    out.push_str("> ");
                }
            }
        }
        HeaderValue::ContentType(c) => {
            out.push_str(&c.c_type);
            if let Some(s) = &c.c_subtype {
                out.push('/');
                out.push_str(s);
            }
        }
        _ => {}
    }
}

/// Every `name:` field of `m`: its decoded text and its raw value, lower-cased
/// (so a search finds an address by its display name, its address, or the
/// encoded word as written).
pub fn values(m: &Message<'_>, name: &str) -> Vec<String> {
    let raw = m.raw_message.as_ref();
    m.headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let mut s = String::new();
            value_text(&h.value, &mut s);
            s.push(' ');
            s.push_str(&String::from_utf8_lossy(
                raw.get(h.offset_start as usize..h.offset_end as usize)
                    .unwrap_or_default(),
            ));
            s.to_lowercase()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_fields_are_decoded_and_lower_cased() {
        let h = b"From: =?utf-8?q?J=C3=BCrgen?= <JU@Example.ORG>\r\nSubject: Hello World\r\n\
                  Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nX-Other: x\r\n\r\n";
        let t = HeaderText::of(h);
        let from = t.field("FROM").unwrap_or_default();
        assert!(from
            .iter()
            .any(|v| v.contains("jürgen") && v.contains("ju@example.org")));
        assert!(from.iter().any(|v| v.contains("=?utf-8?q?j=c3=bcrgen?=")));
        assert!(t
            .field("subject")
            .is_some_and(|v| v.len() == 1 && v[0].starts_with("hello world  hello world")));
        assert!(t.field("To").is_some_and(|v| v.is_empty()));
        assert!(t.field("X-Other").is_none());
        assert_eq!(t.sent, chrono::NaiveDate::from_ymd_opt(2026, 11, 2));
    }
}
