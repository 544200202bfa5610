//! RPC benchmark: provd against a bare tonic server, plus the real binary's
//! idle memory and start-up time. One run prints one table.
//!
//! Run: `cargo bench --bench rpc` (optionally `-- <requests per level>`).
//!
//! 1. provd in-process (`Daemon::builder`), mTLS, unary
//!    `provd.v1.OperationsService/GetOperation` of a stored terminal operation.
//! 2. A bare `tonic::transport::Server` with the same certificates serving
//!    only `grpc.health.v1.Health`; clients call `Health/Check`. Same client
//!    setup, concurrency levels and request counts. As a reference, provd's
//!    own `Health/Check` is measured too.
//! 3. Idle RSS of `target/release/provd serve`.
//! 4. Spawn-to-first-successful-mTLS-health-Check time of that binary.
//!
//! The load client runs in this process, on the same tokio runtime as the
//! in-process servers; the servers run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use provd::config::{Config, DEFAULT_RELOAD_INTERVAL, LogConfig, LogFormat, TlsConfig};
use provd::pki::{Ca, PemPair, Role};
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Measured requests per level, unless given as the first numeric argument.
const DEFAULT_REQUESTS: u64 = 20_000;
/// Warm-up requests before each measured level (same channels, same concurrency).
const WARMUP: u64 = 3_000;
/// (concurrency, channels) levels, run in this order for every server.
const LEVELS: &[(usize, usize)] = &[(1, 1), (64, 1), (64, 4)];
/// Spawns of the real binary for the start-up figure.
const START_RUNS: usize = 5;
/// Idle time before RSS is read.
const IDLE: Duration = Duration::from_secs(1);
/// Retry interval while waiting for the binary to serve.
const POLL: Duration = Duration::from_millis(2);

const TARGET_RATIO: f64 = 0.8;
const TARGET_RSS_MIB: f64 = 20.0;
const TARGET_START_MS: f64 = 100.0;
const DAY: Duration = Duration::from_secs(86_400);

fn main() -> Result<()> {
    let requests = requests_per_level()?;
    provd::install_crypto_provider();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    let report = runtime.block_on(run(requests, cores))?;
    report.print(requests, cores);
    Ok(())
}

/// The first argument that parses as a number; cargo passes `--bench`.
fn requests_per_level() -> Result<u64> {
    for arg in std::env::args().skip(1) {
        if arg.starts_with('-') {
            continue;
        }
        let n: u64 = arg
            .replace('_', "")
            .parse()
            .with_context(|| format!("argument {arg:?} is not a request count"))?;
        if n == 0 {
            bail!("request count must be positive");
        }
        return Ok(n);
    }
    Ok(DEFAULT_REQUESTS)
}

// ---------------------------------------------------------------------------
// PKI and client setup (mirrors tests/common/mod.rs)

struct Pki {
    ca_pem: String,
    server: PemPair,
    viewer: PemPair,
    admin: PemPair,
    dir: PathBuf,
}

impl Pki {
    fn create(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let ca = Ca::generate("provd bench CA", DAY).context("generate CA")?;
        let server = ca
            .issue_server(
                &["localhost".into()],
                &["127.0.0.1".parse().context("parse 127.0.0.1")?],
                DAY,
            )
            .context("issue server certificate")?;
        let viewer = ca
            .issue_client("bench-viewer", &[Role::Viewer], DAY)
            .context("issue viewer certificate")?;
        let admin = ca
            .issue_client("bench-admin", &[Role::Admin], DAY)
            .context("issue admin certificate")?;
        let ca_pem = ca.cert_pem();
        for (name, contents) in [
            ("ca.pem", &ca_pem),
            ("server.pem", &server.cert_pem),
            ("server.key", &server.key_pem),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, contents).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(Pki {
            ca_pem,
            server,
            viewer,
            admin,
            dir: dir.to_owned(),
        })
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// The one client setup used against every server: rustls (ring) mTLS,
/// HTTP/2, one connection per call.
async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    pair: &PemPair,
    timeout: Duration,
) -> Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(&pair.cert_pem, &pair.key_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .context("endpoint URI")?
        .tls_config(tls)
        .context("client TLS config")?
        .tcp_nodelay(true)
        .connect_timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("connect to {addr}"))?;
    Ok(channel)
}

async fn connect_many(addr: SocketAddr, pki: &Pki, n: usize) -> Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(connect(addr, &pki.ca_pem, &pki.viewer, Duration::from_secs(5)).await?);
    }
    Ok(channels)
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

