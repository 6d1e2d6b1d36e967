#!/usr/bin/env bash
# What the seccomp filters cost: the same server with EMAIL_SECCOMP=kill and =off,
# K plain SMTP clients on port 25 each sending M messages of 2 KiB to a local
# account, timed until every message is in the Maildir. Alternates the modes
# ROUNDS times. Needs root (privilege separation as deployed) and a release build.
#   cargo build --release && K=4 M=250 ROUNDS=3 benches/seccomp-cost.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
K=${K:-4}
M=${M:-250}
ROUNDS=${ROUNDS:-3}
SX=$PWD/target/release/sx
T=$(mktemp -d /tmp/sx-seccomp-bench.XXXXXX)
chmod 755 "$T"
cleanup() {
    [ -f "$T/sx.pid" ] && kill "$(cat "$T/sx.pid")" 2>/dev/null || true
    sleep 1
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout key.pem -out cert.pem 2>/dev/null

cat > send.py <<'PY'
import smtplib, sys, threading
port, k, m = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = ('Subject: bench\r\n\r\n' + 'x' * 76 + '\r\n') * 26
def run():
    s = smtplib.SMTP('127.0.0.1', port)
    for _ in range(m):
        s.sendmail('a@b.test', ['bench@a.test'], body)
    s.quit()
ts = [threading.Thread(target=run) for _ in range(k)]
[t.start() for t in ts]; [t.join() for t in ts]
PY

run_mode() {
    local mode=$1 smtp
    smtp=$(port)
    rm -rf data mail queue
    { server_config "$T" localhost "$smtp" 0 0 0 0; echo "EMAIL_SECCOMP=$mode"; } > env.txt
    echo bench-password | "$SX" server-email --config env.txt --add-account bench@a.test >/dev/null 2>&1 || true
    "$SX" server-email --config env.txt --daemon 2>/dev/null
    sleep 1
    local start end n total=$((K * M))
    start=$(date +%s.%N)
    python3 send.py "$smtp" "$K" "$M"
    while :; do
        n=$(ls mail/a.test/bench/new 2>/dev/null | wc -l)
        [ "$n" -ge "$total" ] && break
        sleep 0.02
    done
    end=$(date +%s.%N)
    kill "$(cat sx.pid)"
    while [ -f sx.pid ]; do sleep 0.1; done
    rm -f accounts
    python3 -c "print('seccomp=%-4s %d messages in %.2f s: %.0f msg/s' % ('$mode', $total, $end - $start, $total / ($end - $start)))"
}

for _ in $(seq "$ROUNDS"); do
    run_mode kill
    run_mode off
done
