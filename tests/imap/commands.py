# RFC 3501 commands through Python's imaplib, each checked against known messages.
import imaplib, smtplib, ssl, sys, time, re, email
from email.message import EmailMessage

imaps, imap, smtp_port, cafile, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)

# --- three known messages, delivered by SMTP ---------------------------------
plain = EmailMessage()
plain["From"] = "Bob Sender <bob@b.test>"
plain["To"] = user
plain["Subject"] = "hello one"
plain["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
plain["Message-ID"] = "<one@b.test>"
plain.set_content("first body line\nneedle-in-body\n")

multi = EmailMessage()
multi["From"] = "Carol <carol@c.test>"
multi["To"] = user
multi["Cc"] = "dave@d.test"
multi["Subject"] = "report attached"
multi["Date"] = "Tue, 10 Nov 2026 12:00:00 +0000"
multi.set_content("plain alternative text\n")
multi.add_alternative("<p>html alternative</p>\n", subtype="html")
multi.add_attachment(b"%PDF-1.4 fake pdf bytes\n" * 20, maintype="application",
                     subtype="pdf", filename="report.pdf")

big = EmailMessage()
big["From"] = "bob@b.test"
big["To"] = user
big["Subject"] = "large one"
big["Date"] = "Wed, 18 Nov 2026 08:00:00 +0000"
big.set_content("x" * 70 + "\n" * 1 + ("y" * 76 + "\n") * 400)

with smtplib.SMTP("127.0.0.1", int(smtp_port)) as s:
    for m in (plain, multi, big):
        s.send_message(m, from_addr="bob@b.test", to_addrs=[user])

def wait_messages(m, box, n):
    for _ in range(100):
        typ, data = m.status(box, "(MESSAGES)")
        if int(re.search(rb"MESSAGES (\d+)", data[0]).group(1)) >= n:
            return
        time.sleep(0.1)
    check(False, f"{n} messages in {box}")

# --- STARTTLS on 143 ----------------------------------------------------------
m = imaplib.IMAP4("127.0.0.1", int(imap))
check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before STARTTLS")
try:
    m.login(user, pw)
    check(False, "LOGIN in clear must fail")
except imaplib.IMAP4.error:
    pass
m.starttls(ssl_context=ctx)
check("AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities, "caps after STARTTLS")
typ, _ = m.login(user, pw)
check(typ == "OK", "LOGIN after STARTTLS")
wait_messages(m, "INBOX", 3)
m.logout()

# --- implicit TLS on 993 ------------------------------------------------------
m = imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)
bad = imaplib.IMAP4_SSL("127.0.0.1", int(imaps), ssl_context=ctx)
try:
    bad.login(user, "wrong password")
    check(False, "wrong password must fail")
except imaplib.IMAP4.error as e:
    check("AUTHENTICATIONFAILED" in str(e), "AUTHENTICATIONFAILED code")
bad.logout()
m.login(user, pw)
for cap in ("IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "ENABLE", "UNSELECT", "LITERAL+", "SPECIAL-USE", "CHILDREN"):
    check(cap in m.capabilities, "capability " + cap)
check(any(c.startswith("APPENDLIMIT=") for c in m.capabilities), "APPENDLIMIT")

typ, data = m.list()
names = {re.search(rb'"\." "?([^"]*)"?$', l).group(1).decode(): l for l in data}
check(set(names) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk"}, f"LIST {names}")
check(b"\\Sent" in names["Sent"] and b"\\HasNoChildren" in names["Sent"], "SPECIAL-USE + CHILDREN")

typ, data = m.select("INBOX")
check(typ == "OK" and data[0] == b"3", f"SELECT 3 messages: {data}")
check(m.untagged_responses.get("UIDVALIDITY"), "UIDVALIDITY")
check(m.untagged_responses.get("RECENT") == [b"3"], "3 RECENT")

# FETCH ENVELOPE
typ, data = m.fetch("1", "(ENVELOPE)")
env = data[0]
check(b'"hello one"' in env and b'("Bob Sender" NIL "bob" "b.test")' in env and b'"<one@b.test>"' in env,
      f"ENVELOPE {env}")
# BODYSTRUCTURE of the multipart message with attachment
typ, data = m.fetch("2", "(BODYSTRUCTURE)")
bs = data[0].upper()
check(b'("TEXT" "PLAIN"' in bs and b'("TEXT" "HTML"' in bs and b'"ALTERNATIVE"' in bs, f"BODYSTRUCTURE alt {bs}")
check(b'"APPLICATION" "PDF"' in bs and b'"ATTACHMENT" ("FILENAME" "REPORT.PDF")' in bs and b'"MIXED"' in bs,
      f"BODYSTRUCTURE attachment {bs}")
# BODY[1.2] is the HTML alternative
typ, data = m.fetch("2", "(BODY.PEEK[1.2])")
check(data[0][1].strip() == b"<p>html alternative</p>", f"BODY[1.2] {data}")
typ, data = m.fetch("2", "(BODY.PEEK[2])")
import base64
check(base64.b64decode(data[0][1]) == b"%PDF-1.4 fake pdf bytes\n" * 20, "BODY[2] attachment bytes")
typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT CC)])")
check(data[0][1] == b"Cc: dave@d.test\r\nSubject: report attached\r\n\r\n", f"HEADER.FIELDS {data}")
# partial fetch
typ, data = m.fetch("1", "(BODY.PEEK[]<0.20>)")
full = m.fetch("1", "(BODY.PEEK[])")[1][0][1]
check(data[0][0].endswith(b"BODY[]<0> {20}") and data[0][1] == full[:20], f"partial {data}")
typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<6.4>)")
check(data[0][1] == b"body", f"partial TEXT {data}")
parsed = email.message_from_bytes(full)
check(parsed["Subject"] == "hello one" and "needle-in-body" in parsed.get_payload(), "BODY[] parses")
typ, data = m.fetch("1:3", "(UID RFC822.SIZE INTERNALDATE FLAGS)")
check(len(data) == 3 and all(b"INTERNALDATE" in d and b"RFC822.SIZE" in d for d in data), f"FETCH items {data}")
size3 = int(re.search(rb"RFC822.SIZE (\d+)", data[2]).group(1))
check(size3 > 30000, "size of the large message")
uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]
check(uids == sorted(uids) and len(set(uids)) == 3, f"UIDs {uids}")