// ---------------------------------------------------------------------------
// Load generation

/// One unary call, repeated by one load task.
trait Call: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<(), tonic::Status>> + Send;
}

struct GetOperation {
    client: OperationsServiceClient<Channel>,
    id: String,
}

impl Call for GetOperation {
    async fn call(&mut self) -> Result<(), tonic::Status> {
        let response = self
            .client
            .get_operation(v1::GetOperationRequest {
                id: self.id.clone(),
            })
            .await?;
        match response.into_inner().operation {
            Some(_) => Ok(()),
            None => Err(tonic::Status::internal(
                "GetOperation returned no operation",
            )),
        }
    }
}

struct GetAgent {
    client: AgentServiceClient<Channel>,
}

impl Call for GetAgent {
    async fn call(&mut self) -> Result<(), tonic::Status> {
        self.client
            .get_agent(v1::GetAgentRequest {})
            .await
            .map(|_| ())
    }
}

struct HealthCheck {
    client: HealthClient<Channel>,
}

impl Call for HealthCheck {
    async fn call(&mut self) -> Result<(), tonic::Status> {
        let response = self
            .client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        check_serving(&response.into_inner())
    }
}

fn check_serving(response: &HealthCheckResponse) -> Result<(), tonic::Status> {
    if response.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(tonic::Status::unavailable(format!(
            "health status {}",
            response.status
        )))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rpc {
    ProvdGetOperation,
    ProvdHealth,
    ProvdGetAgent,
    BareHealth,
}

impl Rpc {
    fn label(self) -> &'static str {
        match self {
            Rpc::ProvdGetOperation => "provd  OperationsService/GetOperation",
            Rpc::ProvdHealth => "provd  Health/Check (reference)",
            Rpc::ProvdGetAgent => "provd  AgentService/GetAgent (reference)",
            Rpc::BareHealth => "bare tonic  Health/Check",
        }
    }
}

struct Measurement {
    rpc: Rpc,
    concurrency: usize,
    channels: usize,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    latency_ns: Histogram<u64>,
}

impl Measurement {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn quantile_us(&self, q: f64) -> f64 {
        self.latency_ns.value_at_quantile(q) as f64 / 1_000.0
    }
}

struct TaskResult {
    latency_ns: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs `total` calls with `concurrency` tasks spread round-robin over
/// `channels`; each task builds its caller once with `make`.
async fn load<C: Call>(
    channels: &[Channel],
    concurrency: usize,
    total: u64,
    make: &(dyn Fn(Channel) -> C + Sync),
) -> Result<(Duration, TaskResult, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let mut caller = make(channels[i % channels.len()].clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult {
                latency_ns: new_histogram(),
                errors: 0,
                first_error: None,
            };
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let outcome = caller.call().await;
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                match outcome {
                    Ok(()) => result.latency_ns.saturating_record(ns.max(1)),
                    Err(status) => {
                        result.errors += 1;
                        if result.first_error.is_none() {
                            result.first_error = Some(format!("{status}"));
                        }
                    }
                }
            }
            result
        }));
    }
    let mut merged = TaskResult {
        latency_ns: new_histogram(),
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let result = task.await.context("load task panicked")?;
        merged
            .latency_ns
            .add(&result.latency_ns)
            .map_err(|e| anyhow!("merge histograms: {e:?}"))?;
        merged.errors += result.errors;
        if merged.first_error.is_none() {
            merged.first_error = result.first_error;
        }
    }
    let elapsed = started.elapsed();
    let ok = merged.latency_ns.len();
    Ok((elapsed, merged, ok))
}

/// One level for one RPC against one running server: fresh channels,
/// warm-up, then the measured run.
async fn measure<C: Call>(
    rpc: Rpc,
    addr: SocketAddr,
    pki: &Pki,
    requests: u64,
    (concurrency, n_channels): (usize, usize),
    make: &(dyn Fn(Channel) -> C + Sync),
) -> Result<Measurement> {
    let channels = connect_many(addr, pki, n_channels).await?;
    let (_, warm, _) = load(&channels, concurrency, WARMUP.min(requests), make).await?;
    if warm.errors > 0 {
        bail!(
            "{}: {} of the warm-up calls failed; first error: {}",
            rpc.label(),
            warm.errors,
            warm.first_error.unwrap_or_default()
        );
    }
    let (elapsed, result, ok) = load(&channels, concurrency, requests, make).await?;
    eprintln!(
        "  {:<40} c={concurrency:<3} ch={n_channels}: {:>9.0} req/s",
        rpc.label(),
        ok as f64 / elapsed.as_secs_f64()
    );
    if ok == 0 {
        bail!(
            "{}: every call failed; first error: {}",
            rpc.label(),
            result.first_error.unwrap_or_default()
        );
    }
    Ok(Measurement {
        rpc,
        concurrency,
        channels: n_channels,
        ok,
        errors: result.errors,
        first_error: result.first_error,
        elapsed,
        latency_ns: result.latency_ns,
    })
}

