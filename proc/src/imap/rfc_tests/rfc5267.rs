//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) against the real session, in
//! process: PARTIAL windows, and UID searches kept up to date with
//! unsolicited ADDTO/REMOVEFROM until CANCELUPDATE.

use super::text;
use crate::inprocess::Imap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_results_and_updates_until_cancelled() {
    let h = Imap::new().unwrap();
    h.reset().unwrap();
    let new = "Subject: new\r\n\r\nx\r\n";
    let cmds = format!(
        "a SELECT INBOX\r\n\
         b UID SEARCH RETURN (UPDATE COUNT) UNSEEN\r\n\
         c UID STORE 1 +FLAGS (\\Seen)\r\n\
         d APPEND INBOX {{{n}}}\r\n{new}\r\n\
         e UID SORT RETURN (UPDATE ALL) (SIZE) UTF-8 ALL\r\n\
         b UID SEARCH RETURN (UPDATE) ALL\r\n\
         g SEARCH RETURN (UPDATE) ALL\r\n\
         h UID SEARCH RETURN (PARTIAL 3:2) ALL\r\n\
         i UID SEARCH RETURN (PARTIAL 5:9) ALL\r\n\
         j UID SORT RETURN (PARTIAL 1:2) (SIZE) UTF-8 ALL\r\n\
         k UID STORE 3 +FLAGS.SILENT (\\Deleted)\r\n\
         l EXPUNGE\r\n\
         m CANCELUPDATE \"b\" \"e\"\r\n\
         n APPEND INBOX {{{n}}}\r\n{new}\r\n\
         o SEARCH RETURN (ALL PARTIAL 1:2) ALL\r\n\
         p NOOP\r\nq LOGOUT\r\n",
        n = new.len()
    );
    let out = text(&h.session(true, cmds.as_bytes()).await);
    assert!(out.contains(" CONTEXT=SEARCH CONTEXT=SORT "), "{out}");
    assert!(
        out.contains("* ESEARCH (TAG \"b\") UID COUNT 2\r\nb OK"),
        "{out}"
    );
    // Flags changed: the message no longer matches.
    assert!(
        out.contains("c OK STORE completed\r\n* ESEARCH (TAG \"b\") UID REMOVEFROM (0 1)\r\n"),
        "{out}"
    );
    // A new message: after its EXISTS, added.
    let d = &out[out.find("c OK").unwrap()..out.find("d OK").unwrap()];
    assert!(d.contains("* 3 EXISTS"), "{out}");
    assert!(
        out.contains("\r\n* ESEARCH (TAG \"b\") UID ADDTO (0 3)\r\n"),
        "{out}"
    );
    // SORT by size: the small new one first; ALL keeps the order.
    assert!(
        out.contains("* ESEARCH (TAG \"e\") UID ALL 3,1:2\r\ne OK"),
        "{out}"
    );
    // The tag of a kept search cannot be used again with UPDATE.
    assert!(out.contains("b BAD Tag reuse"), "{out}");
    // Sequence-number searches are answered but not kept.
    assert!(out.contains("* NO [NOUPDATE \"g\"]"), "{out}");
    assert!(
        out.contains("* ESEARCH (TAG \"g\") ALL 1:3\r\ng OK"),
        "{out}"
    );
    // PARTIAL: positions in the results (a reversed range is the same).
    assert!(
        out.contains("* ESEARCH (TAG \"h\") UID PARTIAL (2:3 2:3)\r\nh OK"),
        "{out}"
    );
    assert!(
        out.contains("* ESEARCH (TAG \"i\") UID PARTIAL (5:9 NIL)\r\ni OK"),
        "{out}"
    );
    assert!(
        out.contains("* ESEARCH (TAG \"j\") UID PARTIAL (1:2 3,1)\r\nj OK"),
        "{out}"
    );
    // Expunged: removed from both, the SORT one at its position.
    let l = &out[out.find("l OK").unwrap()..out.find("m OK").unwrap()];
    assert!(
        l.contains("* ESEARCH (TAG \"b\") UID REMOVEFROM (0 3)\r\n"),
        "{out}"
    );
    assert!(
        l.contains("* ESEARCH (TAG \"e\") UID REMOVEFROM (1 3)\r\n"),
        "{out}"
    );
    // Cancelled: the next new message is told by EXISTS alone.
    let n = &out[out.find("m OK").unwrap()..out.find("q OK").unwrap()];
    assert!(n.contains("* 3 EXISTS") && !n.contains("ADDTO"), "{out}");
    assert!(out.contains("o BAD"), "{out}");
}
