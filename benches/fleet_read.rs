//! Fleet-wide reads at scale, no lab needed: starts N `provd serve`
//! processes on loopback (distinct ports and state dirs, one PKI, no
//! directory configured, no `[drift]`) and times `provctl fleet status` and
//! `provctl fleet verify` (no credential: the credential-free checks; the
//! tenant pointed at a closed loopback port, so no probe leaves the
//! machine) over all of them, RUNS times each, printing each wall time, the median, and
//! provctl's peak RSS (VmHWM, sampled every 20 ms); also how many hosts
//! answered and how many the sweep judged failed (on Linux every host fails:
//! HOST_UNAVAILABLE for status, host.backend.available FAIL for verify —
//! what is timed is the sweep, not the verdict). Target: 200 hosts in under
//! 5 s. `FLEET_SIZES=10,200` and `RUNS=5` override the defaults (200, 3);
//! `FLEET_CONCURRENCY` sets `--concurrency` (default: provctl's, 64);
//! `PROVCTL_BIN` names the provctl to time (default: built in the bench's
//! profile).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that unwraps is asserting

#[path = "common/daemons.rs"]
mod daemons;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One sweep's figures.
struct Sweep {
    wall: Duration,
    peak_kib: u64,
    hosts: usize,
    failed: usize,
    unreached: usize,
}

/// Runs `provctl --output json fleet <args>` to its end, sampling its RSS.
fn sweep(provctl: &Path, args: &[&str], out: &Path) -> Sweep {
    let started = Instant::now();
    let mut child = Command::new(provctl)
        .args(["--output", "json", "fleet"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("run provctl");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    loop {
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
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    let rows: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out).unwrap().trim()).unwrap();
    let rows = rows.as_array().expect("one JSON array of rows");
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| rows.iter().filter(|r| f(r)).count();
    Sweep {
        wall,
        peak_kib,
        hosts: rows.len(),
        failed: count(&|r| r["failed"] == true),
        unreached: count(&|r| r["status"] == "UNREACHABLE" || r["status"] == "ERROR"),
    }
}

fn median(mut walls: Vec<Duration>) -> Duration {
    walls.sort();
    walls[walls.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![200]);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let concurrency = std::env::var("FLEET_CONCURRENCY").ok();
    let provctl = daemons::provctl_bin();
    let dir = tempfile::tempdir().unwrap();
    let pki = daemons::pki(Path::new(env!("CARGO_BIN_EXE_provd")), dir.path());

    println!(
        "fleet reads over local daemons (no directory, no [drift]); {} cores here; {runs} run(s) each",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>5}  {:<14}  {:>9}  {:>9}  {:>14}  {:>7}  {:>7}  {:>10}",
        "hosts", "sweep", "median", "slowest", "provctl peak", "rows", "failed", "unreached"
    );
    for &n in &sizes {
        // No directory: Verify then runs only what needs none.
        let provd = Path::new(env!("CARGO_BIN_EXE_provd"));
        let extra = ["--log-filter", "warn"].map(String::from);
        let daemons = daemons::start(provd, n, dir.path(), &pki, &extra);
        let took = daemons.started_in;
        let inventory = write_inventory(dir.path(), &pki, &daemons.ports, n);
        let inventory = inventory.to_str().unwrap().to_owned();
        let mut base = vec!["--inventory", inventory.as_str()];
        if let Some(c) = &concurrency {
            base.extend(["--concurrency", c.as_str()]);
        }
        for what in ["status", "verify"] {
            let mut args = vec![what];
            args.extend(&base);
            let out = dir.path().join(format!("{what}-{n}.json"));
            let sweeps: Vec<Sweep> = (0..runs).map(|_| sweep(&provctl, &args, &out)).collect();
            let last = &sweeps[sweeps.len() - 1];
            assert_eq!(last.hosts, n, "fleet {what}: one row per host");
            let slowest = sweeps.iter().map(|s| s.wall).max().unwrap_or_default();
            let peak = sweeps.iter().map(|s| s.peak_kib).max().unwrap_or(0);
            println!(
                "{n:>5}  {:<14}  {:>8.2}s  {:>8.2}s  {:>10.1} MiB  {:>7}  {:>7}  {:>10}",
                format!("fleet {what}"),
                median(sweeps.iter().map(|s| s.wall).collect()).as_secs_f64(),
                slowest.as_secs_f64(),
                peak as f64 / 1024.0,
                last.hosts,
                last.failed,
                last.unreached,
            );
        }
        println!(
            "       ({n} daemons started and listening in {:.2}s)",
            took.as_secs_f64()
        );
        drop(daemons);
    }
    println!("target: 200 hosts in under 5 s for each sweep");
}

fn write_inventory(dir: &Path, pki: &Path, ports: &[u16], n: usize) -> PathBuf {
    let mut text = format!(
        "[defaults]\nca = '{0}/ca.pem'\ncert = '{0}/client-viewer.pem'\nkey = '{0}/client-viewer.key'\n\n",
        pki.display()
    );
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "[[hosts]]\nname = \"h{i:03}\"\nendpoint = \"https://localhost:{port}\"\n\n"
        ));
    }
    let path = dir.join(format!("inventory-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}
