//! Who may send at all, before any message is read: DNS block and allow
//! lists of the client's address (`dnsbl.rs`, RFC 5782) and rate limits per
//! client address and per sender (`rate.rs`). What they cost a refused
//! client is one DNS round trip and a reply line; what they hold is bounded.

pub mod dnsbl;
pub mod rate;

#[cfg(test)]
mod tests;
