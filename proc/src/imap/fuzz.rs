//! Fuzzing entry points (fuzz/fuzz_targets/imap_*.rs), without the network or a
//! Maildir: `command` runs a client's bytes through the session's decoders
//! (imap-codec, then our own for the extensions it lacks, and the RFC 7162
//! parts taken out before decoding), the mailbox-name checks that guard the
//! file system, sequence sets and FETCH sections; `message` runs a delivered
//! message (attacker-controlled too) through what FETCH renders from it.

use super::{appends, ext, metadata, mime, names, parts, search, search_keys, sort, url};
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::fetch::MessageDataItemName;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::CommandCodec;
use std::path::Path;

const SAMPLE: &[u8] = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: s\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\n\r\nbody\r\n--x--\r\n";

fn name_of(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
    }
}

/// A name that passes the checks must stay one directory below the account.
fn check_name(name: &str) {
    let account = Path::new("a.test/bob");
    if let Ok(p) = names::folder(account, name) {
        let rest = p.strip_prefix(account).expect("folder outside the account");
        let parts: Vec<_> = rest.components().collect();
        assert!(parts.len() <= 1, "{name:?} became {p:?}");
        assert!(
            parts
                .iter()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{name:?} became {p:?}"
        );
    }
    let _ = names::matches("*", name);
    let _ = names::special_use(name);
}

/// One or more commands, as the session decodes them.
pub fn command(data: &[u8]) {
    let mut buf = data;
    for _ in 0..64 {
        if buf.is_empty() {
            return;
        }
        // The RFC 7162 parts are taken out of one command's bytes; a MODSEQ
        // key (8 bytes at least) grows into a HEADER key of under 64.
        if let Some((plain, _)) = parts::take(buf) {
            assert!(plain.len() <= buf.len() * 8);
        }
        if let Some(a) = appends::parse(buf) {
            check_name(&a.mailbox);
            for m in &a.messages {
                assert!(m.data.end <= buf.len());
                for p in m.catenate.iter().flatten() {
                    if let appends::Piece::Url(u) = p {
                        if let Some(t) = url::parse(u) {
                            check_name(&t.mailbox);
                        }
                    }
                }
            }
        }
        if let Some(
            metadata::Command::Set { mailbox, .. } | metadata::Command::Get { mailbox, .. },
        ) = metadata::parse(buf)
        {
            check_name(&mailbox);
        }
        if let Some((plain, _)) = sort::take(buf) {
            assert!(plain.len() <= buf.len() + 16);
        }
        let saved = search_keys::Saved {
            uids: "1:3".into(),
            seqs: "1,2".into(),
        };
        if let Some((plain, _)) = search_keys::rewrite(buf, Some(&saved)) {
            assert!(plain.len() <= buf.len() * 8);
        }
        match CommandCodec::default().decode(buf) {
            Ok((rest, cmd)) => {
                body(&cmd.body);
                buf = rest;
            }
            Err(_) => {
                let _ = ext::tag_of(buf);
                if let Some(ext::Ext::List(_, l)) = ext::parse(buf) {
                    for p in &l.patterns {
                        check_name(p);
                    }
                }
                // Skip to the next line, as the session does after a BAD.
                match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => buf = &buf[i + 1..],
                    None => return,
                }
            }
        }
    }
}

fn body(b: &CommandBody<'_>) {
    match b {
        CommandBody::Select { mailbox, .. }
        | CommandBody::Examine { mailbox, .. }
        | CommandBody::Create { mailbox, .. }
        | CommandBody::Delete { mailbox }
        | CommandBody::Subscribe { mailbox }
        | CommandBody::Unsubscribe { mailbox }
        | CommandBody::Status { mailbox, .. }
        | CommandBody::Append { mailbox, .. } => check_name(&name_of(mailbox)),
        CommandBody::Rename { from, to } => {
            check_name(&name_of(from));
            check_name(&name_of(to));
        }
        CommandBody::Copy {
            sequence_set,
            mailbox,
            ..
        }
        | CommandBody::Move {
            sequence_set,
            mailbox,
            ..
        } => {
            check_name(&name_of(mailbox));
            for v in 1..=4 {
                let _ = search::in_set(sequence_set, v, 3);
            }
        }
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            ..
        } => {
            for v in [1, 2, u32::MAX] {
                let _ = search::in_set(sequence_set, v, 2);
            }
            if let MacroOrMessageDataItemNames::MessageDataItemNames(items) = macro_or_item_names {
                for i in items {
                    if let MessageDataItemName::BodyExt { section, .. } = i {
                        let _ = mime::section(SAMPLE, section);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A stored message as FETCH renders it.
pub fn message(raw: &[u8]) {
    let _ = mime::parse(raw);
    let _ = mime::envelope(raw);
    let _ = mime::structure(raw, true);
    let _ = mime::structure(raw, false);
    let block = mime::header_block(raw);
    let _ = mime::header_fields(block, &["subject".into(), "from".into()], false);
    let _ = mime::header_fields(block, &["subject".into()], true);
    for text in [
        "BODY[1]",
        "BODY[1.MIME]",
        "BODY[2.1]",
        "BODY[TEXT]",
        "BODY[2.HEADER]",
    ] {
        let cmd = format!("a FETCH 1 {text}\r\n");
        if let Ok((_, c)) = CommandCodec::default().decode(cmd.as_bytes()) {
            if let CommandBody::Fetch {
                macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(items),
                ..
            } = &c.body
            {
                for i in items {
                    if let MessageDataItemName::BodyExt { section, .. } = i {
                        let _ = mime::section(raw, section);
                    }
                }
            }
        }
    }
}
