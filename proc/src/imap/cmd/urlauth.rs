//! URLAUTH (RFC 4467): GENURLAUTH, URLFETCH and RESETKEY. The URLs and
//! their tokens are urlauth.rs's; the bytes a URL names, url.rs's.

use crate::imap::io::Io;
use crate::imap::respond::{literal, quote};
use crate::imap::state::Login;
use crate::imap::{names, urlauth, utf8};

/// At most this many URLs in one command (each may read a message).
const MAX_URLS: usize = 50;

pub fn genurlauth(io: &mut Io, login: &Login, tag: &str, pairs: &[(String, String)]) {
    if pairs.len() > MAX_URLS {
        io.tagged(tag, "NO", "[LIMIT] Too many URLs in one command");
        return;
    }
    let mut out = Vec::new();
    for (url, mech) in pairs {
        // RFC 4467 6.1: INTERNAL is the one mechanism every server has.
        if !mech.eq_ignore_ascii_case("INTERNAL") {
            io.tagged(tag, "NO", "Unknown authorization mechanism");
            return;
        }
        let Some(u) = urlauth::parse(url) else {
            io.tagged(tag, "BAD", "Not a URLAUTH URL");
            return;
        };
        match urlauth::authorize(&login.account, &login.user, &u) {
            Ok(full) => out.push(quote(&full)),
            Err(why) => {
                io.tagged(tag, "NO", &format!("[BADURL {}] {why}", quote(url)));
                return;
            }
        }
    }
    io.push(&format!("* GENURLAUTH {}\r\n", out.join(" ")));
    io.tagged(tag, "OK", "GENURLAUTH completed");
}

pub fn urlfetch(io: &mut Io, login: &Login, tag: &str, urls: &[String]) {
    if urls.len() > MAX_URLS {
        io.tagged(tag, "NO", "[LIMIT] Too many URLs in one command");
        return;
    }
    let now = chrono::Utc::now().timestamp();
    let mut out = b"* URLFETCH".to_vec();
    for url in urls {
        out.push(b' ');
        out.extend_from_slice(quote(url).as_bytes());
        out.push(b' ');
        // RFC 4467 6.3: NIL for a URL that cannot be fetched, whatever
        // the reason (so none is told).
        let data =
            urlauth::parse(url).and_then(|u| urlauth::fetch(&login.account, &login.user, &u, now));
        match data {
            Some(d) => literal(&mut out, &d),
            None => out.extend_from_slice(b"NIL"),
        }
    }
    out.extend_from_slice(b"\r\n");
    io.push_bytes(&out);
    io.tagged(tag, "OK", "URLFETCH completed");
}

pub fn resetkey(io: &mut Io, login: &Login, tag: &str, mailbox: Option<&str>, mechs: &[String]) {
    if mechs.iter().any(|m| !m.eq_ignore_ascii_case("INTERNAL")) {
        io.tagged(tag, "NO", "Unknown authorization mechanism");
        return;
    }
    let folders: Vec<String> = match mailbox {
        Some(m) => vec![utf8::name_in(m.as_bytes(), io.enabled.utf8)],
        None => names::all(&login.account),
    };
    for name in &folders {
        let Ok(path) = names::folder(&login.account, name) else {
            io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        };
        if !path.join("cur").is_dir() {
            io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        }
        if let Err(e) = urlauth::reset(&path) {
            log::warn!("{}: resetkey {}: {e}", io.service.name(), path.display());
            io.tagged(tag, "NO", "[SERVERBUG] Cannot reset the key");
            return;
        }
    }
    io.tagged(tag, "OK", "RESETKEY completed");
}
