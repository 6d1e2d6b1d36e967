//! What the checks' findings mean for a message: delivered, delivered to
//! Junk, refused (5xx) or deferred (4xx). Pure: no DNS, no I/O, so each rule
//! is tested on its own.

use ipc::messages::{DmarcAction, InboundChecks};
use mail_auth::dmarc::Policy;
use mail_auth::SpfResult;

/// What the DNS-backed checks found.
pub struct Findings {
    /// SPF for the MAIL FROM domain (for HELO when the sender is `<>`).
    pub spf: SpfResult,
    /// The domain that SPF result is for, lower case.
    pub spf_domain: String,
    /// d= of each DKIM signature that passed, lower case.
    pub dkim_pass: Vec<String>,
    pub dmarc: Dmarc,
    /// Local domains the message claims (MAIL FROM, header From).
    pub local_claims: Vec<String>,
}

/// The DMARC outcome, as far as a decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dmarc {
    /// Passed, or no policy applies (no record, several From domains).
    NoAction,
    /// Neither SPF nor DKIM aligned, under this policy.
    Fail(Policy),
    /// A lookup failed: the policy record's own (None), or one that might
    /// have passed under a record that asks for action.
    TempError(Option<Policy>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    /// Into the local recipients' Junk folder.
    Junk,
    /// The whole reply line, 5xx.
    Refuse(String),
    /// The whole reply line, 4xx.
    Defer(String),
}

pub fn decide(f: &Findings, cfg: &InboundChecks) -> Verdict {
    for d in &f.local_claims {
        let spf_ok = f.spf_domain == *d && f.spf == SpfResult::Pass;
        if spf_ok || f.dkim_pass.contains(d) {
            continue;
        }
        if f.spf_domain == *d && f.spf == SpfResult::TempError {
            return Verdict::Defer(format!(
                "451 4.7.5 Cannot check the sender for {d} (DNS), try again later\r\n"
            ));
        }
        return Verdict::Refuse(format!(
            "550 5.7.1 {d} is a local domain: neither SPF nor DKIM passed for it \
             (its users submit on port 587 or 465)\r\n"
        ));
    }
    let action = match &f.dmarc {
        Dmarc::NoAction => return Verdict::Deliver,
        Dmarc::TempError(None) => {
            return Verdict::Defer(
                "451 4.7.5 Cannot look up the sender's DMARC policy (DNS), try again later\r\n"
                    .into(),
            )
        }
        Dmarc::TempError(Some(Policy::Reject | Policy::Quarantine)) => return Verdict::Defer(
            "451 4.7.5 Cannot check the sender under its DMARC policy (DNS), try again later\r\n"
                .into(),
        ),
        Dmarc::TempError(Some(_)) => return Verdict::Deliver,
        Dmarc::Fail(Policy::Reject) => cfg.on_reject,
        Dmarc::Fail(Policy::Quarantine) => cfg.on_quarantine,
        Dmarc::Fail(_) => return Verdict::Deliver,
    };
    match action {
        DmarcAction::Reject => Verdict::Refuse(
            "550 5.7.1 Message rejected by the sender domain's DMARC policy \
             (neither SPF nor DKIM aligned with the From domain)\r\n"
                .into(),
        ),
        DmarcAction::Quarantine => Verdict::Junk,
        DmarcAction::Deliver => Verdict::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(on_reject: DmarcAction, on_quarantine: DmarcAction) -> InboundChecks {
        InboundChecks {
            enabled: true,
            authserv_id: "mx.a.test".into(),
            on_reject,
            on_quarantine,
        }
    }

    fn findings(spf: SpfResult, dkim: &[&str], dmarc: Dmarc, local: &[&str]) -> Findings {
        Findings {
            spf,
            spf_domain: "b.test".into(),
            dkim_pass: dkim.iter().map(|s| s.to_string()).collect(),
            dmarc,
            local_claims: local.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn dmarc_policies_and_their_softening() {
        let strict = cfg(DmarcAction::Reject, DmarcAction::Quarantine);
        let fail = |p| findings(SpfResult::Fail, &[], Dmarc::Fail(p), &[]);
        assert!(
            matches!(decide(&fail(Policy::Reject), &strict), Verdict::Refuse(r) if r.starts_with("550 5.7.1 "))
        );
        assert_eq!(decide(&fail(Policy::Quarantine), &strict), Verdict::Junk);
        assert_eq!(decide(&fail(Policy::None), &strict), Verdict::Deliver);
        let soft = cfg(DmarcAction::Quarantine, DmarcAction::Deliver);
        assert_eq!(decide(&fail(Policy::Reject), &soft), Verdict::Junk);
        assert_eq!(decide(&fail(Policy::Quarantine), &soft), Verdict::Deliver);
        let none = findings(SpfResult::Pass, &[], Dmarc::NoAction, &[]);
        assert_eq!(decide(&none, &strict), Verdict::Deliver);
    }

    #[test]
    fn dns_failure_defers_where_it_could_change_the_answer() {
        let c = cfg(DmarcAction::Reject, DmarcAction::Quarantine);
        let t = |p| findings(SpfResult::TempError, &[], Dmarc::TempError(p), &[]);
        assert!(matches!(decide(&t(None), &c), Verdict::Defer(r) if r.starts_with("451 4.7.5 ")));
        assert!(matches!(
            decide(&t(Some(Policy::Reject)), &c),
            Verdict::Defer(_)
        ));
        assert_eq!(decide(&t(Some(Policy::None)), &c), Verdict::Deliver);
    }

    #[test]
    fn local_domains_need_spf_or_dkim_for_themselves() {
        let c = cfg(DmarcAction::Reject, DmarcAction::Quarantine);
        let mut f = findings(SpfResult::None, &[], Dmarc::NoAction, &["a.test"]);
        assert!(
            matches!(decide(&f, &c), Verdict::Refuse(r) if r.contains("a.test is a local domain"))
        );
        // SPF passing for another domain does not vouch for a.test.
        f.spf = SpfResult::Pass;
        assert!(matches!(decide(&f, &c), Verdict::Refuse(_)));
        f.spf_domain = "a.test".into();
        assert_eq!(decide(&f, &c), Verdict::Deliver);
        let f = findings(SpfResult::Fail, &["a.test"], Dmarc::NoAction, &["a.test"]);
        assert_eq!(decide(&f, &c), Verdict::Deliver);
        let mut f = findings(SpfResult::TempError, &[], Dmarc::NoAction, &["a.test"]);
        f.spf_domain = "a.test".into();
        assert!(matches!(decide(&f, &c), Verdict::Defer(_)));
    }
}
