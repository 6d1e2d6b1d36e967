#!/usr/bin/env bash
# Load on the 2-core machine: N plain SMTP sessions (after EHLO) and N IMAP
# sessions in IDLE over TLS, held at the same time against one `sx server-email`
# (as root: privilege-separated, chrooted). Reports the PSS of the smtp and imap
# processes per held connection, what --status --json counts, and that a normal
# message is accepted and delivered while all are held. Run as root from the
# repository after `cargo build --release`:   N=2000 benches/load.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-2000}
SX=$PWD/target/release/sx
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
T=$(mktemp -d /tmp/sx-load.XXXXXX)
chmod 755 "$T"
SMTP=$(port)
IMAPS=$(port)
LOADERS=()
cleanup() {
    # Only what this script started, by pid (a pattern could hit others' processes).
    for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$T/sx.pid" ] && kill "$(cat "$T/sx.pid")" 2>/dev/null || true
    sleep 1
    rm -rf "$T"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=load.test 2>/dev/null
{ server_config "$T" mail.a.test "$SMTP" 0 0 "$IMAPS" 0
    cat <<CONF
EMAIL_SMTP_TIMEOUT=900
EMAIL_MAX_CONNECTIONS=$((N + 100))
EMAIL_MAX_CONNECTIONS_PER_IP=$((N + 100))
EMAIL_IMAP_MAX_USER_CONNECTIONS=$((N + 100))
CONF
} > "$T/env.txt"
echo load-password | "$SX" server-email --config "$T/env.txt" --add-account load@a.test >/dev/null
"$SX" server-email --config "$T/env.txt" >/dev/null 2>"$T/sx.log" &
for _ in $(seq 100); do [ -S "$T/control.sock" ] && break; sleep 0.1; done
sleep 1

pss() { local p; p=$(for c in $(pgrep -P "$(cat "$T/sx.pid")"); do grep -q "$1" "/proc/$c/comm" && echo "$c"; done); awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"; }
SMTP0=$(pss smtp); IMAP0=$(pss imap)
START=$(date +%s.%N)
python3 benches/hold-smtp.py "$SMTP" "$N" "$T/smtp.ready" &
LOADERS+=($!)
python3 benches/idle-rss.py "$IMAPS" load@a.test load-password "$N" "$T/imap.ready" &
LOADERS+=($!)
for _ in $(seq 1200); do [ -f "$T/smtp.ready" ] && [ -f "$T/imap.ready" ] && break; sleep 0.1; done
OPENED=$(python3 -c "import time; print(f'{time.time() - $START:.1f}')")
sleep 2
SMTP1=$(pss smtp); IMAP1=$(pss imap)
STATUS=$("$SX" server-email --config "$T/env.txt" --status --json)

# A normal message while everything is held.
python3 - "$SMTP" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.sendmail("x@b.test", ["load@a.test"], b"Subject: under load\r\n\r\nhello\r\n")
s.quit()
PY
# (the IDLE sessions see it arrive and move it from new/ to cur/)
count() { ls "$T/mail/a.test/load/new" "$T/mail/a.test/load/cur" 2>/dev/null | grep -c '^[0-9]' || true; }
for _ in $(seq 100); do [ "$(count)" -ge 1 ] && break; sleep 0.1; done
DELIVERED=$(count)
[ "$DELIVERED" -ge 1 ] || { echo "not delivered; server log:" >&2; tail -n 20 "$T/sx.log" >&2; }

python3 - "$N" "$(cat "$T/smtp.ready")" "$(cat "$T/imap.ready")" "$SMTP0" "$SMTP1" "$IMAP0" "$IMAP1" "$OPENED" "$DELIVERED" "$STATUS" <<'PY'
import json, sys
n, hs, hi, s0, s1, i0, i1, opened, delivered, status = sys.argv[1:]
st = json.loads(status)
print(f"held: {hs} SMTP + {hi} IMAP IDLE (asked {n} each), opened in {opened} s")
print(f"--status: smtp {st['connections']['smtp']}, imaps {st['connections']['imaps']}")
print(f"smtp process PSS {int(s0)} -> {int(s1)} kB: {(int(s1) - int(s0)) / int(hs):.1f} kB per SMTP session")
print(f"imap process PSS {int(i0)} -> {int(i1)} kB: {(int(i1) - int(i0)) / int(hi):.1f} kB per IMAP IDLE session (TLS)")
print(f"message sent while loaded: delivered={delivered}")
PY
