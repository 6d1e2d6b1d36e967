//! Landlock: a second wall inside the chroot, enforced by the kernel even if a
//! process got out of its chroot or runs without one (not root). Rules are for
//! ABI 7, the newest one this was tested on; older kernels get what they support.

use ipc::messages::Role;
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};

const TESTED: ABI = ABI::V7;

/// Restrict the calling thread (and later threads) to the files under the
/// current directory (roles with files) or to none; no TCP bind anywhere, no TCP
/// connect but for smtp; no signals or abstract sockets outside the set.
/// Returns how much of it this kernel enforces.
pub fn install(role: Role) -> Result<&'static str, String> {
    let has_files = matches!(role, Role::Queue | Role::Delivery | Role::Imap);
    let net = match role {
        // smtp connects out (MX hosts, relays, DNS over TCP) but never binds TCP.
        Role::Smtp => AccessNet::BindTcp.into(),
        _ => AccessNet::from_all(TESTED),
    };
    let e = |e: landlock::RulesetError| e.to_string();
    let ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TESTED))
        .map_err(e)?
        .handle_access(net)
        .map_err(e)?
        .scope(Scope::from_all(TESTED))
        .map_err(e)?
        .create()
        .map_err(e)?;
    let ruleset = if has_files {
        ruleset
            .add_rules(path_beneath_rules(["."], AccessFs::from_all(TESTED)))
            .map_err(e)?
    } else {
        ruleset
    };
    let status = ruleset.restrict_self().map_err(e)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "enforced",
        RulesetStatus::PartiallyEnforced => "partly enforced (older kernel)",
        _ => "not supported by this kernel",
    })
}
