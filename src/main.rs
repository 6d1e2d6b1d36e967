//! `sx`: the scorpiox-email command. `sx server-email` runs and administers the
//! mail server; `sx email` is the SMTP client for scripts and cron.

mod admin;
mod cli;
mod daemon;
mod email;
mod exit;
mod password;
mod tui;

use clap::Parser;
use std::ffi::OsString;

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // Re-exec'ed children: `sx __child <role>` (argv[0] is the process title).
    if args.get(1).is_some_and(|a| a == "__child") {
        let role = args
            .get(2)
            .and_then(|r| r.to_str())
            .and_then(ipc::messages::Role::from_name);
        match role {
            Some(r) => sxproc::child::main(r),
            None => {
                eprintln!("sx: unknown child role");
                std::process::exit(exit::USAGE);
            }
        }
    }
    if args.get(1).is_some_and(|a| a == "sendmail") {
        std::process::exit(email::sendmail::run(&args[2..]));
    }
    // Install names: scorpiox-email and scorpiox-server-email behave as the subcommands.
    let name = args
        .first()
        .map(|a| {
            std::path::Path::new(a)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    match name.as_str() {
        "scorpiox-email" => args.insert(1, "email".into()),
        "scorpiox-server-email" => args.insert(1, "server-email".into()),
        // sendmail(1) options (-fADDR, -oi, ...) don't fit clap: hand them over whole.
        "sendmail" => std::process::exit(email::sendmail::run(&args[1..])),
        _ => {}
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        cli::Command::ServerEmail(a) => admin::server_email(a),
        cli::Command::Email(a) => email::run(a),
        cli::Command::Sendmail(a) => email::sendmail::run(&a.args),
    };
    std::process::exit(code);
}
