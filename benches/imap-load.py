#!/usr/bin/env python3
"""IMAP load: WORKERS processes, each one client, for SECONDS.

usage: imap-load.py PORT USER PASSWORD MODE WORKERS SECONDS
MODE login:   each round is LOGIN SELECT FETCH STORE SEARCH APPEND LOGOUT on a
              new TLS connection (7 operations).
MODE session: one TLS connection and LOGIN per worker, then rounds of
              SELECT FETCH STORE SEARCH APPEND (5 operations).
Prints: operations per second over all workers.
"""
import multiprocessing, random, socket, ssl, sys, time

PORT, USER, PW, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
WORKERS, SECONDS = int(sys.argv[5]), float(sys.argv[6])
MSG = b"From: load@b.test\r\nTo: bench@a.test\r\nSubject: appended by load\r\n\r\nhello\r\n"


class Client:
    def __init__(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT)))
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + text + b"\r\n")
        else:
            # LITERAL+ where offered (both servers do): one write, no round trip.
            self.s.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return
            if line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1:-3])
                self.f.read(n)

    def close(self):
        self.s.close()


def mix(c, exists):
    seq = random.randint(1, exists - 10)
    c.cmd(b"FETCH %d:%d (FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])" % (seq, seq + 9))
    c.cmd(b"STORE %d %sFLAGS (\\Seen)" % (random.randint(1, exists), random.choice([b"+", b"-"])))
    c.cmd(b"UID SEARCH FROM sender%d" % random.randint(0, 6))
    c.cmd(b"APPEND Sent", MSG)


def worker(q):
    ops = 0
    try:
        ops = run()
    except Exception as e:  # a failing server must not hang the run
        print(f"worker: {e!r}", file=sys.stderr)
        ops = -10**9
    q.put(ops)


def run():
    random.seed()
    ops = 0
    end = time.time() + SECONDS
    login = b'LOGIN "%s" "%s"' % (USER.encode(), PW.encode())
    if MODE == "login":
        while time.time() < end:
            c = Client()
            c.cmd(login)
            c.cmd(b"SELECT INBOX")
            mix(c, 1000)
            c.cmd(b"LOGOUT")
            c.close()
            ops += 7
    else:
        c = Client()
        c.cmd(login)
        while time.time() < end:
            c.cmd(b"SELECT INBOX")
            mix(c, 1000)
            ops += 5
        c.cmd(b"LOGOUT")
    return ops


if __name__ == "__main__":
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(q,)) for _ in range(WORKERS)]
    t0 = time.time()
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    if total < 0:
        sys.exit("a worker failed")
    print(f"{total / (time.time() - t0):.0f}")
