//! Reading a new password: prompted twice with echo off on a terminal, or the
//! first line of stdin for scripts.

use std::io::{BufRead, IsTerminal, Write};

pub fn read_new(prompt_for: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read password from stdin: {e}"))?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        return check(pw);
    }
    let a = prompt(&format!("New password for {prompt_for}: "))?;
    let b = prompt("Retype password: ")?;
    if a != b {
        return Err("passwords do not match".into());
    }
    check(a)
}

/// The shortest password an account may have (NIST SP 800-63B's minimum for
/// a password the user chose).
pub const MIN_LEN: usize = 8;

pub fn check(pw: String) -> Result<String, String> {
    if pw.chars().count() < MIN_LEN {
        return Err(format!(
            "password refused: at least {MIN_LEN} characters, please"
        ));
    }
    if pw.len() > 1024 {
        return Err("password longer than 1024 bytes refused".into());
    }
    Ok(pw)
}

fn prompt(text: &str) -> Result<String, String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let mut err = std::io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let old = tcgetattr(&stdin).map_err(|e| format!("terminal: {e}"))?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| format!("terminal: {e}"))?;
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &old);
    r.map_err(|e| format!("cannot read password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
