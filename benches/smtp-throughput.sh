#!/usr/bin/env bash
# SMTP acceptance throughput of `sx server-email` and of Postfix on the same
# machine, in one run, with smtp-source (Debian package postfix): SESSIONS
# parallel sessions, MESSAGES messages of SIZE bytes, a new connection per
# message. Both servers fsync every message before their 250 and deliver locally
# to a Maildir while accepting. Run as root (it configures and starts Postfix on
# 127.0.0.1:25 and stops it afterwards). scorpiox-email runs on its default
# limits: 50 sessions from one address is exactly EMAIL_MAX_CONNECTIONS_PER_IP,
# and no connection may be refused.
#
#   benches/smtp-throughput.sh [SESSIONS] [MESSAGES] [SIZE]     (default 50 5000 4096)
#
# ROUNDS=N (default 1): N rounds, the order alternating (odd rounds
# scorpiox-email first, even rounds Postfix first); a ratio line per round and
# the lowest and median ratios at the end.
#
# FS=loop (the default when root can loop-mount): each server's run gets a
# fresh ext4 file system with a journal (Debian's default), loop-mounted, for
# everything it writes: scorpiox-email's queue, data and Maildir; Postfix's
# /var/spool/postfix (a copy, bind-mounted over it) and the bench user's home.
# Both servers create and delete thousands of files, and on ext4 without a
# journal (some virtual machines' root file system) creating a file costs
# time for every inode deleted in the same block group in the last 1-5 minutes
# (the kernel's recently_deleted()), so whichever server ran after the last
# clean-up was slowed by it. FS=host runs on the host's file system as before.
#
# CHECKS=1: scorpiox-email checks every message as an MX on the internet does
# (EMAIL_AUTH_CHECKS=on: SPF, DKIM, DMARC, ARC, iprev), with a dnsmasq on
# loopback serving the sender domain's SPF, DKIM key and DMARC p=reject (with
# a TTL of 300 s, as published records have: dnsmasq's default for its own
# records is 0, which no real domain uses, and would make every check ask
# again); the message both servers get is one DKIM-signed by dkimpy
# (smtp-source -F), and Postfix runs as before, without checks.
set -euo pipefail
SESSIONS=${1:-50}
MESSAGES=${2:-5000}
SIZE=${3:-4096}
ROUNDS=${ROUNDS:-1}
FS=${FS:-loop}
cd "$(dirname "$0")/.."

