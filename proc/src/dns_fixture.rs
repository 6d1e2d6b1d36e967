//! For tests: dnsmasq (Debian's dnsmasq-base) on a loopback port, serving
//! the records a test gives it, started and stopped by the test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// dnsmasq, stopped (by its pid) when dropped.
pub struct Dns(Child);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

fn spawn_dnsmasq(port: u16, args: &[String]) -> Dns {
    let child = Command::new("/usr/sbin/dnsmasq")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (apt-get install dnsmasq-base)");
    let dns = Dns(child);
    let t = Instant::now();
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(t.elapsed() < Duration::from_secs(5), "dnsmasq on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    dns
}

/// One dnsmasq answering for `.test` alone (TXT records `txt`, other
/// dnsmasq options `extra`): what it has not been given is
/// NXDOMAIN; `temp.test` it asks of a second dnsmasq that has no data and
/// no upstream and says REFUSED at once (RFC 7208 5: an RCODE other than
/// 0 or 3 is a temperror).
pub fn dnsmasq(port: u16, txt: &[(String, String)], extra: &[&str]) -> (Dns, Dns) {
    let refuser_port = free_udp_port();
    let refuser = spawn_dnsmasq(
        refuser_port,
        &[
            "--keep-in-foreground".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            "--listen-address=127.0.0.1".into(),
            format!("--port={refuser_port}"),
            "--pid-file".into(),
        ],
    );
    let mut args = vec![
        "--keep-in-foreground".to_string(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--bind-interfaces".into(),
        "--listen-address=127.0.0.1".into(),
        format!("--port={port}"),
        "--local=/test/".into(),
        "--local-ttl=300".into(),
        format!("--server=/temp.test/127.0.0.1#{refuser_port}"),
        "--pid-file".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    for (name, text) in txt {
        // At most 255 bytes per character-string: longer text is split.
        let parts: Vec<String> = text
            .as_bytes()
            .chunks(250)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        args.push(format!("--txt-record={name},{}", parts.join(",")));
    }
    (spawn_dnsmasq(port, &args), refuser)
}
