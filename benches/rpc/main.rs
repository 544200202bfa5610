//! RPC benchmark: every read RPC of provd against a bare tonic server, plus
//! the real binary's idle memory and start-up time. One run prints one table.
//!
//! Run: `cargo bench --bench rpc` — optionally `-- <seconds per measurement>`
//! (default 0.6), RPC name filters (`-- GetAgent Verify`: the reads whose
//! name contains a word) and `nobinary` (skip the real binary's figures).
//!
//! What is compared, and why:
//! - provd runs in-process (`Daemon::builder`) on the testkit's fakes for
//!   the directory (the fake the directory contract suite passes), the
//!   tenant, the Windows host, the agent module and the logon rights, with
//!   its real redb store, audit log, TLS listener and transport. Nothing else
//!   could serve the directory- and tenant-bound reads without the lab, and
//!   the fakes keep the backends' cost small and steady. One
//!   ApplyConfiguration of the whole document (agent, domain with cloud
//!   sync, gMSA, BASIC_READ, writeback) first gives every read something to
//!   read. Verify's outbound probes answer "no network" at once
//!   (`backend::NoNetwork`): the bench never reaches Microsoft.
//! - The bare server is tonic's own `Server` with the same certificates,
//!   serving at each RPC's path a handler that decodes the request with
//!   prost and answers the response provd gave to the same request (decoded
//!   once, cloned per call): same request, same response size, no work.
//! - The client is the same for both: one `tonic::client::Grpc` per load
//!   task over mTLS channels, sending the pre-encoded request and reading
//!   the response's bytes without decoding (`load::RawCodec`).
//! - Reads: every Get*/List*/Plan*/Discover* RPC, WatchOperation of the
//!   applied (terminal) operation and Verify with no credential (the drift
//!   check's way: host, tenant and writeback checks; the directory checks are
//!   SKIP without a bind) — both server streams, read to their end. Reads
//!   that bind use the fake domain's Administrator. Not measured:
//!   ExportDiagnostics (admin-only and audited as a write: a support bundle,
//!   not a read) and the mutating RPCs.
//! - A read bound by a backend compares provd doing that work against a
//!   server doing none, so its ratio includes the backend's cost. For the
//!   directory (where production pays a DC round trip) every call of the
//!   fake is timed (`backend::Timed`), and the report shows that share and
//!   the ratio had it cost nothing, so the transport's overhead is visible.
//!   Tenant- and host-bound reads are in-memory in the fakes.
//! - Noise (2 shared cores): per RPC and level, ROUNDS rounds alternate
//!   provd and bare (swapping which goes first), each after a warm-up on
//!   fresh channels; the table shows medians, the ratio being the median of
//!   the per-round ratios (each pair measured back to back).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that unwraps is asserting

mod backend;
mod bare;
mod binary;
mod load;
mod pki;
mod reads;
mod report;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use provd::config::{Config, DEFAULT_RELOAD_INTERVAL, LogConfig, LogFormat, TlsConfig};

use crate::backend::BackendClock;
use crate::load::{RawCall, Run, all_ok, load};
use crate::pki::{Pki, connect_many};
use crate::reads::{Fixture, Read};
use crate::report::{Report, Round, Row};

/// (concurrency, channels) levels.
pub const LEVELS: &[(usize, usize)] = &[(1, 1), (64, 1), (64, 4)];
/// provd/bare pairs per RPC and level.
pub const ROUNDS: usize = 3;
const DEFAULT_MEASURE: Duration = Duration::from_millis(600);
const WARMUP: Duration = Duration::from_millis(150);

pub const TARGET_RATIO: f64 = 0.8;
pub const TARGET_RSS_MIB: f64 = 20.0;
pub const TARGET_START_MS: f64 = 50.0;

struct Args {
    measure: Duration,
    filters: Vec<String>,
    binary: bool,
}

fn main() -> Result<()> {
    let args = args()?;
    provd::install_crypto_provider();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    let report = runtime.block_on(run(&args, cores))?;
    report.print();
    Ok(())
}

