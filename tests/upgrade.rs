//! State written by release 0.1 (golden files in tests/data, made by that
//! release's code) is read and served by this one: the spool (messages in every
//! recipient state, an env/ override, a held message), a Maildir with uid lists,
//! keywords and subscriptions. Files of a later release are kept, never read or
//! deleted. (The client's offline queue: tests/email.rs.)

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Copy `from` into `to` (merging), owned like `to` itself; Maildir folders get
/// the cur/ new/ tmp/ that git does not keep when empty.
fn copy_tree(from: &Path, to: &Path) {
    let meta = std::fs::metadata(to).unwrap();
    let own = |p: &Path| std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid())).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            own(&dst);
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            own(&dst);
        }
    }
    if to.join("maildirfolder").exists() || to.join("sx-uidlist").exists() {
        for d in ["cur", "new", "tmp"] {
            let p = to.join(d);
            if !p.exists() {
                std::fs::create_dir(&p).unwrap();
                own(&p);
            }
        }
    }
}

/// Write a file owned like the directory it is in.
fn write_owned(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let meta = std::fs::metadata(path.parent().unwrap()).unwrap();
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())).unwrap();
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.count())
}

fn wait_count(dir: &Path, n: usize, what: &str, log: &dyn Fn() -> String) {
    let t = Instant::now();
    while count(dir) < n {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{what}: {} of {n} in {}\n{}",
            count(dir),
            dir.display(),
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A message file whose framing or envelope is of a later release.
fn future_file(body: &[u8], envelope: &[u8], magic: &[u8; 8]) -> Vec<u8> {
    let mut f = body.to_vec();
    f.extend_from_slice(envelope);
    f.extend_from_slice(&(envelope.len() as u64).to_le_bytes());
    f.extend_from_slice(magic);
    f
}

#[test]
fn a_spool_written_by_release_0_1_is_delivered_and_later_versions_are_kept() {
    let b = Server::prepare("EMAIL_DOMAIN=b.test\nEMAIL_HOSTNAME=mail.b.test").start();
    b.add_account("dave@b.test", "pw-dave-1");
    b.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    let mut a = Server::prepare(&format!("EMAIL_ROUTES=b.test=127.0.0.1:{}", b.ports.smtp)).start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.add_account("carol@a.test", "pw-carol");
    a.wait_log("directory: 2 account(s)", 1, Duration::from_secs(5));
    a.stop();

    let queue = a.path("queue");
    copy_tree(&Path::new(DATA).join("spool-v1"), &queue);
    let body = b"Subject: from the future\r\n\r\nx\r\n";
    let later = [
        (
            "0640A1B2C3D4E0060006",
            future_file(body, b"SXENV4\nid 0640A1B2C3D4E0060006\n", b"SXENVT1\n"),
        ),
        (
            "0640A1B2C3D4E0070007",
            future_file(body, b"whatever framing 2 holds", b"SXENVT2\n"),
        ),
    ];
    for (id, bytes) in &later {
        write_owned(&queue.join("msg").join(id), bytes);
    }
    a.launch();

    // 1 (pending), 3 (bob pending; nobody failed before: no new bounce) and 4
    // (alias expanded to bob and carol) reach bob; 2's carol was delivered
    // before the upgrade and is not delivered again; 5 is held.
    let log = || format!("A:\n{}\nB:\n{}", a.log(), b.log());
    wait_count(&a.path("mail/a.test/bob/new"), 3, "bob", &log);
    wait_count(&a.path("mail/a.test/carol/new"), 1, "carol", &log);
    // 2's deferred recipient at B, with its 8-bit body intact.
    wait_count(&b.path("mail/b.test/dave/new"), 1, "dave at B", &log);
    let at_b = std::fs::read_dir(b.path("mail/b.test/dave/new"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(at_b).unwrap();
    assert!(
        text.contains("Subject: golden 2") && text.contains("Caf\u{e9} cr\u{e8}me."),
        "{text}"
    );
    a.wait_log("status=sent", 5, Duration::from_secs(10));
    // Left: the held message and the two later-release files (checked below).
    a.wait_spool(3);
    assert_eq!(count(&a.path("mail/a.test/bob/new")), 3, "{}", log());
    assert_eq!(count(&a.path("mail/a.test/carol/new")), 1, "{}", log());
    let bodies: Vec<String> = std::fs::read_dir(a.path("mail/a.test/bob/new"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    for s in [
        "golden 1 pending",
        "golden 3 bounce",
        "golden 4 \u{e9}t\u{e9}",
    ] {
        assert!(
            bodies.iter().any(|b| b.contains(s)),
            "{s} not at bob: {bodies:?}"
        );
    }
    // No bounce for the recipient that had failed before the upgrade.
    assert!(!a.log().contains("nobody@a.test"), "{}", a.log());

    // Left: the held message and both later-release files, untouched.
    let list = a.sx(&["--queue"], "");
    assert_ok(&list, "--queue");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("0640A1B2C3D4E0050005"), "{listed}");
    assert!(!listed.contains("0640A1B2C3D4E0010001"), "{listed}");
    assert_eq!(count(&queue.join("msg")), 3, "{}", a.log());
    for (id, bytes) in &later {
        assert_eq!(&std::fs::read(queue.join("msg").join(id)).unwrap(), bytes);
        assert!(
            a.log()
                .contains(&format!("{id}: written by a newer release")),
            "{}",
            a.log()
        );
    }
    // Released, the held message goes out.
    assert_ok(
        &a.sx(&["--queue-release", "0640A1B2C3D4E0050005"], ""),
        "release",
    );
    wait_count(
        &a.path("mail/a.test/carol/new"),
        2,
        "carol after release",
        &log,
    );
}

#[test]
fn a_maildir_written_by_release_0_1_keeps_its_uids_flags_and_keywords() {
    let a = Server::prepare("").start();
    a.add_account("bob@a.test", "pw-bob-1");
    a.wait_log("directory: 1 account(s)", 1, Duration::from_secs(5));
    copy_tree(
        &Path::new(DATA).join("maildir-v1/bob"),
        &a.path("mail/a.test/bob"),
    );
    // A folder whose uid list a later release wrote: not served, not rewritten.
    let later = a.path("mail/a.test/bob/.Later");
    for d in ["", "cur", "new", "tmp"] {
        std::fs::create_dir_all(later.join(d)).unwrap();
        let meta = std::fs::metadata(a.path("mail/a.test/bob")).unwrap();
        std::os::unix::fs::chown(later.join(d), Some(meta.uid()), Some(meta.gid())).unwrap();
    }
    write_owned(&later.join("sx-uidlist"), b"SXUID9 7 7\nwhatever\n");
    let out = python(
        r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login('bob@a.test', 'pw-bob-1')
print(m.status('INBOX', '(UIDVALIDITY UIDNEXT MESSAGES)')[1][0].decode())
m.select('INBOX')
for l in m.uid('FETCH', '1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1]:
    if isinstance(l, tuple):
        print(l[0].decode(), l[1].decode().strip())
print('LSUB', sorted(l.decode() for l in m.lsub()[1]))
print(m.status('Lists.rust', '(UIDVALIDITY UIDNEXT MESSAGES)')[1][0].decode())
m.select('Lists.rust')
print(m.uid('FETCH', '1', '(FLAGS)')[1][0].decode())
print('LATER', m.select('Later')[0])
# Changes after the upgrade: the files they write are the new versions, and
# what release 0.1 wrote is still there.
m.subscribe('Archive.2026')
m.select('Lists.rust')
m.store('1', '+FLAGS', '(newkw)')
m.select('INBOX')
m.store('5', '+FLAGS', '(another)')
print('FLAGS5', m.fetch('5', '(FLAGS)')[1][0].decode())
print('FLAGS1', m.fetch('1', '(FLAGS)')[1][0].decode())
"#,
        &[&a.ports.imaps.to_string(), &a.cert.to_string_lossy()],
    );
    assert_ok(&out, "imap");
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    // Every message is \Recent to this first session after the upgrade.
    let want = [
        "\"INBOX\" (UIDVALIDITY 1796103906 UIDNEXT 7 MESSAGES 5)",
        "(UID 1 FLAGS (\\Seen $Important \\Recent) BODY[HEADER.FIELDS (\"SUBJECT\")] {27} Subject: golden inbox 1",
        "(UID 2 FLAGS (\\Answered \\Flagged project-x \\Recent) BODY[HEADER.FIELDS (\"SUBJECT\")] {27} Subject: golden inbox 2",
        "(UID 4 FLAGS ($Important $Label1 \\Recent) BODY[HEADER.FIELDS (\"SUBJECT\")] {27} Subject: golden inbox 4",
        "(UID 5 FLAGS (\\Recent) BODY[HEADER.FIELDS (\"SUBJECT\")] {27} Subject: golden inbox 5",
        "(UID 6 FLAGS (\\Draft \\Recent) BODY[HEADER.FIELDS (\"SUBJECT\")] {25} Subject: golden draft",
        "\"Lists.rust\" (UIDVALIDITY 1796103906 UIDNEXT 2 MESSAGES 1)",
        "(UID 1 FLAGS (\\Seen \\Recent))",
        "LSUB ['() \".\" \"Lists.rust\"', '(\\\\Noselect) \".\" \"Archive\"']",
        "LATER NO",
    ];
    for w in want {
        assert!(got.contains(w), "{w:?} not in:\n{got}\n{}", a.log());
    }
    assert!(!got.contains("UID 3 "), "{got}");
    assert_eq!(
        std::fs::read_to_string(later.join("sx-uidlist")).unwrap(),
        "SXUID9 7 7\nwhatever\n"
    );
    // Keywords appended to release 0.1's file keep their letters.
    assert!(
        got.contains("FLAGS5 5 (FLAGS (\\Draft another \\Recent))"),
        "{got}"
    );
    assert!(
        got.contains("FLAGS1 1 (FLAGS (\\Seen $Important \\Recent))"),
        "{got}"
    );
    let subs = std::fs::read_to_string(a.path("mail/a.test/bob/sx-subscriptions")).unwrap();
    assert_eq!(subs, ".SXSUB 1\nLists.rust\nArchive\nArchive.2026\n");
    let kw = std::fs::read_to_string(a.path("mail/a.test/bob/.Lists.rust/sx-keywords")).unwrap();
    assert_eq!(kw, "%SXKW 1\nnewkw\n");
}
