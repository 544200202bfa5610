//! Fleet scale against the Samba lab (`deploy/lab/lab.sh up` first; root,
//! as it resets the lab before every run): N fresh `provd serve` daemons
//! (Linux builds; own ports and state dirs; one PKI) get the full document
//! the lab allows on Linux — the domain with its DC order, a gMSA, two
//! permission profiles — from `provctl fleet apply` (its default: a canary
//! host alone first, then the rest at once; registration gap 0), for N = 1,
//! 10, 50, 200 in one run. `FLEET_NO_CANARY=1` sends every host at once
//! (`--no-canary`, which this directory-only document allows).
//!
//! Each run: the lab reset (so every run does the same writes), the daemons
//! started, the orchestrator timed (wall; CPU of its whole process tree;
//! peak PSS of that tree sampled every 100 ms), the Samba DCs' CPU and the
//! daemons' `provd.directory.calls` (exported over OTLP to this bench every
//! second) counted, and every daemon read back (PlanConfiguration of the
//! same document must be empty on every host). Runs of the variants
//! alternate; the table shows medians.
//!
//! Variants, same daemons, same document:
//! - `provctl`: this commit's provd;
//! - `baseline`: another build of provd (`FLEET_BASELINE_PROVD=path`, made
//!   by `benches/fleet-baseline.sh REV`), for the before/after of the DC
//!   work per host;
//! - `ansible`: the project's collection (`provd_apply`, forks = N, no
//!   `serial` or throttle: every host at once, as issue 19 compares them),
//!   and `ansible+canary`: the same with a canary play of one host first
//!   (`serial: [1, "100%"]`, provctl's own shape), at N in `ANSIBLE_SIZES`
//!   (default 10,50), when the venv of `deploy/clients/test.sh` exists.
//!
//! Then the largest N receives a package through the API (`upload.rs`).
//!
//! Knobs: `FLEET_SIZES=1,10,50,200`, `FLEET_REPEATS=3` (runs per variant
//! and size; sizes above 50 run `FLEET_REPEATS_LARGE=1`), `ANSIBLE_SIZES`,
//! `FLEET_UPLOAD_MB=20` (0: no upload), `FLEET_NO_CANARY=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that unwraps is asserting

#[path = "fleet/ansible.rs"]
mod ansible;
#[path = "fleet/calls.rs"]
mod calls;
#[path = "common/daemons.rs"]
mod daemons;
#[path = "fleet/procs.rs"]
mod procs;
#[path = "fleet/readback.rs"]
mod readback;
#[path = "fleet/report.rs"]
mod report;
#[path = "fleet/upload.rs"]
mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemons::Daemons;
use report::{Sample, Timeline};

/// What the bench needs of `lab.sh env`.
pub struct Lab {
    env: BTreeMap<String, String>,
    pub domain: String,
    pub dcs: Vec<String>,
    pub admin: String,
    pub password: String,
    pub host_account: String,
}

fn lab() -> Lab {
    let out = Command::new(LAB_SH)
        .arg("env")
        .output()
        .expect("run lab.sh env");
    assert!(out.status.success(), "lab.sh env failed: is the lab up?");
    let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['\'', '"']).to_owned()))
        .collect();
    Lab {
        domain: env["LAB_DOMAIN"].clone(),
        dcs: vec![env["LAB_DC1_HOST"].clone(), env["LAB_DC2_HOST"].clone()],
        admin: env["LAB_ADMIN_UPN"].clone(),
        password: env["LAB_PASSWORD"].clone(),
        host_account: env["LAB_HOST_ACCOUNT"].clone(),
        env,
    }
}

const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");

/// Resets the lab, then waits (at most 10 s) for the restarted DCs to go
/// idle — under 10 ms of CPU in 250 ms — so their start-up is not counted
/// as the run's DC work.
fn reset_lab() {
    let out = Command::new(LAB_SH).arg("reset").output().unwrap();
    assert!(
        out.status.success(),
        "lab.sh reset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = procs::samba_cpu();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = procs::samba_cpu();
        if now - before < 0.01 {
            break;
        }
        before = now;
    }
}

/// The daemons' directory: the lab's DCs, CA and DNS; metrics to `otlp`.
fn start_daemons(provd: &Path, n: usize, dir: &Path, pki: &Path, lab: &Lab, otlp: &str) -> Daemons {
    let mut extra: Vec<String> = [
        "--directory-ca-file",
        &lab.env["LAB_CA_PEM"],
        "--otlp-endpoint",
        otlp,
        "--telemetry-metrics-interval",
        "1s",
        "--log-filter",
        "error",
    ]
    .map(String::from)
    .to_vec();
    for server in lab.env["LAB_DNS_SERVERS"].split_whitespace() {
        extra.extend(["--directory-dns-server".to_owned(), server.to_owned()]);
    }
    daemons::start(provd, n, dir, pki, &extra)
}

pub fn write_inventory(dir: &Path, pki: &Path, ports: &[u16]) -> PathBuf {
    let mut text = format!(
        "[defaults]\nca = '{0}/ca.pem'\ncert = '{0}/client-admin.pem'\nkey = '{0}/client-admin.key'\n\n",
        pki.display()
    );
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "[[hosts]]\nname = \"h{i:03}\"\nendpoint = \"https://localhost:{port}\"\n\n"
        ));
    }
    let path = dir.join(format!("inventory-{}.toml", ports.len()));
    std::fs::write(&path, text).unwrap();
    path
}

