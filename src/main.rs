//! `provd`: the daemon (`provd serve`) and its operator tools (`provd pki`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[cfg(windows)]
mod winservice;

use provd::config::{Config, LogFormat, Overrides};
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

#[derive(Args)]
struct ServeArgs {
    /// TOML config file (see deploy/config/provd.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// text or json
    #[arg(long, value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
    /// tracing filter, e.g. "info,provd=debug"
    #[arg(long)]
    log_filter: Option<String>,
    /// Append log lines to this file instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// CA bundle (PEM) domain controller certificates must chain to.
    #[arg(long)]
    directory_ca_file: Option<PathBuf>,
    /// DNS server for DC discovery, ip[:port] (repeatable).
    #[arg(long = "directory-dns-server")]
    directory_dns_servers: Vec<SocketAddr>,
    /// OTLP/gRPC collector to export traces and metrics to, e.g.
    /// http://127.0.0.1:4317; nothing is exported without one.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of text, json")),
    }
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
            let config = Config::load(&overrides(*args))?;
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

fn overrides(args: ServeArgs) -> Overrides {
    Overrides {
        config_file: args.config,
        listen: args.listen,
        state_dir: args.state_dir,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_ca: args.tls_client_ca,
        log_format: args.log_format,
        log_filter: args.log_filter,
        log_file: args.log_file,
        directory_ca_file: args.directory_ca_file,
        directory_dns_servers: args.directory_dns_servers,
        otlp_endpoint: args.otlp_endpoint,
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&overrides(args))?;
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
