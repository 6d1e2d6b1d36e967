#!/usr/bin/env python3
"""Shows that crash.rs::every_acknowledgement_follows_the_syncs_that_make_it_true
fails when any one sync is taken away: each case below removes one fsync or
fdatasync (or puts the Maildir rename back before the data sync), runs the
test, prints RED or green with the rule that failed, and restores the file
with `git checkout`. Run from the repository root, as root, with no
uncommitted change in the files it edits:

    python3 tests/crash/remove-each-sync.py [case numbers...]
"""
import subprocess, sys

cases = [
 ("groupsync: file data sync", "proc/src/groupsync.rs", "j.files.iter().try_for_each(|f| f.sync_data())?;", "j.files.iter().try_for_each(|_f| Ok::<(), io::Error>(()))?;"),
 ("groupsync: directory sync", "proc/src/groupsync.rs", ".and_then(|f| f.sync_all())", ".map(drop)"),
 ("spool env update: data sync", "proc/src/queue/spool.rs", "    f.sync_data()?;\n    std::fs::rename(&tmp, format!(\"env/{}\", env.id))?;", "    std::fs::rename(&tmp, format!(\"env/{}\", env.id))?;"),
 ("spool env update: directory sync", "proc/src/queue/spool.rs", "    File::open(\"env\")?.sync_all()\n}", "    File::open(\"env\").map(drop)\n}"),
 ("write_atomic: data sync", "proc/src/accounts.rs", "        f.sync_all()?;\n        std::fs::rename(&tmp, path)", "        std::fs::rename(&tmp, path)"),
 ("write_atomic: directory sync", "proc/src/accounts.rs", "    File::open(dir)?.sync_all()\n}", "    File::open(dir).map(drop)\n}"),
 ("Maildir: rename before the data sync (the old order)", "proc/src/delivery/mod.rs", "                    .sync_then_rename(\n                        vec![file],\n                        vec![(tmp.clone(), path.clone())],", "                    .sync_then_rename(\n                        vec![{ let _ = std::fs::rename(&tmp, &path); file }],\n                        vec![],"),
]

files = sorted({c[1] for c in cases})
dirty = subprocess.run(["git", "status", "--porcelain", "--"] + files, capture_output=True, text=True).stdout
if dirty.strip():
    sys.exit("uncommitted changes in %s: commit or stash them first" % ", ".join(files))
only = sys.argv[1:]
for i,(what, path, old, new) in enumerate(cases):
    if only and str(i) not in only: continue
    s = open(path).read()
    assert s.count(old) == 1, (what, s.count(old))
    open(path, 'w').write(s.replace(old, new))
    try:
        o = subprocess.run(["cargo", "test", "-q", "--test", "crash", "--", "every_acknowledgement"], capture_output=True, text=True, timeout=600)
        out = o.stdout + o.stderr
        fails = [l for l in out.splitlines() if l.startswith(("spool:", "Maildir:", "envelope update:", "client outbox:"))]
        res = "RED" if o.returncode != 0 else "green"
        print(f"{what}: {res}")
        for l in fails[:3]: print("    " + l[:220])
        if o.returncode != 0 and not fails:
            print("   ", [l for l in out.splitlines() if 'error' in l or 'panicked' in l][:5])
    finally:
        subprocess.run(["git", "checkout", "-q", path])
