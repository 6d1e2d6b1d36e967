//! RFC 7208 4.6: a record with a syntax error anywhere gives "permerror"
//! before any term is evaluated. mail-auth 0.13 skips a term it does not
//! know (`frobnicate:x`) and goes on matching, so a record that python3-spf
//! and the RFC call broken can pass there; this checks the domain's own
//! record's terms first (the lookup is answered from the resolver's cache).

use hickory_resolver::TokioResolver;

/// Whether `domain`'s SPF record, if it has exactly one, is malformed.
/// Lookup failures are left to mail-auth's own evaluation.
pub async fn record_is_malformed(resolver: &TokioResolver, domain: &str) -> bool {
    let name = format!("{}.", domain.trim_end_matches('.'));
    let Ok(txt) = resolver.txt_lookup(name).await else {
        return false;
    };
    let records: Vec<String> = txt
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            hickory_resolver::proto::rr::RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .filter(|t| {
            let t = t.to_ascii_lowercase();
            t == "v=spf1" || t.starts_with("v=spf1 ")
        })
        .collect();
    match records.as_slice() {
        [one] => !well_formed(one),
        _ => false,
    }
}

/// The terms of an SPF record against RFC 7208 12's ABNF, loosely for
/// values (macro strings, addresses are mail-auth's to parse) but strictly
/// for names: a mechanism it defines or a `name=value` modifier.
pub fn well_formed(record: &str) -> bool {
    let mut terms = record.split(' ').filter(|t| !t.is_empty());
    if !terms
        .next()
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
    {
        return false;
    }
    terms.all(term_ok)
}

fn term_ok(term: &str) -> bool {
    let name_end = term
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(term.len());
    if term.as_bytes().get(name_end) == Some(&b'=') {
        // modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
        return term.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    }
    let t = term.strip_prefix(['+', '-', '~', '?']).unwrap_or(term);
    let end = t.find([':', '/']).unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "all" => rest.is_empty(),
        "include" | "exists" => rest.len() > 1 && rest.starts_with(':'),
        "ip4" | "ip6" => rest.len() > 1 && rest.starts_with(':'),
        "a" | "mx" | "ptr" => rest.is_empty() || rest.len() > 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_checked_by_the_abnf() {
        for ok in [
            "v=spf1 -all",
            "v=spf1 ip4:192.0.2.1 ip6:2001:db8::/32 a mx/24 ptr ~all",
            "v=spf1 include:_spf.example.org exists:%{i}.x.test ?all",
            "v=spf1 redirect=_spf.example.org",
            "V=SPF1 a:mail.example.org/28 exp=explain.example.org unknown-mod=x",
            "v=spf1",
        ] {
            assert!(well_formed(ok), "{ok}");
        }
        for bad in [
            "v=spf1 frobnicate:x -all",
            "v=spf1 ip4:192.0.2.1 allx",
            "v=spf1 include -all",
            "v=spf1 all:x",
            "v=spf1 1mod=x",
            "v=spf10 -all",
            "spf1 -all",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