// ---------------------------------------------------------------------------
// The two in-process servers

fn daemon_config(state_dir: &Path, pki: &Pki) -> Result<Config> {
    Ok(Config {
        listen: "127.0.0.1:0".parse().context("parse listen address")?,
        state_dir: state_dir.to_owned(),
        tls: TlsConfig {
            cert: Some(pki.cert()),
            key: Some(pki.key()),
            client_ca: Some(pki.ca()),
            client_crl: None,
            cert_thumbprint: None,
            cert_subject: None,
            cert_store: provd::config::DEFAULT_CERT_STORE.into(),
            client_ca_store: None,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        },
        log: LogConfig {
            format: LogFormat::Text,
            filter: "warn".into(),
            file: None,
        },
        shutdown_grace: Duration::from_secs(2),
        directory: Default::default(),
        tenant: Default::default(),
        host: Default::default(),
        agent_module: Default::default(),
        telemetry: Default::default(),
        http: Default::default(),
        drift: Default::default(),
        reachability: Default::default(),
        audit: Default::default(),
    })
}

/// Starts an Install of a small regular `x.msi` (it fails at the install
/// step on a non-Windows host) and waits until the operation is terminal.
async fn stored_operation(addr: SocketAddr, pki: &Pki, dir: &Path) -> Result<v1::Operation> {
    let package = dir.join("x.msi");
    let bytes = b"not really an msi".to_vec();
    std::fs::write(&package, &bytes).with_context(|| format!("write {}", package.display()))?;
    let channel = connect(addr, &pki.ca_pem, &pki.admin, Duration::from_secs(5)).await?;
    let started = AgentServiceClient::new(channel.clone())
        .install(v1::InstallRequest {
            source: format!("file://{}", package.display()),
            sha256: sha256_hex(&bytes),
            accept_license: true,
            cloud: 0,
            request_id: String::new(),
            skip_registration: false,
        })
        .await
        .context("AgentService/Install")?
        .into_inner()
        .operation
        .context("Install returned no operation")?;
    let mut ops = OperationsServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let op = ops
            .get_operation(v1::GetOperationRequest {
                id: started.id.clone(),
            })
            .await
            .context("GetOperation while waiting for the install")?
            .into_inner()
            .operation
            .context("GetOperation returned no operation")?;
        let state = v1::OperationState::try_from(op.state).unwrap_or_default();
        if matches!(
            state,
            v1::OperationState::Succeeded
                | v1::OperationState::Failed
                | v1::OperationState::Cancelled
                | v1::OperationState::Interrupted
        ) {
            return Ok(op);
        }
        if Instant::now() > deadline {
            bail!("operation {} still {:?} after 30 s", op.id, state);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// provd in-process on a fresh state dir: store one operation, then measure
/// GetOperation and (as a reference) Health/Check at `level`; shut down.
async fn bench_provd(
    pki: &Pki,
    dir: &Path,
    requests: u64,
    level: (usize, usize),
) -> Result<(Vec<Measurement>, String)> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let daemon = provd::Daemon::builder(daemon_config(&dir.join("state"), pki)?)
        .start()
        .await
        .context("start provd in-process")?;
    let addr = daemon.local_addr();
    let result = async {
        let op = stored_operation(addr, pki, dir).await?;
        let state = v1::OperationState::try_from(op.state).unwrap_or_default();
        let about = format!(
            "{} with {} events{}",
            state.as_str_name(),
            op.event_count,
            op.error
                .as_ref()
                .map(|e| format!(", failed at step {}", e.step))
                .unwrap_or_default()
        );
        let id = op.id.clone();
        let get = measure(
            Rpc::ProvdGetOperation,
            addr,
            pki,
            requests,
            level,
            &move |channel| GetOperation {
                client: OperationsServiceClient::new(channel),
                id: id.clone(),
            },
        )
        .await?;
        let health = measure(Rpc::ProvdHealth, addr, pki, requests, level, &|channel| {
            HealthCheck {
                client: HealthClient::new(channel),
            }
        })
        .await?;
        // Measured last: shows whether a gap is GetOperation's own or the
        // order of measurement.
        let agent = measure(Rpc::ProvdGetAgent, addr, pki, requests, level, &|channel| {
            GetAgent {
                client: AgentServiceClient::new(channel),
            }
        })
        .await?;
        Ok((vec![get, health, agent], about))
    }
    .await;
    daemon.shutdown().await;
    result
}

/// A bare tonic server (same certificates, only grpc.health.v1) measured at
/// `level`; shut down.
async fn bench_bare(pki: &Pki, requests: u64, level: (usize, usize)) -> Result<Measurement> {
    use tonic::transport::server::{ServerTlsConfig, TcpIncoming};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind bare tonic server")?;
    let addr = listener.local_addr().context("bare server address")?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &pki.server.cert_pem,
            &pki.server.key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&pki.ca_pem));
    let (_reporter, health) = tonic_health::server::health_reporter();
    let router = tonic::transport::Server::builder()
        .tls_config(tls)
        .context("bare server TLS config")?
        .add_service(health);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // provd sets TCP_NODELAY on accepted sockets; so does this server.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stop_rx.await;
    }));
    let result = measure(Rpc::BareHealth, addr, pki, requests, level, &|channel| {
        HealthCheck {
            client: HealthClient::new(channel),
        }
    })
    .await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => eprintln!("bare tonic server ended with an error: {err}"),
        Ok(Err(err)) => eprintln!("bare tonic server task failed: {err}"),
        Err(_) => eprintln!("bare tonic server did not stop within 5 s"),
    }
    result
}

