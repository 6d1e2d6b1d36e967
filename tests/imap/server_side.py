# Server-side changes for the mbsync test, or a report of the mailbox.
import imaplib, ssl, sys, re
imaps, imap, smtp_port, cafile, user, pw, what = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=cafile); ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)
m.login(user, pw)
typ, data = m.select("INBOX")
if what == "change":
    m.store("400:409", "+FLAGS", "(\\Flagged)")
    for i in range(3):
        m.append("INBOX", None, None, f"Subject: server new {i}\r\n\r\nx\r\n".encode())
    print("OK")
else:
    count = int(data[0])
    flagged = len(m.search(None, "FLAGGED")[1][0].split())
    seen = len(m.search(None, "SEEN")[1][0].split())
    local = len(m.search(None, "SUBJECT", "\"local new\"")[1][0].split())
    validity = m.untagged_responses["UIDVALIDITY"][0].decode()
    print(f"count={count} flagged={flagged} seen={seen} local={local} uidvalidity={validity}")
m.logout()
