//! The typed messages of every edge. One enum per direction.

use serde::{Deserialize, Serialize};

/// The five child processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Keyholder,
    Smtp,
    Queue,
    Delivery,
    Imap,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Keyholder,
        Role::Smtp,
        Role::Queue,
        Role::Delivery,
        Role::Imap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Keyholder => "keyholder",
            Role::Smtp => "smtp",
            Role::Queue => "queue",
            Role::Delivery => "delivery",
            Role::Imap => "imap",
        }
    }

    /// Process title and syslog ident.
    pub fn title(self) -> &'static str {
        match self {
            Role::Keyholder => "sx-keyholder",
            Role::Smtp => "sx-smtp",
            Role::Queue => "sx-queue",
            Role::Delivery => "sx-delivery",
            Role::Imap => "sx-imap",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Listening services; the parent binds them and hands the fds down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Service {
    /// MTA, port 25.
    Smtp,
    /// Submission with STARTTLS, port 587.
    Submission,
    /// Submission over implicit TLS, port 465.
    Submissions,
    /// IMAP over implicit TLS, port 993.
    Imaps,
    /// IMAP with STARTTLS, port 143.
    Imap,
    /// Local submission (sendmail on this host) over the unix socket
    /// EMAIL_SUBMIT_SOCKET: the kernel says which user is sending.
    Local,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Smtp,
        Service::Submission,
        Service::Submissions,
        Service::Imaps,
        Service::Imap,
        Service::Local,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Imaps => "imaps",
            Service::Imap => "imap",
            Service::Local => "local",
        }
    }

    pub fn owner(self) -> Role {
        match self {
            Service::Smtp | Service::Submission | Service::Submissions | Service::Local => {
                Role::Smtp
            }
            Service::Imaps | Service::Imap => Role::Imap,
        }
    }

    /// TLS from the first byte (RFC 8314) rather than STARTTLS.
    pub fn implicit_tls(self) -> bool {
        matches!(self, Service::Submissions | Service::Imaps)
    }
}

/// What an fd attached to [`ParentToChild::Start`] is, in attachment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdName {
    /// Request/reply edge to a peer process.
    Peer(Role),
    /// Dedicated blocking edge to keyholder for TLS handshake signatures.
    TlsSigner,
    Listener(Service),
    /// A sealed memfd holding a bincode [`Secrets`] (keyholder only).
    Secrets,
    /// A sealed memfd holding a bincode [`Directory`] (smtp).
    Directory,
    /// queue -> smtp: outbound deliveries (the MTA side of smtp).
    Outbound,
    /// smtp -> parent: what smtp's empty chroot keeps from it (unix:
    /// milters' sockets, local users' names, the maildrop), as [`BrokerRequest`].
    Broker,
}

/// smtp -> parent on the broker edge. smtp's chroot is empty, so the parent
/// connects the unix sockets of EMAIL_MILTERS for it (only paths of its own
/// config), names local users, and hands over maildrop files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BrokerRequest {
    ConnectUnix {
        path: String,
    },
    /// The login name of a local user (a local submission's peer uid).
    UserName {
        uid: u32,
    },
    /// The next message of the maildrop directory (written by sendmail while
    /// the server was down), if any.
    NextDrop,
    /// What became of a maildrop file smtp was given.
    DropDone {
        file: String,
        outcome: DropOutcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropOutcome {
    /// In the queue: remove the file.
    Queued,
    /// Refused for good (bad format, no valid recipient): keep it as `.bad`.
    Refused,
    /// Not now (the queue is busy): offer it again later.
    Later,
}

/// The answer: `Connected` and `Drop` carry one fd (the socket, the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BrokerReply {
    Connected,
    Refused(String),
    User(String),
    /// A maildrop file (open, read-only), whose owner is `uid` (`user`).
    Drop {
        file: String,
        uid: u32,
        user: String,
    },
    NoDrop,
    Done,
}

/// What the seccomp filter does with a system call outside a child's allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompMode {
    /// The kernel kills the process (SIGSYS); the parent logs it and restarts it.
    Kill,
    /// The call is allowed and the kernel logs it (audit type 1326): for finding
    /// what a new kernel or libc needs.
    Log,
    /// No filter.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogTarget {
    Syslog,
    Stderr,
    /// stderr, which a daemon has pointed at a log file: each line starts
    /// with the time (a terminal or journald adds its own).
    LogFile,
}

/// Who a child becomes after start-up. `None` when the server is not run as root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub chroot: String,
}