/// Cargo passes `--bench`; flags are skipped.
fn args() -> Result<Args> {
    let mut args = Args {
        measure: DEFAULT_MEASURE,
        filters: Vec::new(),
        binary: true,
    };
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with('-')) {
        if arg == "nobinary" {
            args.binary = false;
        } else if let Ok(seconds) = arg.parse::<f64>() {
            if !(seconds > 0.0 && seconds < 600.0) {
                bail!("seconds per measurement must be in (0, 600): {arg}");
            }
            args.measure = Duration::from_secs_f64(seconds);
        } else {
            args.filters.push(arg.to_ascii_lowercase());
        }
    }
    Ok(args)
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

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

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// One warm-up and one measured run of `call` at `addr`, with the time
/// `clock` (when given) counted during the measured run.
async fn one_run(
    label: &str,
    addr: SocketAddr,
    pki: &Pki,
    (concurrency, channels): (usize, usize),
    measure: Duration,
    call: &RawCall,
    clock: Option<&BackendClock>,
) -> Result<(Run, Duration)> {
    let channels = connect_many(addr, pki, channels).await?;
    all_ok(label, load(&channels, concurrency, WARMUP, call).await?)?;
    let before = clock.map(BackendClock::total).unwrap_or_default();
    let run = all_ok(label, load(&channels, concurrency, measure, call).await?)?;
    let spent = clock.map(BackendClock::total).unwrap_or_default();
    Ok((run, spent.saturating_sub(before)))
}

async fn run(args: &Args, cores: usize) -> Result<Report> {
    let wall = Instant::now();
    let loadavg_before = loadavg();
    let dir = tempfile::tempdir().context("create temp dir")?;
    let pki = Pki::create(&dir.path().join("pki"))?;
    let fixture = Fixture::start(
        &pki,
        dir.path(),
        daemon_config(&dir.path().join("state"), &pki)?,
    )
    .await?;
    let provd_addr = fixture.daemon.local_addr();

    let wanted = |read: &Read| {
        let name = read.name.to_ascii_lowercase();
        args.filters.is_empty() || args.filters.iter().any(|f| name.contains(f.as_str()))
    };
    let all: Vec<Read> = std::iter::once(reads::health())
        .chain(reads::reads(&fixture.desired, &fixture.operation_id))
        .filter(wanted)
        .collect();
    // provd's answer to each read, which the bare server then gives.
    let mut router = axum::Router::new();
    let mut rows = Vec::with_capacity(all.len());
    for read in &all {
        let responses = fixture.answer(&pki, read).await?;
        router = (read.add_route)(router, read.call.path, &responses)?;
        rows.push(Row {
            name: read.name,
            bound: read.bound,
            response_bytes: responses.iter().map(|b| b.len()).sum(),
            messages: responses.len(),
            levels: Vec::with_capacity(LEVELS.len()),
        });
    }
    let bare_server = bare::Bare::start(&pki, router).await?;
    let bare_addr = bare_server.addr;

    for (read, row) in all.iter().zip(&mut rows) {
        for &level in LEVELS {
            let mut rounds = Vec::with_capacity(ROUNDS);
            for round in 0..ROUNDS {
                let label = format!("{} c={} ch={}", read.name, level.0, level.1);
                let (p_label, b_label) = (format!("provd {label}"), format!("bare {label}"));
                let (call, m, clock) = (&read.call, args.measure, Some(&fixture.clock));
                let ((provd, backend), (bare, _)) = if round % 2 == 0 {
                    let p = one_run(&p_label, provd_addr, &pki, level, m, call, clock).await?;
                    (
                        p,
                        one_run(&b_label, bare_addr, &pki, level, m, call, None).await?,
                    )
                } else {
                    let b = one_run(&b_label, bare_addr, &pki, level, m, call, None).await?;
                    (
                        one_run(&p_label, provd_addr, &pki, level, m, call, clock).await?,
                        b,
                    )
                };
                eprintln!(
                    "  {label:<60} round {}: provd {:>8.0}/s  bare {:>8.0}/s  {:.2}x",
                    round + 1,
                    provd.rps(),
                    bare.rps(),
                    provd.rps() / bare.rps()
                );
                rounds.push(Round {
                    provd,
                    bare,
                    backend,
                });
            }
            row.levels.push(rounds);
        }
    }
    fixture.daemon.shutdown().await;
    bare_server.stop().await?;

    let binary = if args.binary {
        eprintln!("real binary: idle RSS and start-to-serving ...");
        Some(binary::bench_binary(&pki, dir.path()).await?)
    } else {
        None
    };
    Ok(Report {
        cores,
        measure: args.measure,
        warmup: WARMUP,
        loadavg_before,
        loadavg_after: loadavg(),
        about: fixture.about,
        rows,
        binary,
        wall: wall.elapsed(),
    })
}
