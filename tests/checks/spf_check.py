#!/usr/bin/python3
"""python3-spf's answer for SPF cases against the test's DNS server.

Usage: spf_check.py PORT IP SENDER HELO [IP SENDER HELO ...]; prints one
result per case (pass, fail, softfail, neutral, none, permerror, temperror)."""
import sys

import dns.resolver
import spf

r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
r.lifetime = 5
dns.resolver.default_resolver = r
args = sys.argv[2:]
for i in range(0, len(args), 3):
    ip, sender, helo = args[i:i + 3]
    print(spf.check2(i=ip, s=sender, h=helo, timeout=10)[0])
