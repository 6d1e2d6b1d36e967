#!/usr/bin/env python3
"""End-to-end latency: send COUNT messages at RATE msg/s over SESSIONS threads
(new connection per message) to HOST:PORT for RCPT, then read MAILDIR/new and
report, for each message, the time from the server's 250 to the file appearing
in new/ (its ctime), as p50/p99/max in milliseconds.

usage: latency.py PORT RCPT MAILDIR_NEW RATE COUNT [SESSIONS]
"""
import os, smtplib, sys, threading, time

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

threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
t0 = time.time()
for t in threads: t.start()
for t in threads: t.join()
sent_for = time.time() - t0

lat = []
deadline = time.time() + 120
while time.time() < deadline:
    seen = {}
    for name in os.listdir(newdir):
        p = os.path.join(newdir, name)
        try:
            with open(p, 'rb') as f:
                head = f.read(2048).decode('latin-1')
            st = os.stat(p)
        except OSError:
            continue
        for line in head.splitlines():
            if line.lower().startswith('message-id:'):
                seen[line.split(':', 1)[1].strip()] = st.st_ctime_ns / 1e9
    if all(m in seen for m in acked):
        lat = sorted(max(0.0, seen[m] - acked[m]) * 1000 for m in acked)
        break
    time.sleep(0.2)
if not lat:
    print('not all delivered within 120 s')
    sys.exit(1)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print('%d messages at %.0f msg/s offered (%.0f achieved): p50 %.1f ms, p99 %.1f ms, max %.1f ms'
      % (len(lat), rate, len(lat) / sent_for, p(0.50), p(0.99), lat[-1]))
