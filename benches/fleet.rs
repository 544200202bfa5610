//! Fleet scale against the Samba lab (`deploy/lab/lab.sh up` first): starts
//! N `provd serve` processes (Linux builds; distinct ports and state dirs;
//! one PKI) and times `provctl fleet apply` of a directory-only document
//! (add the lab domain with a DC priority) against them, for N = 1, 10, 50
//! in one run. Prints each wall time, its ratio to N × the single-host time
//! (target: 50 hosts in less than 10× the single-host time, i.e. a ratio
//! under 0.2), and the fleet tool's peak RSS (VmHWM, sampled every 20 ms).
//! `FLEET_SIZES=1,10` overrides the sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn lab_env() -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");
    let out = Command::new(script)
        .arg("env")
        .output()
        .expect("run lab.sh env");
    assert!(out.status.success(), "lab.sh env failed: is the lab up?");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['\'', '"']).to_owned()))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemons {
    children: Vec<Child>,
    ports: Vec<u16>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_daemons(n: usize, dir: &Path, pki: &Path, lab: &BTreeMap<String, String>) -> Daemons {
    let mut daemons = Daemons {
        children: Vec::new(),
        ports: Vec::new(),
    };
    for i in 0..n {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provd"));
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(dir.join(format!("state-{n}-{i}")))
            .arg("--tls-cert")
            .arg(pki.join("server.pem"))
            .arg("--tls-key")
            .arg(pki.join("server.key"))
            .arg("--tls-client-ca")
            .arg(pki.join("ca.pem"))
            .arg("--directory-ca-file")
            .arg(&lab["LAB_CA_PEM"])
            .args(["--log-filter", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for server in lab["LAB_DNS_SERVERS"].split_whitespace() {
            cmd.args(["--directory-dns-server", server]);
        }
        daemons.children.push(cmd.spawn().expect("start provd"));
        daemons.ports.push(port);
    }
    // Serving: each port accepts TCP.
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in &daemons.ports {
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(Instant::now() < deadline, "provd on {port} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    daemons
}

/// provctl is another workspace crate, so Cargo gives this bench no
/// `CARGO_BIN_EXE_provctl`: build it in the bench's profile and use that.
fn provctl_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "-p", "provctl"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p provctl");
        assert!(built.success(), "cargo build -p provctl failed");
        let exe = std::env::current_exe().expect("bench executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/release/deps");
        dir.join("provctl")
    })
    .clone()
}

/// Runs `provctl` to its end; (wall time, peak RSS in KiB, success).
fn run_fleet(
    args: &[&str],
    password: &Path,
    lab: &BTreeMap<String, String>,
) -> (Duration, u64, bool) {
    let started = Instant::now();
    let mut child = Command::new(provctl_bin())
        .args(["--output", "json", "fleet"])
        .args(args)
        .args(["--username", &lab["LAB_ADMIN_UPN"], "--password-file"])
        .arg(password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run provctl");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kib = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(peak_kib)
                .max(peak_kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (started.elapsed(), peak_kib, status.success())
}

/// CPU seconds (user + system) used so far by the processes `pick` selects
/// from /proc (by pid and command name).
fn cpu_seconds(pick: impl Fn(u32, &str) -> bool) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !pick(pid, &stat[open + 1..close]) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat (11 and 12 after comm).
        total += (field(11) + field(12)) / ticks;
    }
    total
}

fn main() {
    let lab = lab_env();
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 50]);
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let made = Command::new(env!("CARGO_BIN_EXE_provd"))
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
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{}\n", lab["LAB_PASSWORD"])).unwrap();
    let document = dir.path().join("directory.toml");
    std::fs::write(
        &document,
        format!(
            "[[domains]]\ndomain = \"{}\"\npreferred_domain_controllers = [\"{}\", \"{}\"]\n",
            lab["LAB_DOMAIN"], lab["LAB_DC1_HOST"], lab["LAB_DC2_HOST"]
        ),
    )
    .unwrap();

    println!("fleet apply of a directory-only document (AddDirectory with DC priority)");
    println!(
        "{:>5}  {:>9}  {:>12}  {:>16}  {:>14}  {:>10}  {:>10}",
        "hosts", "wall", "per host", "ratio to N×1", "provctl peak", "samba CPU", "provd CPU"
    );
    let mut single: Option<Duration> = None;
    for &n in &sizes {
        let daemons = start_daemons(n, dir.path(), &pki, &lab);
        let inventory = write_inventory(dir.path(), &pki, &daemons.ports, n);
        let pids: Vec<u32> = daemons.children.iter().map(Child::id).collect();
        let samba_before =
            cpu_seconds(|_, comm| comm.starts_with("samba") || comm.starts_with("ldap"));
        let provd_before = cpu_seconds(|pid, _| pids.contains(&pid));
        let (wall, peak, ok) = run_fleet(
            &[
                "apply",
                "--inventory",
                inventory.to_str().unwrap(),
                document.to_str().unwrap(),
                "--concurrency",
                "50",
            ],
            &password,
            &lab,
        );
        assert!(ok, "fleet apply of {n} hosts failed");
        let samba = cpu_seconds(|_, comm| comm.starts_with("samba") || comm.starts_with("ldap"))
            - samba_before;
        let provd = cpu_seconds(|pid, _| pids.contains(&pid)) - provd_before;
        let base = *single.get_or_insert(wall);
        let ratio = wall.as_secs_f64() / (base.as_secs_f64() * n as f64);
        println!(
            "{n:>5}  {:>8.2}s  {:>11.3}s  {:>15.3}×  {:>10.1} MiB  {samba:>9.2}s  {provd:>9.2}s",
            wall.as_secs_f64(),
            wall.as_secs_f64() / n as f64,
            ratio,
            peak as f64 / 1024.0
        );
        drop(daemons);
    }
    println!(
        "CPU columns: seconds used during the run by the Samba DC processes and by the N provd \
         daemons ({} cores here)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let (Some(base), Some(&last)) = (single, sizes.last()) {
        println!(
            "target: {last} hosts in less than 10× the single-host time ({:.2}s)",
            base.as_secs_f64() * 10.0
        );
    }
}

fn write_inventory(dir: &Path, pki: &Path, ports: &[u16], n: usize) -> PathBuf {
    let mut text = format!(
        "[defaults]\nca = '{0}/ca.pem'\ncert = '{0}/client-admin.pem'\nkey = '{0}/client-admin.key'\n\n",
        pki.display()
    );
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "[[hosts]]\nname = \"h{i:02}\"\nendpoint = \"https://localhost:{port}\"\n\n"
        ));
    }
    let path = dir.join(format!("inventory-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}