/// `provctl fleet apply`: every host at once, or with `canary` one host
/// alone first.
fn run_provctl(
    canary: bool,
    provctl: &Path,
    dir: &Path,
    pki: &Path,
    ports: &[u16],
    document: &Path,
    lab: &Lab,
) -> (procs::Usage, Timeline) {
    let inventory = write_inventory(dir, pki, ports);
    let password = dir.join("password");
    std::fs::write(&password, format!("{}\n", lab.password)).unwrap();
    let json = dir.join("report.json");
    let n = ports.len().to_string();
    let child = Command::new(provctl)
        .args(["--output", "json", "fleet", "apply", "--inventory"])
        .arg(&inventory)
        .arg(document)
        .args(["--concurrency", &n, "--registration-gap", "0s", "--report"])
        .arg(&json)
        .args((!canary).then_some("--no-canary"))
        .args(["--username", &lab.admin, "--password-file"])
        .arg(&password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run provctl");
    let usage = procs::watch(child);
    let report = std::fs::read(&json).unwrap_or_default();
    for failure in report::failures(&report) {
        eprintln!("  failed: {failure}");
    }
    let timeline = Timeline::from_report(&report);
    (usage, timeline)
}

fn env_sizes(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let lab = lab();
    let sizes = env_sizes("FLEET_SIZES", &[1, 10, 50, 200]);
    let ansible_sizes = env_sizes("ANSIBLE_SIZES", &[10, 50]);
    let repeats = |n: usize| {
        let (var, default) = match n > 50 {
            true => ("FLEET_REPEATS_LARGE", 1),
            false => ("FLEET_REPEATS", 3),
        };
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let provd = PathBuf::from(env!("CARGO_BIN_EXE_provd"));
    let baseline = std::env::var_os("FLEET_BASELINE_PROVD").map(PathBuf::from);
    let venv = ansible::venv();
    let provctl = daemons::provctl_bin();
    let canary = !std::env::var("FLEET_NO_CANARY").is_ok_and(|v| v == "1");
    println!(
        "provctl: {}",
        if canary {
            "a canary host alone first, then the rest at once (its default)"
        } else {
            "every host at once (--no-canary; FLEET_NO_CANARY=1)"
        }
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let calls = calls::Calls::default();
    let otlp = calls.serve(&runtime);

    let dir = tempfile::tempdir().unwrap();
    let pki = daemons::pki(&provd, dir.path());
    let gmsa = "provFleetBench";
    let document = dir.path().join("document.toml");
    std::fs::write(&document, readback::toml(&lab, gmsa)).unwrap();
    let desired = readback::desired(&lab, gmsa);

    let mut table: Vec<(usize, &str, Vec<Sample>)> = Vec::new();
    for &n in &sizes {
        let mut variants: Vec<(&str, Option<&Path>)> = vec![("provctl", Some(&provd))];
        if let Some(b) = &baseline {
            variants.push(("baseline", Some(b)));
        }
        if venv.is_some() && ansible_sizes.contains(&n) {
            variants.push(("ansible", Some(&provd)));
            variants.push(("ansible+canary", Some(&provd)));
        }
        let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
        for round in 0..repeats(n) {
            for &(name, daemon) in &variants {
                reset_lab();
                let daemons = start_daemons(daemon.unwrap(), n, dir.path(), &pki, &lab, &otlp);
                calls.clear();
                let pids: Vec<u32> = daemons.children.iter().map(Child::id).collect();
                let (samba, provd_cpu) = (
                    procs::samba_cpu(),
                    procs::cpu_seconds(|p, _| pids.contains(&p)),
                );
                let (usage, timeline) = match (name, &venv) {
                    ("ansible" | "ansible+canary", Some(venv)) => (
                        ansible::run(
                            name == "ansible+canary",
                            venv,
                            dir.path(),
                            &pki,
                            &daemons.ports,
                            &document,
                            &lab,
                        ),
                        Timeline::default(),
                    ),
                    // The baseline predates the fix for hosts racing to
                    // create the shared gMSA, so it always has its canary.
                    _ => run_provctl(
                        canary || name == "baseline",
                        &provctl,
                        dir.path(),
                        &pki,
                        &daemons.ports,
                        &document,
                        &lab,
                    ),
                };
                // Two export intervals: every daemon's last counts are in.
                std::thread::sleep(Duration::from_millis(2500));
                let sample = Sample {
                    usage,
                    dc_cpu: procs::samba_cpu() - samba,
                    daemons_cpu: procs::cpu_seconds(|p, _| pids.contains(&p)) - provd_cpu,
                    calls: calls.by_op(),
                    in_place: runtime.block_on(readback::in_place(
                        &daemons.ports,
                        &pki,
                        &desired,
                        &lab,
                    )),
                    timeline,
                };
                eprintln!("  {name} n={n} round {round}: {}", sample.brief(n));
                samples.entry(name).or_default().push(sample);
                drop(daemons);
            }
        }
        for (name, _) in &variants {
            table.push((n, name, samples.remove(name).unwrap_or_default()));
        }
    }
    report::print(
        &table,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        canary,
    );

    let megabytes: usize = std::env::var("FLEET_UPLOAD_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    if let Some(&n) = sizes.iter().max()
        && megabytes > 0
    {
        let daemons = start_daemons(&provd, n, dir.path(), &pki, &lab, &otlp);
        let pushed = upload::run(&provctl, dir.path(), &pki, &daemons.ports, megabytes);
        println!(
            "\nUploadPackage of a {megabytes} MB package to {n} hosts through provctl: staged on {}/{n} \
             ({:.0} MB sent) in {:.2}s ({:.0} MB/s), provctl peak PSS {:.1} MiB, CPU {:.2}s",
            pushed.hosts,
            pushed.bytes as f64 / 1e6,
            pushed.seconds,
            pushed.bytes as f64 / 1e6 / pushed.seconds,
            pushed.usage.peak_pss_kib as f64 / 1024.0,
            pushed.usage.cpu,
        );
    }
}