command -v smtp-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
cargo build --release -q
SX=$PWD/target/release/sx
T=$(mktemp -d /tmp/sx-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DNS_PID=""
SX_PID=""
MOUNTS=()
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        # A process that just exited may still hold its cwd there for a moment.
        for _ in $(seq 50); do umount "${MOUNTS[$i]}" 2>/dev/null && break; sleep 0.1; done
    done
    MOUNTS=()
}
cleanup() {
    [ -n "$SX_PID" ] && kill "$SX_PID" 2>/dev/null && wait "$SX_PID" 2>/dev/null || true
    [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null || true
    postfix stop >/dev/null 2>&1 || true
    sleep 0.5
    unmount_all
    rm -rf "$T"
}
trap cleanup EXIT

# fresh_fs DIR: a new journaled ext4 mounted on DIR (FS=loop), or just DIR.
fresh_fs() {
    mkdir -p "$1"
    [ "$FS" = loop ] || return 0
    local img
    img="$T/fs$((${#MOUNTS[@]} + 1)).img"
    truncate -s 4G "$img"
    mkfs.ext4 -q -F "$img"
    mount -o loop "$img" "$1"
    MOUNTS+=("$1")
}
if [ "$FS" = loop ]; then
    if ! fresh_fs "$T/probe" 2>/dev/null; then
        echo "FS=loop: cannot loop-mount a file system here; running on the host's (FS=host)" >&2
        FS=host
    fi
    unmount_all
    rm -f "$T"/fs*.img
fi

count_new() { find "$1" -type f 2>/dev/null | wc -l; }

SOURCE_ARGS=(-l "$SIZE" -f bench@source.test)
SX_CHECKS=""
if [ "${CHECKS:-0}" = 1 ]; then
    /usr/bin/python3 tests/checks/dkim_sign.py "$T"
    # smtp-source ends each line with CRLF itself.
    tr -d '\r' < "$T/rsa.eml" > "$T/signed.txt"
    DNSPORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    DNSARGS=(--keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1
        "--port=$DNSPORT" --local=/test/ --pid-file --local-ttl=300
        "--txt-record=signed.test,v=spf1 ip4:127.0.0.1 -all"
        "--txt-record=_dmarc.signed.test,v=DMARC1; p=reject"
        --host-record=mail.client.test,127.0.0.1)
    while IFS=$'\t' read -r name text; do
        # 255 bytes at most per character-string: split the key.
        DNSARGS+=("--txt-record=$name,$(python3 -c 'import sys; t=sys.argv[1]; print(",".join(t[i:i+250] for i in range(0, len(t), 250)))' "$text")")
    done < "$T/records"
    /usr/sbin/dnsmasq "${DNSARGS[@]}" &
    DNS_PID=$!
    sleep 0.5
    SOURCE_ARGS=(-F "$T/signed.txt" -f alice@signed.test)
    SX_CHECKS="EMAIL_AUTH_CHECKS=on
EMAIL_DNS_SERVER=127.0.0.1:$DNSPORT"
fi

# Wait until N messages are in maildir new/ (delivery caught up), at most 120 s.
wait_delivered() {
    local dir=$1 n=$2 i=0
    while [ "$(count_new "$dir")" -lt "$n" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
}

# Prints "accepted-rate end-to-end-rate": messages / time to the last 250, and
# messages / time until all of them are in the Maildir.
run_source() {
    local port=$1 to=$2 dir=$3
    local t0 t1 t2
    # Start each run with nothing dirty from earlier runs waiting to be written.
    sync
    t0=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" "${SOURCE_ARGS[@]}" -t "$to" "127.0.0.1:$port"
    t1=$(date +%s.%N)
    wait_delivered "$dir" "$MESSAGES"
    t2=$(date +%s.%N)
    python3 -c "print(f'{$MESSAGES / ($t1 - $t0):.0f} {$MESSAGES / ($t2 - $t0):.0f}')"
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=bench.test 2>/dev/null

# --- scorpiox-email: sets SX_RATE SX_E2E SX_DELIVERED SX_LAT SX_RSS SX_REFUSED --
run_sx() {
    local D=$T/sx-fs
    fresh_fs "$D"
    cat > "$T/env.txt" <<CONF
EMAIL_LISTEN_ADDR=127.0.0.1
EMAIL_HOSTNAME=mail.sx.test
EMAIL_DOMAIN=sx.test
EMAIL_SMTP_PORT=$PORT
EMAIL_SUBMISSION_PORT=0
EMAIL_SUBMISSIONS_PORT=0
EMAIL_IMAP_PORT=0
EMAIL_IMAP_STARTTLS_PORT=0
EMAIL_DATA_DIR=$D/data
EMAIL_MAILDIR=$D/mail
EMAIL_QUEUE_DIR=$D/queue
EMAIL_TLS_CERT=$T/cert.pem
EMAIL_TLS_KEY=$T/key.pem
EMAIL_ACCOUNTS_FILE=$D/accounts
EMAIL_PID_FILE=$T/sx.pid
EMAIL_CONTROL_SOCKET=$T/control.sock
EMAIL_SUBMIT_SOCKET=$T/submit.sock
EMAIL_MAILDROP_DIR=$D/maildrop
EMAIL_DOMAINS_FILE=$D/domains
EMAIL_LOG=stderr
$SX_CHECKS
CONF
    echo bench-password | "$SX" server-email --config "$T/env.txt" --add-account bench@sx.test >/dev/null
    # Foreground with its log in a file, as Postfix logs to a file below.
    "$SX" server-email --config "$T/env.txt" >/dev/null 2>"$T/sx.log" &
    SX_PID=$!
    for _ in $(seq 100); do [ -S "$T/control.sock" ] && break; sleep 0.1; done
    read -r SX_RATE SX_E2E < <(run_source "$PORT" bench@sx.test "$D/mail/sx.test/bench/new")
    SX_DELIVERED=$(count_new "$D/mail/sx.test/bench/new")
    SX_LAT=$(python3 benches/latency.py "$PORT" bench@sx.test "$D/mail/sx.test/bench/new" "$((SX_RATE / 2))" 2000 || true)
    SX_RSS=$(ps -o rss= --ppid "$SX_PID" | awk '{s+=$1} END {print s}')
    SX_REFUSED=$(grep -c "refused: too many" "$T/sx.log" || true)
    SX_CHECKED=$(grep -c 'spf=pass dkim=pass:signed.test dmarc=pass' "$T/sx.log" || true)
    kill "$SX_PID"
    wait "$SX_PID" 2>/dev/null || true
    SX_PID=""
    unmount_all
}

# --- Postfix: sets PF_RATE PF_E2E PF_DELIVERED PF_LAT ---------------------------
id pfbench >/dev/null 2>&1 || useradd -m pfbench
postconf -e 'inet_interfaces = loopback-only' 'inet_protocols = ipv4' 'mydestination = pf.test, localhost' \
    'home_mailbox = Maildir/' 'mynetworks = 127.0.0.0/8' 'smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination' \
    "maillog_file = /var/log/sx-bench-postfix.log" 'default_process_limit = 200'
run_pf() {
    postfix stop >/dev/null 2>&1 || true
    for _ in $(seq 50); do pgrep -x master >/dev/null || break; sleep 0.1; done
    if [ "$FS" = loop ]; then
        local D=$T/pf-fs
        fresh_fs "$D"
        mkdir -p "$D/spool" "$D/home"
        cp -a /var/spool/postfix/. "$D/spool/"
        chown pfbench: "$D/home"
        mount --bind "$D/spool" /var/spool/postfix
        MOUNTS+=(/var/spool/postfix)
        mount --bind "$D/home" /home/pfbench
        MOUNTS+=(/home/pfbench)
    fi
    rm -rf /home/pfbench/Maildir
    postfix start >/dev/null 2>&1
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null && break; sleep 0.1; done
    read -r PF_RATE PF_E2E < <(run_source 25 pfbench@pf.test /home/pfbench/Maildir/new)
    PF_DELIVERED=$(count_new /home/pfbench/Maildir/new)
    PF_LAT=$(python3 benches/latency.py 25 pfbench@pf.test /home/pfbench/Maildir/new "$((PF_RATE / 2))" 2000 || true)
    postfix stop >/dev/null 2>&1 || true
    for _ in $(seq 50); do pgrep -x master >/dev/null || break; sleep 0.1; done
    unmount_all
}

echo "smtp-source -s $SESSIONS -m $MESSAGES ${SOURCE_ARGS[*]} (new connection per message), $(nproc) cores, FS=$FS"
RATIOS=()
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        order="scorpiox-email first"
        run_sx
        run_pf
    else
        order="Postfix first"
        run_pf
        run_sx
    fi
    echo "round $round ($order):"
    if [ "${CHECKS:-0}" = 1 ]; then
        echo "  scorpiox-email with sender checks on: $SX_CHECKED messages logged spf=pass dkim=pass dmarc=pass"
    fi
    echo "  scorpiox-email: $SX_RATE msg/s accepted, $SX_E2E msg/s end to end; delivered $SX_DELIVERED/$MESSAGES; refused connections $SX_REFUSED; children RSS after run ${SX_RSS} KiB"
    echo "  postfix:        $PF_RATE msg/s accepted, $PF_E2E msg/s end to end; delivered $PF_DELIVERED/$MESSAGES"
    r=$(python3 -c "print(f'{$SX_RATE / $PF_RATE:.2f}')")
    RATIOS+=("$r")
    python3 -c "print(f'  ratio: {$SX_RATE / $PF_RATE:.2f}x accepted, {$SX_E2E / $PF_E2E:.2f}x end to end')"
    echo "  latency at half load, scorpiox-email: $SX_LAT"
    echo "  latency at half load, postfix:        $PF_LAT"
done
python3 -c "
import statistics, sys
r = sorted(float(x) for x in sys.argv[1:])
print(f'accepted ratio over {len(r)} round(s): lowest {r[0]:.2f}x, median {statistics.median(r):.2f}x')
" "${RATIOS[@]}"