# SEARCH
def search(*crit, uid=False):
    typ, data = (m.uid("SEARCH", *crit) if uid else m.search(None, *crit))
    check(typ == "OK", f"SEARCH {crit}")
    return [int(x) for x in data[0].split()]
check(search("FROM", "carol") == [2], "SEARCH FROM")
check(search("SUBJECT", "HELLO") == [1], "SEARCH SUBJECT case-insensitive")
check(search("SENTSINCE", "09-Nov-2026") == [2, 3], "SEARCH SENTSINCE")
check(search("SINCE", "01-Jan-2020") == [1, 2, 3], "SEARCH SINCE")
check(search("BEFORE", "01-Jan-2020") == [], "SEARCH BEFORE")
check(search("LARGER", "30000") == [3], "SEARCH LARGER")
check(search("UNSEEN") == [1, 2, 3], "SEARCH UNSEEN")
check(search("OR", "FROM", "carol", "SUBJECT", "large") == [2, 3], "SEARCH OR")
check(search("NOT", "FROM", "bob") == [2], "SEARCH NOT")
check(search("BODY", "needle-in-body") == [1], "SEARCH BODY")
check(search("UID", f"{uids[1]}:*") == [2, 3], "SEARCH UID range")
check(search("ALL", uid=True) == uids, "UID SEARCH")
check(search("CHARSET", "UTF-8", "SUBJECT", "report") == [2], "SEARCH CHARSET UTF-8")

# FETCH BODY[] (not PEEK) sets \Seen
typ, data = m.fetch("1", "(BODY[TEXT])")
check(b"\\Seen" in data[0][0] or any(b"\\Seen" in (d if isinstance(d, bytes) else d[0]) for d in data), f"BODY[] sets Seen {data}")
check(search("UNSEEN") == [2, 3], "after read, UNSEEN")

# STORE
typ, data = m.store("2", "+FLAGS", "(\\Flagged $Important)")
check(b"\\Flagged" in data[0] and b"$Important" in data[0], f"STORE +FLAGS {data}")
typ, data = m.store("2", "-FLAGS", "(\\Flagged)")
check(b"\\Flagged" not in data[0] and b"$Important" in data[0], f"STORE -FLAGS {data}")
check(search("KEYWORD", "$Important") == [2], "SEARCH KEYWORD")
typ, data = m.store("1", "+FLAGS.SILENT", "(\\Answered)")
check(typ == "OK" and search("ANSWERED") == [1], "STORE .SILENT")

