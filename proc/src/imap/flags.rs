//! Message flags as Maildir stores them: letters after `:2,` in the file name.
//! Upper case letters are the system flags (D F R S T, others kept as found),
//! lower case `a`..`z` are keywords numbered by the folder's keywords file.

/// Bits 0..26 are `A`..`Z`, bits 32..58 are `a`..`z`.
pub type Bits = u64;

pub const DRAFT: Bits = 1 << (b'D' - b'A');
pub const FLAGGED: Bits = 1 << (b'F' - b'A');
pub const ANSWERED: Bits = 1 << (b'R' - b'A');
pub const SEEN: Bits = 1 << (b'S' - b'A');
pub const DELETED: Bits = 1 << (b'T' - b'A');
const SYSTEM: [(Bits, &str); 5] = [
    (ANSWERED, "\\Answered"),
    (FLAGGED, "\\Flagged"),
    (DELETED, "\\Deleted"),
    (SEEN, "\\Seen"),
    (DRAFT, "\\Draft"),
];
/// The keyword letters a..z: Maildir has room for 26 keywords per folder.
pub const MAX_KEYWORDS: usize = 26;

pub fn keyword_bit(index: usize) -> Bits {
    1 << (32 + index)
}

/// The flags in a file name (`base:2,FS` -> F|S); None when the name has no info part.
pub fn from_name(name: &str) -> Bits {
    let Some((_, info)) = name.split_once(":2,") else {
        return 0;
    };
    let mut bits = 0;
    for c in info.bytes() {
        match c {
            b'A'..=b'Z' => bits |= 1 << (c - b'A'),
            b'a'..=b'z' => bits |= 1 << (32 + (c - b'a')),
            _ => {}
        }
    }
    bits
}

/// The base name: what stays the same when flags change (the uidlist key).
pub fn base(name: &str) -> &str {
    name.split_once(':').map_or(name, |(b, _)| b)
}

/// `base:2,<letters>` in the sorted order Maildir readers expect.
pub fn file_name(base: &str, bits: Bits) -> String {
    let mut s = String::with_capacity(base.len() + 8);
    s.push_str(base);
    s.push_str(":2,");
    for i in 0..26u8 {
        if bits & (1 << i) != 0 {
            s.push((b'A' + i) as char);
        }
    }
    for i in 0..26u8 {
        if bits & (1 << (32 + i)) != 0 {
            s.push((b'a' + i) as char);
        }
    }
    s
}

/// The IMAP flag list for `bits` (keywords named by `keywords`), with `\Recent`.
pub fn imap_list(bits: Bits, keywords: &[String], recent: bool) -> String {
    let mut out = String::from("(");
    let mut push = |s: &str| {
        if out.len() > 1 {
            out.push(' ');
        }
        out.push_str(s);
    };
    for (bit, name) in SYSTEM {
        if bits & bit != 0 {
            push(name);
        }
    }
    for (i, k) in keywords.iter().enumerate().take(MAX_KEYWORDS) {
        if bits & keyword_bit(i) != 0 {
            push(k);
        }
    }
    if recent {
        push("\\Recent");
    }
    out.push(')');
    out
}

/// The bit of a system flag name (`\Seen`), case-insensitive.
pub fn system_bit(name: &str) -> Option<Bits> {
    SYSTEM
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(b, _)| *b)
}

/// Flags a client can set, for PERMANENTFLAGS and FLAGS.
pub const SYSTEM_LIST: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let b = from_name("123.Qabc.host:2,FSa");
        assert_eq!(b, FLAGGED | SEEN | keyword_bit(0));
        assert_eq!(file_name("123.Qabc.host", b), "123.Qabc.host:2,FSa");
        assert_eq!(base("123.Qabc.host:2,FSa"), "123.Qabc.host");
        assert_eq!(from_name("x"), 0);
        let kw = vec!["$Junk".to_string()];
        assert_eq!(imap_list(b, &kw, true), "(\\Flagged \\Seen $Junk \\Recent)");
    }
}
