//! `provd`: the daemon (`provd serve`) and its operator tools (`provd pki`,
//! `provd audit verify`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

// The machine's provd directory: Windows code, tested on every platform.
#[cfg(any(windows, test))]
mod service_files;
#[cfg(windows)]
mod winservice;

use provd::config::{Config, Overrides};
use provd::pki::{self, Role};

#[derive(Parser)]
#[command(
    name = "provd",
    version,
    about = "Entra provisioning-agent setup as an mTLS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (gRPC + HTTP/JSON over mTLS on one port).
    Serve(ServeArgs),
    /// Create, issue, renew and revoke certificates for provd and its clients.
    #[command(subcommand, long_about = PKI_ABOUT)]
    Pki(PkiCommand),
    /// Run provd as a Windows service (Windows only).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the audit log's hash chain. Exit 0 when every record checks out
    /// ("N records, chain intact", the last hash to compare with an
    /// exported copy), 1 naming the first broken record (its seq and line,
    /// and why: hash mismatch, prev_hash mismatch, sequence gap, torn line,
    /// bad checkpoint signature), 2 when the file cannot be read.
    Verify(AuditVerifyArgs),
}

#[derive(Args)]
struct AuditVerifyArgs {
    /// The audit log. Default: `[audit] path` of the configuration (else
    /// `audit.log` in `state_dir`), which is then loaded like `provd serve`
    /// loads it (`--config`, `PROVD_*`, the flags below).
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// The server certificate (PEM) whose key must have signed a checkpoint
    /// at the start of a pruned log. Default with the configuration:
    /// `tls.cert`; with `--file` alone the signer is shown, not compared.
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    #[command(flatten)]
    config: Overrides,
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Register provd with the Service Control Manager (automatic start) and
    /// start it.
    Install {
        /// The config file the service runs with (absolute path).
        #[arg(long)]
        config: PathBuf,
    },
    /// Stop and remove the provd service.
    Uninstall,
    /// Create provd's directory under ProgramData (SYSTEM and Administrators
    /// only), its `state` folder, and a `provd.toml` naming them when there
    /// is none. Idempotent; the MSI runs it on install and upgrade.
    Prepare {
        /// `<ProgramData>\provd\provd.toml` (the only path accepted).
        #[arg(long)]
        config: PathBuf,
    },
    /// Delete provd's directory under ProgramData: configuration, state,
    /// logs. The MSI runs it on an uninstall with PURGE=1.
    Purge {
        /// `<ProgramData>\provd\provd.toml` (the only path accepted).
        #[arg(long)]
        config: PathBuf,
    },
    /// The command line the Service Control Manager starts.
    Run(Box<ServeArgs>),
}

/// Every setting's flag comes from its one declaration in `provd::config`
/// (`--config` and `--listen` … `--telemetry-metrics-interval`; `--help`
/// lists them with their variables and file keys).
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: Overrides,
}

/// `provd pki --help`: the commands and the rotation they serve.
const PKI_ABOUT: &str = "\
Create, issue, renew and revoke certificates for provd and its clients.

provd's own CA (`init`) signs the server certificate and every client
certificate; `--ca-dir` is the directory holding its ca.pem and ca.key.

Rotation: the running daemon reloads tls.cert, tls.key, tls.client_ca and
tls.client_crl when they change (every tls.reload_interval), so none of
these commands needs a restart. `renew` issues a leaf again before it
expires — same subject, names and roles, the same key unless --new-key —
and with --if-expiring-within it does nothing for a certificate further from
expiry, so it can run from a scheduled task:

  provd pki renew --ca-dir /etc/provd/pki --if-expiring-within 30d /etc/provd/pki/server.pem

