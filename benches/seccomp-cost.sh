#!/usr/bin/env bash
# What the seccomp filters cost: the same server with EMAIL_SECCOMP=kill and =off,
# smtp-source (Postfix's C load generator, Debian package postfix) with SESSIONS
# parallel sessions sending MESSAGES messages of 2 KiB to a local account on
# port 25, timed until every message is in the Maildir. Alternates the modes
# ROUNDS times. Each run first checks in /proc that the mode took effect: every
# child has a seccomp filter (Seccomp: 2) under kill and none under off.
# A C client that opens a connection per message is far cheaper per message
# than the server, so the figure is the server's (a Python client was not:
# it measured itself). Needs root (privilege separation as deployed) and a
# release build.
#   cargo build --release && SESSIONS=20 MESSAGES=5000 ROUNDS=3 benches/seccomp-cost.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SESSIONS=${SESSIONS:-20}
MESSAGES=${MESSAGES:-5000}
ROUNDS=${ROUNDS:-3}
SX=$PWD/target/release/sx
command -v smtp-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
T=$(mktemp -d /tmp/sx-seccomp-bench.XXXXXX)
chmod 755 "$T"
# Each run gets a fresh journaled ext4 (loop-mounted), as smtp-throughput.sh's
# runs do: on this machine's root file system (ext4 without a journal) a run
# after another pays for every inode the previous one deleted, and the first
# run of the series was twice as fast as the rest whatever the mode.
R=$T/run
cleanup() {
    [ -f "$R/sx.pid" ] && kill "$(cat "$R/sx.pid")" 2>/dev/null || true
    sleep 1
    umount "$R" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout key.pem -out cert.pem 2>/dev/null

# Every child of the daemon has a filter (kill) or none (off), else stop.
check_mode() {
    local mode=$1 parent kid n=0 want=2
    [ "$mode" = off ] && want=0
    parent=$(cat sx.pid)
    for kid in $(pgrep -P "$parent"); do
        local got
        got=$(awk '/^Seccomp:/ {print $2}' "/proc/$kid/status")
        if [ "$got" != "$want" ]; then
            echo "EMAIL_SECCOMP=$mode did not take effect: $(cat "/proc/$kid/comm")[$kid] has Seccomp: $got" >&2
            exit 1
        fi
        n=$((n + 1))
    done
    [ "$n" -ge 5 ] || { echo "only $n children found" >&2; exit 1; }
}

run_mode() {
    local mode=$1 smtp
    smtp=$(port)
    mkdir -p "$R"
    rm -f "$T/fs.img"
    truncate -s 2G "$T/fs.img"
    mkfs.ext4 -q -F "$T/fs.img"
    mount -o loop "$T/fs.img" "$R"
    chmod 755 "$R"
    cp "$T/cert.pem" "$T/key.pem" "$R/"
    cd "$R"
    { server_config "$R" localhost "$smtp" 0 0 0 0; echo "EMAIL_SECCOMP=$mode"; } > env.txt
    echo bench-password | "$SX" server-email --config env.txt --add-account bench@a.test >/dev/null 2>&1 || true
    "$SX" server-email --config env.txt --daemon 2>/dev/null
    # Serving means every child has confined itself.
    until grep -q 'processes serving' data/sx-server-email.log 2>/dev/null; do sleep 0.05; done
    check_mode "$mode"
    local start end n total=$MESSAGES
    sync
    start=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 2048 -f a@b.test -t bench@a.test "127.0.0.1:$smtp"
    while :; do
        n=$(ls mail/a.test/bench/new 2>/dev/null | wc -l)
        [ "$n" -ge "$total" ] && break
        sleep 0.02
    done
    end=$(date +%s.%N)
    kill "$(cat sx.pid)"
    while [ -f sx.pid ]; do sleep 0.1; done
    cd "$T"
    for _ in $(seq 50); do umount "$R" 2>/dev/null && break; sleep 0.1; done
    python3 -c "print('seccomp=%-4s %d messages in %.2f s: %.0f msg/s' % ('$mode', $total, $end - $start, $total / ($end - $start)))"
}

for _ in $(seq "$ROUNDS"); do
    run_mode kill
    run_mode off
done
