# Parse one received message with Python's email package and compare it with what
# `sx email` was asked to send. argv: message file, JSON expectations.
# Prints "ok" or exits non-zero naming the first difference.
import email, email.policy, json, sys

path, want = sys.argv[1], json.loads(sys.argv[2])
with open(path, "rb") as f:
    raw = f.read()
msg = email.message_from_bytes(raw, policy=email.policy.default)


def norm(s):
    return s.replace("\r\n", "\n").rstrip("\n")


def fail(what, got, exp):
    sys.exit(f"{path}: {what}: got {got!r}, want {exp!r}")


def addrs(name):
    h = msg.get(name)
    return sorted(a.addr_spec for a in h.addresses) if h is not None else []


if "subject" in want and msg["subject"] != want["subject"]:
    fail("Subject", msg["subject"], want["subject"])
if "from" in want and addrs("from") != [want["from"]]:
    fail("From", addrs("from"), [want["from"]])
for h in ("to", "cc", "reply-to"):
    if h in want and addrs(h) != sorted(want[h]):
        fail(h, addrs(h), sorted(want[h]))
if "from_name" in want:
    name = msg["from"].addresses[0].display_name
    if name != want["from_name"]:
        fail("From display name", name, want["from_name"])
for h in want.get("absent", []):
    if msg.get(h) is not None:
        fail(f"header {h} present", msg.get(h), None)
for h, v in want.get("headers", {}).items():
    if msg.get(h) != v:
        fail(f"header {h}", msg.get(h), v)
for h in want.get("present", ["message-id", "date", "mime-version"]):
    if msg.get(h) is None:
        fail(f"header {h} missing", None, "present")
if "type" in want and msg.get_content_type() != want["type"]:
    fail("Content-Type", msg.get_content_type(), want["type"])
if "text" in want:
    part = msg.get_body(("plain",))
    if part is None or norm(part.get_content()) != norm(want["text"]):
        fail("text/plain part", part and part.get_content(), want["text"])
if "text_contains" in want:
    part = msg.get_body(("plain",))
    got = part.get_content() if part is not None else ""
    for w in want["text_contains"]:
        if w not in got:
            fail("text/plain part lacks " + w, got, w)
    if "<" in got:
        fail("text/plain part has markup", got, "no tags")
if "html" in want:
    part = msg.get_body(("html",))
    if part is None or norm(part.get_content()) != norm(want["html"]):
        fail("text/html part", part and part.get_content(), want["html"])
    if msg.get_content_type() not in ("multipart/alternative", "multipart/mixed"):
        fail("top type", msg.get_content_type(), "multipart/*")
    alt = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
    if not alt:
        fail("multipart/alternative", None, "present")
got_att = []
for part in msg.iter_attachments():
    got_att.append((part.get_filename(), part.get_content_type(), part.get_payload(decode=True)))
exp_att = []
for a in want.get("attachments", []):
    with open(a["file"], "rb") as f:
        exp_att.append((a["name"], a["type"], f.read()))
if sorted(got_att) != sorted(exp_att):
    fail("attachments", [(n, t, len(d)) for n, t, d in got_att], [(n, t, len(d)) for n, t, d in exp_att])
if "body_raw" in want and norm(msg.get_content()) != norm(want["body_raw"]):
    fail("body", msg.get_content(), want["body_raw"])
print("ok")
