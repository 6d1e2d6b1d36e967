//! `sx email`: the SMTP client for scripts and cron. Runs as the calling user, no
//! daemon: builds a message from flags (compose.rs), sends it through SMTP_HOST
//! (transport.rs), or keeps it in the offline queue (outbox.rs) for `--flush`.
//! `sx sendmail` (sendmail.rs) is the same transport behind sendmail's interface.
//! Errors are one line on stderr and a sysexits code; success is quiet unless -v.

pub mod compose;
mod html_text;
mod maildrop;
mod outbox;
mod report;
pub mod sendmail;
mod settings;
mod transport;

use crate::cli::EmailArgs;
use crate::exit;
use outbox::Outbox;
use settings::Settings;

/// What goes over the wire: envelope sender, recipients, the message (CRLF).
pub struct Envelope {
    pub from: String,
    pub rcpts: Vec<String>,
    pub message: Vec<u8>,
}

/// Why a command failed: its exit code, one line for stderr, and whether trying
/// again later may work (server unreachable, timeouts, 4xx replies).
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub msg: String,
    pub retry: bool,
    /// The server could not be reached at all (connect failed or timed out).
    pub unreachable: bool,
}

impl Failure {
    pub fn new(code: i32, msg: String) -> Failure {
        Failure {
            code,
            msg,
            retry: false,
            unreachable: false,
        }
    }

    pub fn retry(code: i32, msg: String) -> Failure {
        Failure {
            code,
            msg,
            retry: true,
            unreachable: false,
        }
    }

    pub fn unreachable(code: i32, msg: String) -> Failure {
        Failure {
            code,
            msg,
            retry: true,
            unreachable: true,
        }
    }
}

pub fn run(args: EmailArgs) -> i32 {
    match run_checked(&args) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sx email: {}", f.msg);
            f.code
        }
    }
}

fn run_checked(args: &EmailArgs) -> Result<i32, Failure> {
    let s = Settings::load(args.config.as_deref())?;
    let admin = args.list || args.clear || args.flush;
    let composing = !args.to.is_empty()
        || !args.cc.is_empty()
        || !args.bcc.is_empty()
        || args.subject.is_some()
        || args.body.is_some()
        || args.body_file.is_some()
        || !args.attach.is_empty()
        || !args.header.is_empty();
    if admin && composing {
        return Err(Failure::new(
            exit::USAGE,
            "--list, --flush and --clear take no message flags".into(),
        ));
    }
    if args.list {
        return list(&s);
    }
    if args.clear {
        return clear(&s, args.verbose);
    }
    if args.flush {
        return flush(&s, args.verbose);
    }
    if args.test {
        return test(&s, args);
    }
    let env = compose::build(args, s.from.as_deref(), false)?;
    if args.queue {
        let id = Outbox::open(&s.queue_dir, true)?.store(&env)?;
        report::log(
            s.log,
            &format!("{id}: {} status=queued (--queue)", who(&env)),
        );
        if args.verbose {
            println!("queued as {id}");
        }
        return Ok(exit::OK);
    }
    deliver(&s, &env, args.queue_on_fail, args.verbose)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::SOFTWARE, format!("cannot start: {e}")))
}

fn who(env: &Envelope) -> String {
    format!(
        "from=<{}> to={} size={}",
        env.from,
        env.rcpts
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(","),
        env.message.len()
    )
}

/// Send now; with `queue_on_fail`, a failure worth retrying is queued instead
/// (exit 0: the message is safe, `--flush` sends it).
pub fn deliver(
    s: &Settings,
    env: &Envelope,
    queue_on_fail: bool,
    verbose: bool,
) -> Result<i32, Failure> {
    let mut tr = transport::Transcript::default();
    let res = runtime()?.block_on(transport::send(s, env, &mut tr));
    match res {
        Ok(reply) => {
            report::log(
                s.log,
                &format!("{} relay={} status=sent ({reply})", who(env), s.server()),
            );
            if verbose {
                for l in &tr.lines {
                    println!("{l}");
                }
            }
            Ok(exit::OK)
        }
        Err(f) if f.retry && s.local.as_ref().is_some_and(|l| l.maildrop.is_some()) => {
            // The server on this host is down: its maildrop takes the
            // message, and the server sends it once it runs again.
            let dir = s.local.as_ref().and_then(|l| l.maildrop.as_deref());
            match dir.map(|d| (d, maildrop::leave(d, env))) {
                Some((d, Ok(name))) => {
                    report::log(
                        s.log,
                        &format!(
                            "{} status=queued in {} as {name} ({})",
                            who(env),
                            d.display(),
                            f.msg
                        ),
                    );
                    if verbose {
                        println!(
                            "the server is not running; left in {} as {name}",
                            d.display()
                        );
                    }
                    Ok(exit::OK)
                }
                Some((d, Err(e))) if queue_on_fail => {
                    let why = format!("{}; maildrop {}: {e}", f.msg, d.display());
                    offline(s, env, &why)
                }
                Some((d, Err(e))) => Err(Failure::retry(
                    exit::TEMPFAIL,
                    format!("{}; maildrop {}: {e}", f.msg, d.display()),
                )),
                None => Err(f),
            }
        }
        Err(f) if f.retry && queue_on_fail => offline(s, env, &f.msg),
        Err(f) => {
            report::log(
                s.log,
                &format!(
                    "{} relay={} status=failed ({})",
                    who(env),
                    s.server(),
                    f.msg
                ),
            );
            if verbose {
                for l in &tr.lines {
                    eprintln!("{l}");
                }
            }
            Err(f)
        }
    }
}

