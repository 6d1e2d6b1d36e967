//! Who sent a message that arrived on port 25: SPF (RFC 7208) for HELO and
//! MAIL FROM, every DKIM signature (RFC 6376, RSA and Ed25519), ARC (RFC
//! 8617) and DMARC (RFC 7489), worked out by mail-auth with DNS through
//! smtp's resolver (the process with network rights), all at the end of DATA
//! under one deadline. The outcome is an Authentication-Results field (RFC
//! 8601) to add, a verdict (`verdict.rs`) and a one-line summary for the log.

mod bounded;
mod results_field;
mod spf_syntax;
mod spool;
mod verdict;

use results_field::strip_ours;
pub use spool::{run, Job, READ_FAILED};
use verdict::Verdict;

use crate::directory::Dir;
use ipc::messages::InboundChecks;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfResult,
};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;
use verdict::{Dmarc, Findings};

/// All lookups of one message together (SPF may take 10 DNS-querying terms).
const DEADLINE: Duration = Duration::from_secs(45);

/// Message bytes all sessions may hold at once for checking; a session
/// waits for its share (a flood of large messages queues here instead of
/// growing smtp without bound).
const READ_BUDGET_KIB: usize = 128 * 1024;
/// How long a session waits for that share before a 451.
const BUDGET_WAIT: Duration = Duration::from_secs(60);

struct Input<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The reverse path, empty for `<>`.
    pub mail_from: &'a str,
    /// The message as received (without our Received field).
    pub message: &'a [u8],
    /// This server's host name (SPF's %{r}).
    pub hostname: &'a str,
}

struct Assessment {
    /// `Authentication-Results: ...\r\n`, to add at the top.
    pub field: String,
    pub verdict: Verdict,
    /// `spf=pass dkim=pass dmarc=pass arc=none`, for the log line.
    pub summary: String,
}

