#!/usr/bin/perl
# A QRESYNC client (Mail::IMAPTalk, the library Cyrus's own tests use) over
# TLS. usage: qresync.pl PORT CAFILE STEP [UIDVALIDITY MODSEQ]
#   first:  ENABLE QRESYNC, SELECT INBOX; prints "uidvalidity highestmodseq uids"
#   resync: ENABLE QRESYNC, SELECT INBOX (QRESYNC (uidvalidity modseq 1:*));
#           prints "vanished <set>" and "fetch <uid> <flags> <modseq>" per
#           message the server said changed, then "highestmodseq <n>".
use strict;
use warnings;
use Mail::IMAPTalk;
use IO::Socket::SSL;

my ($port, $cafile, $step, $validity, $modseq) = @ARGV;
my $talk = Mail::IMAPTalk->new(
    Server => '127.0.0.1', Port => $port, UseSSL => 1,
    SSL_ca_file => $cafile, SSL_verifycn_scheme => 'none', SSL_hostname => '',
    SSL_verify_mode => SSL_VERIFY_PEER, UseBlocking => 1,
) or die "connect: $@";
$talk->login('bob@a.test', 'bob-pw-1') or die "login: " . $talk->get_last_error();
$talk->enable('qresync') or die "enable: " . $talk->get_last_error();
if ($step eq 'first') {
    $talk->select('INBOX') or die "select: " . $talk->get_last_error();
    my $v = $talk->get_response_code('uidvalidity');
    my $h = $talk->get_response_code('highestmodseq');
    my $f = $talk->fetch('1:*', '(uid)') or die "fetch: " . $talk->get_last_error();
    my @uids = sort { $a <=> $b } map { $f->{$_}{uid} } keys %$f;
    print "$v $h " . join(',', @uids) . "\n";
} else {
    $talk->select('INBOX', "(QRESYNC ($validity $modseq 1:*))" => 1)
        or die "select: " . $talk->get_last_error();
    my $van = $talk->get_response_code('vanished') || [];
    my @set = grep { !ref($_) } @$van;
    print "vanished " . join(',', @set) . "\n";
    my $fetched = $talk->get_response_code('fetch') || {};
    for my $seq (sort { $a <=> $b } keys %$fetched) {
        my $r = $fetched->{$seq};
        # \Recent depends on which session saw a message first: left out.
        my $flags = join(' ', sort grep { $_ ne '\\recent' } map { lc } @{ $r->{flags} || [] });
        my $m = ref($r->{modseq}) ? $r->{modseq}[0] : $r->{modseq};
        print "fetch $r->{uid} ($flags) $m\n";
    }
    print "highestmodseq " . $talk->get_response_code('highestmodseq') . "\n";
}
$talk->logout();
