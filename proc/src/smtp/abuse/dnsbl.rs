//! DNS block lists and allow lists of client addresses (RFC 5782): the
//! address's reversed octets (IPv4) or nibbles (IPv6) under each zone, an A
//! record in 127.0.0.0/8 meaning "listed". 127.0.0.1 and 127.255.255.0/24
//! are not listings (RFC 5782 5; Spamhaus answers those to refused
//! queries). A zone that does not answer counts as not listing: a list's
//! outage must not stop mail (Postfix's reject_rbl_client does the same).

use hickory_resolver::TokioResolver;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// All zones of one check together.
const DEADLINE: Duration = Duration::from_secs(15);

/// The name to look up for `ip` in `zone`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            format!("{s}{zone}.")
        }
    }
}

/// Whether an answer address means "listed".
fn is_listing(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    x == 127 && a != Ipv4Addr::new(127, 0, 0, 1) && !(y == 255 && z == 255)
}

/// The first of `zones` (in their order) that lists `ip`; all are asked at
/// once.
pub async fn first_listing(
    resolver: &TokioResolver,
    ip: IpAddr,
    zones: &[String],
) -> Option<String> {
    let mut set = tokio::task::JoinSet::new();
    for (i, z) in zones.iter().enumerate() {
        let (r, z) = (resolver.clone(), z.clone());
        set.spawn(async move {
            let listed = match r.ipv4_lookup(query_name(ip, &z)).await {
                Ok(l) => l.answers().iter().any(|rec| {
                    matches!(&rec.data, hickory_resolver::proto::rr::RData::A(a) if is_listing(a.0))
                }),
                Err(e) => {
                    if !e.is_no_records_found() {
                        log::info!("dnsbl: {}: {}", crate::log::cut(&z, 100), crate::log::cut(&e.to_string(), 200));
                    }
                    false
                }
            };
            (i, listed)
        });
    }
    let mut listed: Vec<usize> = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        if let Ok((i, true)) = r {
            listed.push(i);
        }
    }
    set.abort_all();
    listed.into_iter().min().and_then(|i| zones.get(i).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_follow_rfc_5782() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.example"),
            "99.2.0.192.bl.example."
        );
        // RFC 5782 2.4's example.
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example."
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example."
        );
    }

    #[test]
    fn only_real_listings_count() {
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 10)));
        assert!(!is_listing(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!is_listing(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!is_listing(Ipv4Addr::new(10, 0, 0, 2)));
    }
}