/// A share of the reading budget, held while a message is in memory.
struct Share(#[allow(dead_code)] tokio::sync::SemaphorePermit<'static>);

/// Wait for room to hold `len` bytes of message; None after BUDGET_WAIT.
async fn reserve(len: u64) -> Option<Share> {
    static BUDGET: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let budget = BUDGET.get_or_init(|| tokio::sync::Semaphore::new(READ_BUDGET_KIB));
    let kib = (len / 1024 + 1).min(READ_BUDGET_KIB as u64) as u32;
    match tokio::time::timeout(BUDGET_WAIT, budget.acquire_many(kib)).await {
        Ok(Ok(p)) => Some(Share(p)),
        _ => None,
    }
}

async fn assess(
    resolver: Option<&hickory_resolver::TokioResolver>,
    cfg: &InboundChecks,
    dir: &Dir,
    input: Input<'_>,
) -> Assessment {
    let Some(resolver) = resolver else {
        return deferred("451 4.7.5 No DNS server to check the sender with, try again later\r\n");
    };
    let auth = MessageAuthenticator(resolver.clone());
    match tokio::time::timeout(DEADLINE, run_checks(&auth, cfg, dir, &input)).await {
        Ok(a) => a,
        Err(_) => {
            deferred("451 4.7.5 Checking the sender took too long (DNS), try again later\r\n")
        }
    }
}

fn deferred(reply: &str) -> Assessment {
    Assessment {
        field: String::new(),
        verdict: Verdict::Defer(reply.into()),
        summary: "checks=temperror".into(),
    }
}

async fn run_checks(
    auth: &MessageAuthenticator,
    cfg: &InboundChecks,
    dir: &Dir,
    input: &Input<'_>,
) -> Assessment {
    let ip = input.ip;
    let helo = input.helo.trim_matches(['[', ']']);
    let helo_is_name = helo.parse::<IpAddr>().is_err() && helo.contains('.');
    // RFC 7208 2.3: HELO is checked when it is a name; its result stands for
    // the sender when MAIL FROM is empty (2.4).
    let spf_helo = if helo_is_name {
        auth.verify_spf(SpfParameters::verify_ehlo(ip, helo, input.hostname))
            .await
    } else {
        mail_auth::SpfOutput::new(helo.to_string())
    };
    let spf_helo = strict(auth, spf_helo).await;
    // Forward-confirmed reverse DNS of the client (RFC 8601 3: iprev).
    let iprev = auth.verify_iprev(ip).await;
    let spf_mail = if input.mail_from.is_empty() {
        spf_helo.clone()
    } else {
        let out = auth
            .verify_spf(SpfParameters::verify_mail_from(
                ip,
                helo,
                input.hostname,
                input.mail_from,
            ))
            .await;
        strict(auth, out).await
    };
    let mail_domain = match input.mail_from.rsplit_once('@') {
        Some((_, d)) => d.to_ascii_lowercase(),
        None => helo.to_ascii_lowercase(),
    };
    let mut local_claims = Vec::new();
    if !input.mail_from.is_empty() && dir.is_local_domain(&mail_domain) {
        local_claims.push(mail_domain.clone());
    }
    let mut ar = AuthenticationResults::new(&cfg.authserv_id);
    let looked_at = bounded::for_checks(input.message);
    let Some(msg) = AuthenticatedMessage::parse(&looked_at) else {
        // Nothing to find signatures or a From in: SPF alone.
        ar = spf_field(ar, &spf_helo, &spf_mail, input, helo, helo_is_name);
        ar = ar.with_iprev_result(&iprev, ip);
        let findings = Findings {
            spf: spf_mail.result(),
            spf_domain: mail_domain,
            dkim_pass: Vec::new(),
            dmarc: Dmarc::NoAction,
            local_claims,
        };
        return Assessment {
            field: ar.to_header(),
            verdict: verdict::decide(&findings, cfg),
            summary: format!(
                "spf={} dkim=none dmarc=none arc=none",
                spf_word(spf_mail.result())
            ),
        };
    };
    let dkim = auth.verify_dkim(&msg).await;
    let arc = auth.verify_arc(&msg).await;
    let dmarc = auth
        .verify_dmarc(DmarcParameters::new(&msg, &dkim, &mail_domain, &spf_mail))
        .await;
    for from in msg.froms() {
        if let Some((_, d)) = from.rsplit_once('@') {
            let d = d.to_ascii_lowercase();
            if dir.is_local_domain(&d) && !local_claims.contains(&d) {
                local_claims.push(d);
            }
        }
    }
    let dkim_pass: Vec<String> = dkim
        .iter()
        .filter(|o| o.result() == &DkimResult::Pass)
        .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
        .collect();
    ar = ar.with_dkim_results(&dkim, msg.from());
    ar = spf_field(ar, &spf_helo, &spf_mail, input, helo, helo_is_name);
    ar = ar.with_iprev_result(&iprev, ip);
    if arc.result() != &DkimResult::None {
        ar = ar.with_arc_result(&arc, ip);
    }
    ar = ar.with_dmarc_result(&dmarc);
    let dmarc_found = match dmarc.result() {
        DmarcResult::Fail(_) => Dmarc::Fail(dmarc.policy()),
        DmarcResult::TempError(_) => Dmarc::TempError(dmarc.dmarc_record().map(|_| dmarc.policy())),
        _ => Dmarc::NoAction,
    };
    let summary = format!(
        "spf={} dkim={} dmarc={} arc={} iprev={}",
        spf_word(spf_mail.result()),
        dkim_words(&dkim),
        dmarc_word(&dmarc),
        dkim_word(arc.result()),
        iprev_word(iprev.result()),
    );
    let findings = Findings {
        spf: spf_mail.result(),
        spf_domain: mail_domain,
        dkim_pass,
        dmarc: dmarc_found,
        local_claims,
    };
    Assessment {
        field: ar.to_header(),
        verdict: verdict::decide(&findings, cfg),
        summary,
    }
}

/// `out`, or permerror when the domain's record is malformed (`spf_syntax.rs`).
async fn strict(auth: &MessageAuthenticator, out: mail_auth::SpfOutput) -> mail_auth::SpfOutput {
    if matches!(
        out.result(),
        SpfResult::None | SpfResult::TempError | SpfResult::PermError
    ) {
        return out;
    }
    if spf_syntax::record_is_malformed(&auth.0, out.domain()).await {
        return mail_auth::SpfOutput::new(out.domain().to_string())
            .with_result(SpfResult::PermError);
    }
    out
}

/// SPF as RFC 8601 2.7.2 has it: the MAIL FROM identity (what DMARC uses),
/// and the HELO identity when HELO gave a name (RFC 7208 2.3), as its own
/// result with smtp.helo.
fn spf_field<'x>(
    ar: AuthenticationResults<'x>,
    spf_helo: &mail_auth::SpfOutput,
    spf_mail: &mail_auth::SpfOutput,
    input: &Input<'_>,
    helo: &str,
    helo_is_name: bool,
) -> AuthenticationResults<'x> {
    let ar = if input.mail_from.is_empty() {
        ar
    } else {
        ar.with_spf_mailfrom_result(spf_mail, input.ip, input.mail_from, helo)
    };
    if helo_is_name || input.mail_from.is_empty() {
        ar.with_spf_ehlo_result(spf_helo, input.ip, helo)
    } else {
        ar
    }
}

fn iprev_word(r: &mail_auth::IprevResult) -> &'static str {
    match r {
        mail_auth::IprevResult::Pass => "pass",
        mail_auth::IprevResult::Fail(_) => "fail",
        mail_auth::IprevResult::TempError(_) => "temperror",
        mail_auth::IprevResult::PermError(_) => "permerror",
        mail_auth::IprevResult::None => "none",
    }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// Each signature's result and domain, `pass:a.test,fail:b.test`; `none`.
fn dkim_words(outs: &[mail_auth::DkimOutput<'_>]) -> String {
    if outs.is_empty() {
        return "none".into();
    }
    outs.iter()
        .take(8)
        .map(|o| match o.signature() {
            Some(s) => format!("{}:{}", dkim_word(o.result()), crate::log::cut(&s.d, 64)),
            None => dkim_word(o.result()).to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn dmarc_word(d: &mail_auth::DmarcOutput) -> &'static str {
    match d.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

#[cfg(test)]
mod tests;
