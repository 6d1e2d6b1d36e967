//! `--dkim-keygen` output and keyholder's signatures, verified by dkimpy
//! (Debian's python3-dkim) against the printed TXT record.

mod common;
use common::*;

const VERIFY_PY: &str = r#"
import dkim, re, sys
record_line = open(sys.argv[1]).read()
# The record as printed: name IN TXT "part" "part" -> joined TXT value.
name = record_line.split()[0].rstrip('.')
value = ''.join(re.findall(r'"([^"]*)"', record_line))
msg = open(sys.argv[2], 'rb').read()
def dns(qname, timeout=5):
    q = qname.decode() if isinstance(qname, bytes) else qname
    return value.encode() if q.rstrip('.') == name else None
ok = dkim.verify(msg, dnsfunc=dns)
# Tampering with the body must break it.
bad = dkim.verify(msg.replace(b'hello', b'HELLO'), dnsfunc=dns)
print('verified' if ok and not bad else 'FAILED ok=%s tampered=%s' % (ok, bad))
"#;

fn keygen_sign_verify(algo: &str) {
    let srv = Server::prepare("EMAIL_DKIM_SELECTOR=sel2026");
    let gen = srv.sx(&["--dkim-keygen", "--algo", algo], "");
    assert_ok(&gen, "dkim-keygen");
    let record = String::from_utf8_lossy(&gen.stdout).to_string();
    assert!(
        record.starts_with("sel2026._domainkey.a.test. IN TXT \"v=DKIM1; k="),
        "{record}"
    );
    assert!(record.contains(&format!("k={algo};")), "{record}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(srv.path("dkim.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Issue 15.10: a key OpenSSL 3 (hence OpenDKIM, rspamd) reads, whose public
    // half is the record's p=.
    let key = srv.path("dkim.key").to_string_lossy().into_owned();
    let pubkey = std::process::Command::new("openssl")
        .args(["pkey", "-in", &key, "-pubout", "-outform", "DER"])
        .output()
        .unwrap();
    assert!(
        pubkey.status.success(),
        "{}",
        String::from_utf8_lossy(&pubkey.stderr)
    );
    let der = if algo == "ed25519" {
        pubkey.stdout[pubkey.stdout.len() - 32..].to_vec()
    } else {
        pubkey.stdout.clone()
    };
    let p = python(
        "import base64, sys; print(base64.b64encode(open(sys.argv[1], 'rb').read()).decode())",
        &[&{
            let f = srv.path("pub.der");
            std::fs::write(&f, &der).unwrap();
            f.to_string_lossy().into_owned()
        }],
    );
    let p = String::from_utf8_lossy(&p.stdout).trim().to_string();
    let joined: String = record.split('"').skip(1).step_by(2).collect();
    assert!(joined.ends_with(&format!("p={p}")), "{joined} vs {p}");
    // Refuses to overwrite without --force.
    let again = srv.sx(&["--dkim-keygen", "--algo", algo], "");
    assert_eq!(again.status.code(), Some(73));

    let srv = srv.start();
    let body = "From: Bob <bob@a.test>\r\nTo: carol@b.test\r\nSubject: signed by keyholder\r\n\
                Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <dkim-test@a.test>\r\n\
                MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello from a.test\r\n";
    let msg = srv.path("msg.eml");
    std::fs::write(&msg, body).unwrap();
    let signed = srv.sx(&["--dkim-sign", &msg.to_string_lossy()], "");
    assert_ok(&signed, "dkim-sign");
    let header = String::from_utf8_lossy(&signed.stdout).to_string();
    assert!(header.starts_with("DKIM-Signature: v=1;"), "{header}");
    assert!(
        header.contains("d=a.test")
            && header.contains("s=sel2026")
            && header.contains("c=relaxed/relaxed")
    );
    let signed_msg = srv.path("signed.eml");
    std::fs::write(&signed_msg, format!("{header}{body}")).unwrap();
    let rec = srv.path("record.txt");
    std::fs::write(&rec, &record).unwrap();
    let v = python(
        VERIFY_PY,
        &[&rec.to_string_lossy(), &signed_msg.to_string_lossy()],
    );
    assert_ok(&v, "dkimpy");
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "verified");
    // Keyholder signs only for domains it has a key for.
    let other = srv.sx(
        &["--dkim-sign", &msg.to_string_lossy(), "--domain", "b.test"],
        "",
    );
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("no DKIM key for b.test"));
}

#[test]
fn rsa_key_signs_and_verifies_with_dkimpy() {
    keygen_sign_verify("rsa");
}

#[test]
fn ed25519_key_signs_and_verifies_with_dkimpy() {
    keygen_sign_verify("ed25519");
}

