//! The NOTIFY command (RFC 5465) as clients send it, read here since
//! imap-codec 1.0 does not know it: `NOTIFY NONE` or `NOTIFY SET [STATUS]`
//! and event groups, each a mailbox filter and the events wanted for it.
//! What a session then sends is cmd/notify.rs's.

use super::tokens::{inner, is, spans, text, Kind, Span};

/// Which mailboxes a group is about (RFC 5465 6). Names as the client sent
/// them (UTF-8 once enabled).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Selected,
    /// As SELECTED, but expunges are told only where a command allows them.
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// The named mailboxes and all below them.
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Events {
    pub message_new: bool,
    pub message_expunge: bool,
    pub flag_change: bool,
    pub mailbox_name: bool,
    pub subscription_change: bool,
    pub mailbox_metadata: bool,
    pub server_metadata: bool,
}

impl Events {
    pub fn messages(&self) -> bool {
        self.message_new || self.message_expunge || self.flag_change
    }

    fn union(&mut self, o: &Events) {
        self.message_new |= o.message_new;
        self.message_expunge |= o.message_expunge;
        self.flag_change |= o.flag_change;
        self.mailbox_name |= o.mailbox_name;
        self.subscription_change |= o.subscription_change;
        self.mailbox_metadata |= o.mailbox_metadata;
        self.server_metadata |= o.server_metadata;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub filter: Filter,
    pub events: Events,
    /// MessageNew's fetch attributes, as sent (`(UID FLAGS ...)`).
    pub fetch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spec {
    pub groups: Vec<Group>,
}

impl Spec {
    /// The group for the selected mailbox, if the client named one.
    pub fn selected(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| matches!(g.filter, Filter::Selected | Filter::SelectedDelayed))
    }

    /// The events wanted for a mailbox other than the selected one: those
    /// of every group whose filter takes it. `name` is in the client's form.
    pub fn events_for(&self, name: &str, mut subscribed: impl FnMut(&str) -> bool) -> Events {
        let mut e = Events::default();
        for g in &self.groups {
            let takes = match &g.filter {
                Filter::Selected | Filter::SelectedDelayed => false,
                // Only INBOX receives mail here (RFC 5465 6.3).
                Filter::Inboxes => super::names::is_inbox(name),
                Filter::Personal => true,
                Filter::Subscribed => subscribed(name),
                Filter::Subtree(roots) => roots.iter().any(|r| {
                    same(r, name)
                        || name
                            .strip_prefix(r.as_str())
                            .is_some_and(|rest| rest.starts_with(super::names::DELIM))
                }),
                Filter::Mailboxes(names) => names.iter().any(|n| same(n, name)),
            };
            if takes {
                e.union(&g.events);
            }
        }
        e
    }

    /// Whether any group asks for this kind of event.
    pub fn any(&self, f: impl Fn(&Events) -> bool) -> bool {
        self.groups.iter().any(|g| f(&g.events))
    }
}

fn same(a: &str, b: &str) -> bool {
    a == b || (super::names::is_inbox(a) && super::names::is_inbox(b))
}

/// A session's NOTIFY in force: what it asked for, where it hears of
/// changes, and what it was last told (to tell only what changed since).
pub struct Watch {
    pub spec: Spec,
    pub rx: tokio::sync::broadcast::Receiver<std::sync::Arc<std::path::PathBuf>>,
    /// The STATUS last told of each mailbox (stored name).
    pub told: std::collections::HashMap<String, String>,
    /// MAILBOXID -> stored name of every folder, for MailboxName.
    pub folders: Option<std::collections::BTreeMap<String, String>>,
    /// Subscribed names, for SubscriptionChange.
    pub subscribed: Option<std::collections::BTreeSet<String>>,
    /// Per mailbox (stored name; "" for the server): entry -> hash of its
    /// value, for the metadata events.
    pub metadata: std::collections::HashMap<String, std::collections::BTreeMap<String, u64>>,
}

#[derive(Debug, PartialEq)]
pub enum Command {
    None(String),
    Set {
        tag: String,
        status: bool,
        spec: Spec,
    },
}

/// Why a NOTIFY is refused: BAD (malformed, or events that must go
/// together do not), or NO [BADEVENT] (an event this server does not
/// tell).
#[derive(Debug, PartialEq)]
pub enum Refused {
    Bad(String, &'static str),
    BadEvent(String),
}

/// Every event this server can tell, for `[BADEVENT (...)]`.
pub const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange";

/// At most this many event groups in one NOTIFY.
const MAX_GROUPS: usize = 100;

/// None when `buf` is not a NOTIFY command.
pub fn parse(buf: &[u8]) -> Option<Result<Command, Refused>> {
    let top = spans(buf, 0..buf.len())?;
    if !is(buf, top.get(1), "NOTIFY") {
        return None;
    }
    let tag = text(buf, top.first()?).to_string();
    if super::ext::tag_of(tag.as_bytes()) != tag {
        return None;
    }
    let bad = |why| Some(Err(Refused::Bad(tag.clone(), why)));
    if is(buf, top.get(2), "NONE") && top.len() == 3 {
        return Some(Ok(Command::None(tag)));
    }
    if !is(buf, top.get(2), "SET") {
        return bad("NOTIFY takes SET or NONE");
    }
    let mut k = 3;
    let status = is(buf, top.get(k), "STATUS");
    if status {
        k += 1;
    }
    let groups = top.get(k..).unwrap_or_default();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        return bad("NOTIFY SET takes 1 to 100 event groups");
    }
    let mut spec = Spec::default();
    for g in groups {
        if g.kind != Kind::List {
            return bad("An event group is a parenthesized list");
        }
        match group(buf, g) {
            Ok(group) => spec.groups.push(group),
            Err(None) => return bad("Malformed event group"),
            Err(Some("BADEVENT")) => return Some(Err(Refused::BadEvent(tag.clone()))),
            Err(Some(why)) => return bad(why),
        }
    }
    // RFC 5465 6.1: SELECTED and SELECTED-DELAYED at most once between them.
    let selected = spec
        .groups
        .iter()
        .filter(|g| matches!(g.filter, Filter::Selected | Filter::SelectedDelayed))
        .count();
    if selected > 1 {
        return bad("SELECTED and SELECTED-DELAYED may be given once");
    }
    Some(Ok(Command::Set { tag, status, spec }))
}

/// One `(filter events)` group. Err(None) when malformed; Err(Some(why))
/// for a rule it breaks ("BADEVENT" for an unknown event).
fn group(buf: &[u8], g: &Span) -> Result<Group, Option<&'static str>> {
    let items = spans(buf, inner(g)).ok_or(None)?;
    let word = items.first().map(|s| text(buf, s).to_ascii_uppercase());
    let (filter, at) = match word.as_deref() {
        Some("SELECTED") => (Filter::Selected, 1),
        Some("SELECTED-DELAYED") => (Filter::SelectedDelayed, 1),
        Some("INBOXES") => (Filter::Inboxes, 1),
        Some("PERSONAL") => (Filter::Personal, 1),
        Some("SUBSCRIBED") => (Filter::Subscribed, 1),
        Some("SUBTREE") => (Filter::Subtree(names(buf, items.get(1))?), 2),
        Some("MAILBOXES") => (Filter::Mailboxes(names(buf, items.get(1))?), 2),
        _ => return Err(None),
    };
    let ev = items.get(at).ok_or(None)?;
    let mut events = Events::default();
    let mut fetch = None;
    if items.len() == at + 1 && ev.kind == Kind::Atom && text(buf, ev).eq_ignore_ascii_case("NONE")
    {
        return Ok(Group {
            filter,
            events,
            fetch,
        });
    }
    // RFC 5465 8 has the events in a list; its own example in 3 leaves the
    // parentheses out, and clients copy examples: both are taken.
    let list = if items.len() == at + 1 && ev.kind == Kind::List {
        spans(buf, inner(ev)).ok_or(None)?
    } else {
        items.get(at..).unwrap_or_default().to_vec()
    };
    let mut i = 0;
    while let Some(s) = list.get(i) {
        match text(buf, s).to_ascii_uppercase().as_str() {
            "MESSAGENEW" => {
                events.message_new = true;
                if let Some(atts) = list.get(i + 1).filter(|a| a.kind == Kind::List) {
                    fetch = Some(text(buf, atts).to_string());
                    i += 1;
                }
            }
            "MESSAGEEXPUNGE" => events.message_expunge = true,
            "FLAGCHANGE" => events.flag_change = true,
            "MAILBOXNAME" => events.mailbox_name = true,
            "SUBSCRIPTIONCHANGE" => events.subscription_change = true,
            "MAILBOXMETADATACHANGE" => events.mailbox_metadata = true,
            "SERVERMETADATACHANGE" => events.server_metadata = true,
            _ => return Err(Some("BADEVENT")),
        }
        i += 1;
    }
    // RFC 5465 5: MessageNew and MessageExpunge go together; FlagChange
    // needs both.
    if events.message_new != events.message_expunge {
        return Err(Some("MessageNew and MessageExpunge go together"));
    }
    if events.flag_change && !events.message_new {
        return Err(Some("FlagChange needs MessageNew and MessageExpunge"));
    }
    // RFC 5465 6.1: only message events for the selected mailbox.
    let selected = matches!(filter, Filter::Selected | Filter::SelectedDelayed);
    if selected
        && (events.mailbox_name
            || events.subscription_change
            || events.mailbox_metadata
            || events.server_metadata)
    {
        return Err(Some("Only message events for the selected mailbox"));
    }
    Ok(Group {
        filter,
        events,
        fetch,
    })
}