/// Keep the message in the user's offline queue for `--flush`.
fn offline(s: &Settings, env: &Envelope, why: &str) -> Result<i32, Failure> {
    let ob = Outbox::open(&s.queue_dir, true)?;
    let id = ob.store(env)?;
    ob.failed(&id, why);
    report::log(
        s.log,
        &format!(
            "{id}: {} relay={} status=queued ({why})",
            who(env),
            s.server()
        ),
    );
    eprintln!("sx email: {why}; queued as {id} (send it with: sx email --flush)");
    Ok(exit::OK)
}

fn test(s: &Settings, args: &EmailArgs) -> Result<i32, Failure> {
    if args.from.is_none() && s.from.is_none() {
        return Err(Failure::new(
            exit::CONFIG,
            "--test sends to SMTP_FROM, which is not set (or give --from)".into(),
        ));
    }
    let env = compose::build(args, s.from.as_deref(), true)?;
    let mut tr = transport::Transcript::default();
    let res = runtime()?.block_on(transport::send(s, &env, &mut tr));
    for l in &tr.lines {
        println!("{l}");
    }
    match res {
        Ok(reply) => {
            report::log(
                s.log,
                &format!(
                    "{} relay={} status=sent ({reply}) test",
                    who(&env),
                    s.server()
                ),
            );
            println!("test message to {} accepted", env.from);
            Ok(exit::OK)
        }
        Err(f) => {
            report::log(
                s.log,
                &format!(
                    "{} relay={} status=failed ({}) test",
                    who(&env),
                    s.server(),
                    f.msg
                ),
            );
            Err(f)
        }
    }
}

fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn list(s: &Settings) -> Result<i32, Failure> {
    let ob = Outbox::open(&s.queue_dir, false)?;
    let ids = ob.ids()?;
    if ids.is_empty() {
        println!("offline queue {} is empty", s.queue_dir.display());
        return Ok(exit::OK);
    }
    for id in &ids {
        let e = match ob.entry(id) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(f) => {
                println!("{id}  unreadable: {}", f.msg);
                continue;
            }
        };
        println!(
            "{}  {}  attempts={}  from=<{}>  to={}",
            e.id,
            date(e.date),
            e.attempts,
            e.from,
            e.rcpts.join(",")
        );
        println!("    subject: {}", e.subject.replace(['\r', '\n'], " "));
        if !e.error.is_empty() {
            println!("    last error: {}", e.error);
        }
    }
    println!("{} message(s) in {}", ids.len(), s.queue_dir.display());
    Ok(exit::OK)
}

fn clear(s: &Settings, verbose: bool) -> Result<i32, Failure> {
    let ob = Outbox::open(&s.queue_dir, false)?;
    if !s.queue_dir.is_dir() {
        println!(
            "removed 0 message(s): no queue at {}",
            s.queue_dir.display()
        );
        return Ok(exit::OK);
    }
    let _lock = ob.lock()?;
    let ids = ob.ids()?;
    for id in &ids {
        ob.remove(id)?;
        report::log(s.log, &format!("{id}: status=removed (--clear)"));
    }
    ob.tidy();
    let _ = verbose;
    // Said whatever the count: --clear is run by hand.
    println!(
        "removed {} message(s) from {}",
        ids.len(),
        s.queue_dir.display()
    );
    Ok(exit::OK)
}

fn flush(s: &Settings, verbose: bool) -> Result<i32, Failure> {
    if !s.queue_dir.is_dir() {
        return Ok(exit::OK);
    }
    let ob = Outbox::open(&s.queue_dir, false)?;
    let _lock = ob.lock()?;
    ob.tidy();
    let rt = runtime()?;
    let (mut sent, mut failed) = (0, 0);
    let mut worst: Option<i32> = None;
    // Once the server can't be reached, don't wait out a timeout per message.
    let mut unreachable: Option<String> = None;
    for id in ob.ids()? {
        // One file this release cannot read must not hold up the others.
        let env = match ob.load(&id) {
            Ok(Some(env)) => env,
            Ok(None) => continue,
            Err(f) => {
                failed += 1;
                report::log(s.log, &format!("{id}: status=kept ({})", f.msg));
                eprintln!("sx email: {}", f.msg);
                worst = worst.or(Some(f.code));
                continue;
            }
        };
        let res = match &unreachable {
            Some(msg) => Err(Failure::unreachable(exit::TEMPFAIL, msg.clone())),
            None => {
                let mut tr = transport::Transcript::default();
                rt.block_on(transport::send(s, &env, &mut tr))
            }
        };
        match res {
            Ok(reply) => {
                ob.remove(&id)?;
                sent += 1;
                report::log(
                    s.log,
                    &format!(
                        "{id}: {} relay={} status=sent ({reply})",
                        who(&env),
                        s.server()
                    ),
                );
                if verbose {
                    println!("{id}: sent ({reply})");
                }
            }
            Err(f) => {
                failed += 1;
                ob.failed(&id, &f.msg);
                report::log(
                    s.log,
                    &format!(
                        "{id}: {} relay={} status=deferred ({})",
                        who(&env),
                        s.server(),
                        f.msg
                    ),
                );
                eprintln!("sx email: {id}: {}", f.msg);
                if f.unreachable {
                    unreachable = Some(f.msg.clone());
                }
                // A permanent failure outranks a temporary one in the exit code.
                if worst.is_none() || !f.retry {
                    worst = Some(f.code);
                }
            }
        }
    }
    // Silent when there was nothing to send (a flush from cron mails its
    // output), one line when there was.
    if verbose || sent + failed > 0 {
        println!("{sent} sent, {failed} kept in the queue");
    }
    Ok(worst.unwrap_or(exit::OK))
}
