//! NOTIFY (RFC 5465) against the real session, in process: one session
//! asks to be told, another makes the changes, and what the first is told
//! between commands and in IDLE is checked against RFC 5465 5.

use super::text;
use crate::inprocess::Imap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_between_commands_and_in_idle() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let mut a = h.client();
    a.until("* PREAUTH").await;
    a.send("a SELECT INBOX\r\n").await;
    a.until("a OK").await;
    a.send(
        "b NOTIFY SET STATUS (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) \
         (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange \
         MailboxMetadataChange))\r\n",
    )
    .await;
    let out = a.until("b ").await;
    // STATUS of every other watched mailbox before the OK (3.1).
    assert!(
        out.contains("* STATUS \"Sent\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "),
        "{out}"
    );
    assert!(!out.contains("* STATUS \"INBOX\""), "{out}");
    assert!(out.contains("b OK NOTIFY completed"), "{out}");

    // New mail in the selected mailbox: EXISTS, then the FETCH asked for.
    h.session(
        true,
        b"x APPEND INBOX {12}\r\nSubject: n\r\n\r\nx LOGOUT\r\n",
    )
    .await;
    let out = a.until("* 3 FETCH").await;
    assert!(out.contains("* 3 EXISTS\r\n"), "{out}");
    assert!(out.contains("* 3 FETCH (UID 3 FLAGS ("), "{out}");
    // In another mailbox: its STATUS.
    h.session(
        true,
        b"x APPEND Sent {12}\r\nSubject: s\r\n\r\nx LOGOUT\r\n",
    )
    .await;
    let out = a.until("* STATUS").await;
    assert!(
        out.contains("* STATUS \"Sent\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{out}"
    );
    assert!(out.contains(" UNSEEN 1)"), "{out}");
    // Flags changed elsewhere: FETCH with UID and FLAGS (5.1).
    h.session(
        true,
        b"x SELECT INBOX\r\nx STORE 1 +FLAGS (\\Flagged)\r\nx LOGOUT\r\n",
    )
    .await;
    let out = a.until("* 1 FETCH").await;
    assert!(out.contains("UID 1") && out.contains("\\Flagged"), "{out}");
    // Mailboxes made, renamed, deleted (5.4); subscriptions (5.5).
    h.session(true, b"x CREATE Projects\r\nx LOGOUT\r\n").await;
    let out = a.until("* LIST").await;
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Projects\"\r\n"),
        "{out}"
    );
    h.session(true, b"x RENAME Projects Done\r\nx LOGOUT\r\n")
        .await;
    let out = a.until("* LIST").await;
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Done\" (\"OLDNAME\" (\"Projects\"))\r\n"),
        "{out}"
    );
    h.session(true, b"x DELETE Done\r\nx LOGOUT\r\n").await;
    let out = a.until("* LIST").await;
    assert!(
        out.contains("* LIST (\\NonExistent) \".\" \"Done\"\r\n"),
        "{out}"
    );
    h.session(true, b"x SUBSCRIBE Sent\r\nx LOGOUT\r\n").await;
    let out = a.until("* LIST").await;
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" \"Sent\"\r\n"),
        "{out}"
    );
    // Metadata: the entries that changed, without values (5.6).
    h.session(
        true,
        b"x SETMETADATA Sent (/private/comment \"hi\")\r\nx LOGOUT\r\n",
    )
    .await;
    let out = a.until("* METADATA").await;
    assert!(
        out.contains("* METADATA \"Sent\" (\"/private/comment\")\r\n"),
        "{out}"
    );

    // Own changes are not told back (5).
    a.send("c CREATE Mine\r\n").await;
    let out = a.until("c OK").await;
    let later = a.quiet_for(Duration::from_millis(300)).await;
    assert!(
        !out.contains("* LIST") && !later.contains("* LIST"),
        "{out}{later}"
    );

    // In IDLE, the same events (4).
    a.send("d IDLE\r\n").await;
    a.until("+ ").await;
    h.session(
        true,
        b"x APPEND INBOX {12}\r\nSubject: i\r\n\r\nx LOGOUT\r\n",
    )
    .await;
    let out = a.until("* 4 FETCH").await;
    assert!(out.contains("* 4 EXISTS\r\n"), "{out}");
    a.send("DONE\r\n").await;
    a.until("d OK").await;

    // NOTIFY NONE: nothing more between commands.
    a.send("e NOTIFY NONE\r\n").await;
    a.until("e OK").await;
    h.session(
        true,
        b"x APPEND INBOX {12}\r\nSubject: q\r\n\r\nx LOGOUT\r\n",
    )
    .await;
    let later = a.quiet_for(Duration::from_millis(300)).await;
    assert!(later.is_empty(), "{later}");
    a.send("f NOOP\r\n").await;
    let out = a.until("f OK").await;
    assert!(out.contains("* 5 EXISTS"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a NOTIFY SET (personal (MessageNew))\r\n\
              b NOTIFY SET (personal (FlagChange))\r\n\
              c NOTIFY SET (personal (AnnotationChange))\r\n\
              d NOTIFY SET (selected (MailboxName))\r\n\
              e NOTIFY SET (selected NONE) (selected-delayed NONE)\r\n\
              f NOTIFY BOGUS\r\n\
              g NOTIFY SET (inboxes (MessageNew MessageExpunge))\r\n\
              h NOTIFY NONE\r\ni LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" NOTIFY "), "{out}");
    for t in ["a", "b", "d", "e", "f"] {
        assert!(out.contains(&format!("\r\n{t} BAD")), "{t}: {out}");
    }
    // An event not told here: NO (not BAD) naming those that are (3.1).
    assert!(out.contains("c NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)]"), "{out}");
    assert!(out.contains("g OK") && out.contains("h OK"), "{out}");
}

/// Changes by other programs (no news on the change channel) are found by
/// a poll that keeps its own beat while news of other mailboxes keeps
/// waking the session (regression: the poll restarted with every wake-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_fires_while_other_mailboxes_get_mail() {
    let h = Imap::new().unwrap();
    let inbox = h.reset().unwrap();
    let mut a = h.client();
    a.until("* PREAUTH").await;
    a.send("a SELECT INBOX\r\nb NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))\r\n")
        .await;
    a.until("b OK").await;
    // Another program delivers into INBOX behind the server's back.
    std::fs::write(
        inbox.join("new").join("1800000000.other.test"),
        "Subject: behind the back\r\n\r\nx\r\n",
    )
    .unwrap();
    // Meanwhile Sent gets mail every 0.5 s through the server.
    let feeder = {
        let mut n = 0;
        let h = &h;
        async move {
            loop {
                n += 1;
                let cmd = format!(
                    "x APPEND Sent {{12}}\r\nSubject: {}\r\n\r\nx LOGOUT\r\n",
                    n % 10
                );
                h.session(true, cmd.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let out = tokio::select! {
        out = a.until("* 3 EXISTS") => out,
        _ = feeder => unreachable!(),
    };
    assert!(out.contains("* 3 EXISTS"), "{out}");
    assert!(out.contains("* STATUS \"Sent\""), "{out}");
}