/// One mailbox name or a parenthesized list of them.
fn names(buf: &[u8], s: Option<&Span>) -> Result<Vec<String>, Option<&'static str>> {
    let s = s.ok_or(None)?;
    let one = |s: &Span| super::tokens::mailbox(buf, s).ok_or(None);
    match s.kind {
        Kind::List => {
            let v = spans(buf, inner(s))
                .ok_or(None)?
                .iter()
                .map(one)
                .collect::<Result<Vec<_>, _>>()?;
            if v.is_empty() {
                return Err(None);
            }
            Ok(v)
        }
        _ => Ok(vec![one(s)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 5465 3's example leaves out the events' parentheses (taken),
        // but also gives MessageNew without MessageExpunge (BAD, by 5).
        let c = parse(
            b"a NOTIFY SET STATUS (selected MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge) (subtree Lists MessageNew)\r\n",
        );
        assert!(matches!(c, Some(Err(Refused::Bad(..)))), "{c:?}");
        let c = parse(
            b"a NOTIFY SET STATUS (selected MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge) (subtree Lists MessageNew MessageExpunge)\r\n",
        );
        let Some(Ok(Command::Set { spec, .. })) = c else {
            panic!("{c:?}")
        };
        assert!(spec.groups[0].events.message_expunge && spec.groups[0].fetch.is_some());
        assert!(spec.groups[1].events.message_new && spec.groups[1].events.message_expunge);
        let c = parse(
            b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))\r\n",
        )
        .unwrap()
        .unwrap();
        let Command::Set { status, spec, .. } = c else {
            panic!()
        };
        assert!(status);
        assert_eq!(spec.groups.len(), 2);
        assert_eq!(
            spec.groups[0].fetch.as_deref(),
            Some("(uid body.peek[header.fields (from to subject)])")
        );
        assert_eq!(spec.groups[1].filter, Filter::Subtree(vec!["Lists".into()]));
        assert!(spec.events_for("Lists.rust", |_| false).message_new);
        assert!(!spec.events_for("Listsx", |_| false).message_new);
        assert_eq!(
            parse(b"b NOTIFY NONE\r\n"),
            Some(Ok(Command::None("b".into())))
        );
        assert_eq!(
            parse(b"c NOTIFY SET (personal (MessageNew))\r\n"),
            Some(Err(Refused::Bad(
                "c".into(),
                "MessageNew and MessageExpunge go together"
            )))
        );
        assert_eq!(
            parse(b"d NOTIFY SET (personal (Bogus))\r\n"),
            Some(Err(Refused::BadEvent("d".into())))
        );
        assert!(matches!(
            parse(b"e NOTIFY SET (selected (MailboxName))\r\n"),
            Some(Err(Refused::Bad(..)))
        ));
        assert!(matches!(
            parse(b"f NOTIFY SET (selected NONE) (selected-delayed NONE)\r\n"),
            Some(Err(Refused::Bad(..)))
        ));
        assert!(parse(b"g NOOP\r\n").is_none());
    }
}
