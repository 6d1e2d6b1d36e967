//! URLAUTH (RFC 4467): IMAP URLs that carry their own authorization. A
//! URLAUTH URL is `imap://<owner>@<host>/<mailbox>[;UIDVALIDITY=n]/;UID=n
//! [/;SECTION=s][/;PARTIAL=o.l][;EXPIRE=<date-time>];URLAUTH=<access>`
//! (the "rump"), then `:INTERNAL:<token>` once authorized. The token is
//! HMAC-SHA256 of the rump under the mailbox's access key, a random key
//! kept in the folder's `sx-urlauthkey` (`SXUK 1 <hex>`), made on first
//! use and replaced by RESETKEY, which so voids every URL made before.

use super::names;
use ring::hmac;
use std::path::Path;

const KEY_FILE: &str = "sx-urlauthkey";
const KEY_HEAD: &str = "SXUK 1 ";

/// Who may fetch a URL (RFC 4467 3).
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Only the submission server, for this user (BURL).
    Submit(String),
    /// This user, logged in.
    User(String),
    /// Any user logged in.
    AuthUser,
    Anonymous,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    /// The whole URL as given.
    pub full: String,
    /// Up to and including the access identifier: what the token signs.
    pub rump: String,
    /// The user whose mailbox it names (iuserinfo).
    pub owner: String,
    pub access: Access,
    /// Seconds since the epoch after which it is void.
    pub expire: Option<i64>,
    /// Mechanism and token, once authorized.
    pub token: Option<(String, String)>,
}

/// None when `s` is not a URLAUTH URL of the form above.
pub fn parse(s: &str) -> Option<Url> {
    let rest = super::url::strip_prefix_ci(s, "imap://")?;
    let slash = rest.find('/')?;
    // The last `@` before the path: a user name that is an address may
    // come with its `@` as is (`%40` is the proper form).
    let at = rest.get(..slash)?.rfind('@')?;
    // `user;AUTH=mech`: the user alone.
    let userinfo = &rest[..at];
    let user = userinfo.split(';').next()?;
    let owner = super::url::pct_decode(user)?;
    let lower = s.to_ascii_lowercase();
    let u = lower.find(";urlauth=")?;
    let after = &s[u + ";urlauth=".len()..];
    let (access_text, token) = match after.split_once(':') {
        Some((a, t)) => {
            let (mech, tok) = t.split_once(':')?;
            (a, Some((mech.to_string(), tok.to_string())))
        }
        None => (after, None),
    };
    let access = match access_text.to_ascii_lowercase().as_str() {
        "anonymous" => Access::Anonymous,
        "authuser" => Access::AuthUser,
        a => match a.split_once('+') {
            Some(("submit", _)) => {
                Access::Submit(super::url::pct_decode(access_text.split_once('+')?.1)?)
            }
            Some(("user", _)) => {
                Access::User(super::url::pct_decode(access_text.split_once('+')?.1)?)
            }
            _ => return None,
        },
    };
    let rump = s[..u + ";urlauth=".len() + access_text.len()].to_string();
    let before = &s[..u];
    let (path, expire) = match before.to_ascii_lowercase().find(";expire=") {
        Some(e) => {
            let when = &before[e + ";expire=".len()..];
            let t = chrono::DateTime::parse_from_rfc3339(when).ok()?;
            (&before[..e], Some(t.timestamp()))
        }
        None => (before, None),
    };
    // The message or part it names must be one.
    super::url::parse(path)?;
    Some(Url {
        full: s.to_string(),
        rump,
        owner,
        access,
        expire,
        token,
    })
}

/// The path part of a URL (what url.rs resolves): without EXPIRE and
/// URLAUTH.
pub fn path_of(u: &Url) -> &str {
    let lower = u.full.to_ascii_lowercase();
    let end = [lower.find(";expire="), lower.find(";urlauth=")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u.full.len());
    &u.full[..end]
}

/// The folder directory a URL's mailbox is, in `account`.
fn folder_of(account: &Path, u: &Url) -> Option<std::path::PathBuf> {
    let t = super::url::parse(path_of(u))?;
    [super::utf8::encode(&t.mailbox), t.mailbox]
        .into_iter()
        .filter_map(|m| names::folder(account, &m).ok())
        .find(|d| d.join("cur").is_dir())
}

