//! Every configuration key, its default and what it means: the one place they are
//! documented in code (the man page scorpiox-env.txt(5) is checked against this list).

pub struct KeyDef {
    pub name: &'static str,
    /// Default when a config file is in use.
    pub default: &'static str,
    /// Default for the embedded setup (no config file found), if different.
    pub embedded: Option<&'static str>,
    pub doc: &'static str,
}

const fn k(name: &'static str, default: &'static str, doc: &'static str) -> KeyDef {
    KeyDef {
        name,
        default,
        embedded: None,
        doc,
    }
}

const fn ke(
    name: &'static str,
    default: &'static str,
    embedded: &'static str,
    doc: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        default,
        embedded: Some(embedded),
        doc,
    }
}

/// Keys read by `sx server-email`.
pub const SERVER_KEYS: &[KeyDef] = &[
    ke("EMAIL_LISTEN_ADDR", "0.0.0.0", "127.0.0.1", "Addresses to listen on, comma separated."),
    k("EMAIL_HOSTNAME", "", "Name in the SMTP greeting and Received: headers; empty means the system host name."),
    ke("EMAIL_DOMAIN", "", "localhost", "Primary mail domain; empty means the host name's domain."),
    k("EMAIL_DOMAINS", "", "Further local domains, comma separated."),
    ke("EMAIL_DOMAINS_FILE", "/etc/scorpiox/domains", "scorpiox-data/domains", "More local domains, one per line (# comments): what --add-domain and --remove-domain edit; read at start and on every reload."),
    ke("EMAIL_SMTP_PORT", "25", "2525", "MTA port (plain, STARTTLS offered); 0 disables."),
    ke("EMAIL_SUBMISSION_PORT", "587", "2587", "Submission port (STARTTLS required before AUTH); 0 disables."),
    ke("EMAIL_SUBMISSIONS_PORT", "465", "2465", "Submission over implicit TLS; 0 disables."),
    ke("EMAIL_IMAP_PORT", "993", "2993", "IMAP over implicit TLS; 0 disables."),
    ke("EMAIL_IMAP_STARTTLS_PORT", "143", "2143", "IMAP with STARTTLS; 0 disables."),
    ke("EMAIL_DATA_DIR", "/var/lib/scorpiox", "scorpiox-data", "Base directory for state the server creates itself (empty chroot, self-signed certificate)."),
    ke("EMAIL_MAILDIR", "/var/lib/scorpiox/mail", "scorpiox-data/mail", "Root of the Maildir tree: <domain>/<user>/ (owned by EMAIL_USER_MAIL)."),
    ke("EMAIL_QUEUE_DIR", "/var/spool/scorpiox", "scorpiox-data/queue", "Mail queue (msg/ env/ tmp/)."),
    ke("EMAIL_TLS_CERT", "/etc/scorpiox/tls/cert.pem", "scorpiox-data/tls/cert.pem", "PEM certificate chain, leaf first."),
    ke("EMAIL_TLS_KEY", "/etc/scorpiox/tls/key.pem", "scorpiox-data/tls/key.pem", "PEM private key (readable by root only); only keyholder ever holds it."),
    ke("EMAIL_ACCOUNTS_FILE", "/etc/scorpiox/accounts", "scorpiox-data/accounts", "Accounts: one user@domain:$argon2id$... per line."),
    ke("EMAIL_ALIASES_FILE", "/etc/scorpiox/aliases", "scorpiox-data/aliases", "Aliases: alias@domain: target, target."),
    ke("EMAIL_DKIM_KEY", "/etc/scorpiox/dkim/default.key", "scorpiox-data/dkim/default.key", "DKIM private key (PEM) for EMAIL_DOMAIN; missing means outbound mail is not signed."),
    k("EMAIL_DKIM_KEYS", "", "More DKIM keys: domain:selector:path, comma separated (other domains, or a second key such as Ed25519 beside RSA); each signs mail from its domain."),
    k("EMAIL_DKIM_SELECTOR", "default", "DKIM selector published in DNS as <selector>._domainkey.<domain>."),
    ke("EMAIL_PID_FILE", "/run/scorpiox/sx-server-email.pid", "scorpiox-data/sx-server-email.pid", "Pid file of the running daemon."),
    ke("EMAIL_CONTROL_SOCKET", "/run/scorpiox/control.sock", "scorpiox-data/control.sock", "Control socket for admin commands (root and EMAIL_ADMIN_GROUP only)."),
    ke("EMAIL_SUBMIT_SOCKET", "/run/scorpiox/submit.sock", "scorpiox-data/submit.sock", "Local submission socket for sendmail on this host (any user; the kernel says who, the sender is user@EMAIL_HOSTNAME); empty disables."),
    ke("EMAIL_MAILDROP_DIR", "/var/lib/scorpiox/maildrop", "scorpiox-data/maildrop", "Where sendmail leaves mail while the server is down (mode 1733); picked up once it runs; empty disables."),
    k("EMAIL_ADMIN_GROUP", "", "Group, besides root, allowed on the control socket; empty means root only."),
    ke("EMAIL_LOG", "syslog", "stderr", "Where logs go: syslog (facility mail) or stderr."),
    k("EMAIL_SECCOMP", "kill", "What a child's seccomp filter does with a system call outside its allow-list: kill (the process dies with SIGSYS and is restarted), log (allowed, the kernel logs it: audit type 1326) or off."),
    k("EMAIL_USER_KEYHOLDER", "_sxkey", "User keyholder runs as."),
    k("EMAIL_USER_SMTP", "_sxsmtp", "User smtp runs as."),
    k("EMAIL_USER_QUEUE", "_sxqueue", "User queue runs as (owns EMAIL_QUEUE_DIR)."),
    k("EMAIL_USER_MAIL", "_sxmail", "User delivery and imap run as (owns EMAIL_MAILDIR)."),
    k("EMAIL_MAX_MESSAGE_SIZE", "52428800", "Largest message accepted, in bytes (SIZE)."),
    k("EMAIL_MAX_RECIPIENTS", "1000", "Most recipients per message."),
    k("EMAIL_MAX_CONNECTIONS", "500", "Most concurrent connections per service."),
    k("EMAIL_MAX_CONNECTIONS_PER_IP", "50", "Most concurrent connections from one IP address per service (as Postfix's smtpd_client_connection_count_limit); a slot is free again as soon as the connection closes."),
    k("EMAIL_IMAP_MAX_USER_CONNECTIONS", "50", "Most concurrent IMAP sessions of one user."),
    k("EMAIL_IMAP_MAX_FOLDERS", "1000", "Most folders one account may have; CREATE beyond it is refused (NO [LIMIT]), and so is SUBSCRIBE beyond as many subscribed names (plus INBOX)."),
    k("EMAIL_AUTH_MAX_FAILURES", "10", "Failed logins (SMTP AUTH and IMAP together) from one IP address within 15 minutes before it is locked out until 15 minutes after its last failure; answers to failures slow down from 0.25 s to 8 s before that."),
    k("EMAIL_AUTH_MAX_ACCOUNT_FAILURES", "30", "Failed logins on one account, from any addresses, within 15 minutes before the account is locked out for addresses it was never logged in from."),
    k("EMAIL_MAX_ERRORS", "10", "Protocol errors in one SMTP session before it is closed (421)."),
    k("EMAIL_MAX_IDLE_COMMANDS", "100", "SMTP commands outside a mail transaction (NOOP, RSET, VRFY...) before the session is closed."),
    k("EMAIL_SHUTDOWN_TIMEOUT", "10", "Seconds a stop (SIGTERM, systemctl stop) gives SMTP transactions in progress to finish; later ones get 421 4.3.2. Idle sessions end at once (421, IMAP BYE)."),
    k("EMAIL_SMTP_TIMEOUT", "300", "Seconds an SMTP client has for each whole command line and the TLS handshake (at most 30 s for that); in DATA, seconds without data, the body also having to average 100 bytes/s (RFC 5321 4.5.3.2: at least 300)."),
    k("EMAIL_ROUTES", "", "Static routes for outbound mail: domain=host:port, comma separated (host an IP address)."),
    k("EMAIL_RELAY_HOST", "", "Smarthost host:port for every outbound domain without a route; empty means MX lookup."),
    k("EMAIL_RELAY_USER", "", "AUTH user at EMAIL_RELAY_HOST; empty means no AUTH."),
    k("EMAIL_RELAY_PASS_FILE", "", "File (root only) whose first line is the EMAIL_RELAY_USER password."),
    k("EMAIL_OUTBOUND_TLS", "may", "may: STARTTLS when offered; required: defer mail when a next hop does not offer it (always required towards an AUTH smarthost)."),
    k("EMAIL_DOMAIN_CONCURRENCY", "10", "Most simultaneous outbound connections to one destination domain."),
    k("EMAIL_QUOTA", "0", "Mailbox size limit per account in bytes (K, M, G suffixes); 0 means none. Over it, mail is deferred (4.2.2)."),
    k("EMAIL_DNS_SERVER", "", "DNS servers for MX lookups, ip or ip:port, comma separated; empty means the nameservers of /etc/resolv.conf."),
    k("EMAIL_QUEUE_RETRY", "1m,5m,10m,30m,1h,2h,4h", "Waits between delivery attempts (s, m, h, d suffixes); the last one repeats. Each gets up to 10% jitter."),
    k("EMAIL_QUEUE_WARN", "4h", "After this long undelivered, the sender gets a delay warning (once); 0 disables."),
    k("EMAIL_QUEUE_LIFETIME", "5d", "How long a message is retried before it is returned to the sender."),
    k("EMAIL_AUTH_CHECKS", "auto", "on: mail on port 25 gets SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) checks, an Authentication-Results field, and the sending domain's DMARC policy; a DNS failure that could change the answer gives 451 4.7.5. off: none of these (a server behind a filter that does them). auto: on unless every EMAIL_LISTEN_ADDR is loopback."),
    k("EMAIL_AUTHSERV_ID", "", "The authserv-id of the Authentication-Results fields this server adds (and removes from incoming mail); empty means EMAIL_HOSTNAME."),
    k("EMAIL_DMARC_REJECT", "reject", "What mail failing DMARC for a domain with p=reject gets: reject (550 5.7.1 at the end of DATA), quarantine (the recipient's Junk folder) or deliver."),
    k("EMAIL_DMARC_QUARANTINE", "quarantine", "What mail failing DMARC for a domain with p=quarantine gets: quarantine (the recipient's Junk folder) or deliver."),
    k("EMAIL_DNSBL", "", "DNS block lists (RFC 5782) asked about each port 25 client at MAIL, comma separated zones; a listed client gets 554 5.7.1. A list that does not answer lists nobody."),
    k("EMAIL_DNSWL", "", "DNS allow lists, comma separated zones: a client listed in one is not looked up in EMAIL_DNSBL."),
    k("EMAIL_RATE_CLIENT", "0", "Most messages one client address (IPv6: its /64) may send, as N/period (e.g. 200/1h); over it, 421 4.7.0. 0 means no limit."),
    k("EMAIL_RATE_SENDER", "0", "Most messages one sender (MAIL FROM address, or the AUTH user on submission) may send, as N/period (e.g. 500/1d); over it, 421 4.7.0. 0 means no limit."),
    k("EMAIL_GREYLIST", "off", "on: a port 25 recipient of a (client network, sender, recipient) triplet not seen before gets 451 4.7.1 until the sender retries after EMAIL_GREYLIST_DELAY; then the triplet and the client network pass. State kept by queue, across restarts."),
    k("EMAIL_GREYLIST_DELAY", "5m", "How long a new triplet must wait before its retry is accepted."),
    k("EMAIL_GREYLIST_EXPIRE", "35d", "How long after its last message a passed triplet or client network keeps passing."),
    k("EMAIL_MILTERS", "", "Milters (Sendmail milter protocol 6: rspamd, OpenDKIM, OpenDMARC, spamass-milter, clamav-milter) every port 25 message goes through, in order (asked at MAIL, at each RCPT and after DATA), comma separated: inet:host:port or unix:/path (the parent connects it for the chrooted smtp), optionally ?timeout=30s&fail=open|closed (default 30s and open)."),
    k("EMAIL_AUTH_CACHE_TTL", "300", "Seconds a successful password check is cached by keyholder (0 disables)."),
];

