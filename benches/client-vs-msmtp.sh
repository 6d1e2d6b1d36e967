#!/usr/bin/env bash
# `sx email` against msmtp (Debian msmtp), both sending through the same
# `sx server-email` submission port (STARTTLS, certificate verified against a
# test CA, AUTH PLAIN), one process per message as cron and scripts use them:
# N messages of 4 KiB, sequentially. Reports messages/s, mean and p95 time per
# send, and the peak RSS of one client process. Then the offline queue: N
# `sx email --queue` and one `--flush`. Run as root from the repository after
# `cargo build --release`; installs msmtp if missing.
#   N=300 benches/client-vs-msmtp.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-300}
SX=$PWD/target/release/sx
command -v msmtp >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y msmtp >/dev/null
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null
T=$(mktemp -d /tmp/sx-client-bench.XXXXXX)
chmod 755 "$T"
id _sxmail >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin _sxmail
SUB=$(port)
cleanup() {
    [ -f "$T/sx.pid" ] && kill "$(cat "$T/sx.pid")" 2>/dev/null || true
    sleep 1
    rm -rf "$T"
}
trap cleanup EXIT

cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out leaf.csr 2>/dev/null
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out cert.pem -extfile leaf.ext 2>/dev/null
{ server_config "$T" localhost 0 "$SUB" 0 0 0
    cat <<CONF
EMAIL_AUTH_CACHE_TTL=600
CONF
} > env.txt
echo bench-password | "$SX" server-email --config env.txt --add-account bench@a.test >/dev/null
"$SX" server-email --config env.txt --daemon
for _ in $(seq 50); do [ -S control.sock ] && break; sleep 0.1; done
sleep 1

cat > client-env.txt <<CONF
SMTP_HOST=localhost
SMTP_PORT=$SUB
SMTP_TLS=starttls
SMTP_USER=bench@a.test
SMTP_PASS=bench-password
SMTP_FROM=bench@a.test
SMTP_CA_FILE=$T/ca.pem
SMTP_QUEUE_DIR=$T/outbox
SMTP_LOG=none
CONF
cat > msmtprc <<CONF
account bench
host localhost
port $SUB
tls on
tls_starttls on
tls_trust_file $T/ca.pem
auth plain
user bench@a.test
password bench-password
from bench@a.test
logfile /dev/null
account default : bench
CONF
chmod 600 msmtprc
python3 - > body.txt <<'PY'
for i in range(64):  # 64 lines of 64 bytes: 4 KiB
    print("line %02d of a report a cron job mails out every night......." % i)
PY
{ printf 'From: bench@a.test\nTo: bench@a.test\nSubject: bench\n\n'; cat body.txt; } > message.txt

python3 - "$SX" "$T" "$N" <<'PY'
import os, resource, subprocess, sys, time
sx, t, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(os.environ, HOME=t)
inbox = f"{t}/mail/a.test/bench/new"

def count():
    return len(os.listdir(inbox)) if os.path.isdir(inbox) else 0

def bench(name, argv, stdin_file):
    before = count()
    times = []
    start = time.perf_counter()
    for _ in range(n):
        with open(stdin_file, "rb") as f:
            t0 = time.perf_counter()
            subprocess.run(argv, stdin=f, stdout=subprocess.DEVNULL, env=env, check=True)
            times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    # Peak RSS of one send, by GNU time (a fork of Python would carry Python's
    # own high-water mark into the child's rusage).
    with open(stdin_file, "rb") as f:
        r = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdin=f, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    peak = int(r.stderr.decode().strip().splitlines()[-1])
    deadline = time.time() + 30
    while count() < before + n + 1 and time.time() < deadline:
        time.sleep(0.05)
    assert count() >= before + n + 1, f"{name}: only {count() - before} of {n + 1} arrived"
    times.sort()
    print(f"{name:10s} {n / wall:7.1f} msg/s  mean {1000 * sum(times) / n:6.1f} ms  "
          f"p95 {1000 * times[int(len(times) * 0.95)]:6.1f} ms  peak RSS {peak / 1024:5.1f} MiB")

cfg = f"{t}/client-env.txt"
bench("sx email", [sx, "email", "--config", cfg, "--to", "bench@a.test", "--subject", "bench"], f"{t}/body.txt")
bench("msmtp", ["msmtp", "-C", f"{t}/msmtprc", "bench@a.test"], f"{t}/message.txt")
bench("sx email", [sx, "email", "--config", cfg, "--to", "bench@a.test", "--subject", "bench"], f"{t}/body.txt")
bench("msmtp", ["msmtp", "-C", f"{t}/msmtprc", "bench@a.test"], f"{t}/message.txt")

# Offline queue: N stores, then one flush over one process.
t0 = time.perf_counter()
for _ in range(n):
    with open(f"{t}/body.txt", "rb") as f:
        subprocess.run([sx, "email", "--config", cfg, "--queue", "--to", "bench@a.test",
                        "--subject", "queued"], stdin=f, check=True, env=env)
q = time.perf_counter() - t0
before = count()
t0 = time.perf_counter()
subprocess.run([sx, "email", "--config", cfg, "--flush"], check=True, env=env)
fl = time.perf_counter() - t0
assert count() >= before + n
print(f"--queue    {n / q:7.1f} msg/s (one process each, fsync per message)")
print(f"--flush    {n / fl:7.1f} msg/s (one process, a connection per message)")
PY