/// The folder's access key, made when there is none yet.
fn key(folder: &Path, make: bool) -> std::io::Result<Option<hmac::Key>> {
    let path = folder.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            let hex = t
                .lines()
                .next()
                .and_then(|l| l.strip_prefix(KEY_HEAD))
                .ok_or_else(|| std::io::Error::other(format!("{}: not SXUK 1", path.display())))?;
            let bytes = from_hex(hex)
                .ok_or_else(|| std::io::Error::other(format!("{}: bad key", path.display())))?;
            Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && make => {
            reset(folder)?;
            key(folder, false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new access key for the folder: every URL made with the old one is void.
pub fn reset(folder: &Path) -> std::io::Result<()> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| std::io::Error::other("no randomness"))?;
    let text = format!("{KEY_HEAD}{}\n", to_hex(&bytes));
    crate::accounts::write_atomic(&folder.join(KEY_FILE), text.as_bytes(), 0o600)
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// GENURLAUTH: the URL authorized with the INTERNAL mechanism, or why not.
pub fn authorize(account: &Path, user: &str, u: &Url) -> Result<String, &'static str> {
    if u.token.is_some() {
        return Err("URL is already authorized");
    }
    if !u.owner.eq_ignore_ascii_case(user) {
        return Err("URL names another user's mailbox");
    }
    let folder = folder_of(account, u).ok_or("No such mailbox")?;
    let k = key(&folder, true)
        .ok()
        .flatten()
        .ok_or("Cannot make an access key")?;
    let tag = hmac::sign(&k, u.rump.as_bytes());
    Ok(format!("{}:internal:{}", u.rump, to_hex(tag.as_ref())))
}

/// URLFETCH: the bytes an authorized URL names, if `user` (a session's
/// login) may have them: the token must verify under the mailbox's current
/// key, the URL must not have expired, and its access must let this user
/// fetch it. Only URLs of the session's own account are served (a session
/// reads only its account); `submit+` URLs are for the submission server
/// alone (`fetch_as`), so never served to a session.
pub fn fetch(account: &Path, user: &str, u: &Url, now: i64) -> Option<Vec<u8>> {
    fetch_as(account, user, u, now, false)
}

/// As `fetch`, for the submission server's BURL (RFC 4468) when `submit`:
/// then `submit+<user>` URLs are served, `user+` ones are not.
pub fn fetch_as(account: &Path, user: &str, u: &Url, now: i64, submit: bool) -> Option<Vec<u8>> {
    let (mech, token) = u.token.as_ref()?;
    if !mech.eq_ignore_ascii_case("internal") || u.expire.is_some_and(|e| e <= now) {
        return None;
    }
    let allowed = match &u.access {
        Access::Anonymous | Access::AuthUser => true,
        Access::User(x) => !submit && x.eq_ignore_ascii_case(user),
        Access::Submit(x) => submit && x.eq_ignore_ascii_case(user),
    };
    if !allowed || !u.owner.eq_ignore_ascii_case(user) {
        return None;
    }
    let folder = folder_of(account, u)?;
    let k = key(&folder, false).ok()??;
    hmac::verify(&k, u.rump.as_bytes(), &from_hex(token)?).ok()?;
    super::url::fetch(account, path_of(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4467_urls() {
        let u =
            parse("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred").unwrap();
        assert_eq!(u.owner, "joe");
        assert_eq!(u.access, Access::Submit("fred".into()));
        assert_eq!(u.rump, u.full);
        assert_eq!(
            path_of(&u),
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2"
        );
        let u = parse(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;expire=2006-01-02T12:00:00Z;urlauth=anonymous:internal:91354a473744909de610943775f92038",
        )
        .unwrap();
        assert_eq!(u.access, Access::Anonymous);
        assert_eq!(u.expire, Some(1136203200));
        assert_eq!(
            u.token,
            Some(("internal".into(), "91354a473744909de610943775f92038".into()))
        );
        assert!(u.rump.ends_with(";urlauth=anonymous"));
        let u = parse("imap://bob%40a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous").unwrap();
        assert_eq!(u.owner, "bob@a.test");
        let u = parse("imap://bob@a.test@mail.a.test/INBOX/;uid=1;urlauth=anonymous").unwrap();
        assert_eq!(u.owner, "bob@a.test");
        assert!(parse("imap://joe@example.com/INBOX/;uid=20").is_none());
        assert!(parse("/INBOX/;uid=20;urlauth=anonymous").is_none());
        assert!(parse("imap://joe@example.com/INBOX/;uid=20;urlauth=bogus").is_none());
    }
}
