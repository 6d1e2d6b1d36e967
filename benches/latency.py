#!/usr/bin/env python3
"""End-to-end latency: send COUNT messages at RATE msg/s over SESSIONS threads
(new connection per message) to HOST:PORT for RCPT, and report, for each
message, the time from the server's 250 to the file appearing in MAILDIR/new,
as p50/p99/max in milliseconds.

The arrival time is when inotify reports the name in new/ (a rename or link
into it), read by a separate process that does nothing else, on the same
microsecond clock as the 250: not the file's ctime, which the kernel stamps
from a clock that ticks every few milliseconds (a "0.3 ms" from it is noise).

usage: latency.py PORT RCPT MAILDIR_NEW RATE COUNT [SESSIONS]
"""
import ctypes, os, smtplib, struct, subprocess, sys, threading, time

if len(sys.argv) > 1 and sys.argv[1] == '--watch':
    # The watcher: print "<time> <name>" for every name that appears in the
    # directory until stdin closes.
    libc = ctypes.CDLL(None, use_errno=True)
    IN_CREATE, IN_MOVED_TO = 0x100, 0x80
    fd = libc.inotify_init()
    if fd < 0 or libc.inotify_add_watch(fd, sys.argv[2].encode(), IN_CREATE | IN_MOVED_TO) < 0:
        sys.exit('inotify: errno %d' % ctypes.get_errno())
    out = sys.stdout
    print('ready', flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        buf = os.read(fd, 65536)
        now = time.time()
        i = 0
        while i + 16 <= len(buf):
            _, _, _, n = struct.unpack_from('iIII', buf, i)
            name = buf[i + 16:i + 16 + n].rstrip(b'\0').decode('latin-1')
            out.write('%.6f %s\n' % (now, name))
            i += 16 + n
        out.flush()

port, rcpt, newdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rate, count = float(sys.argv[4]), int(sys.argv[5])
sessions = int(sys.argv[6]) if len(sys.argv) > 6 else 10
tag = 'lat%d' % os.getpid()
acked = {}
lock = threading.Lock()
body = 'x' * 4000

def worker(k):
    start = time.time()
    for i in range(k, count, sessions):
        # Pace: message i leaves at start + i / rate.
        due = start + i / rate
        now = time.time()
        if due > now:
            time.sleep(due - now)
        mid = '<%s.%d@bench>' % (tag, i)
        msg = 'Message-ID: %s\r\nSubject: latency %d\r\n\r\n%s\r\n' % (mid, i, body)
        s = smtplib.SMTP('127.0.0.1', port)
        s.sendmail('bench@source.test', [rcpt], msg)
        t = time.time()
        s.quit()
        with lock:
            acked[mid] = t

if not os.path.isdir(newdir):
    sys.exit('%s: no such directory (deliver one message first)' % newdir)
watch = subprocess.Popen([sys.executable, __file__, '--watch', newdir],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert watch.stdout.readline().strip() == 'ready'
arrived = {}
def collect():
    for line in watch.stdout:
        t, name = line.rstrip('\n').split(' ', 1)
        arrived.setdefault(name, float(t))
collector = threading.Thread(target=collect, daemon=True)
collector.start()

threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
t0 = time.time()
for t in threads: t.start()
for t in threads: t.join()
sent_for = time.time() - t0

lat = []
deadline = time.time() + 120
names = {}
while time.time() < deadline:
    for name in list(arrived):
        if name in names:
            continue
        p = os.path.join(newdir, name)
        try:
            with open(p, 'rb') as f:
                head = f.read(2048).decode('latin-1')
        except OSError:
            continue
        for line in head.splitlines():
            if line.lower().startswith('message-id:'):
                names[name] = line.split(':', 1)[1].strip()
                break
    seen = {mid: arrived[name] for name, mid in names.items()}
    if all(m in seen for m in acked):
        lat = sorted(max(0.0, seen[m] - acked[m]) * 1000 for m in acked)
        break
    time.sleep(0.2)
watch.stdin.close()
watch.wait()
if not lat:
    print('not all delivered within 120 s')
    sys.exit(1)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print('%d messages at %.0f msg/s offered (%.0f achieved): p50 %.1f ms, p99 %.1f ms, max %.1f ms'
      % (len(lat), rate, len(lat) / sent_for, p(0.50), p(0.99), lat[-1]))
