//! The processes of `sx server-email` (DESIGN.md §1) and the pieces they share.

pub mod accounts;
pub mod aliases;
pub mod blob;
pub mod child;
pub mod compress;
pub mod config;
pub mod confine;
pub mod contain;
pub mod counter;
pub mod date;
pub mod delivery;
pub mod directory;
#[cfg(test)]
mod dns_fixture;
pub mod drain;
pub mod fault;
pub mod fsworker;
pub mod groupsync;
pub mod imap;
#[doc(hidden)]
pub mod inprocess;
pub mod keyholder;
pub mod log;
pub mod login_failures;
pub mod maildir;
pub mod net;
pub mod parent;
pub mod queue;
pub mod sandbox;
pub mod smtp;
pub mod startup;
pub mod stats;
pub mod tls;
