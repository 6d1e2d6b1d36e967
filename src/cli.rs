//! Command-line definitions (clap). Every flag here is documented in man/.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sx",
    version,
    about = "scorpiox-email: a privilege-separated mail server and an SMTP client"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run or administer the mail server (SMTP, submission, IMAP, queue, DKIM).
    #[command(name = "server-email", version)]
    ServerEmail(ServerArgs),
    /// Send mail through an SMTP server (for scripts and cron).
    #[command(version)]
    Email(EmailArgs),
    /// sendmail-compatible interface: read a whole message on stdin and send it.
    #[command(disable_help_flag = true)]
    Sendmail(SendmailArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").multiple(false).args([
    "add_account", "remove_account", "passwd", "list_accounts", "add_domain", "remove_domain",
    "list_domains", "dkim_keygen",
    "dkim_sign", "status", "reload", "check_config", "make_cert", "tui", "queue", "queue_show", "queue_flush",
    "queue_remove", "queue_hold", "queue_release",
])))]
pub struct ServerArgs {
    /// Configuration file (default: lookup order of scorpiox-env.txt(5)).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Detach: double fork, new session, pid file; logs to a file in the data directory when EMAIL_LOG=stderr.
    #[arg(long)]
    pub daemon: bool,
    /// Add an account; the password is prompted for (or read from stdin when not a TTY).
    #[arg(long, value_name = "ADDR")]
    pub add_account: Option<String>,
    /// Remove an account (its mail is kept).
    #[arg(long, value_name = "ADDR")]
    pub remove_account: Option<String>,
    /// Change an account's password.
    #[arg(long, value_name = "ADDR")]
    pub passwd: Option<String>,
    /// List accounts.
    #[arg(long)]
    pub list_accounts: bool,
    /// Add a local domain (EMAIL_DOMAINS_FILE); a running server takes it at once.
    #[arg(long, value_name = "DOMAIN")]
    pub add_domain: Option<String>,
    /// Remove a local domain added with --add-domain (accounts and mail are kept).
    #[arg(long, value_name = "DOMAIN")]
    pub remove_domain: Option<String>,
    /// List the local domains, primary first.
    #[arg(long)]
    pub list_domains: bool,
    /// Generate a DKIM key and print the DNS TXT record to publish.
    #[arg(long)]
    pub dkim_keygen: bool,
    /// Domain for --dkim-keygen / --dkim-sign (default: EMAIL_DOMAIN).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Selector for --dkim-keygen (default: EMAIL_DKIM_SELECTOR).
    #[arg(long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Key algorithm for --dkim-keygen.
    #[arg(long, value_enum, default_value_t = Algo::Rsa)]
    pub algo: Algo,
    /// Where --dkim-keygen writes the private key (default: EMAIL_DKIM_KEY).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Let --dkim-keygen or --make-cert replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Ask the running server's keyholder to DKIM-sign FILE; prints the header.
    #[arg(long, value_name = "FILE")]
    pub dkim_sign: Option<PathBuf>,
    /// Live dashboard of the running server: processes, queue, accounts, log.
    #[arg(long)]
    pub tui: bool,
    /// Show the running server's processes, uptime, connections, queue and counters.
    #[arg(long)]
    pub status: bool,
    /// Print --status as JSON, for scripts and monitoring.
    #[arg(long, requires = "status")]
    pub json: bool,
    /// Make the running server re-read its configuration, keys and accounts.
    #[arg(long)]
    pub reload: bool,
    /// Validate the configuration, certificate, keys and accounts, then exit.
    #[arg(long)]
    pub check_config: bool,
    /// Write a self-signed certificate for EMAIL_HOSTNAME to EMAIL_TLS_CERT/EMAIL_TLS_KEY.
    #[arg(long)]
    pub make_cert: bool,
    /// List the queue: id, age, size, sender, recipients, state, last error.
    #[arg(long)]
    pub queue: bool,
    /// Show one queued message: envelope, states and headers.
    #[arg(long, value_name = "ID")]
    pub queue_show: Option<String>,
    /// Retry now: the message ID, or every message when no ID is given.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub queue_flush: Option<String>,
    /// Remove a message from the queue (no bounce).
    #[arg(long, value_name = "ID")]
    pub queue_remove: Option<String>,
    /// Hold a message: no delivery attempts until released.
    #[arg(long, value_name = "ID")]
    pub queue_hold: Option<String>,
    /// Release a held message (and try it now).
    #[arg(long, value_name = "ID")]
    pub queue_release: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Rsa,
    Ed25519,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("mode").multiple(false).args([
    "queue", "list", "flush", "clear", "test",
])))]
pub struct EmailArgs {
    /// Configuration file (default: lookup order of scorpiox-env.txt(5)).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Recipient (repeatable, or comma separated).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Carbon-copy recipient (repeatable, or comma separated).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,
    /// Blind carbon-copy recipient: in the envelope, not in the headers.
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,
    /// Sender address (default: SMTP_FROM, else user@hostname).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Reply-To address.
    #[arg(long, value_name = "ADDR")]
    pub reply_to: Option<String>,
    /// Subject line.
    #[arg(long)]
    pub subject: Option<String>,
    /// Message body text.
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// Read the body from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "body")]
    pub body_file: Option<PathBuf>,
    /// The body is HTML; a plain-text alternative is derived from it.
    #[arg(long)]
    pub html: bool,
    /// Attach FILE (repeatable); the MIME type is guessed from its name.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Extra header, e.g. 'X-Job: backup' (repeatable).
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// Store in the offline queue instead of sending.
    #[arg(long)]
    pub queue: bool,
    /// Send now, and store in the offline queue if the server is unreachable.
    #[arg(long, conflicts_with = "queue")]
    pub queue_on_fail: bool,
    /// List the offline queue.
    #[arg(long)]
    pub list: bool,
    /// Send everything in the offline queue, oldest first.
    #[arg(long)]
    pub flush: bool,
    /// Empty the offline queue.
    #[arg(long)]
    pub clear: bool,
    /// Send a test message to SMTP_FROM and show the server's replies.
    #[arg(long)]
    pub test: bool,
    /// Say what was done on success too.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `sx sendmail`: options are parsed by sendmail.rs (sendmail's own syntax).
#[derive(Args, Debug)]
pub struct SendmailArgs {
    /// sendmail options and recipients: [-t] [-i] [-f ADDR] [-F NAME] [--] [RCPT...]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<std::ffi::OsString>,
}
