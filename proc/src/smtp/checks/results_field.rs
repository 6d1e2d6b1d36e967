//! Authentication-Results fields (RFC 8601) that claim to be ours. A message
//! from outside may carry one naming our authserv-id, forged or left by an
//! earlier hop of its own; readers trust that id, so every such field is
//! removed before ours is added (RFC 8601 5). Fields of other ids stay.

/// The header block `head` (up to and including its empty line) without the
/// Authentication-Results fields whose authserv-id is `ours` (compared
/// without case); None when it has none.
pub fn strip_ours(head: &[u8], ours: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(head.len());
    let mut removed = false;
    for field in fields(head) {
        if names_us(field, ours) {
            removed = true;
        } else {
            out.extend_from_slice(field);
        }
    }
    removed.then_some(out)
}

/// The fields of a header block, each with its folded continuation lines
/// and line ends; whatever does not start a field (the empty line, a stray
/// continuation at the top) is a piece of its own.
pub(super) fn fields(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        loop {
            let line_end = rest
                .get(end..)
                .and_then(|r| r.iter().position(|&b| b == b'\n'))
                .map_or(rest.len(), |p| end + p + 1);
            end = line_end;
            // A continuation starts with space or tab; the empty line never is one.
            match rest.get(end) {
                Some(b' ' | b'\t') if !is_empty_line(rest.get(..end).unwrap_or_default()) => {}
                _ => break,
            }
        }
        let (field, tail) = rest.split_at(end.min(rest.len()));
        rest = tail;
        Some(field)
    })
}

fn is_empty_line(s: &[u8]) -> bool {
    s == b"\r\n" || s == b"\n"
}

/// Whether `field` is an Authentication-Results field with authserv-id `ours`.
fn names_us(field: &[u8], ours: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = field.split_at(colon);
    if !name
        .trim_ascii_end()
        .eq_ignore_ascii_case(b"Authentication-Results")
    {
        return false;
    }
    let value = String::from_utf8_lossy(value.get(1..).unwrap_or_default());
    authserv_id(&value).is_some_and(|id| id.eq_ignore_ascii_case(ours))
}

/// The authserv-id: the first token of the value, after any comments
/// (CFWS may come first), up to white space, `;` or a comment.
fn authserv_id(value: &str) -> Option<&str> {
    let mut s = value.trim_start();
    while let Some(rest) = s.strip_prefix('(') {
        let mut depth = 1usize;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        s = rest.get(end?..)?.trim_start();
    }
    let s = s.trim_start_matches('"');
    let id = s
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == '"')
        .next()?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_are_removed_in_any_case_and_folding_others_stay() {
        let head = b"Received: from x\r\n by y\r\n\
Authentication-Results: MAIL.A.TEST; spf=pass\r\n smtp.mailfrom=a@b.test\r\n\
Subject: hi\r\n\
Authentication-Results: (forged) mail.a.test 1; dkim=pass\r\n\
Authentication-Results: mx.other.test; dkim=fail\r\n\
authentication-results:mail.a.test;none\r\n\
\r\n";
        let out = strip_ours(head, "mail.a.test").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Received: from x\r\n by y\r\nSubject: hi\r\n\
Authentication-Results: mx.other.test; dkim=fail\r\n\r\n"
        );
    }

    #[test]
    fn nothing_to_remove_is_none() {
        let head = b"Authentication-Results: mail.a.test.evil; spf=pass\r\nSubject: x\r\n\r\n";
        assert!(strip_ours(head, "mail.a.test").is_none());
        assert!(strip_ours(b"", "mail.a.test").is_none());
        assert!(strip_ours(b"\r\n", "mail.a.test").is_none());
    }

    #[test]
    fn authserv_id_after_comments() {
        assert_eq!(authserv_id(" (a (b)) x.test; none"), Some("x.test"));
        assert_eq!(authserv_id("x.test(c); none"), Some("x.test"));
        assert_eq!(authserv_id(" (unclosed"), None);
        assert_eq!(authserv_id(" ; none"), None);
    }
}
