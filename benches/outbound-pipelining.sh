#!/usr/bin/env bash
# Outbound PIPELINING (RFC 2920): scorpiox-email relays MESSAGES messages, each
# to 50 recipients, to a private Postfix that offers PIPELINING and to one that
# does not (smtpd_discard_ehlo_keywords), through a proxy that adds DELAY_MS in
# each direction (a round trip of 2 x DELAY_MS, as between two hosts on the
# internet; loopback alone has none). Reports the median time of one
# 50-recipient transaction (the queue's delay= for it) each way. Run as root
# (Postfix).
#
#   benches/outbound-pipelining.sh [MESSAGES] [DELAY_MS]     (default 20 10)
set -euo pipefail
MESSAGES=${1:-20}
DELAY_MS=${2:-10}
cd "$(dirname "$0")/.."
. benches/lib.sh

command -v postfix >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
cargo build --release -q
SX=$PWD/target/release/sx
T=$(mktemp -d /tmp/sx-pipe.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    [ -f "$T/sx.pid" ] && kill "$(cat "$T/sx.pid")" 2>/dev/null || true
    for p in pipe plain; do postfix -c "$T/$p/conf" stop >/dev/null 2>&1 || true; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$T"
}
trap cleanup EXIT

# postfix_instance NAME PORT DOMAIN EXTRA: a private Postfix delivering DOMAIN
# to one Maildir, as tests/common/postfix.rs starts it.
postfix_instance() {
    local d=$T/$1
    mkdir -p "$d/conf" "$d/queue" "$d/data" "$d/mail"
    chown postfix:postfix "$d/data" "$d/mail"
    cat > "$d/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix.$3
mydestination =
virtual_mailbox_domains = $3
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:$(id -u postfix)
virtual_gid_maps = static:$(id -g postfix)
maillog_file = $d/maillog
maillog_file_prefixes = $d
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
smtpd_tls_security_level = none
$4
CF
    sed "s/^smtp      inet .*/127.0.0.1:$2 inet n - n - - smtpd/" /usr/share/postfix/master.cf.dist > "$d/conf/master.cf"
    postfix -c "$d/conf" start >/dev/null 2>&1
}

P1=$(port); P2=$(port); X1=$(port); X2=$(port)
SMTP=$(port); SUB=$(port); SUBS=$(port); IMAPS=$(port); IMAP=$(port)
postfix_instance pipe "$P1" p1.test ""
postfix_instance plain "$P2" p2.test "smtpd_discard_ehlo_keywords = pipelining, silent-discard"
for pair in "$X1 $P1" "$X2 $P2"; do
    set -- $pair
    python3 benches/delay_proxy.py "$1" "$2" "$DELAY_MS" > "$T/proxy.$1" &
    PIDS+=($!)
done
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
    -subj /CN=mail.a.test -addext "subjectAltName=DNS:mail.a.test,IP:127.0.0.1" 2>/dev/null
server_config "$T" mail.a.test "$SMTP" "$SUB" "$SUBS" "$IMAPS" "$IMAP" > "$T/env.txt"
echo "EMAIL_ROUTES=p1.test=127.0.0.1:$X1,p2.test=127.0.0.1:$X2" >> "$T/env.txt"
echo pw-bob-1 | "$SX" server-email --config "$T/env.txt" --add-account bob@a.test >/dev/null
"$SX" server-email --config "$T/env.txt" >/dev/null 2>"$T/sx.log" &
for _ in $(seq 100); do [ -S "$T/control.sock" ] && break; sleep 0.1; done

# One message after the other (each transaction alone on the wire).
python3 - "$SUB" "$T/cert.pem" "$MESSAGES" "$T/sx.log" <<'PY'
import re, smtplib, ssl, statistics, sys, time
port, cafile, n, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
def send(domain, i):
    s = smtplib.SMTP('127.0.0.1', port); s.starttls(context=ctx); s.login('bob@a.test', 'pw-bob-1')
    s.sendmail('bob@a.test', ['r%d@%s' % (k, domain) for k in range(50)],
               'From: bob@a.test\r\nSubject: %s %d\r\n\r\nx\r\n' % (domain, i))
    s.quit()
def first_delays(domain):
    return [float(m) for m in re.findall(r'to=<r0@%s> relay=\S+ delay=([0-9.]+) dsn=2' % re.escape(domain), open(log).read())]
result = {}
for domain in ('p1.test', 'p2.test'):
    for i in range(n):
        send(domain, i)
        t = time.time()
        while len(first_delays(domain)) <= i and time.time() - t < 30:
            time.sleep(0.01)
    d = first_delays(domain)
    result[domain] = (statistics.median(d) * 1000, len(d))
(p, np_), (q, nq) = result['p1.test'], result['p2.test']
print('50-recipient relay, median transaction time over %d/%d messages:' % (np_, nq))
print('  with PIPELINING:    %.0f ms' % p)
print('  without PIPELINING: %.0f ms' % q)
print('  gain: %.1fx' % (q / p))
PY