// ---------------------------------------------------------------------------
// The real binary

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

struct BinaryRun {
    start: Duration,
    rss_kib: u64,
    hwm_kib: u64,
}

async fn bench_binary(pki: &Pki, dir: &Path) -> Result<(PathBuf, Vec<BinaryRun>)> {
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

// ---------------------------------------------------------------------------
// Orchestration and report

struct Report {
    workers: usize,
    loadavg_before: String,
    loadavg_after: String,
    operation: String,
    measurements: Vec<Measurement>,
    binary: PathBuf,
    runs: Vec<BinaryRun>,
    wall: Duration,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

async fn run(requests: u64, cores: usize) -> Result<Report> {
    let wall = Instant::now();
    let loadavg_before = loadavg();
    let dir = tempfile::tempdir().context("create temp dir")?;
    let pki = Pki::create(&dir.path().join("pki"))?;

    let mut measurements = Vec::new();
    let mut operation = String::new();
    for (i, &level) in LEVELS.iter().enumerate() {
        eprintln!("level c={} ch={}:", level.0, level.1);
        let (provd, about) = bench_provd(
            &pki,
            &dir.path().join(format!("provd-{i}")),
            requests,
            level,
        )
        .await?;
        measurements.extend(provd);
        operation = about;
        measurements.push(bench_bare(&pki, requests, level).await?);
    }
    eprintln!("real binary: idle RSS and start-to-serving ...");
    let (binary, runs) = bench_binary(&pki, dir.path()).await?;

    Ok(Report {
        workers: cores,
        loadavg_before,
        loadavg_after: loadavg(),
        operation,
        measurements,
        binary,
        runs,
        wall: wall.elapsed(),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

impl Report {
    fn find(&self, rpc: Rpc, concurrency: usize, channels: usize) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.rpc == rpc && m.concurrency == concurrency && m.channels == channels)
    }

    fn print(&self, requests: u64, cores: usize) {
        let line = "-".repeat(100);
        println!();
        println!("provd RPC benchmark");
        println!("{line}");
        println!("machine cores (available_parallelism): {cores}");
        println!(
            "load client: SAME PROCESS as the in-process servers, one multi-threaded tokio runtime \
             ({} workers) shared by client and server",
            self.workers
        );
        println!(
            "servers run one at a time: per level, a fresh provd (GetOperation, then its own \
             Health/Check), stopped, then a fresh bare tonic server"
        );
        println!(
            "transport: mTLS (ECDSA P-256 certs, rustls/ring), HTTP/2, unary calls, same client setup for both servers"
        );
        println!(
            "requests per level: {requests}, warm-up before each level: {} (fresh channels per level)",
            WARMUP.min(requests)
        );
        println!(
            "GetOperation reads a stored Install operation (x.msi): {}",
            self.operation
        );
        println!(
            "load average before / after: {} / {}",
            self.loadavg_before, self.loadavg_after
        );
        println!();
        println!(
            "{:<12} {:<40} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "level", "server / RPC", "req/s", "p50 us", "p99 us", "max us", "errors"
        );
        println!("{line}");
        for &(c, ch) in LEVELS {
            for rpc in [
                Rpc::ProvdGetOperation,
                Rpc::BareHealth,
                Rpc::ProvdHealth,
                Rpc::ProvdGetAgent,
            ] {
                if let Some(m) = self.find(rpc, c, ch) {
                    println!(
                        "{:<12} {:<40} {:>10.0} {:>10.1} {:>10.1} {:>10.1} {:>7}",
                        format!("c={c} ch={ch}"),
                        rpc.label(),
                        m.rps(),
                        m.quantile_us(0.5),
                        m.quantile_us(0.99),
                        m.latency_ns.max() as f64 / 1_000.0,
                        m.errors
                    );
                    if let Some(err) = &m.first_error {
                        println!("{:<12}   first error: {err}", "");
                    }
                }
            }
        }
        println!();
        println!(
            "ratios provd GetOperation / bare tonic Health/Check (throughput: higher is better, \
             target >= {TARGET_RATIO}x; latency: lower is better)"
        );
        println!(
            "{:<12} {:>12} {:>10} {:>10} {:>8}",
            "level", "throughput", "p50", "p99", "target"
        );
        println!("{line}");
        for &(c, ch) in LEVELS {
            if let (Some(p), Some(b)) = (
                self.find(Rpc::ProvdGetOperation, c, ch),
                self.find(Rpc::BareHealth, c, ch),
            ) {
                let tput = p.rps() / b.rps();
                println!(
                    "{:<12} {:>11.3}x {:>9.2}x {:>9.2}x {:>8}",
                    format!("c={c} ch={ch}"),
                    tput,
                    p.quantile_us(0.5) / b.quantile_us(0.5),
                    p.quantile_us(0.99) / b.quantile_us(0.99),
                    verdict(tput >= TARGET_RATIO)
                );
            }
        }
        let best = |rpc: Rpc| {
            self.measurements
                .iter()
                .filter(|m| m.rpc == rpc && m.concurrency > 1)
                .map(Measurement::rps)
                .fold(0.0_f64, f64::max)
        };
        let (p_best, b_best) = (best(Rpc::ProvdGetOperation), best(Rpc::BareHealth));
        if b_best > 0.0 {
            println!(
                "{:<12} {:>11.3}x {:>10} {:>10} {:>8}   (best c=64 figure of each: {:.0} vs {:.0} req/s)",
                "best c=64",
                p_best / b_best,
                "",
                "",
                verdict(p_best / b_best >= TARGET_RATIO),
                p_best,
                b_best
            );
        }

        println!();
        println!("real binary: {}", self.binary.display());
        println!("{line}");
        let mut starts: Vec<Duration> = self.runs.iter().map(|r| r.start).collect();
        starts.sort();
        let mut rss: Vec<u64> = self.runs.iter().map(|r| r.rss_kib).collect();
        rss.sort_unstable();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if let (Some(&min_start), Some(&max_rss)) = (starts.first(), rss.last()) {
            let median_start = starts[starts.len() / 2];
            let median_rss = rss[rss.len() / 2];
            let max_hwm = self.runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
            println!(
                "idle RSS (VmRSS {} s after first Check): median {:.1} MiB, max {:.1} MiB \
                 (peak VmHWM {:.1} MiB); target < {TARGET_RSS_MIB} MiB: {}",
                IDLE.as_secs(),
                mib(median_rss),
                mib(max_rss),
                mib(max_hwm),
                verdict(mib(max_rss) < TARGET_RSS_MIB)
            );
            println!(
                "start-to-serving (spawn -> first OK mTLS Health/Check, retry every {} ms, \
                 fresh state dir): median {:.1} ms, min {:.1} ms over {} runs; \
                 target < {TARGET_START_MS} ms: {}",
                POLL.as_millis(),
                ms(median_start),
                ms(min_start),
                starts.len(),
                verdict(ms(median_start) < TARGET_START_MS)
            );
            println!(
                "  each run (ms): {}",
                self.runs
                    .iter()
                    .map(|r| format!("{:.1}", ms(r.start)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!("{line}");
        println!("total bench time: {:.1} s", self.wall.as_secs_f64());
    }
}
