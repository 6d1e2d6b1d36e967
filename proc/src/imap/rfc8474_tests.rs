//! OBJECTID (RFC 8474) transcripts against the real session, in process.

use crate::inprocess::Imap;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The parenthesized id after `key` in `out`.
fn id_after(out: &str, key: &str) -> String {
    let at = out
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in {out}"))
        + key.len();
    out[at..].chars().take_while(|c| *c != ')').collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_and_email_ids() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CREATE Box\r\nb STATUS Box (MAILBOXID)\r\nc RENAME Box Moved\r\n\
              d STATUS Moved (MAILBOXID MESSAGES)\r\ne SELECT INBOX\r\n\
              f FETCH 1:2 (EMAILID THREADID)\r\ng COPY 1 Moved\r\nh SEARCH EMAILID nope\r\ni LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" OBJECTID"), "{out}");
    let created = id_after(&out, "a OK [MAILBOXID (");
    assert!(created.starts_with('F') && created.len() == 25, "{out}");
    assert_eq!(
        id_after(&out, "* STATUS \"Box\" (MAILBOXID ("),
        created,
        "{out}"
    );
    // RENAME keeps it.
    assert_eq!(
        id_after(&out, "* STATUS \"Moved\" (MAILBOXID ("),
        created,
        "{out}"
    );
    let inbox = id_after(&out, "* OK [MAILBOXID (");
    assert_ne!(inbox, created, "{out}");
    let e1 = id_after(&out, "* 1 FETCH (EMAILID (");
    let e2 = id_after(&out, "* 2 FETCH (EMAILID (");
    assert!(e1.starts_with('M') && e1 != e2, "{out}");
    assert!(
        out.contains(&format!("* 1 FETCH (EMAILID ({e1}) THREADID NIL)")),
        "{out}"
    );
    assert!(out.contains("* SEARCH\r\nh OK"), "{out}");

    // The copy has the same EMAILID; SEARCH finds it by that; a folder made
    // again under an old name gets a new MAILBOXID.
    let cmds = format!(
        "a SELECT Moved\r\nb FETCH 1 (EMAILID)\r\nc UID SEARCH EMAILID {e1}\r\n\
         d DELETE Box\r\ne CREATE Gone\r\nf DELETE Gone\r\ng CREATE Gone\r\nh LOGOUT\r\n"
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert_eq!(id_after(&out, "* OK [MAILBOXID ("), created, "{out}");
    assert!(
        out.contains(&format!("* 1 FETCH (EMAILID ({e1}))")),
        "{out}"
    );
    assert!(out.contains("* SEARCH 1\r\nc OK"), "{out}");
    let first = id_after(&out, "e OK [MAILBOXID (");
    let again = id_after(&out, "g OK [MAILBOXID (");
    assert_ne!(first, again, "{out}");
}

/// CREATE-SPECIAL-USE (RFC 6154): the use given at CREATE shows in LIST,
/// follows RENAME and goes with DELETE; uses without a real folder behind
/// them are refused with USEATTR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_special_use() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let out = text(
        &h.session(
            true,
            b"a CREATE Bin (USE (\\Trash))\r\nb CREATE Every (USE (\\All))\r\n\
              c CREATE Two (USE (\\Sent \\Archive))\r\nd LIST (SPECIAL-USE) \"\" *\r\n\
              e RENAME Bin Old.Bin\r\nf LIST \"\" Old*\r\ng DELETE Old.Bin\r\n\
              h CREATE Old.Bin\r\ni LIST \"\" Old.Bin\r\nj LOGOUT\r\n",
        )
        .await,
    );
    assert!(out.contains(" CREATE-SPECIAL-USE"), "{out}");
    assert!(out.contains("a OK [MAILBOXID ("), "{out}");
    assert!(out.contains("b NO [USEATTR]"), "{out}");
    assert!(out.contains("c NO [USEATTR]"), "{out}");
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Trash) \".\" \"Bin\""),
        "{out}"
    );
    assert!(
        !out.contains("\"Every\"") && !out.contains("\"Two\""),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren \\Trash) \".\" \"Old.Bin\""),
        "{out}"
    );
    assert!(
        out.contains("* LIST (\\HasNoChildren) \".\" \"Old.Bin\"\r\ni OK"),
        "{out}"
    );
}