# CREATE / COPY / MOVE / STATUS
check(m.create("Projects")[0] == "OK", "CREATE")
check(m.create("Projects.2026")[0] == "OK", "CREATE child")
check(m.create("Projects")[0] == "NO", "CREATE existing")
typ, data = m.copy("1:2", "Projects")
check(typ == "OK" and b"COPYUID" in data[0], f"COPY {data}")
typ, data = m.status("Projects", "(MESSAGES UIDNEXT UNSEEN)")
check(b"MESSAGES 2" in data[0] and b"UNSEEN 1" in data[0], f"STATUS {data}")
typ, data = m.list("\"\"", "Projects*")
check(len(data) == 2 and b"\\HasChildren" in data[0], f"LIST children {data}")
typ, data = m.uid("MOVE", str(uids[2]), "Archive")
check(typ == "NO" and b"TRYCREATE" in data[0], f"MOVE to missing {data}")
m.create("Archive")
typ, data = m.uid("MOVE", str(uids[2]), "Archive")
check(typ == "OK", f"MOVE {data}")
check(m.untagged_responses.get("EXPUNGE") == [b"3"], f"MOVE expunges {m.untagged_responses}")
typ, data = m.status("Archive", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], "MOVE arrived")
typ, data = m.select("INBOX")
check(data[0] == b"2", f"INBOX after MOVE {data}")

# EXPUNGE
m.store("1", "+FLAGS", "(\\Deleted)")
typ, data = m.expunge()
check(typ == "OK" and data == [b"1"], f"EXPUNGE {data}")
typ, data = m.search(None, "ALL")
check(data[0] == b"1", "one message left")

# APPEND with a literal
msg = b"From: me@a.test\r\nSubject: appended\r\n\r\nappended body\r\n"
typ, data = m.append("Drafts", "(\\Draft \\Seen)", imaplib.Time2Internaldate(time.time()), msg)
check(typ == "OK" and b"APPENDUID" in data[0], f"APPEND {data}")
m.select("Drafts")
typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
check(data[0][1] == msg and b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0], f"appended {data}")
typ, data = m.append("Nowhere", None, None, msg)
check(typ == "NO" and b"TRYCREATE" in data[0], "APPEND to missing mailbox")

# RENAME / DELETE
check(m.rename("Projects", "Work")[0] == "OK", "RENAME")
typ, data = m.list("\"\"", "*")
listed = b" ".join(data)
check(b'"Work"' in listed and b'"Work.2026"' in listed and b'"Projects"' not in listed, f"RENAME moves children {listed}")
typ, data = m.status("Work", "(MESSAGES)")
check(b"MESSAGES 2" in data[0], "RENAME kept messages")
check(m.delete("Work.2026")[0] == "OK" and m.delete("Work")[0] == "OK", "DELETE")
check(m.delete("INBOX")[0] == "NO", "DELETE INBOX refused")
typ, data = m.status("Work", "(MESSAGES)")
check(typ == "NO", "deleted mailbox is gone")

# SUBSCRIBE / LSUB, NAMESPACE, ID, UNSELECT, EXAMINE
m.subscribe("Sent")
typ, data = m.lsub()
check(any(b'"Sent"' in d for d in data), f"LSUB {data}")
# RFC 3501 6.3.9: a subscribed child under an unsubscribed parent: LSUB "" %
# returns the parent, \Noselect; "*" returns the child itself, not the parent.
m.create("Lists.rust")
m.subscribe("Lists.rust")
typ, data = m.lsub('""', '%')
check(b'(\\Noselect) "." "Lists"' in data and not any(b'Lists.rust' in d for d in data), f"LSUB % {data}")
typ, data = m.lsub('""', '*')
check(any(b'"Lists.rust"' in d for d in data) and not any(d.endswith(b'"Lists"') for d in data), f"LSUB * {data}")
typ, data = m.lsub('""', 'Lists.%')
check(data == [b'() "." "Lists.rust"'], f"LSUB Lists.% {data}")
# RFC 5258: RECURSIVEMATCH alone is BAD; with SUBSCRIBED, the unsubscribed
# parent of a subscribed child is listed with CHILDINFO.
try:
    typ, data = m._simple_command("LIST", "(RECURSIVEMATCH)", '""', "%")
except m.error as e:
    typ = "BAD" if "BAD" in str(e) else str(e)
