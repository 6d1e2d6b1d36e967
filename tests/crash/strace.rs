//! Reading `strace -f -ttt -yy -s N -o FILE` output: one record per system
//! call, with the line where it started and the line where its result was known
//! (they differ when strace split it into `<unfinished ...>` and `<... resumed>`).
//! Line order in one output file is the order the tracer saw the events in.

use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Call {
    pub pid: u32,
    pub name: String,
    pub args: String,
    pub ret: String,
    /// Line of the call's entry.
    pub start: usize,
    /// Line where its result was known (its completion).
    pub end: usize,
}

impl Call {
    pub fn ok(&self) -> bool {
        !self.ret.starts_with('-') && !self.ret.starts_with('?')
    }

    /// The path strace (-y) printed for the first argument, a file descriptor.
    pub fn fd_path(&self) -> Option<&str> {
        decorated(&self.args)
    }

    /// The path of the descriptor a call returned (openat's `= 7</path>`).
    pub fn ret_path(&self) -> Option<&str> {
        decorated(&self.ret)
    }

    /// The quoted string arguments (rename's paths, write's data), unescaped
    /// only as far as tests need: `\r`, `\n`, `\"`, `\\`.
    pub fn strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<String> = None;
        let mut chars = self.args.chars();
        while let Some(c) = chars.next() {
            match (&mut cur, c) {
                (None, '"') => cur = Some(String::new()),
                (Some(s), '"') => {
                    out.push(std::mem::take(s));
                    cur = None;
                }
                (Some(s), '\\') => match chars.next() {
                    Some('r') => s.push('\r'),
                    Some('n') => s.push('\n'),
                    Some(o) => s.push(o),
                    None => {}
                },
                (Some(s), o) => s.push(o),
                (None, _) => {}
            }
        }
        out
    }

    /// Whether the first argument is a socket (-yy prints its protocol).
    pub fn on_socket(&self) -> bool {
        self.fd_path().is_some_and(|p| {
            p.starts_with("UNIX")
                || p.starts_with("TCP")
                || p.starts_with("socket:")
                || p.starts_with("NETLINK")
        })
    }
}

/// `7</some/path>` at the start of `s` -> `/some/path`.
fn decorated(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let rest = s.get(digits..)?.strip_prefix('<')?;
    if digits == 0 {
        return None;
    }
    // The path ends at the `>` that closes it: before `,`, `)` or the end.
    let mut end = None;
    for (i, _) in rest.match_indices('>') {
        let after = rest.get(i + 1..).unwrap_or("");
        if after.is_empty() || after.starts_with(',') || after.starts_with(')') {
            end = Some(i);
            break;
        }
    }
    rest.get(..end?)
}

/// Parse a whole trace. Lines that are not system calls (signals, exits) are
/// skipped but keep their place in the numbering.
pub fn parse(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut pending: HashMap<u32, Call> = HashMap::new();
    for (line_no, line) in text.lines().enumerate() {
        // `<pid> <time> <call>`; strace pads the pid with spaces.
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if let Some(r) = rest.strip_prefix("<... ") {
            // `<... name resumed>rest) = ret`
            let Some((_, tail)) = r.split_once(" resumed>") else {
                continue;
            };
            let Some(mut c) = pending.remove(&pid) else {
                continue;
            };
            let (more, ret) = split_ret(tail);
            c.args.push_str(more);
            c.ret = ret.to_string();
            c.end = line_no;
            calls.push(c);
            continue;
        }
        let Some(open) = rest.find('(') else {
            continue;
        };
        let name = &rest[..open];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let body = &rest[open + 1..];
        if let Some(args) = body.strip_suffix(" <unfinished ...>") {
            pending.insert(
                pid,
                Call {
                    pid,
                    name: name.into(),
                    args: args.into(),
                    ret: String::new(),
                    start: line_no,
                    end: line_no,
                },
            );
            continue;
        }
        let (args, ret) = split_ret(body);
        calls.push(Call {
            pid,
            name: name.into(),
            args: args.into(),
            ret: ret.into(),
            start: line_no,
            end: line_no,
        });
    }
    calls.sort_by_key(|c| c.end);
    calls
}

/// `args) = ret` -> (`args`, `ret`); the last `) = ` separates them.
fn split_ret(s: &str) -> (&str, &str) {
    match s.rfind(") = ") {
        Some(i) => (&s[..i], &s[i + 4..]),
        None => (s.trim_end_matches(')'), "?"),
    }
}

#[test]
fn parses_split_calls_and_decorated_paths() {
    let t = "10   1.0 openat(AT_FDCWD</q>, \"msg/A\", O_RDWR|O_CREAT|O_EXCL, 0600) = 7</q/msg/A>\n\
             11 1.1 fdatasync(7</q/msg/A> <unfinished ...>\n\
             12 1.2 sendto(9<TCP:[127.0.0.1:25->127.0.0.1:5]>, \"250 ok\\r\\n\", 8, MSG_NOSIGNAL, NULL, 0) = 8\n\
             11 1.3 <... fdatasync resumed>) = 0\n\
             10 1.4 +++ exited with 0 +++\n";
    let c = parse(t);
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].ret_path(), Some("/q/msg/A"));
    assert_eq!((c[1].name.as_str(), c[1].on_socket()), ("sendto", true));
    assert_eq!(c[1].strings(), vec!["250 ok\r\n".to_string()]);
    assert_eq!(
        (c[2].name.as_str(), c[2].start, c[2].end),
        ("fdatasync", 1, 3)
    );
    assert_eq!(c[2].fd_path(), Some("/q/msg/A"));
    assert!(c[2].ok());
}
