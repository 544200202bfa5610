//! N `provd serve` processes on loopback for the fleet benches: distinct
//! ports and state directories, one PKI, the tenant on a closed loopback
//! port (nothing a daemon probes leaves the machine); killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemons {
    pub children: Vec<Child>,
    pub ports: Vec<u16>,
    /// From the first spawn to every port accepting TCP.
    pub started_in: Duration,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `n` daemons of `provd` with state under `dir`, each given
/// `extra` flags too, and waits until every one listens.
pub fn start(provd: &Path, n: usize, dir: &Path, pki: &Path, extra: &[String]) -> Daemons {
    let started = Instant::now();
    let states: PathBuf = tempfile::tempdir_in(dir).unwrap().keep();
    let mut daemons = Daemons {
        children: Vec::new(),
        ports: Vec::new(),
        started_in: Duration::ZERO,
    };
    for i in 0..n {
        // The OS may hand the same free port out twice before a daemon
        // binds it: two hosts would then share one daemon.
        let port = loop {
            let port = free_port();
            if !daemons.ports.contains(&port) {
                break port;
            }
        };
        let child = Command::new(provd)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(states.join(format!("state-{i}")))
            .arg("--tls-cert")
            .arg(pki.join("server.pem"))
            .arg("--tls-key")
            .arg(pki.join("server.key"))
            .arg("--tls-client-ca")
            .arg(pki.join("ca.pem"))
            // A closed loopback port answers at once: no probe leaves the
            // machine, and 200 daemons do not queue on one DNS server.
            .args(["--tenant-authority", "https://127.0.0.1:9"])
            .args(["--tenant-graph", "https://127.0.0.1:9"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start provd");
        daemons.children.push(child);
        daemons.ports.push(port);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for port in &daemons.ports {
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(Instant::now() < deadline, "provd on {port} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for (child, port) in daemons.children.iter_mut().zip(&daemons.ports) {
        let exited = child.try_wait().expect("poll provd");
        assert!(exited.is_none(), "provd for port {port} exited: {exited:?}");
    }
    daemons.started_in = started.elapsed();
    daemons
}

/// One PKI for a fleet (`provd pki init` under `dir`): a server certificate
/// for localhost and the client certificates; returns its directory.
pub fn pki(provd: &Path, dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let made = Command::new(provd)
        .args(["pki", "init"])
        .arg(&pki)
        .args(["--server-dns", "localhost", "--server-ip", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    pki
}

/// provctl is another workspace crate, so Cargo gives a bench no
/// `CARGO_BIN_EXE_provctl`: `PROVCTL_BIN`, else built in the bench's
/// profile.
pub fn provctl_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PROVCTL_BIN") {
        return bin.into();
    }
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "provctl"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p provctl");
    assert!(built.success(), "cargo build -p provctl failed");
    let exe = std::env::current_exe().expect("bench executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/release/deps")
        .join("provctl")
}
