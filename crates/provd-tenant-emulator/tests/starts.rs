//! The emulator binary starts as its callers (the tests, demo.sh) expect:
//! the first stdout line names the address, and bad TLS files are named.
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

#[test]
fn first_line_is_the_listening_address() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
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
    child.kill().unwrap();
    child.wait().unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{line}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
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
