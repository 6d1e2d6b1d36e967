//! Protocol transcripts against the real session, in process, one file per
//! RFC (or family): what each extension must answer, checked against the
//! RFC's text and examples.

mod rfc3501;
mod rfc3502;
mod rfc4467;
mod rfc4978;
mod rfc5182;
mod rfc5256;
mod rfc5267;
mod rfc5465;
mod rfc7162;
mod rfc8474;
mod rfc9051;
mod rfc9755;

/// A session's output as text.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The number after `key` in `out` (e.g. `HIGHESTMODSEQ `).
fn number_after(out: &str, key: &str) -> u64 {
    let at = out
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in {out}"))
        + key.len();
    out[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {out}"))
}

/// The parenthesized id after `key` in `out`.
fn id_after(out: &str, key: &str) -> String {
    let at = out
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in {out}"))
        + key.len();
    out[at..].chars().take_while(|c| *c != ')').collect()
}