/// Keys written by release 0.1's `--dkim-keygen --algo ed25519` (ring's
/// PKCS#8 version 2, which OpenSSL 3 cannot read) still load and sign.
#[test]
fn an_ed25519_key_in_the_old_form_still_signs() {
    let srv = Server::prepare("");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/dkim-ed25519-ring-v2.pem"
        ),
        srv.path("dkim.key"),
    )
    .unwrap();
    let srv = srv.start();
    let body = "From: bob@a.test\r\nTo: carol@b.test\r\nSubject: old key\r\n\r\nhello\r\n";
    let msg = srv.path("msg.eml");
    std::fs::write(&msg, body).unwrap();
    let signed = srv.sx(&["--dkim-sign", &msg.to_string_lossy()], "");
    assert_ok(&signed, "dkim-sign with the old form");
    let header = String::from_utf8_lossy(&signed.stdout).to_string();
    assert!(header.contains("a=ed25519-sha256"), "{header}");
    let signed_msg = srv.path("signed.eml");
    std::fs::write(&signed_msg, format!("{header}{body}")).unwrap();
    let rec = srv.path("record.txt");
    std::fs::write(
        &rec,
        "default._domainkey.a.test. IN TXT \"v=DKIM1; k=ed25519; p=ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=\"\n",
    )
    .unwrap();
    let v = python(
        VERIFY_PY,
        &[&rec.to_string_lossy(), &signed_msg.to_string_lossy()],
    );
    assert_ok(&v, "dkimpy");
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "verified");
}

const VERIFY_BOTH_PY: &str = r#"
import dkim, re, sys
records = {}
for path in sys.argv[1:3]:
    line = open(path).read()
    records[line.split()[0].rstrip('.')] = ''.join(re.findall(r'"([^"]*)"', line))
msg = open(sys.argv[3], 'rb').read()
def dns(qname, timeout=5):
    q = (qname.decode() if isinstance(qname, bytes) else qname).rstrip('.')
    return records.get(q, '').encode() or None
d = dkim.DKIM(msg)
print(d.verify(idx=0, dnsfunc=dns), d.verify(idx=1, dnsfunc=dns))
"#;

/// RSA and Ed25519 side by side for one domain (EMAIL_DKIM_KEYS): two signatures,
/// both verified by dkimpy.
#[test]
fn rsa_and_ed25519_keys_both_sign() {
    let srv = Server::prepare("EMAIL_DKIM_SELECTOR=rsa1");
    let rsa = srv.sx(&["--dkim-keygen"], "");
    assert_ok(&rsa, "rsa keygen");
    let ed_path = srv.path("ed.key");
    let ed = srv.sx(
        &[
            "--dkim-keygen",
            "--algo",
            "ed25519",
            "--selector",
            "ed1",
            "--output",
            &ed_path.to_string_lossy(),
        ],
        "",
    );
    assert_ok(&ed, "ed25519 keygen");
    let mut cfg = std::fs::read_to_string(&srv.config).unwrap();
    cfg.push_str(&format!(
        "EMAIL_DKIM_KEYS=a.test:ed1:{}\n",
        ed_path.display()
    ));
    std::fs::write(&srv.config, cfg).unwrap();
    let srv = srv.start();
    srv.wait_log("2 DKIM key(s)", 1, std::time::Duration::from_secs(5));
    let body = "From: bob@a.test\r\nTo: x@b.test\r\nSubject: two keys\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n";
    let msg = srv.path("m.eml");
    std::fs::write(&msg, body).unwrap();
    let signed = srv.sx(&["--dkim-sign", &msg.to_string_lossy()], "");
    assert_ok(&signed, "dkim-sign");
    let headers = String::from_utf8_lossy(&signed.stdout).to_string();
    assert_eq!(headers.matches("DKIM-Signature:").count(), 2, "{headers}");
    assert!(
        headers.contains("a=rsa-sha256") && headers.contains("a=ed25519-sha256"),
        "{headers}"
    );
    let (r1, r2, m) = (
        srv.path("rsa.txt"),
        srv.path("ed.txt"),
        srv.path("signed.eml"),
    );
    std::fs::write(&r1, &rsa.stdout).unwrap();
    std::fs::write(&r2, &ed.stdout).unwrap();
    std::fs::write(&m, format!("{headers}{body}")).unwrap();
    let v = python(
        VERIFY_BOTH_PY,
        &[
            &r1.to_string_lossy(),
            &r2.to_string_lossy(),
            &m.to_string_lossy(),
        ],
    );
    assert_ok(&v, "dkimpy");
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "True True");
}