/// The public half of a TLS identity: what smtp and imap may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPublic {
    /// DER certificates, leaf first.
    pub cert_chain: Vec<Vec<u8>>,
    /// Which key keyholder must use.
    pub key_id: u32,
    /// rustls `SignatureScheme`s the key can produce, as u16.
    pub schemes: Vec<u16>,
    /// rustls `SignatureAlgorithm` as u8.
    pub algorithm: u8,
}

/// A secret that must not show up in `{:?}` (log lines).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a DMARC failure under a domain's policy leads to (EMAIL_DMARC_REJECT,
/// EMAIL_DMARC_QUARANTINE let an operator soften the domain's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DmarcAction {
    /// 550 5.7.1 at the end of DATA.
    Reject,
    /// Delivered to the recipient's Junk folder.
    Quarantine,
    /// Delivered as any other message (the result is still recorded).
    Deliver,
}

/// Checks of who sent mail arriving on port 25 (smtp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundChecks {
    /// SPF, DKIM, DMARC and ARC on port 25 (EMAIL_AUTH_CHECKS).
    pub enabled: bool,
    /// The authserv-id of our Authentication-Results (RFC 8601).
    pub authserv_id: String,
    /// For a failing domain with p=reject.
    pub on_reject: DmarcAction,
    /// For a failing domain with p=quarantine.
    pub on_quarantine: DmarcAction,
}

/// One milter of EMAIL_MILTERS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilterSpec {
    pub address: MilterAddress,
    /// Seconds for each step of the conversation.
    pub timeout: u64,
    /// Unreachable or broken: skip it (true) or 451 (false).
    pub fail_open: bool,
}

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MilterAddress {
    /// `host:port`.
    Inet(String),
    /// An absolute socket path, connected by the parent (broker edge).
    Unix(String),
}

impl std::fmt::Display for MilterAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MilterAddress::Inet(a) => write!(f, "inet:{a}"),
            MilterAddress::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// Who may send at all (smtp): DNS lists, rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbuseSettings {
    /// DNSBL zones for port 25 clients (EMAIL_DNSBL).
    pub dnsbl: Vec<String>,
    /// DNSWL zones: a client listed here skips the DNSBLs (EMAIL_DNSWL).
    pub dnswl: Vec<String>,
    /// Messages per period (seconds) per client address; 0 messages: none.
    pub rate_client: (u32, u64),
    /// Messages per period per sender (MAIL FROM, or the AUTH user).
    pub rate_sender: (u32, u64),
    /// Greylisting of port 25 recipients: (delay, expire) in seconds.
    pub greylist: Option<(u64, u64)>,
    /// Milters every port 25 message goes through, in order.
    pub milters: Vec<MilterSpec>,
}

