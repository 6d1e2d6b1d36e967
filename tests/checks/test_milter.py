#!/usr/bin/python3
"""A milter for the tests, on Sendmail's libmilter through pymilter (Debian's
python3-milter): refuses MAIL FROM blocked@..., RCPT carol@..., adds
X-Test-Milter to what it lets through, quarantines a Subject of
"quarantine me".

Usage: test_milter.py PORT | unix:/PATH"""
import sys

import Milter


class TestMilter(Milter.Base):
    def __init__(self):
        self.subject = ""

    def envfrom(self, f, *args):
        if "blocked@" in f:
            self.setreply("550", "5.7.1", "sender blocked by test milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        if "carol@" in to:
            self.setreply("550", "5.7.1", "recipient refused by test milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eom(self):
        self.addheader("X-Test-Milter", "seen")
        if "quarantine me" in self.subject:
            self.quarantine("asked to")
        return Milter.ACCEPT


Milter.factory = TestMilter
Milter.set_flags(Milter.ADDHDRS | Milter.QUARANTINE)
where = sys.argv[1]
Milter.runmilter(
    "sxtest", where if where.startswith("unix:") else "inet:%s@127.0.0.1" % where, 60
)
