//! The emulator binary starts as its callers (the tests, demo.sh) expect:
//! the first stdout line names the address, and bad TLS files are named;
//! plain HTTP on its port is the LAB stand-in for a CRL host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// The emulator on 127.0.0.1:0 and its address.
fn start(dir: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let (cert, key) = tls_files(dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_provd-tenant-emulator"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{line}"));
    (child, addr.parse().unwrap())
}

#[test]
fn first_line_is_the_listening_address() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
}

#[test]
fn plain_http_on_the_port_answers_as_a_crl_host_stand_in() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(dir.path());
    let ask = |request: &str| {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        answer
    };
    let get = ask("GET /crl/lab.crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let post = ask(
        "POST /_lab/device/approve HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
    assert!(get.contains("LAB STAND-IN for a CRL host"), "{get}");
    // Nothing of the tenant is served without TLS.
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
}

#[test]
fn a_missing_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_provd-tenant-emulator"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("nope.pem"), "{text}");
}
