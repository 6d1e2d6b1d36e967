//! Where mail for a domain goes (RFC 5321 §5): a static route (EMAIL_ROUTES), the
//! smarthost (EMAIL_RELAY_HOST), or the domain's MX records by preference, each
//! host's addresses in turn; no MX means the domain's own address; a null MX
//! (RFC 7505) means the domain takes no mail. DNS goes to the servers the parent
//! read from EMAIL_DNS_SERVER or /etc/resolv.conf (smtp cannot read files).

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use ipc::messages::Outcome;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub struct Hop {
    /// The smarthost (EMAIL_RELAY_HOST), where AUTH may be due.
    pub relay: bool,
    /// Hosts to try in order: every address of the first MX, then the next MX's.
    pub targets: Vec<Target>,
}

/// One address to try, with the host name it came from.
pub struct Target {
    /// The MX (or route) host name; the address itself for an IP route.
    pub host: String,
    pub addr: SocketAddr,
}

impl Target {
    /// For log lines, as Postfix writes them: `mx.example.org[192.0.2.1]:25`,
    /// or `[192.0.2.1]:25` when the host is the address.
    pub fn label(&self) -> String {
        let (ip, port) = (self.addr.ip(), self.addr.port());
        if self.host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            format!("[{ip}]:{port}")
        } else {
            format!("{}[{ip}]:{port}", self.host)
        }
    }
}

fn targets(host: &str, addrs: Vec<SocketAddr>) -> impl Iterator<Item = Target> + '_ {
    addrs.into_iter().map(move |addr| Target {
        host: host.to_string(),
        addr,
    })
}

pub fn resolver(servers: &[String]) -> Option<TokioResolver> {
    let ns: Vec<NameServerConfig> = servers
        .iter()
        .filter_map(|s| s.parse::<SocketAddr>().ok())
        .map(|sa| {
            let mut udp = ConnectionConfig::udp();
            udp.port = sa.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = sa.port();
            NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
        })
        .collect();
    if ns.is_empty() {
        return None;
    }
    let mut b = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], ns),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().timeout = Duration::from_secs(5);
    b.options_mut().attempts = 2;
    // A "no such name" without an SOA (some servers leave it out) would
    // otherwise not be kept at all: DMARC's walk up to the public suffix asks
    // the same missing name for every message.
    b.options_mut().negative_min_ttl = Some(Duration::from_secs(60));
    // Plain DNS only. hickory would otherwise load the system CA store for
    // encrypted transports, which does not exist inside smtp's empty chroot.
    if let Ok(v) = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
    {
        b = b.with_tls_config(
            v.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
    }
    match b.build() {
        Ok(r) => Some(r),
        Err(e) => {
            log::error!("DNS resolver: {e}");
            None
        }
    }
}

fn deferred(reply: String) -> Outcome {
    Outcome::Deferred { reply }
}

async fn addresses(
    r: Option<&TokioResolver>,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Outcome> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let r =
        r.ok_or_else(|| deferred(format!("cannot resolve {host}: no DNS server configured")))?;
    match r
        .lookup_ip(format!("{}.", host.trim_end_matches('.')))
        .await
    {
        Ok(l) => Ok(l.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(deferred(format!("DNS lookup of {host} failed: {e}"))),
    }
}

/// The next hop for `domain`, or the outcome for all its recipients.
pub async fn find(
    r: Option<&TokioResolver>,
    routes: &[(String, String)],
    relay: Option<&str>,
    domain: &str,
) -> Result<Hop, Outcome> {
    let route = routes
        .iter()
        .find(|(d, _)| d.eq_ignore_ascii_case(domain))
        .map(|(_, h)| h.as_str());
    let is_relay = route.is_none() && relay.is_some();
    let fixed = route.or(relay);
    if let Some(hp) = fixed {
        let (host, port) = hp.rsplit_once(':').unwrap_or((hp, "25"));
        let port: u16 = port.parse().unwrap_or(25);
        let host = host.trim_matches(['[', ']']);
        let addrs = addresses(r, host, port).await?;
        if addrs.is_empty() {
            return Err(deferred(format!("{host}: no address")));
        }
        return Ok(Hop {
            relay: is_relay,
            targets: targets(host, addrs).collect(),
        });
    }
    let res =
        r.ok_or_else(|| deferred(format!("no route to {domain}: no DNS server configured")))?;
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let mut mx: Vec<(u16, String)> = match res.mx_lookup(fqdn.as_str()).await {
        Ok(l) => l
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::MX(m) => Some((m.preference, m.exchange.to_string())),
                _ => None,
            })
            .collect(),
        Err(e) if e.is_nx_domain() => {
            return Err(Outcome::Failed {
                reply: format!("550 5.4.4 {domain}: domain does not exist"),
            })
        }
        Err(e) if e.is_no_records_found() => Vec::new(),
        Err(e) => return Err(deferred(format!("MX lookup for {domain} failed: {e}"))),
    };
    if mx.len() == 1 && (mx[0].1 == "." || mx[0].1.is_empty()) {
        return Err(Outcome::Failed {
            reply: format!("556 5.1.10 {domain}: domain does not accept mail (null MX)"),
        });
    }
    if mx.is_empty() {
        // RFC 5321 §5.1: no MX, use the domain itself.
        mx.push((0, domain.to_string()));
    }
    mx.sort_by_key(|(p, _)| *p);
    let mut all = Vec::new();
    let mut last_err = None;
    for (_, host) in &mx {
        let host = host.trim_end_matches('.');
        match addresses(Some(res), host, 25).await {
            Ok(a) => all.extend(targets(host, a)),
            Err(e) => last_err = Some(e),
        }
    }
    if all.is_empty() {
        return Err(last_err
            .unwrap_or_else(|| deferred(format!("{domain}: no address for its mail exchangers"))));
    }
    Ok(Hop {
        relay: false,
        targets: all,
    })
}
