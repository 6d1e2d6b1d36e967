# Limits: long command lines, literals over APPENDLIMIT, bad commands,
# sessions per user, failed logins slowing down, AUTHENTICATE PLAIN.
import base64, socket, ssl, sys, time

imaps, imap, smtp_port, cafile, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)

class Conn:
    def __init__(self):
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(imaps))))
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()
    def send(self, b):
        self.s.sendall(b)
    def until(self, tag):
        out = []
        while True:
            l = self.f.readline()
            if not l:
                return out + [b"<closed>"]
            out.append(l)
            if l.startswith(tag + b" "):
                return out

c = Conn()
check(b"APPENDLIMIT=1000000" in c.greeting, f"APPENDLIMIT in greeting {c.greeting}")
# A 100 KB command line gets BAD and the session goes on.
c.send(b"a1 NOOP " + b"x" * 100000 + b"\r\n")
r = c.until(b"a1")
check(r[-1].startswith(b"a1 BAD"), f"long line {r[-1]}")
# AUTHENTICATE PLAIN with a continuation.
c.send(b"a2 AUTHENTICATE PLAIN\r\n")
check(c.f.readline().startswith(b"+"), "AUTHENTICATE continuation")
c.send(base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()) + b"\r\n")
r = c.until(b"a2")
check(r[-1].startswith(b"a2 OK"), f"AUTHENTICATE PLAIN {r}")
# A literal over APPENDLIMIT is refused before it is sent.
c.send(b"a3 APPEND INBOX {2000000}\r\n")
r = c.until(b"a3")
check(r[-1].startswith(b"a3 NO [TOOBIG]"), f"TOOBIG {r}")
c.send(b"a4 NOOP\r\n")
check(c.until(b"a4")[-1].startswith(b"a4 OK"), "session survives TOOBIG")
# Garbage gets BAD; the twentieth in a row ends the session with a BYE, and
# not one sooner: each is sent after the previous answer, so a reset or an
# early close shows as what it is.
for i in range(20):
    c.send(b"g%d FROB\r\n" % i)
    r = c.until(b"g%d" % i)
    check(r[-1].startswith(b"g%d BAD" % i), f"bad command {i}: {r}")
rest = c.f.read()
check(rest == b"* BYE Too many bad commands\r\n", f"after twenty bad commands: {rest!r}")

# Sessions per user: the limit is 3 in this test's config.
held = []
for i in range(3):
    x = Conn()
    x.send(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), pw.encode()))
    check(x.until(b"l")[-1].startswith(b"l OK"), f"login {i}")
    held.append(x)
x = Conn()
x.send(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), pw.encode()))
r = x.until(b"l")
check(r[-1].startswith(b"l NO [LIMIT]"), f"4th session refused {r}")
for h in held:
    h.s.close()

# Failed logins: after three, each further attempt from the address waits.
x = Conn()
for i in range(3):
    x.send(b'f LOGIN "%s" "wrong"\r\n' % user.encode())
    check(b"AUTHENTICATIONFAILED" in x.until(b"f")[-1], "failure")
t = time.time()
x.send(b'f LOGIN "%s" "wrong"\r\n' % user.encode())
x.until(b"f")
check(time.time() - t >= 0.9, f"4th failure delayed {time.time() - t:.2f}s")
print("OK")
