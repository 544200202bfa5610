//! `provd`: the daemon (`provd serve`) and its operator tools (`provd pki`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

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
    /// Create and issue certificates for provd and its clients.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run provd as a Windows service (Windows only).
    #[command(subcommand)]
    Service(ServiceCommand),
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

#[cfg(windows)]
fn run_service(command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install { config } => winservice::install(config),
        ServiceCommand::Uninstall => winservice::uninstall(),
        ServiceCommand::Run(args) => {
            let config = Config::load(&args.config)?;
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
