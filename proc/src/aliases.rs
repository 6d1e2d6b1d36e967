//! The aliases file: `alias@domain: target, target` per line; `@domain: user@domain`
//! is a catch-all for the domain. `#` comments. Errors name file:line.

use std::path::Path;

#[derive(Debug)]
pub struct AliasError {
    pub msg: String,
}

impl std::fmt::Display for AliasError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Most targets one alias may expand to.
pub const MAX_TARGETS: usize = 1000;

pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, Vec<String>)>, AliasError> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |m: String| AliasError {
            msg: format!("{}:{}: {m}", path.display(), i + 1),
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((name, targets)) = t.split_once(':') else {
            return Err(err("expected alias@domain: target, target".into()));
        };
        let name = name.trim().to_ascii_lowercase();
        let valid_name = match name.strip_prefix('@') {
            Some(domain) => crate::accounts::normalize_address(&format!("x@{domain}")).is_some(),
            None => crate::accounts::normalize_address(&name).as_deref() == Some(name.as_str()),
        };
        if !valid_name {
            return Err(err(format!("{name:?} is not an address or @domain")));
        }
        let mut list = Vec::new();
        for tg in targets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some(a) = crate::accounts::normalize_address(tg).or_else(|| plus_address(tg))
            else {
                return Err(err(format!("target {tg:?} is not an address")));
            };
            // The local part as written: a remote server may tell case apart
            // (RFC 5321 2.4); local ones are compared without case anyway.
            let local = tg.rsplit_once('@').map_or("", |(l, _)| l);
            let domain = a.rsplit_once('@').map_or("", |(_, d)| d);
            list.push(format!("{local}@{domain}"));
        }
        if list.is_empty() {
            return Err(err(format!("alias {name} has no target")));
        }
        if list.len() > MAX_TARGETS {
            return Err(err(format!(
                "alias {name} has more than {MAX_TARGETS} targets"
            )));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(err(format!("duplicate alias {name}")));
        }
        out.push((name, list));
    }
    Ok(out)
}

/// Targets may carry a +tag (`user+lists@domain`).
fn plus_address(a: &str) -> Option<String> {
    let a = a.trim().to_ascii_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    let (base, tag) = local.split_once('+')?;
    let ok = !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    (ok && crate::accounts::normalize_address(&format!("{base}@{domain}")).is_some()).then_some(a)
}

/// A missing file is no aliases.
pub fn load(path: &Path) -> Result<Vec<(String, Vec<String>)>, AliasError> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(path, &t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(AliasError {
            msg: format!("{}: cannot read: {e}", path.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aliases_and_catch_all() {
        let p = Path::new("/etc/aliases");
        let a = parse(
            p,
            "# x\nPostmaster@a.test: bob@a.test, Carol.X@B.test\n@a.test: bob@a.test\n",
        )
        .unwrap();
        // Names are matched without case; a target's local part keeps its case.
        assert_eq!(a[0].0, "postmaster@a.test");
        assert_eq!(a[0].1, vec!["bob@a.test", "Carol.X@b.test"]);
        assert_eq!(a[1].0, "@a.test");
        let e = parse(p, "ok@a.test: bob@a.test\nbad line\n").unwrap_err();
        assert!(e.msg.starts_with("/etc/aliases:2:"), "{}", e.msg);
        assert!(parse(p, "x@a.test:\n").is_err());
    }
}
