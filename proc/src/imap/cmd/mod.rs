//! One file per IMAP command or family of commands. Each handler takes what
//! its state gives it (the connection, the login, the selected view), adds
//! its replies to the session's output and returns; session.rs decides which
//! handler a command reaches in which state, and writes the replies.

pub mod any_state;
pub mod append;
pub mod auth;
pub mod compress;
pub mod context;
pub mod copy;
pub mod expunge;
pub mod fetch;
pub mod idle;
pub mod list;
pub mod mailbox;
pub mod metadata;
pub mod notify;
pub mod quota;
pub mod search;
pub mod select;
pub mod sort;
pub mod status;
pub mod store;
pub mod subscribe;
pub mod urlauth;

use super::folder::Folder;
use super::io::Io;
use super::names;
use super::state::Login;
use std::path::PathBuf;
use std::sync::Arc;

/// The folder a mailbox name means, or the NO saying why the name is refused.
pub(super) fn folder_or_no(io: &mut Io, login: &Login, tag: &str, name: &str) -> Option<PathBuf> {
    match names::folder(&login.account, name) {
        Ok(p) => Some(p),
        Err(why) => {
            log::info!(
                "{}: refused mailbox name {:?} user={}",
                io.service.name(),
                crate::log::cut(name, 100),
                login.user
            );
            io.tagged(tag, "NO", &format!("[CANNOT] {why}"));
            None
        }
    }
}

/// The existing folder COPY, MOVE or APPEND writes to, or the NO saying why not.
pub(super) fn target(io: &mut Io, login: &Login, tag: &str, name: &str) -> Option<Arc<Folder>> {
    let path = folder_or_no(io, login, tag, name)?;
    match Folder::open(&path) {
        Ok(f) => Some(f),
        Err(_) => {
            io.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
            None
        }
    }
}
