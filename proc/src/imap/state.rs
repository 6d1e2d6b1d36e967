//! Where a session is in RFC 3501's state diagram (3: not authenticated,
//! authenticated, selected). The selected mailbox's view exists only inside
//! `State::Selected`, so a command can reach it only after a SELECT; the
//! account only after a login.

use super::view::Selected;
use std::path::PathBuf;

/// Who logged in, and the slot that counts their sessions (freed on drop).
pub struct Login {
    pub user: String,
    /// The account's Maildir, relative to the Maildir root.
    pub account: PathBuf,
    pub(super) _slot: Option<crate::counter::Slot<String>>,
}

pub enum State {
    NotAuthenticated,
    Authenticated(Login),
    /// Boxed: the view is the biggest part of a session, and most idle
    /// sessions have none.
    Selected(Login, Box<Selected>),
}

impl State {
    pub fn login(&self) -> Option<&Login> {
        match self {
            State::NotAuthenticated => None,
            State::Authenticated(l) | State::Selected(l, _) => Some(l),
        }
    }

    pub fn selected(&self) -> Option<&Selected> {
        match self {
            State::Selected(_, s) => Some(s),
            _ => None,
        }
    }

    /// Back to the authenticated state (CLOSE, UNSELECT, any SELECT, the
    /// selected mailbox deleted); the view left, if there was one.
    pub fn deselect(&mut self) -> Option<Box<Selected>> {
        match std::mem::replace(self, State::NotAuthenticated) {
            State::Selected(l, s) => {
                *self = State::Authenticated(l);
                Some(s)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// Into the selected state with `sel` (from authenticated or selected).
    pub fn select(&mut self, sel: Selected) {
        self.deselect();
        if let State::Authenticated(l) = std::mem::replace(self, State::NotAuthenticated) {
            *self = State::Selected(l, Box::new(sel));
        }
    }
}
