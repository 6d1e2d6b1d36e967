#!/usr/bin/env python3
"""Hostile clients against a running server, beside a well-behaved one.

usage: hostile.py good  SUB_PORT IMAPS_PORT CAFILE START SECONDS OUT.json
       hostile.py attack SMTP_PORT SUB_PORT IMAP_PORT IMAPS_PORT CAFILE START WINDOW CYCLES

good: bob@a.test (pw-bob-1) from 127.0.0.1, in a loop from START (epoch seconds)
for SECONDS: submit one message over 587 (STARTTLS, AUTH), then log in over 993
and fetch the newest message. Each round's start, end and steps go to OUT.json
with the number of messages sent.

attack: from START, CYCLES times WINDOW seconds quiet then WINDOW seconds of
the issue 14 attacks, replayed in a loop from 127.0.0.2-127.0.0.250 (so
address-based limits never meet the good client), paced so that together they
use about one core, each pausing 0.5 s between rounds: LIST patterns that backtracked, pre-login literals announced
at 50 MB, pre-login literal floods, ~900-recipient transactions, BDAT with bare
CR/LF, unauthenticated mail in a local sender's name, forged From: by eve,
password guessing on bob from many addresses, CREATE floods and 5 MB names,
1 MB header lines, FETCH of eve's 20 MB message, and connection floods.
"""
import json, random, socket, ssl, sys, threading, time

A_PW = 'pw-eve-12'


def ctx_for(cafile):
    c = ssl.create_default_context(cafile=cafile)
    c.check_hostname = False
    return c


def conn(port, src, timeout=10):
    return socket.create_connection(('127.0.0.1', port), timeout=timeout, source_address=(src, 0))


def lines_until(f, tag):
    while True:
        l = f.readline()
        if not l or l.startswith(tag + b' '):
            return l


def good(sub, imaps, cafile, start, seconds, out):
    """Rounds from `start` (epoch seconds) for `seconds`; each successful
    round's start, end and step times go to OUT.json, failed ones with their
    time and reason."""
    import imaplib, smtplib
    ctx = ctx_for(cafile)
    rounds, sent, errors = [], 0, []
    time.sleep(max(0, start - time.time()))
    end = start + seconds
    n = 0
    while time.time() < end:
        n += 1
        t = time.time()
        try:
            marks = [time.time()]
            s = smtplib.SMTP('127.0.0.1', sub, timeout=30)
            marks.append(time.time())
            s.starttls(context=ctx)
            marks.append(time.time())
            s.login('bob@a.test', 'pw-bob-1')
            marks.append(time.time())
            s.sendmail('bob@a.test', ['bob@a.test'],
                       'From: bob@a.test\r\nSubject: good %d\r\n\r\nhello\r\n' % n)
            marks.append(time.time())
            s.quit()
            marks.append(time.time())
            sent += 1
            r = {k: b - a for k, a, b in zip(['greet', 'starttls', 'auth', 'send', 'quit'], marks, marks[1:])}
            r['smtp'] = time.time() - t
            t1 = time.time()
            m = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx, timeout=30)
            t2 = time.time()
            m.login('bob@a.test', 'pw-bob-1')
            t3 = time.time()
            r['imap_connect'], r['imap_login'] = t2 - t1, t3 - t2
            typ, data = m.select('INBOX', readonly=True)
            count = int(data[0])
            if count:
                m.fetch(str(count), '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
            m.logout()
            r['start'], r['end'] = t, time.time()
            r['total'] = r['end'] - t
            rounds.append(r)
            # Keep the mailbox small, so that idle and attacked rounds work on
            # the same size (not timed; the server's log counts deliveries).
            if count > 20:
                m = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx, timeout=30)
                m.login('bob@a.test', 'pw-bob-1')
                m.select('INBOX')
                m.store('1:%d' % (count - 10), '+FLAGS.SILENT', '(\\Deleted)')
                m.expunge()
                m.logout()
        except Exception as e:  # a failed round counts, with its reason
            errors.append({'start': t, 'error': repr(e)[:200]})
        time.sleep(0.05)
    json.dump({'rounds': rounds, 'sent': sent, 'errors': errors}, open(out, 'w'))


# --- the attacks ---------------------------------------------------------------

def src():
    return '127.0.0.%d' % random.randint(2, 250)


def imap_login(port, ctx, user, pw):
    s = ctx.wrap_socket(conn(port, src()))
    f = s.makefile('rb')
    f.readline()
    s.sendall(b'a LOGIN %s %s\r\n' % (user.encode(), pw.encode()))
    return s, f, lines_until(f, b'a')


def list_patterns(ports, ctx):
    s, f, r = imap_login(ports['imaps'], ctx, 'eve@a.test', A_PW)
    s.sendall(b'b LIST "" {200000+}\r\n' + b'*' * 200000 + b'\r\n')
    lines_until(f, b'b')
    s.sendall(b'c LIST "" "' + b'*' * 300 + b'x"\r\n')
    lines_until(f, b'c')
    s.sendall(b'd LIST "" {100000+}\r\n' + b'*a' * 50000 + b'\r\n')
    lines_until(f, b'd')
    s.close()


def prelogin_literal(ports, ctx):
    socks = []
    for _ in range(20):
        c = conn(ports['imap'], src())
        c.recv(1000)
        c.sendall(b'a LOGIN {52428800+}\r\n')
        socks.append(c)
    for c in socks:
        try:
            c.recv(1000)
        except OSError:
            pass
        c.close()


def prelogin_flood(ports, ctx):
    c = conn(ports['imap'], src())
    c.recv(1000)
    try:
        c.sendall(b'a SEARCH' + b' SUBJECT {1+}\r\nx' * 8000 + b'\r\n')
        c.recv(1000)
    except OSError:
        pass
    c.close()


