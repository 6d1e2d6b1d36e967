# Two sessions on one mailbox (raw IMAP over TLS): EXPUNGE from one reaches the
# other only when allowed (RFC 3501 7.4.1), flag changes are pushed, and IDLE
# shows EXISTS within a second of an SMTP delivery.
import socket, ssl, smtplib, sys, time

imaps, imap, smtp_port, cafile, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)

class Conn:
    def __init__(self, name):
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(imaps))))
        self.f = self.s.makefile("rb")
        self.n = 0
        self.name = name
        check(self.line().startswith(b"* OK"), "greeting")
    def line(self):
        l = self.f.readline()
        check(l, f"{self.name}: connection closed")
        return l
    def cmd(self, text):
        self.n += 1
        tag = f"{self.name}{self.n}".encode()
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                check(l.startswith(tag + b" OK"), f"{self.name} {text}: {l}")
                return out
            out.append(l)

def deliver(subject):
    with smtplib.SMTP("127.0.0.1", int(smtp_port)) as s:
        s.sendmail("bob@b.test", [user], f"From: bob@b.test\r\nSubject: {subject}\r\n\r\nbody\r\n")

for i in range(3):
    deliver(f"m{i}")
a, b = Conn("a"), Conn("b")
a.cmd(f'LOGIN "{user}" "{pw}"')
b.cmd(f'LOGIN "{user}" "{pw}"')
for _ in range(50):
    if b"MESSAGES 3" in b"".join(a.cmd("STATUS INBOX (MESSAGES)")):
        break
    time.sleep(0.1)
check(b"* 3 EXISTS\r\n" in a.cmd("SELECT INBOX"), "a sees 3")
check(b"* 3 EXISTS\r\n" in b.cmd("SELECT INBOX"), "b sees 3")

a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
check(a.cmd("EXPUNGE") == [b"* 1 EXPUNGE\r\n"], "a expunges 1")
# b must not be told during FETCH, STORE or SEARCH.
for text in ("FETCH 1:* (FLAGS)", "SEARCH ALL", "STORE 3 +FLAGS (\\Seen)"):
    resp = b.cmd(text)
    check(not any(b"EXPUNGE" in l for l in resp), f"no EXPUNGE during {text}: {resp}")
resp = b.cmd("SEARCH ALL")
check(b"* SEARCH 2 3\r\n" in resp, f"numbering unchanged before NOOP: {resp}")
resp = b.cmd("NOOP")
check(b"* 1 EXPUNGE\r\n" in resp, f"EXPUNGE at NOOP: {resp}")
resp = b.cmd("SEARCH ALL")
check(b"* SEARCH 1 2\r\n" in resp, f"renumbered after NOOP: {resp}")
# a hears about b's \Seen, b about a's \Flagged.
resp = a.cmd("NOOP")
check(any(l.startswith(b"* 2 FETCH") and b"\\Seen" in l for l in resp), f"a told of Seen: {resp}")
a.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
resp = b.cmd("NOOP")
check(any(l.startswith(b"* 1 FETCH") and b"\\Flagged" in l for l in resp), f"b told of Flagged: {resp}")

# IDLE: a delivery shows as EXISTS within a second.
b.n += 1
tag = f"b{b.n}".encode()
b.s.sendall(tag + b" IDLE\r\n")
check(b.line().startswith(b"+"), "IDLE continuation")
t0 = time.time()
deliver("pushed")
t1 = time.time()
l = b.line()
t2 = time.time()
check(l == b"* 3 EXISTS\r\n", f"EXISTS pushed: {l}")
check(t2 - t1 < 1.0, f"pushed {t2 - t1:.3f}s after SMTP said 250")
check(b.line() == b"* 1 RECENT\r\n", "RECENT with it")
# Another session's APPEND reaches the idler too.
msg = b"Subject: appended\r\n\r\nx\r\n"
a.n += 1
a.s.sendall(f"a{a.n} APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
while not a.line().startswith(f"a{a.n} OK".encode()):
    pass
check(b.line() == b"* 4 EXISTS\r\n", "EXISTS after APPEND by another session")
b.line()
b.s.sendall(b"DONE\r\n")
check(b.line().startswith(tag + b" OK"), "IDLE ends with DONE")
a.cmd("LOGOUT")
b.cmd("LOGOUT")
print(f"OK {t2 - t1:.3f}")
