#!/usr/bin/env python3
# Regenerate etc/scorpiox-env.txt and the KEYS sections of man/scorpiox-env.txt.5
# from proc/src/config/keys.rs (tests/docs.rs checks they agree).
import os
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
import re
src=open(os.path.join(ROOT, 'proc/src/config/keys.rs')).read()
items=re.findall(r'k(e?)\(\s*"([A-Z_]+)",\s*"([^"]*)",\s*(?:"([^"]*)",\s*)?"([^"]*)",?\s*\)', src)
out=["# scorpiox-env.txt — configuration of scorpiox-email (see scorpiox-env.txt(5)).",
     "# KEY=VALUE, one per line; the process environment overrides this file.",
     "# Every key is shown with its default, commented out.",""]
for e,name,default,emb,doc in items:
    if name.startswith("SMTP_") and not any(l.startswith("# --- client") for l in out):
        out += ["", "# --- client (sx email) ---"]
    out.append(f"# {doc}")
    out.append(f"#{name}={default}")
open(os.path.join(ROOT, 'etc/scorpiox-env.txt'), 'w').write("\n".join(out)+"\n")
man=open(os.path.join(ROOT, 'man/scorpiox-env.txt.5')).read()
head=man[:man.index('.SH SERVER KEYS')]
tail=man[man.index('.SH FILES'):]
def esc(s): return s.replace('\\','\\\\').replace('-', '\\-')
L=['.SH SERVER KEYS','Read by','.BR sx\\ server\\-email (8).']
client=False
for e,name,default,emb,doc in items:
    if name.startswith('SMTP_') and not client:
        client=True
        L+=['.SH CLIENT KEYS','Read by','.BR sx\\ email (1).']
    L.append('.TP'); L.append('.B '+esc(name))
    d = 'Default: ' + (('\\(lq' + esc(default) + '\\(rq') if default else 'empty')
    if emb: d += '; embedded: \\(lq' + esc(emb) + '\\(rq'
    L.append(esc(doc)+' '+d+'.')
open(os.path.join(ROOT, 'man/scorpiox-env.txt.5'), 'w').write(head+"\n".join(L)+"\n"+tail)
