//! The real binary: `target/release/provd serve` spawned on a fresh state
//! directory, its spawn-to-first-successful-mTLS-Health/Check time and its
//! idle RSS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::pki::{Pki, connect};

/// Spawns of the real binary for the start-up figure.
pub const START_RUNS: usize = 5;
/// Idle time before RSS is read.
pub const IDLE: Duration = Duration::from_secs(1);
/// Retry interval while waiting for the binary to serve.
pub const POLL: Duration = Duration::from_millis(2);

/// Kills and reaps the child when dropped, including on error or panic.
struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `target/release/provd`: the binary cargo built next to this bench, else
/// the one beside `target/release/deps/rpc-*`, else built now.
fn provd_binary() -> Result<PathBuf> {
    let built_with_bench = PathBuf::from(env!("CARGO_BIN_EXE_provd"));
    if built_with_bench.is_file() {
        return Ok(built_with_bench);
    }
    let exe = std::env::current_exe().context("locate the bench executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} has no grandparent directory", exe.display()))?;
    let binary = profile_dir.join(format!("provd{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "{} is missing; running `cargo build --release --bin provd`",
        binary.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "provd"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("run cargo build --release --bin provd")?;
    if !status.success() || !binary.is_file() {
        bail!(
            "`cargo build --release --bin provd` ({status}) did not produce {}; build it first",
            binary.display()
        );
    }
    Ok(binary)
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("free port address")?.port())
}

fn spawn_provd(binary: &Path, pki: &Pki, state_dir: &Path, port: u16) -> Result<ChildGuard> {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--tls-cert")
        .arg(pki.cert())
        .arg("--tls-key")
        .arg(pki.key())
        .arg("--tls-client-ca")
        .arg(pki.ca())
        .args(["--log-filter", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROVD_") {
            command.env_remove(key);
        }
    }
    let child = command
        .spawn()
        .with_context(|| format!("spawn {}", binary.display()))?;
    Ok(ChildGuard { child: Some(child) })
}

/// Connect + Health/Check until one succeeds.
async fn wait_serving(child: &mut ChildGuard, addr: SocketAddr, pki: &Pki) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_error = String::from("no attempt made");
    loop {
        if let Some(status) = child.exited() {
            bail!("provd exited before serving ({status}); last error: {last_error}");
        }
        match connect(addr, &pki.ca_pem, &pki.viewer, Duration::from_secs(1)).await {
            Ok(channel) => {
                match HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                {
                    Ok(response) => match check_serving(&response.into_inner()) {
                        Ok(()) => return Ok(()),
                        Err(status) => last_error = status.to_string(),
                    },
                    Err(status) => last_error = status.to_string(),
                }
            }
            Err(err) => last_error = format!("{err:#}"),
        }
        if Instant::now() > deadline {
            bail!("provd did not serve within 20 s; last error: {last_error}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("parse {line:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

pub struct BinaryRun {
    pub start: Duration,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub async fn bench_binary(pki: &Pki, dir: &Path) -> Result<(PathBuf, Vec<BinaryRun>)> {
    let binary = provd_binary()?;
    let mut runs = Vec::with_capacity(START_RUNS);
    for run in 0..START_RUNS {
        let state_dir = dir.join(format!("binary-state-{run}"));
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let spawned = Instant::now();
        let mut child = spawn_provd(&binary, pki, &state_dir, port)?;
        wait_serving(&mut child, addr, pki)
            .await
            .with_context(|| format!("run {}: {}", run + 1, binary.display()))?;
        let start = spawned.elapsed();
        // The probe's connection is closed; now idle.
        tokio::time::sleep(IDLE).await;
        if let Some(status) = child.exited() {
            bail!("provd exited while idle ({status})");
        }
        let (rss_kib, hwm_kib) = rss_kib(child.pid())?;
        eprintln!(
            "  binary run {}: serving after {:.1} ms, idle VmRSS {:.1} MiB",
            run + 1,
            start.as_secs_f64() * 1e3,
            rss_kib as f64 / 1024.0
        );
        drop(child);
        runs.push(BinaryRun {
            start,
            rss_kib,
            hwm_kib,
        });
    }
    Ok((binary, runs))
}

fn check_serving(response: &tonic_health::pb::HealthCheckResponse) -> Result<(), tonic::Status> {
    if response.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(tonic::Status::unavailable(format!(
            "health status {}",
            response.status
        )))
    }
}