`crl` revokes client certificates: it writes the CA's revocation list, which
[tls] client_crl points the daemon at; a revoked client is refused at the TLS
handshake. See deploy/pki/README.md.";

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a CA, a server certificate and one client certificate per role.
    Init {
        dir: PathBuf,
        /// DNS names of the server certificate (repeatable).
        #[arg(long = "server-dns", default_value = "localhost")]
        server_dns: Vec<String>,
        /// IP addresses of the server certificate (repeatable).
        #[arg(long = "server-ip", default_value = "127.0.0.1")]
        server_ips: Vec<IpAddr>,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Issue one more certificate from an existing CA.
    Issue {
        #[arg(long)]
        ca_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// File name stem and certificate common name.
        #[arg(long)]
        name: String,
        /// Client roles (repeatable): viewer, operator, admin.
        #[arg(long = "role")]
        roles: Vec<Role>,
        /// Issue a server certificate for these DNS names instead.
        #[arg(long = "server-dns")]
        server_dns: Vec<String>,
        #[arg(long = "server-ip")]
        server_ips: Vec<IpAddr>,
        #[arg(long, default_value_t = 365)]
        validity_days: u64,
        #[arg(long)]
        force: bool,
    },
    /// Issue server or client certificates again before they expire.
    ///
    /// Each CERT (PEM) is replaced in place by a certificate from the CA in
    /// --ca-dir with the same subject, SANs (DNS names, IPs, role URIs), key
    /// usages and extended key usage, a new serial and a new validity period
    /// (the old certificate's lifetime unless --validity-days). The key pair
    /// stays the same and its file is not touched, unless --new-key: then a
    /// new ECDSA P-256 key replaces <stem>.key beside the certificate (or
    /// --key), written before the certificate. Files are written to a
    /// temporary file and renamed into place, keeping their mode (a key never
    /// more open than 0640) and, run as root, their owner; a running daemon
    /// loads a renewed server certificate at its next reload check. A
    /// certificate the CA did not issue, or a CA, is refused before anything
    /// is written.
    Renew {
        /// Directory holding ca.pem and ca.key of the CA that issued the
        /// certificates.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Certificate files (PEM) to renew.
        #[arg(required = true, value_name = "CERT")]
        certs: Vec<PathBuf>,
        /// Generate a new key pair instead of keeping the old one.
        #[arg(long)]
        new_key: bool,
        /// With --new-key and one CERT: the key file to replace (default:
        /// <stem>.key beside CERT).
        #[arg(long, requires = "new_key")]
        key: Option<PathBuf>,
        /// Renew only a certificate that expires within this time (e.g.
        /// 30d); the others are left alone.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        if_expiring_within: Option<Duration>,
        /// Validity of the new certificates; default: each old one's.
        #[arg(long)]
        validity_days: Option<u64>,
    },
    /// Write the CA's client-certificate revocation list (for tls.client_crl).
    ///
    /// Reads --out when it exists (a CRL of the same CA: its entries are
    /// kept), adds each --revoke certificate and --revoke-serial, and writes
    /// the next CRL (CRL number + 1, signed by the CA) atomically as PEM.
    /// Without anything to revoke it re-signs the list with a new nextUpdate
    /// (or makes an empty one). A running daemon refuses a revoked client at
    /// the TLS handshake from its next reload check on.
    Crl {
        /// Directory holding ca.pem and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The CRL file to update (PEM or DER in; PEM out).
        #[arg(long)]
        out: PathBuf,
        /// A client certificate (PEM) to revoke (repeatable).
        #[arg(long = "revoke", value_name = "CERT")]
        revoke: Vec<PathBuf>,
        /// A serial number (hex) to revoke, e.g. from `openssl x509 -serial`
        /// (repeatable).
        #[arg(long = "revoke-serial", value_name = "HEX")]
        revoke_serials: Vec<String>,
        /// Days until the CRL's nextUpdate.
        #[arg(long, default_value_t = 30)]
        next_update_days: u64,
    },
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Pki(command) => run_pki(command),
        Command::Service(command) => run_service(command),
        Command::Audit(AuditCommand::Verify(args)) => return audit_verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("provd: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_pki(command: PkiCommand) -> anyhow::Result<()> {
    let written = match command {
        PkiCommand::Renew {
            ca_dir,
            certs,
            new_key,
            key,
            if_expiring_within,
            validity_days,
        } => {
            let outcomes = pki::renew(&pki::RenewOptions {
                ca_dir,
                certs,
                key,
                new_key,
                if_expiring_within,
                validity: validity_days.map(days),
            })?;
            for outcome in outcomes {
                println!("{}", describe_renewal(&outcome));
            }
            return Ok(());
        }
        PkiCommand::Crl {
            ca_dir,
            out,
            revoke,
            revoke_serials,
            next_update_days,
        } => {
            let outcome = pki::crl(&pki::CrlOptions {
                ca_dir,
                out,
                revoke_certs: revoke,
                revoke_serials,
                next_update: days(next_update_days),
            })?;
            println!(
                "{}: {} revoked ({} added), next update {}",
                outcome.path.display(),
                outcome.revoked.len(),
                outcome.added.len(),
                pki::rfc3339(outcome.next_update)
            );
            for serial in &outcome.added {
                println!("revoked serial {serial}");
            }
            return Ok(());
        }
        PkiCommand::Init {
            dir,
            server_dns,
            server_ips,
            validity_days,
            force,
        } => pki::init(&pki::InitOptions {
            dir,
            server_dns,
            server_ips,
            validity: days(validity_days),
            force,
        })?,
        PkiCommand::Issue {
            ca_dir,
            out,
            name,
            roles,
            server_dns,
            server_ips,
            validity_days,
            force,
        } => {
            let kind = if server_dns.is_empty() && server_ips.is_empty() {
                pki::IssueKind::Client { roles }
            } else if roles.is_empty() {
                pki::IssueKind::Server {
                    dns_names: server_dns,
                    ips: server_ips,
                }
            } else {
                anyhow::bail!(
                    "give either --role (client) or --server-dns/--server-ip (server), not both"
                );
            };
            pki::issue(&pki::IssueOptions {
                ca_dir,
                out_dir: out,
                name,
                kind,
                validity: days(validity_days),
                force,
            })?
        }
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// One line per certificate: what `provd pki renew` did with it.
fn describe_renewal(outcome: &pki::RenewOutcome) -> String {
    match outcome {
        pki::RenewOutcome::Renewed(renewed) => {
            let pki::Renewed {
                cert,
                new_key,
                old,
                new,
                ca_expires_first,
            } = renewed.as_ref();
            let mut line = format!(
                "renewed {}: serial {} (was {}), notAfter {} (was {}), {}",
                cert.display(),
                new.serial,
                old.serial,
                pki::rfc3339(new.not_after),
                pki::rfc3339(old.not_after),
                match new_key {
                    Some(key) => format!("new key {}", key.display()),
                    None => "same key".to_owned(),
                }
            );
            if let Some(ca) = ca_expires_first {
                line.push_str(&format!(
                    "; note: the CA expires first ({}), rotate it before then",
                    pki::rfc3339(*ca)
                ));
            }
            line
        }
        pki::RenewOutcome::Skipped { cert, not_after } => format!(
            "skipped {}: expires {}, not within --if-expiring-within",
            cert.display(),
            pki::rfc3339(*not_after)
        ),
    }
}

/// `provd audit verify`: 0 intact, 1 broken, 2 unreadable.
fn audit_verify(args: AuditVerifyArgs) -> ExitCode {
    // The certificate: --cert (must be readable), else the configured
    // tls.cert when the configuration is loaded (compared if readable).
    let explicit_cert = args.cert.is_some();
    let located = match args.file {
        Some(file) => Ok((file, args.cert)),
        None => Config::load(&args.config).map(|config| {
            (
                config.audit.file(&config.state_dir),
                // A store certificate has no file: the signer is shown.
                args.cert.or(config.tls.cert),
            )
        }),
    };
    let (file, cert) = match located {
        Ok(found) => found,
        Err(err) => {
            eprintln!("provd: {err} (or give the log with --file)");
            return ExitCode::from(2);
        }
    };
    let trusted = match cert.as_deref().map(|c| (c, std::fs::read(c))) {
        None => None,
        Some((_, Ok(pem))) => Some(pem),
        Some((path, Err(err))) if explicit_cert => {
            eprintln!("provd: cannot read {}: {err}", path.display());
            return ExitCode::from(2);
        }
        Some((path, Err(err))) => {
            eprintln!(
                "provd: cannot read the server certificate {} ({err}); a checkpoint's signer is shown, not compared",
                path.display()
            );
            None
        }
    };
    let started = std::time::Instant::now();
    let report = match provd::backends::audit::verify_file(&file, trusted.as_deref()) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("provd: {err}");
            return ExitCode::from(2);
        }
    };
    let took = started.elapsed();
    println!("{}: {report}", file.display());
    if report.broken.is_some() {
        match (report.first_seq, report.last_seq) {
            (Some(a), Some(b)) => println!(
                "{} records before it check out (seq {a}-{b}); {took:.1?}",
                report.records
            ),
            _ => println!("no record before it checks out; {took:.1?}"),
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(windows)]
fn run_service(command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install { config } => winservice::install(config),
        ServiceCommand::Uninstall => winservice::uninstall(),
        ServiceCommand::Prepare { config } => service_files::prepare(&config),
        ServiceCommand::Purge { config } => service_files::purge(&config),
        ServiceCommand::Run(args) => {
            // Under the SCM stderr goes nowhere: the event log says why.
            let config = Config::load(&args.config)
                .inspect_err(|err| winservice::report_failed(err.to_string()))?;
            // Logs and exporters start inside the service's runtime.
            winservice::run(config)
        }
    }
}

#[cfg(not(windows))]
fn run_service(_command: ServiceCommand) -> anyhow::Result<()> {
    anyhow::bail!(
        "`provd service` manages a Windows service; on this system use `provd serve` (e.g. under systemd: deploy/systemd/provd.service)"
    )
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Declared after the runtime, so it is dropped (flushing the exporters)
    // while the runtime still runs.
    let _telemetry = {
        let _context = runtime.enter();
        provd::telemetry::init(&config.log, &config.telemetry)?
    };
    runtime.block_on(async move {
        let daemon = provd::Daemon::builder(config).start().await?;
        let stop = daemon.stop_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            stop.cancel();
        });
        daemon.wait().await;
        tracing::info!("provd stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
