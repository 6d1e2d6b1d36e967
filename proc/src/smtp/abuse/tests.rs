//! DNS lists and rate limits against the real session in process (client
//! 192.0.2.1) and a real dnsmasq serving the list zones.

use crate::dns_fixture::{dnsmasq, free_udp_port};
use crate::inprocess::Smtp;
use ipc::messages::Service;

/// The replies to one transaction's MAIL FROM and what follows it.
async fn mail_reply(smtp: &Smtp, from: &str) -> String {
    let input = format!("EHLO mx.client.test\r\nMAIL FROM:<{from}>\r\nQUIT\r\n");
    let out =
        String::from_utf8_lossy(&smtp.session(Service::Smtp, input.as_bytes()).await).into_owned();
    out.split("\r\n")
        .find(|l| {
            !l.starts_with("220")
                && !l.starts_with("250-")
                && !l.starts_with("250 mail")
                && !l.is_empty()
                && !l.starts_with("250 HELP")
        })
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_clients_get_554_allowed_ones_pass_and_silent_lists_list_nobody() {
    let port = free_udp_port();
    let _dns = dnsmasq(
        port,
        &[],
        &[
            "--host-record=1.2.0.192.bl.test,127.0.0.2",
            "--host-record=1.2.0.192.other.test,127.0.0.1",
            "--host-record=1.2.0.192.wl.test,127.0.0.5",
        ],
    );
    let with = |bl: &[&str], wl: &[&str]| {
        let (bl, wl): (Vec<String>, Vec<String>) = (
            bl.iter().map(|s| s.to_string()).collect(),
            wl.iter().map(|s| s.to_string()).collect(),
        );
        Smtp::with_settings(move |s| {
            s.dns_servers = vec![format!("127.0.0.1:{port}")];
            s.abuse.dnsbl = bl;
            s.abuse.dnswl = wl;
        })
        .expect("harness")
    };
    // temp.test does not answer, other.test answers 127.0.0.1 (not a listing).
    let smtp = with(&["temp.test", "other.test", "bl.test"], &[]);
    let r = mail_reply(&smtp, "a@b.test").await;
    assert_eq!(
        r,
        "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.test"
    );
    let smtp = with(&["bl.test"], &["nothing.test", "wl.test"]);
    assert_eq!(mail_reply(&smtp, "a@b.test").await, "250 2.1.0 Ok");
    let smtp = with(&["temp.test", "other.test", "none.test"], &[]);
    assert_eq!(mail_reply(&smtp, "a@b.test").await, "250 2.1.0 Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_give_421_and_end_the_session() {
    let smtp = Smtp::with_settings(|s| {
        s.abuse.rate_client = (3, 3600);
    })
    .expect("harness");
    for i in 0..3 {
        assert_eq!(
            mail_reply(&smtp, &format!("a{i}@b.test")).await,
            "250 2.1.0 Ok"
        );
    }
    let input = b"EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nNOOP\r\n";
    let out = String::from_utf8_lossy(&smtp.session(Service::Smtp, input).await).into_owned();
    assert!(
        out.contains("421 4.7.0 [192.0.2.1] Too many messages from your address"),
        "{out}"
    );
    assert!(!out.contains("250 2.0.0"), "NOOP answered after 421: {out}");

    let smtp = Smtp::with_settings(|s| {
        s.abuse.rate_sender = (2, 3600);
    })
    .expect("harness");
    assert_eq!(mail_reply(&smtp, "same@b.test").await, "250 2.1.0 Ok");
    assert_eq!(mail_reply(&smtp, "Same@B.test").await, "250 2.1.0 Ok");
    assert!(mail_reply(&smtp, "same@b.test")
        .await
        .starts_with("421 4.7.0 Too many messages from this sender"));
    assert_eq!(mail_reply(&smtp, "other@b.test").await, "250 2.1.0 Ok");
    // Bounces are not limited by sender.
    for _ in 0..3 {
        assert_eq!(mail_reply(&smtp, "").await, "250 2.1.0 Ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greylisting_defers_the_first_try_and_takes_the_retry() {
    let smtp = Smtp::with_settings(|s| {
        s.abuse.greylist = Some((2, 3600));
    })
    .expect("harness");
    let tx = |rcpt: &str| {
        let input =
            format!("EHLO mx.client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<{rcpt}>\r\nQUIT\r\n");
        let smtp = &smtp;
        async move {
            String::from_utf8_lossy(&smtp.session(Service::Smtp, input.as_bytes()).await)
                .into_owned()
        }
    };
    let out = tx("bob@a.test").await;
    assert!(
        out.contains("451 4.7.1 <bob@a.test>: Recipient address rejected: Greylisted, try again in 2 seconds"),
        "{out}"
    );
    let out = tx("bob@a.test").await;
    assert!(
        out.contains("451 4.7.1 "),
        "a retry too early still waits: {out}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let out = tx("bob@a.test").await;
    assert!(out.contains("250 2.1.5 Ok"), "{out}");
    // The client's network is known now: another recipient passes at once.
    let out = tx("carol@a.test").await;
    assert!(out.contains("250 2.1.5 Ok"), "{out}");
    // Submission is never greylisted (nor would an authenticated user be).
    let sub = b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n";
    let out = String::from_utf8_lossy(&smtp.session(Service::Submission, sub).await).into_owned();
    assert!(!out.contains("451 4.7.1"), "{out}");
}