def smtp_session(port, payload):
    c = conn(port, src(), timeout=30)
    c.recv(1000)
    try:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()


def many_rcpts(ports, ctx):
    p = b'EHLO x.test\r\nMAIL FROM:<x@remote.test>\r\n'
    p += b''.join(b'RCPT TO:<eve+%d@a.test>\r\n' % i for i in range(900))
    p += b'DATA\r\nSubject: many\r\n\r\nhi\r\n.\r\nQUIT\r\n'
    smtp_session(ports['smtp'], p)


def bdat_smuggling(ports, ctx):
    body = b'Subject: x\r\n\r\na\r.\rMAIL FROM:<x@y>\r\n'
    smtp_session(ports['smtp'], b'EHLO x.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<eve@a.test>\r\nBDAT %d LAST\r\n' % len(body) + body + b'QUIT\r\n')


def local_sender(ports, ctx):
    smtp_session(ports['smtp'], b'EHLO x.test\r\nMAIL FROM:<bob@a.test>\r\nRCPT TO:<eve@a.test>\r\nDATA\r\nFrom: bob@a.test\r\nSubject: ceo\r\n\r\npay\r\n.\r\nQUIT\r\n')


def forged_from(ports, ctx):
    import smtplib
    s = smtplib.SMTP('127.0.0.1', ports['sub'], timeout=30, source_address=(src(), 0))
    s.starttls(context=ctx)
    s.login('eve@a.test', A_PW)
    try:
        s.sendmail('eve@a.test', ['eve@a.test'], 'From: bob@a.test\r\nSubject: forged\r\n\r\nx\r\n')
    except smtplib.SMTPException:
        pass
    s.quit()


def guessing(ports, ctx):
    for _ in range(3):
        try:
            s, f, r = imap_login(ports['imaps'], ctx, 'bob@a.test', 'guess%d' % random.randint(0, 1 << 30))
            s.close()
        except OSError:
            pass


def folders(ports, ctx):
    s, f, r = imap_login(ports['imaps'], ctx, 'eve@a.test', A_PW)
    for i in range(50):
        s.sendall(b'c%d CREATE f%d.%d\r\n' % (i, random.randint(0, 1 << 30), i))
        lines_until(f, b'c%d' % i)
    s.sendall(b'g CREATE {5000000+}\r\n' + b'n' * 5000000 + b'\r\n')
    lines_until(f, b'g')
    s.sendall(b'h LIST "" "*"\r\n')
    lines_until(f, b'h')
    s.close()


def header_line(ports, ctx):
    smtp_session(ports['smtp'], b'EHLO x.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<eve@a.test>\r\nDATA\r\nX-Long: ' + b'h' * (1 << 20) + b'\r\n\r\nbody\r\n.\r\nQUIT\r\n')


def big_fetch(ports, ctx):
    s, f, r = imap_login(ports['imaps'], ctx, 'eve@a.test', A_PW)
    s.sendall(b'a SELECT INBOX\r\n')
    lines_until(f, b'a')
    s.sendall(b'b FETCH 1:* (BODY.PEEK[])\r\n')
    # Read slowly: the server must not buffer what we do not read.
    t = time.time()
    while time.time() - t < 5:
        if not s.recv(65536):
            break
        time.sleep(0.01)
    s.close()


def connection_flood(ports, ctx):
    a = src()
    socks = []
    for _ in range(60):
        try:
            socks.append(socket.create_connection(('127.0.0.1', ports['smtp']), timeout=5, source_address=(a, 0)))
        except OSError:
            pass
    time.sleep(2)
    for c in socks:
        c.close()


ATTACKS = [list_patterns, prelogin_literal, prelogin_flood, many_rcpts, bdat_smuggling,
           local_sender, forged_from, guessing, folders, header_line, big_fetch, connection_flood]


def chosen():
    # HOSTILE_ONLY / HOSTILE_SKIP (comma-separated attack names): to see what
    # one attack costs on its own.
    import os
    only = [a for a in os.environ.get('HOSTILE_ONLY', '').split(',') if a]
    skip = [a for a in os.environ.get('HOSTILE_SKIP', '').split(',') if a]
    return [a for a in ATTACKS if (not only or a.__name__ in only) and a.__name__ not in skip]


def attack(ports, cafile, start, window, cycles):
    """`cycles` times: `window` seconds quiet, then `window` seconds of
    attacks (each attack in its own thread, pausing 0.5 s between rounds; an
    attack round begun in a window finishes after it). Prints the counts, the
    windows and the span of every attack round, as JSON."""
    ctx = ctx_for(cafile)
    attacks = chosen()
    windows = [(start + (2 * k + 1) * window, start + (2 * k + 2) * window) for k in range(cycles)]
    counts = {a.__name__: 0 for a in attacks}
    spans = []
    lock = threading.Lock()

    def loop(fn):
        for on, off in windows:
            time.sleep(max(0, on - time.time()))
            while time.time() < off:
                t = time.time()
                try:
                    fn(ports, ctx)
                except Exception:
                    pass
                with lock:
                    counts[fn.__name__] += 1
                    spans.append((t, time.time()))
                time.sleep(0.5)

    ts = [threading.Thread(target=loop, args=(a,)) for a in attacks]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(json.dumps({'counts': counts, 'windows': windows, 'spans': spans}))


if __name__ == '__main__':
    if sys.argv[1] == 'good':
        good(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6]), sys.argv[7])
    else:
        ports = dict(zip(['smtp', 'sub', 'imap', 'imaps'], map(int, sys.argv[2:6])))
        attack(ports, sys.argv[6], float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]))
