# APPEND n numbered messages to a mailbox with imaplib.
import imaplib, ssl, sys
imaps, imap, smtp_port, cafile, user, pw, box, n = sys.argv[1:9]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)
m.login(user, pw)
for i in range(int(n)):
    msg = (f"From: sender{i % 7}@b.test\r\nTo: {user}\r\nSubject: message {i}\r\n"
           f"Message-ID: <m{i}@b.test>\r\n\r\nbody of message {i}\r\n" + "line\r\n" * (i % 20)).encode()
    typ, _ = m.append(box, None, None, msg)
    assert typ == "OK"
m.logout()
print("OK")
