#!/usr/bin/python3
"""Keys, DNS records and DKIM-signed messages for the inbound checks tests,
made by dkimpy (Debian's python3-dkim), not by the code under test.

Usage: dkim_sign.py OUTDIR; writes OUTDIR/records (a `name<TAB>text` line per
TXT record) and OUTDIR/<case>.eml for each message."""
import base64
import os
import subprocess
import sys

import dkim
import nacl.signing

rsa_pem = subprocess.run(
    ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    capture_output=True, check=True).stdout
rsa_pub = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"],
                         input=rsa_pem, capture_output=True, check=True).stdout
ed = nacl.signing.SigningKey.generate()

records = {
    "rsa._domainkey.signed.test": "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode(),
    "ed._domainkey.signed.test": "v=DKIM1; k=ed25519; p="
    + base64.b64encode(bytes(ed.verify_key)).decode(),
}
HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def message(frm, subject):
    return (f"From: Alice <{frm}>\r\nTo: bob@a.test\r\nSubject: {subject}\r\n"
            "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@signed.test>\r\n\r\n"
            "Hello, signed world.\r\n").encode()


def sign(msg, selector, key, algo):
    return dkim.sign(msg, selector, b"signed.test", key, include_headers=HEADERS,
                     signature_algorithm=algo) + msg


msgs = {}
base = message("alice@signed.test", "rsa signed")
msgs["rsa"] = sign(base, b"rsa", rsa_pem, b"rsa-sha256")
base = message("alice@signed.test", "ed signed")
msgs["ed25519"] = sign(base, b"ed", base64.b64encode(bytes(ed)), b"ed25519-sha256")
msgs["tampered"] = msgs["rsa"].replace(b"Hello, signed", b"Hello, forged")
# Signed by signed.test, From a domain with p=reject: DKIM passes, DMARC fails.
base = message("alice@reject.test", "unaligned")
msgs["unaligned"] = sign(base, b"rsa", rsa_pem, b"rsa-sha256")
out = sys.argv[1]
with open(os.path.join(out, "records"), "w") as f:
    for name, txt in records.items():
        f.write(f"{name}\t{txt}\n")
for name, m in msgs.items():
    with open(os.path.join(out, name + ".eml"), "wb") as f:
        f.write(m)