/// Keys read by `sx email` (the client).
pub const CLIENT_KEYS: &[KeyDef] = &[
    k("SMTP_HOST", "localhost", "Server to send through."),
    k(
        "SMTP_PORT",
        "",
        "Server port; empty means 587 for starttls/none and 465 for ssl.",
    ),
    k("SMTP_USER", "", "AUTH user; empty means no AUTH."),
    k("SMTP_PASS", "", "AUTH password."),
    k(
        "SMTP_PASS_FILE",
        "",
        "File whose first line is the password.",
    ),
    k(
        "SMTP_PASS_CMD",
        "",
        "Command whose first output line is the password.",
    ),
    k("SMTP_FROM", "", "Envelope and From: address."),
    k(
        "SMTP_TLS",
        "starttls",
        "starttls (required), ssl (implicit TLS) or none.",
    ),
    k(
        "SMTP_CA_FILE",
        "",
        "PEM CA bundle to verify the server with, instead of the system roots.",
    ),
    k(
        "SMTP_TLS_VERIFY",
        "yes",
        "yes, or no to skip certificate verification.",
    ),
    k(
        "SMTP_TIMEOUT",
        "30",
        "Seconds before a connection or command times out.",
    ),
    k(
        "SMTP_QUEUE_DIR",
        "",
        "Offline queue; empty means $XDG_DATA_HOME/scorpiox/queue.",
    ),
    k(
        "SMTP_LOG",
        "syslog",
        "Where each send is logged: syslog (facility mail), stderr or none.",
    ),
];

pub fn find(name: &str) -> Option<&'static KeyDef> {
    SERVER_KEYS
        .iter()
        .chain(CLIENT_KEYS.iter())
        .find(|k| k.name == name)
}