check(typ == "BAD", f"LIST (RECURSIVEMATCH) {typ}")
typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
typ, data = m._untagged_response(typ, data, "LIST")
check(any(d.endswith(b'"Lists" ("CHILDINFO" ("SUBSCRIBED"))') for d in data), f"CHILDINFO {data}")
check(any(d.endswith(b'"Sent"') and b"\\Subscribed" in d for d in data), f"subscribed Sent {data}")
check(not any(b'"Lists.rust"' in d for d in data), f"% does not descend {data}")
typ, data = m.namespace()
check(b'(("" "."))' in data[0], f"NAMESPACE {data}")
typ, data = m.xatom("ID", "NIL")
check(typ == "OK", "ID")
typ, data = m.select("INBOX", readonly=True)
check(typ == "OK", "EXAMINE")
typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
check(typ == "NO", "STORE in EXAMINE refused")
typ, data = m.unselect()
check(typ == "OK", "UNSELECT")
m.logout()

# A raw transcript: a keyword new to the folder is announced by * FLAGS and
# PERMANENTFLAGS before the FETCH that carries it (RFC 3501 7.2.6).
import socket
# suppress_ragged_eofs=False and OP_IGNORE_UNEXPECTED_EOF off: an end without
# TLS close_notify raises.
strict = ssl.create_default_context(cafile=cafile)
strict.check_hostname = False
strict.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
raw = strict.wrap_socket(socket.create_connection(("127.0.0.1", int(imaps))), suppress_ragged_eofs=False)
rf = raw.makefile("rb")
def until(tag):
    lines = []
    while True:
        l = rf.readline().decode().rstrip("\r\n")
        lines.append(l)
        if l.startswith(tag + " "):
            return lines
rf.readline()
raw.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), pw.encode())); until("a")
raw.sendall(b"b SELECT INBOX\r\n"); until("b")
raw.sendall(b"c STORE 1 +FLAGS ($BrandNew)\r\n")
lines = until("c")
flags_at = [i for i, l in enumerate(lines) if l.startswith("* FLAGS (") and "$BrandNew" in l]
perm_at = [i for i, l in enumerate(lines) if "[PERMANENTFLAGS (" in l and "$BrandNew" in l]
fetch_at = [i for i, l in enumerate(lines) if " FETCH (" in l and "$BrandNew" in l]
check(flags_at and perm_at and fetch_at and flags_at[0] < fetch_at[0] and perm_at[0] < fetch_at[0], f"FLAGS before FETCH: {lines}")
# ESEARCH (RFC 4731).
raw.sendall(b"s1 SEARCH RETURN (MIN MAX COUNT) ALL\r\n")
lines = until("s1")
check(re.fullmatch(r'\* ESEARCH \(TAG "s1"\) MIN 1 MAX \d+ COUNT \d+', lines[0]) is not None and lines[-1].startswith("s1 OK"), f"ESEARCH {lines}")
raw.sendall(b"s2 UID SEARCH RETURN () ALL\r\n")
lines = until("s2")
check(re.fullmatch(r'\* ESEARCH \(TAG "s2"\) UID ALL [0-9:,]+', lines[0]) is not None, f"ESEARCH ALL {lines}")
raw.sendall(b"s3 SEARCH RETURN (MIN COUNT) SUBJECT no-such-subject-anywhere\r\n")
lines = until("s3")
check(lines[0] == '* ESEARCH (TAG "s3") COUNT 0', f"ESEARCH none {lines}")
raw.sendall(b"s4 SEARCH RETURN (BOGUS) ALL\r\n")
lines = until("s4")
check(lines[-1].startswith("s4 BAD"), f"ESEARCH bad option {lines}")
# COPY into the selected mailbox: EXISTS in the same response (RFC 3501 7.3.1).
raw.sendall(b"e COPY 1 INBOX\r\n")
lines = until("e")
check(any(re.fullmatch(r"\* \d+ EXISTS", l) for l in lines) and lines[-1].startswith("e OK"), f"COPY to self: {lines}")
raw.sendall(b"f MOVE 1 INBOX\r\n")
lines = until("f")
check(any(l.endswith(" EXPUNGE") for l in lines) and any(l.endswith(" EXISTS") for l in lines), f"MOVE to self: {lines}")
raw.sendall(b"d LOGOUT\r\n"); until("d")
try:
    rest = rf.read()
    check(rest == b"", f"after LOGOUT: {rest!r}")
except ssl.SSLEOFError as e:
    check(False, f"no TLS close_notify after LOGOUT: {e}")
print("OK")
