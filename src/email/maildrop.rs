//! Leaving a message in the server's maildrop (EMAIL_MAILDROP_DIR) when its
//! submit socket does not answer: the server picks it up once it runs, as the
//! file's owner (us). The format is the server's (`SXDROP1`, see
//! proc/src/parent/broker/maildrop.rs): written as `<name>.tmp`, mode 0600,
//! synced, then renamed `<name>.msg` so the server never sees half a file.

use super::Envelope;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's name (without `.msg`): unique per process and moment.
fn name() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut r = [0u8; 8];
    // A name nobody can guess: others cannot list the directory, nor
    // pre-create our file (create_new below).
    let _ = getrandom_fill(&mut r);
    format!(
        "{:x}{:09}.{}.{}",
        t.as_secs(),
        t.subsec_nanos(),
        std::process::id(),
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// The bytes of the file: envelope lines, an empty line, the message.
pub fn encode(env: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(env.message.len() + 256);
    out.extend_from_slice(b"SXDROP1\n");
    out.extend_from_slice(format!("from {}\n", env.from).as_bytes());
    for r in &env.rcpts {
        out.extend_from_slice(format!("rcpt {r}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&env.message);
    out
}

/// Write `env` into `dir`; its file name once complete.
pub fn leave(dir: &Path, env: &Envelope) -> std::io::Result<String> {
    if env
        .rcpts
        .iter()
        .chain([&env.from])
        .any(|a| a.contains(['\n', '\r']))
    {
        return Err(std::io::Error::other("a line break in an address"));
    }
    let base = name();
    let tmp = dir.join(format!("{base}.tmp"));
    let done = format!("{base}.msg");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&encode(env))?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(&done))
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_envelope_first() {
        let env = Envelope {
            from: String::new(),
            rcpts: vec!["root@host".into(), "a@b.test".into()],
            message: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        };
        assert_eq!(
            encode(&env),
            b"SXDROP1\nfrom \nrcpt root@host\nrcpt a@b.test\n\nSubject: x\r\n\r\nhi\r\n"
        );
        let d = tempfile::tempdir().unwrap();
        let name = leave(d.path(), &env).unwrap();
        assert!(name.ends_with(".msg"));
        assert_eq!(std::fs::read(d.path().join(&name)).unwrap(), encode(&env));
        let bad = Envelope {
            from: "a\nrcpt evil@x".into(),
            ..env
        };
        assert!(leave(d.path(), &bad).is_err());
    }
}
