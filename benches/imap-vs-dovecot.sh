#!/usr/bin/env bash
# IMAP operations/s of `sx server-email` and of Dovecot (Debian dovecot-imapd)
# on the same machine, same Maildir contents (1,000 messages), same password
# hash (argon2id), 20 concurrent clients (benches/imap_load.rs: Rust, one
# async task per client on one thread, so the client side is not what limits
# the run; its CPU time is printed beside each figure), in two modes: a login
# per round and long-lived sessions. Then the memory of 1,000 idling (IDLE)
# TLS sessions for both. Run as root from the repository; needs dovecot-imapd
# (apt-get install dovecot-imapd).
#   WORKERS=20 BENCH_SECONDS=20 IDLERS=1000 benches/imap-vs-dovecot.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
WORKERS=${WORKERS:-20}
# Not SECONDS: bash keeps its own SECONDS (seconds since the shell started).
SECONDS_RUN=${BENCH_SECONDS:-20}
IDLERS=${IDLERS:-1000}
cargo build --release -q
cargo build --release --benches -q
SX=$PWD/target/release/sx
LOAD=$(ls -t target/release/deps/imap_load-* | grep -v '\.d$' | head -1)
T=$(mktemp -d /tmp/sx-imap-bench.XXXXXX)
chmod 755 "$T"
MAILUSER=_sxmail
id "$MAILUSER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$MAILUSER"
SXPORT=$(port)
DVPORT=$(port)
cleanup() {
    [ -f "$T/sx.pid" ] && kill "$(cat "$T/sx.pid")" 2>/dev/null || true
    [ -f "$T/dv/run/master.pid" ] && kill "$(cat "$T/dv/run/master.pid")" 2>/dev/null || true
    # Only what this script started, by pid (a pattern could hit others' processes).
    [ -f "$T/loader.pid" ] && kill "$(cat "$T/loader.pid")" 2>/dev/null || true
    sleep 1
    rm -rf "$T"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test 2>/dev/null
{ server_config "$T" mail.a.test 0 0 0 "$SXPORT" 0
    cat <<CONF
EMAIL_MAX_CONNECTIONS=5000
EMAIL_MAX_CONNECTIONS_PER_IP=5000
EMAIL_IMAP_MAX_USER_CONNECTIONS=5000
CONF
} > "$T/env.txt"
echo bench-password | "$SX" server-email --config "$T/env.txt" --add-account bench@a.test >/dev/null
HASH=$(grep "^bench@a.test:" "$T/accounts" | cut -d: -f2-)

# The same 1,000 messages in both Maildirs.
SXBOX=$T/mail/a.test/bench
DVBOX=$T/dv/home/bench/Maildir
mkdir -p "$SXBOX"/{cur,new,tmp} "$DVBOX"/{cur,new,tmp} "$DVBOX"/.Sent/{cur,new,tmp}
python3 - "$SXBOX/new" "$DVBOX/new" <<'PY'
import sys
for i in range(1000):
    body = (f"From: Sender {i % 7} <sender{i % 7}@b.test>\r\nTo: bench@a.test\r\nSubject: message {i}\r\n"
            f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@b.test>\r\n\r\n"
            + "a line of text in the body of the message\r\n" * (20 + i % 50)).encode()
    for d in sys.argv[1:]:
        open(f"{d}/1790000000.M{i}P1.bench", "wb").write(body)
PY
chown -R "$MAILUSER:$MAILUSER" "$T/mail" "$T/dv"
# The build and the 2,000 files just written would otherwise still be going
# out to disk during the first server's runs (sx's: it goes first).
sync

rss_kb() { # total PSS (shared pages divided among their users) of the given pids
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done
    echo $t
}

idle_rss() { # port pids-command -> "kB per session"
    local port=$1 pidcmd=$2 before after
    before=$(rss_kb $($pidcmd))
    rm -f "$T/ready"
    python3 benches/idle-rss.py "$port" bench@a.test bench-password "$IDLERS" "$T/ready" &
    local loader=$!
    echo "$loader" > "$T/loader.pid"
    for _ in $(seq 600); do [ -f "$T/ready" ] && break; sleep 0.2; done
    sleep 2
    after=$(rss_kb $($pidcmd))
    kill $loader; wait $loader 2>/dev/null || true
    rm -f "$T/loader.pid"
    python3 -c "print(f'{($after - $before) / $IDLERS:.1f} kB (held $(cat "$T/ready" 2>/dev/null || echo 0) sessions; {$before} kB -> {$after} kB)')"
}

load() { # port mode -> "ops/s(load-generator-CPU)"
    local ops cpu
    ops=$("$LOAD" "$1" bench@a.test bench-password "$2" "$WORKERS" "$SECONDS_RUN" 2>"$T/load.err") || { cat "$T/load.err" >&2; exit 1; }
    cpu=$(sed -n 's/^imap_load: \(.*\) s CPU$/\1/p' "$T/load.err")
    echo "${ops}(${cpu}s)"
}

run_loads() { # port -> prints "login-mode session-mode"
    echo "$(load "$1" login) $(load "$1" session)"
}

# --- scorpiox-email -------------------------------------------------------
"$SX" server-email --config "$T/env.txt" >/dev/null 2>"$T/sx.log" &
for _ in $(seq 100); do [ -S "$T/control.sock" ] && break; sleep 0.1; done
sleep 1
read -r SX_LOGIN SX_SESSION < <(run_loads "$SXPORT")
sx_imap_pid() { for p in $(pgrep -P "$(cat "$T/sx.pid")"); do grep -q imap "/proc/$p/comm" && echo "$p"; done; }
SX_IDLE=$(idle_rss "$SXPORT" sx_imap_pid)
kill "$(cat "$T/sx.pid")"; sleep 1

# --- Dovecot --------------------------------------------------------------
mkdir -p "$T/dv/run" "$T/dv/state"
echo "bench@a.test:{ARGON2ID}$HASH" > "$T/dv/passwd"
cat > "$T/dv/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $T/dv/run
state_dir = $T/dv/state
log_path = $T/dv/log
ssl = required
ssl_cert = <$T/cert.pem
ssl_key = <$T/key.pem
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = $T/dv/passwd
}
userdb {
  driver = static
  args = uid=$MAILUSER gid=$MAILUSER home=$T/dv/home/bench
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
default_process_limit = 5000
default_client_limit = 20000
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $DVPORT
  }
}
protocol imap {
  mail_max_userip_connections = 5000
}
CONF
dv_start() { dovecot -c "$T/dv/dovecot.conf"; for _ in $(seq 50); do [ -f "$T/dv/run/master.pid" ] && break; sleep 0.1; done; sleep 1; }
dv_stop() { kill "$(cat "$T/dv/run/master.pid")"; sleep 2; }
dv_pids() { pgrep -f "dovecot/(imap|imap-login)" ; }
sync
dv_start
read -r DV_LOGIN DV_SESSION < <(run_loads "$DVPORT")
DV_IDLE=$(idle_rss "$DVPORT" dv_pids)
dv_stop
# Dovecot again with its authentication cache on (sx-keyholder caches successes).
sed -i "s/^auth_mechanisms/auth_cache_size = 10M\nauth_cache_ttl = 300 s\nauth_mechanisms/" "$T/dv/dovecot.conf"
dv_start
DV_LOGIN_CACHED=$(load "$DVPORT" login)
dv_stop

ratio() { python3 -c "print(f'{${1%%(*} / ${2%%(*}:.2f}x')"; }
cat <<OUT
IMAP, $WORKERS clients, ${SECONDS_RUN}s per run, 1,000-message INBOX (ops/s, and in
brackets the load generator's CPU seconds for the run)
                      login per round     long-lived sessions
scorpiox-email        $SX_LOGIN               $SX_SESSION
Dovecot $(dovecot --version | cut -d' ' -f1)       $DV_LOGIN               $DV_SESSION
Dovecot + auth cache  $DV_LOGIN_CACHED
ratio                 $(ratio "$SX_LOGIN" "$DV_LOGIN") ($(ratio "$SX_LOGIN" "$DV_LOGIN_CACHED") vs cached)   $(ratio "$SX_SESSION" "$DV_SESSION")
Memory (PSS) per idling session ($IDLERS IDLE sessions over TLS)
scorpiox-email (sx-imap)            $SX_IDLE
Dovecot (imap + imap-login)         $DV_IDLE
OUT