/// Settings every child gets; role-specific parts are optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSettings {
    pub hostname: String,
    /// Local domains, primary first.
    pub domains: Vec<String>,
    pub tls: Option<TlsPublic>,
    pub max_message_size: u64,
    pub max_recipients: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    /// IMAP sessions one user may have at once.
    pub imap_max_user_connections: u32,
    /// Folders one account may have (imap).
    pub imap_max_folders: u32,
    /// Failed logins per address / per account before a lockout (keyholder).
    pub auth_max_failures: u32,
    pub auth_max_account_failures: u32,
    /// Protocol errors before a session is closed.
    pub max_errors: u32,
    /// EMAIL_SHUTDOWN_TIMEOUT, seconds.
    pub shutdown_timeout: u64,
    /// Commands without a mail transaction (NOOP, RSET, VRFY, HELP...) before close.
    pub max_idle_commands: u32,
    /// Seconds of command inactivity before a session is closed.
    pub timeout: u64,
    /// Static routes `domain -> host:port` for outbound mail (smtp).
    pub routes: Vec<(String, String)>,
    /// Smarthost for every other domain, `host:port` (smtp).
    pub relay_host: Option<String>,
    /// (user, password) for AUTH at the smarthost (smtp only).
    pub relay_auth: Option<(String, Redacted)>,
    /// Defer rather than send without TLS (smtp).
    pub outbound_tls_required: bool,
    /// Simultaneous outbound connections per destination domain (smtp).
    pub domain_concurrency: u32,
    /// Mailbox size limit in bytes, 0 for none (delivery).
    pub quota: u64,
    /// DNS servers `ip:port` for MX lookups (smtp).
    pub dns_servers: Vec<String>,
    /// Seconds between attempts, the last repeating (queue).
    pub queue_retry: Vec<u64>,
    /// Seconds a message is retried before it is returned (queue).
    pub queue_lifetime: u64,
    /// Seconds undelivered before the sender is warned; 0 never (queue).
    pub queue_warn: u64,
    /// Seconds a successful password check is remembered by keyholder.
    pub auth_cache_ttl: u64,
    /// SPF, DKIM, DMARC and ARC on port 25 (smtp).
    pub checks: InboundChecks,
    /// DNS lists and rate limits (smtp).
    pub abuse: AbuseSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildStart {
    pub role: Role,
    /// Directory the child works in: its chroot as root, its cwd otherwise.
    pub workdir: String,
    pub log: LogTarget,
    pub sandbox: Option<Sandbox>,
    pub seccomp: SeccompMode,
    pub settings: ChildSettings,
    pub fds: Vec<FdName>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ParentToChild {
    /// First frame on every child's fd 3; carries the fds named in `fds`.
    Start(ChildStart),
    /// New settings after SIGHUP (keyholder also gets a new Secrets fd).
    Reload(ChildSettings),
    /// Keyholder only: sign the message in the attached fd (control socket test hook).
    DkimSign {
        domain: String,
    },
    /// Queue only: an admin command from the control socket.
    Queue(QueueCmd),
    Ping,
    /// Report the counters (answered with ChildToParent::Stats by every role).
    Stats,
    /// Finish what is in flight and exit 0.
    Shutdown,
    /// A peer was restarted: the attached fd is this child's end of the fresh
    /// edge of that name; it replaces the dead one.
    NewEdge(FdName),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChildToParent {
    Ready,
    Reloaded,
    Pong,
    DkimSigned(Result<String, String>),
    Queue(QueueReply),
    Stats(ChildStats),
}

/// Queue administration (`sx server-email --queue...`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueCmd {
    List,
    Show {
        id: String,
    },
    /// Retry now: one message, or all when None.
    Flush {
        id: Option<String>,
    },
    Remove {
        id: String,
    },
    Hold {
        id: String,
    },
    Release {
        id: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: String,
    pub arrived: u64,
    pub size: u64,
    pub from: String,
    /// (recipient, state: pending / deferred / sent / failed)
    pub recipients: Vec<(String, String)>,
    pub held: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueReply {
    List(Vec<QueueEntry>),
    /// Envelope and headers, as text.
    Show(String),
    Done(String),
    Error(String),
}

/// Everything only keyholder may hold. Sent as a memfd, never as a frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    pub tls_keys: Vec<TlsKey>,
    pub dkim_keys: Vec<DkimKey>,
    /// (address, argon2id PHC hash)
    pub accounts: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsKey {
    pub key_id: u32,
    /// PKCS#8, PKCS#1 or SEC1 DER, as rustls-pki-types `PrivateKeyDer` kinds.
    pub der: Vec<u8>,
    pub kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    Pkcs8,
    Pkcs1,
    Sec1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DkimAlgo {
    RsaSha256,
    Ed25519Sha256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algo: DkimAlgo,
    pub der: Vec<u8>,
    pub kind: KeyKind,
}

/// Requests to keyholder from smtp, imap and queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum KeyRequest {
    /// TLS handshake signature with the identified key.
    TlsSign {
        key_id: u32,
        scheme: u16,
        data: Vec<u8>,
    },
    /// A login attempt from `client`: keyholder counts failures per address and
    /// per account for SMTP and IMAP alike (proc/src/login_failures.rs).
    CheckPassword {
        user: String,
        password: String,
        client: std::net::IpAddr,
    },
    /// DKIM-sign the first `size` bytes (all when None) of the attached read-only fd.
    DkimSign { domain: String, size: Option<u64> },
    /// ARC-seal (RFC 8617) the message of the attached fd, forwarded mail
    /// whose top field is our Authentication-Results under `authserv_id`.
    ArcSeal {
        domain: String,
        authserv_id: String,
        size: Option<u64>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum KeyReply {
    TlsSignature(Vec<u8>),
    /// Some(canonical account address) when the password is right.
    Password(Option<String>),
    /// Not checked: too many failures from this address or on this account.
    LoginLocked,
    /// The complete `DKIM-Signature:` header field, CRLF-terminated.
    DkimHeader(String),
    Error(String),
}

/// Where one accepted recipient goes, as resolved by smtp at RCPT time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dest {
    /// A local account (normalized `user@domain`, +tag and aliases resolved).
    Local { mailbox: String },
    /// Another domain (authenticated submission, or an alias pointing out).
    Remote { address: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcptState {
    Pending,
    Delivered,
    /// Temporary failure: retried later.
    Deferred {
        attempts: u32,
        next_attempt: u64,
        last_error: String,
    },
    /// Permanent failure.
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address as given in RCPT TO (lower-cased domain).
    pub address: String,
    /// RFC 3461 ORCPT address (xtext decoded; type rfc822).
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY flags (smtp-proto RCPT_NOTIFY_*).
    pub notify: u64,
    pub dest: Dest,
    pub state: RcptState,
    /// The remote host that last answered for this recipient (`mx.b.test`, or
    /// `[192.0.2.1]`), for the DSN's Remote-MTA.
    pub remote_mta: Option<String>,
}

/// `Envelope::auth` of mail generated here. Not an address (no `@`), so no
/// account can have this name.
pub const LOCAL_ORIGIN: &str = "MAILER-DAEMON";

/// `Envelope::auth` of a local submission starts with this, then the user's
/// login name (`local:alice`): the kernel said who sent it, no password.
pub const LOCAL_USER: &str = "local:";

/// The envelope of one queued message; the queue writes it to env/<id>.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// Reverse path; empty for `<>`.
    pub from: String,
    pub recipients: Vec<Recipient>,
    /// Seconds since the epoch when the message was accepted.
    pub arrived: u64,
    pub size: u64,
    /// RFC 3461 RET=FULL (true) / HDRS (false); None when not given.
    pub ret_full: Option<bool>,
    /// RFC 3461 ENVID.
    pub envid: Option<String>,
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub helo: String,
    pub client_ip: String,
    /// Authenticated submitter, if any; [`LOCAL_ORIGIN`] for mail this server
    /// wrote itself (bounces, DSNs). Only these two are DKIM-signed.
    pub auth: Option<String>,
    /// A delay warning (EMAIL_QUEUE_WARN) was sent to the sender.
    pub warned: bool,
    /// DMARC says quarantine: local recipients get it in their Junk folder.
    pub junk: bool,
}

/// smtp <-> queue: message handoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SmtpToQueue {
    /// Open a new spool file; the reply carries a writable fd to it.
    Create,
    /// The body is written: make it durable, write the envelope, then answer.
    Commit { envelope: Envelope },
    /// Drop a spool file that will not be committed.
    Abort { id: String },
    /// Greylisting: may this triplet (`net sender recipient`) pass now?
    Greylist {
        net: String,
        triplet: String,
        delay: u64,
        expire: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueToSmtp {
    /// Spool file opened (fd attached).
    Created {
        id: String,
    },
    /// On disk (file and envelope fsynced): now 250 may be sent.
    Committed {
        id: String,
    },
    /// Seconds the greylisted triplet must still wait; 0: it passes.
    Greylisted {
        wait: u64,
    },
    Error(String),
}

/// queue -> smtp: send one message to the recipients of one domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueToMta {
    /// The first `size` bytes of the attached fd are the message; `dkim` (complete
    /// header fields, CRLF-terminated) goes in front of it.
    Send {
        id: String,
        domain: String,
        from: String,
        rcpts: Vec<String>,
        /// Per recipient, in order: RFC 3461 NOTIFY flags and original
        /// recipient, passed on when the next hop offers DSN.
        rcpt_dsn: Vec<(u64, Option<String>)>,
        size: u64,
        dkim: Option<String>,
        /// RFC 3461 parameters to pass on when the next hop offers DSN.
        ret_full: Option<bool>,
        envid: Option<String>,
        body_8bit: bool,
        smtputf8: bool,
    },
}

/// What became of one recipient on the way out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// 2xx; the text is the remote reply, `relay` the host it went to.
    Sent { reply: String },
    /// 4xx, connection trouble, no route yet: try again later.
    Deferred { reply: String },
    /// 5xx: give up on this recipient.
    Failed { reply: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MtaToQueue {
    /// One outcome per recipient of the Send, in order; `relay` names the host.
    Result {
        relay: String,
        outcomes: Vec<Outcome>,
        /// The hop offered DSN and got NOTIFY/ORCPT: success notices are its
        /// to send; otherwise ours ("relayed").
        dsn: bool,
    },
}

/// queue <-> delivery: local delivery of one recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueToDelivery {
    /// Deliver the first `size` bytes of the attached read-only fd (the message;
    /// the spool's envelope trailer follows) into `mailbox`'s INBOX.
    Deliver {
        id: String,
        mailbox: String,
        return_path: String,
        original: String,
        size: u64,
        /// Into the account's Junk folder (DMARC quarantine), not INBOX.
        junk: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeliveryToQueue {
    Delivered,
    TempFail(String),
    PermFail(String),
}

/// smtp -> imap: BURL (RFC 4468) asks for what a URLAUTH URL (RFC 4467)
/// names, for a message `user` (authenticated on submission) is sending.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SmtpToImap {
    UrlFetch { user: String, url: String },
}

/// imap -> smtp: the URL's bytes are `len` bytes from `start` of the file
/// whose fd comes with the frame; or it names nothing this user may send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ImapToSmtp {
    Fetched { start: u64, len: u64 },
    Refused,
}

/// delivery -> imap: a mailbox changed on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeliveryToImap {
    Changed { account: String, mailbox: String },
}

/// Who exists: account addresses and aliases (no secrets). Sent to smtp as a memfd.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    pub accounts: Vec<String>,
    /// (alias or `@domain` catch-all, targets)
    pub aliases: Vec<(String, Vec<String>)>,
}

/// Admin CLI <-> parent over the control socket (SOCK_SEQPACKET, same framing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    Status,
    Reload,
    /// Sign the message in the attached fd with keyholder's DKIM key for `domain`.
    DkimSign {
        domain: String,
    },
    Queue(QueueCmd),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlReply {
    Status(Status),
    Ok,
    DkimHeader(String),
    Error(String),
    Queue(QueueReply),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub uptime_secs: u64,
    pub restarts: u32,
    pub children: Vec<(Role, u32)>,
    /// The children's counters, summed.
    pub stats: ChildStats,
}

/// What a child counts (ParentToChild::Stats): open connections per service,
/// events as (total since start, in the last 60 s), and gauges such as queue sizes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildStats {
    pub connections: Vec<(Service, u32)>,
    pub events: Vec<(Event, u64, u32)>,
    pub gauges: Vec<(String, u64)>,
}

impl ChildStats {
    pub fn connections_of(&self, s: Service) -> u32 {
        self.connections
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    /// (total since start, last 60 s) of an event.
    pub fn event(&self, e: Event) -> (u64, u32) {
        self.events
            .iter()
            .find(|(x, _, _)| *x == e)
            .map(|(_, t, m)| (*t, *m))
            .unwrap_or((0, 0))
    }

    pub fn gauge(&self, name: &str) -> u64 {
        self.gauges
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// Add another child's figures to these.
    pub fn merge(&mut self, o: ChildStats) {
        for (k, v) in o.connections {
            match self.connections.iter_mut().find(|(s, _)| *s == k) {
                Some(e) => e.1 += v,
                None => self.connections.push((k, v)),
            }
        }
        for (k, t, m) in o.events {
            match self.events.iter_mut().find(|(e, _, _)| *e == k) {
                Some(e) => {
                    e.1 += t;
                    e.2 += m;
                }
                None => self.events.push((k, t, m)),
            }
        }
        for (k, v) in o.gauges {
            match self.gauges.iter_mut().find(|(g, _)| *g == k) {
                Some(e) => e.1 += v,
                None => self.gauges.push((k, v)),
            }
        }
    }
}

/// Countable events, named as in the log lines they go with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A message taken by smtp (`250 ... queued as`).
    Accepted,
    /// A command refused by policy (`reject:` lines).
    Rejected,
    /// A recipient delivered to a local Maildir.
    Delivered,
    /// A recipient handed to a remote server.
    Relayed,
    Deferred,
    Bounced,
    /// A successful SMTP AUTH or IMAP login.
    Login,
    LoginFailed,
    /// A panic contained in one session or job (the process served on).
    Panic,
}

impl Event {
    pub const ALL: [Event; 9] = [
        Event::Accepted,
        Event::Rejected,
        Event::Delivered,
        Event::Relayed,
        Event::Deferred,
        Event::Bounced,
        Event::Login,
        Event::LoginFailed,
        Event::Panic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::Accepted => "accepted",
            Event::Rejected => "rejected",
            Event::Delivered => "delivered",
            Event::Relayed => "relayed",
            Event::Deferred => "deferred",
            Event::Bounced => "bounced",
            Event::Login => "logins",
            Event::LoginFailed => "login_failures",
            Event::Panic => "panics",
        }
    }
}
