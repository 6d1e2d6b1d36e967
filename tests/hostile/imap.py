# Hostile IMAP clients (issue 14 items 1, 2, 3, 9): each prints one word per
# check; the Rust side asserts them and that sx-imap survived with its memory.
import socket, ssl, sys, threading, time

imaps, imap, cafile, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def tls():
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', imaps), timeout=20))
    f = s.makefile('rb')
    f.readline()
    return s, f


def plain():
    s = socket.create_connection(('127.0.0.1', imap), timeout=20)
    f = s.makefile('rb')
    f.readline()
    return s, f


def until(f, tag):
    lines = []
    while True:
        try:
            l = f.readline()
        except OSError:
            l = b''
        if not l:
            return lines + [b'EOF']
        lines.append(l)
        if l.startswith(tag + b' '):
            return lines


def status(lines):
    last = lines[-1]
    return last.split()[1].decode() if last != b'EOF' else 'EOF'


def login():
    s, f = tls()
    s.sendall(b'a LOGIN %s %s\r\n' % (user.encode(), pw.encode()))
    assert status(until(f, b'a')) == 'OK'
    return s, f


out = []
# 1. LIST patterns: 60,000 stars in a literal (200,000 overflowed the stack;
# literals over 64 KiB are only for APPEND now), 30,000 "*a", 300 stars and an x.
s, f = login()
t = time.time()
s.sendall(b'b LIST "" {60000+}\r\n' + b'*' * 60000 + b'\r\n')
out.append('list-stars=%s' % status(until(f, b'b')))
s.sendall(b'b2 LIST "" {60000+}\r\n' + b'*a' * 30000 + b'\r\n')
out.append('list-long=%s' % status(until(f, b'b2')))
s.sendall(b'c LIST "" "' + b'*' * 300 + b'x"\r\n')
out.append('list-spin=%s' % status(until(f, b'c')))
s.sendall(b'd LIST "" "' + b'%*' * 150 + b'"\r\n')
r = until(f, b'd')
out.append('list-all=%s/%d' % (status(r), len(r) - 1))
out.append('list-fast=%s' % (time.time() - t < 3))

# 9. Folders per account are bounded (EMAIL_IMAP_MAX_FOLDERS=10; 4 exist).
made = 0
for i in range(12):
    s.sendall(b'e%d CREATE f%d\r\n' % (i, i))
    r = until(f, b'e%d' % i)
    if status(r) == 'OK':
        made += 1
    else:
        out.append('create-refused=%s' % r[-1].split()[2].decode())
        break
out.append('created=%d' % made)
# A 5 MB mailbox name is refused before it is sent (only APPEND takes big literals).
s.sendall(b'g0 CREATE {60000+}\r\n' + b'n' * 60000 + b'\r\n')
out.append('long-name=%s' % status(until(f, b'g0')))
s.sendall(b'g CREATE {5000000}\r\n')
out.append('huge-name=%s' % status(until(f, b'g')))
s.close()

# 2. Before login a literal is small: 20 connections announcing 50 MB each.
conns = []
for i in range(20):
    c, cf = plain()
    c.sendall(b'a LOGIN {52428800+}\r\n')
    conns.append((c, cf))
words = set()
for c, cf in conns:
    r = until(cf, b'a')
    r.append(cf.readline())
    words.add(status(r[:-1]) + ('+bye' if any(l.startswith(b'* BYE') for l in r) else ''))
    c.close()
out.append('prelogin-literal=%s' % ','.join(sorted(words)))
c, cf = plain()
c.sendall(b'a LOGIN {52428800}\r\n')
r = until(cf, b'a')
out.append('prelogin-sync=%s' % status(r))
c.close()

# 3. Before login, thousands of small literals: refused at once, and another
# client's login is not held up meanwhile.
def flood(res):
    c, cf = plain()
    t = time.time()
    try:
        c.sendall(b'a SEARCH' + b' SUBJECT {1+}\r\nx' * 8000 + b'\r\n')
    except OSError:
        pass
    r = until(cf, b'a')
    res.append((status(r), time.time() - t))
    c.close()

res = []
th = threading.Thread(target=flood, args=(res,))
th.start()
t = time.time()
s, f = login()
login_time = time.time() - t
s.close()
th.join()
out.append('flood=%s' % ('refused' if res[0][0] in ('NO', 'BAD') else res[0][0]))
out.append('flood-fast=%s' % (res[0][1] < 2))
out.append('login-during-flood=%s' % (login_time < 2))
print(' '.join(out))
