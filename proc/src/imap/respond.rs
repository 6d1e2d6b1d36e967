//! How responses write what they carry (RFC 3501 4, 7): strings quoted or as
//! literals, sequence sets, dates, section names, the FLAGS lines, ESEARCH.
//! Handlers build their replies with these; nothing else formats the wire.

use super::flags;
use imap_codec::imap_types::fetch::{Part, Section};

/// A string for a response: quoted when it can be, a literal otherwise.
pub fn quote(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{{{}}}\r\n{s}", s.len())
    }
}

/// A mailbox name for a response: once the client enabled UTF-8, UTF-8 may
/// go in a quoted string (RFC 9755 3.1), which clients take more readily
/// than a literal.
pub fn quote_name(s: &str, utf8: bool) -> String {
    if utf8 && !s.is_ascii() && !s.chars().any(char::is_control) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        quote(s)
    }
}

/// `data` as a literal: `{n}` CRLF and the bytes.
pub fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

/// `data` as a literal, or a literal8 (`~{n}`, RFC 3516) when it holds NUL,
/// which only a literal8 may carry.
pub fn literal_any(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        out.push(b'~');
    }
    literal(out, data);
}

/// `1:3,7` for a list of numbers: runs that go up by one are joined, in the
/// order given (sorted for a set; ESORT keeps its sort order).
pub fn uid_ranges(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let mut j = i;
        while j + 1 < uids.len() && uids[j + 1] == uids[j].saturating_add(1) {
            j += 1;
        }
        out.push(if i == j {
            uids[i].to_string()
        } else {
            format!("{}:{}", uids[i], uids[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// INTERNALDATE's form: `24-Nov-2026 10:00:00 +0000`.
pub fn internal_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%d-%b-%Y %H:%M:%S +0000").to_string())
        .unwrap_or_else(|| "01-Jan-1970 00:00:00 +0000".to_string())
}

fn part_text(p: &Part) -> String {
    p.0.as_ref()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// The section as the response names it: `1.2.HEADER.FIELDS (FROM TO)`.
pub fn section_text(s: &Option<Section<'_>>) -> String {
    let with = |p: &Option<Part>, what: &str| match p {
        Some(p) => format!("{}.{what}", part_text(p)),
        None => what.to_string(),
    };
    let fields = |v: &imap_codec::imap_types::core::NonEmptyVec<
        imap_codec::imap_types::core::AString<'_>,
    >| {
        v.as_ref()
            .iter()
            .map(|a| quote(&String::from_utf8_lossy(a.as_ref())))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match s {
        None => String::new(),
        Some(Section::Part(p)) => part_text(p),
        Some(Section::Header(p)) => with(p, "HEADER"),
        Some(Section::HeaderFields(p, v)) => with(p, &format!("HEADER.FIELDS ({})", fields(v))),
        Some(Section::HeaderFieldsNot(p, v)) => {
            with(p, &format!("HEADER.FIELDS.NOT ({})", fields(v)))
        }
        Some(Section::Text(p)) => with(p, "TEXT"),
        Some(Section::Mime(p)) => format!("{}.MIME", part_text(p)),
    }
}

/// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (... \*)]` for these keywords;
/// a read-only mailbox permits nothing.
pub fn flags_lines(keywords: &[String], read_only: bool) -> String {
    let kw: String = keywords.iter().map(|k| format!(" {k}")).collect();
    let sys = flags::SYSTEM_LIST;
    if read_only {
        format!("* FLAGS ({sys}{kw})\r\n* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n")
    } else {
        format!("* FLAGS ({sys}{kw})\r\n* OK [PERMANENTFLAGS ({sys}{kw} \\*)] Flags permitted\r\n")
    }
}

/// `* ESEARCH` (RFC 4731) for SEARCH, or for SORT (ESORT, RFC 5267 3):
/// `found` in result order (mailbox order for SEARCH), so MIN and MAX are the
/// first and last, ALL keeps the order (joining runs only where numbers go
/// up by one) and `PARTIAL lo:hi` (RFC 5267 4.4) takes positions lo to hi of
/// it. CONTEXT and UPDATE ask for nothing here; with no other option the
/// answer is ALL. `modseq`: the highest mod-sequence matched, when a MODSEQ
/// key was used (RFC 7162 3.1.5).
pub fn esearch(
    tag: &str,
    uid: bool,
    opts: &[String],
    found: &[u32],
    modseq: Option<u64>,
) -> String {
    let mut line = format!("* ESEARCH (TAG {})", quote(tag));
    if uid {
        line.push_str(" UID");
    }
    let asked: Vec<&str> = opts
        .iter()
        .map(String::as_str)
        .filter(|o| !matches!(*o, "CONTEXT" | "UPDATE"))
        .collect();
    let want = |o: &str| asked.contains(&o) || (asked.is_empty() && o == "ALL");
    if let (true, Some(min)) = (want("MIN"), found.first()) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (true, Some(max)) = (want("MAX"), found.last()) {
        line.push_str(&format!(" MAX {max}"));
    }
    if want("COUNT") {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if want("ALL") && !found.is_empty() {
        line.push_str(&format!(" ALL {}", uid_ranges(found)));
    }
    for range in asked.iter().filter_map(|o| o.strip_prefix("PARTIAL ")) {
        let (lo, hi) = range.split_once(':').unwrap_or(("1", "0"));
        let (lo, hi): (usize, usize) = (lo.parse().unwrap_or(1), hi.parse().unwrap_or(0));
        let window = found.get(lo.saturating_sub(1).min(found.len())..hi.min(found.len()));
        match window {
            Some(w) if !w.is_empty() => {
                line.push_str(&format!(" PARTIAL ({range} {})", uid_ranges(w)))
            }
            _ => line.push_str(&format!(" PARTIAL ({range} NIL)")),
        }
    }
    if let Some(m) = modseq {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line + "\r\n"
}
