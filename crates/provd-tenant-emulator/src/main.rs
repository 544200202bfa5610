//! `provd-tenant-emulator`: a LAB stand-in for the Microsoft Entra tenant
//! that provd talks to. It is NOT Microsoft's service and implements only
//! the documented shapes provd needs, in memory, over HTTPS:
//!
//! - the OAuth 2.0 device authorization grant (RFC 8628) with Microsoft
//!   identity platform shapes
//!   (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>);
//! - Microsoft Graph beta provisioning agents, agent groups and published
//!   resources
//!   (<https://learn.microsoft.com/graph/api/onpremisesagent-list?view=graph-rest-beta>);
//! - token audiences: each token is for one resource, derived from the
//!   scope; Graph accepts only Graph tokens and the registration service
//!   only registration tokens; which client may have which audience is the
//!   `--client-audience` table (`audience.rs`);
//! - the connector registration `POST /register/RegisterConnector`, whose
//!   shape follows public third-party research, not Microsoft documentation
//!   (`register.rs`); heartbeats (which may
//!   report the agent's domains) and the agent's writeback call, which
//!   Microsoft does not document (modelled); the agent's calls must come
//!   over a TLS connection that presented its own client certificate;
//! - the cloud sync configuration through Microsoft Graph beta (the
//!   organization's sync flag, the cloud sync application template, its
//!   service principals' synchronization jobs, secrets and schema, agent
//!   group links) and a job engine that "syncs" the users an active agent
//!   of the domain counted (`sync/`;
//!   <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>);
//! - lab controls under `/_lab/` (approve/deny device codes, create
//!   published resources, inject faults, `/_lab/sync/`) that a real tenant
//!   does not have.
//!
//! Start: `provd-tenant-emulator --listen 127.0.0.1:0 --tls-cert server.pem
//! --tls-key server.key`. The first line on stdout is
//! `listening on https://<addr>`.
//!
//! TLS asks every client for a certificate but does not require one: OAuth,
//! Graph and `/_lab/` calls work without (provd's tenant client and curl send
//! none). A certificate that is sent must chain to the emulator's agent CA
//! (generated at start, `GET /_lab/agent-ca`), or the handshake fails; the
//! verified leaf's common name reaches the handlers as
//! [`agent::PeerCertificate`].
//!
//! A connection that does not start with a TLS handshake gets plain HTTP
//! instead: the LAB stand-in for Microsoft's CRL hosts on port 80 (`crl.rs`),
//! which the labs' `[reachability]` names for provd's `host.outbound.crl`.

mod agent;
mod audience;
mod crl;
mod graph;
mod lab;
mod oauth;
mod publish;
mod register;
mod respond;
mod state;
mod sync;
mod tokens;
mod xml;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post, put};
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use state::{AgentCa, App, Settings};

/// The tenant id used when `--tenant` is not given (a fixed LAB GUID).
const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-00000000beef";

/// The connector framework's public client for unattended registration
/// (Microsoft's private network connector page; see `register.rs`).
const CONNECTOR_CLIENT: &str = "55747057-9b5d-4bd4-b387-abf52a8bd489";

/// Microsoft Graph Command Line Tools, provd's default Graph client.
const GRAPH_CLI_CLIENT: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// LAB emulator of the Microsoft Entra tenant side of the cloud sync
/// provisioning-agent setup (device code sign-in, Graph provisioning agents,
/// agent registration). Not Microsoft's service.
#[derive(Debug, Parser)]
#[command(name = "provd-tenant-emulator", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Server certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// Tenant id accepted in /{tenant}/oauth2/v2.0/... ("common" and
    /// "organizations" are accepted too).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Device code lifetime: seconds or a duration like "15m".
    #[arg(long, default_value = "900", value_parser = parse_duration)]
    device_code_ttl: Duration,
    /// Minimum device code polling interval: seconds or a duration.
    #[arg(long, default_value = "5", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Access token lifetime: seconds or a duration.
    #[arg(long, default_value = "3600", value_parser = parse_duration)]
    token_ttl: Duration,
    /// An agent without a heartbeat for this long is listed "inactive".
    #[arg(long, default_value = "30", value_parser = parse_duration)]
    inactive_after: Duration,
    /// Audience (`aud`) of Microsoft Graph tokens: what a scope like
    /// `https://graph.microsoft.com/.default` asks for.
    #[arg(long, default_value = "https://graph.microsoft.com")]
    graph_audience: String,
    /// Audience of the connector registration service's tokens.
    #[arg(long, default_value = "https://proxy.cloudwebappproxy.net/registerapp")]
    registration_audience: String,
    /// CLIENT=AUDIENCE: that public client may get tokens for that audience
    /// (repeatable). Given at all, it replaces the LAB defaults: the
    /// connector client 55747057-… both audiences, Graph Command Line Tools
    /// 14d82eec-… Graph only. A client not listed gets Graph tokens only.
    #[arg(long = "client-audience", value_parser = parse_client_audience)]
    client_audience: Vec<(String, String)>,
    /// How often synchronization jobs run a cycle: seconds or a duration
    /// (Microsoft's cloud sync: every 2 minutes).
    #[arg(long, default_value = "2", value_parser = parse_duration)]
    sync_interval: Duration,
    /// Answer every synchronization secret's value as "*" on GET, as a
    /// tenant that masks sensitive values does.
    #[arg(long)]
    mask_secrets: bool,
}

fn parse_client_audience(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((client, audience)) if !client.is_empty() && !audience.is_empty() => {
            Ok((client.to_owned(), audience.to_owned()))
        }
        _ => Err("expected CLIENT=AUDIENCE".to_owned()),
    }
}

/// The `--client-audience` table, or the LAB defaults.
fn client_audiences(args: &Args) -> Vec<(String, String)> {
    if !args.client_audience.is_empty() {
        return args.client_audience.clone();
    }
    vec![
        (CONNECTOR_CLIENT.into(), args.registration_audience.clone()),
        (CONNECTOR_CLIENT.into(), args.graph_audience.clone()),
        (GRAPH_CLI_CLIENT.into(), args.graph_audience.clone()),
    ]
}

/// Whole seconds ("30") or a humantime duration ("2s", "500ms", "15m").
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string())?,
    };
    if duration.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(duration)
}

fn router(app: App) -> Router {
    const PROVISIONING: &str = "/beta/onPremisesPublishingProfiles/provisioning";
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/devicelogin", get(oauth::devicelogin))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(oauth::devicecode))
        .route("/{tenant}/oauth2/v2.0/token", post(oauth::token))
        .route(&format!("{PROVISIONING}/agents"), get(graph::list_agents))
        .route(
            &format!("{PROVISIONING}/agents/{{id}}"),
            get(graph::get_agent),
        )
        .route(
            &format!("{PROVISIONING}/agents/{{id}}/passwordWriteback"),
            get(graph::get_writeback),
        )
        .route(
            &format!("{PROVISIONING}/agentGroups"),
            get(graph::list_groups),
        )
        .route(
            &format!("{PROVISIONING}/publishedResources"),
            get(graph::list_resources),
        )
        .route(
            "/register/RegisterConnector",
            post(register::register_connector),
        )
        .route("/_agent/{id}/heartbeat", post(agent::heartbeat))
        .route("/_agent/{id}/passwordWriteback", put(agent::put_writeback))
        .route("/_lab/device/approve", post(oauth::lab_approve))
        .route("/_lab/device/deny", post(oauth::lab_deny))
        .route("/_lab/device/pending", get(oauth::lab_pending))
        .route("/_lab/published-resources", post(lab::create_resource))
        .route("/_lab/agent-ca", get(lab::agent_ca))
        .route("/_lab/agent-certificates", post(lab::agent_certificates))
        .route("/_lab/issued-secrets", get(lab::issued_secrets))
        .route(
            "/_lab/faults",
            post(lab::add_fault).delete(lab::clear_faults),
        )
        .merge(sync::routes())
        .fallback(|| async {
            respond::graph_error(
                axum::http::StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "Unknown path in the LAB tenant emulator.",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            lab::inject_faults,
        ))
        // Outermost: a sync call that gets a fault was still made.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            sync::record_calls,
        ))
        .with_state(app)
}

/// The server's TLS: its own certificate, and client certificates requested
/// but optional, trusted only when they chain to `agent_ca`.
fn tls_config(
    cert: &Path,
    key: &Path,
    agent_ca: &CertificateDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_pem =
        std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: bad PEM", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .with_context(|| format!("{}: no usable private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(agent_ca.clone())
        .context("the agent CA is not a usable trust anchor")?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .context("client certificate verifier")?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key_der)
        .context("server certificate and key do not fit")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, router: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] != crl::TLS_HANDSHAKE => return crl::serve(tcp, addr).await,
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return,
            }
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(peer = %addr, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            // rustls verified the chain (agent CA only); absent when the
            // client sent no certificate.
            let peer_certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(agent::PeerCertificate::from_leaf);
            let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(addr));
                if let Some(peer) = &peer_certificate {
                    request.extensions_mut().insert(peer.clone());
                }
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(peer = %addr, error = %err, "connection ended with an error");
            }
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();

    let agent_ca = AgentCa::generate().context("cannot generate the agent CA")?;
    let tls = tls_config(&args.tls_cert, &args.tls_key, &agent_ca.cert_der)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let client_audiences = client_audiences(&args);
    let app = App::new(
        Settings {
            tenant: args.tenant,
            base_url: format!("https://{addr}"),
            device_code_ttl: args.device_code_ttl,
            poll_interval: args.poll_interval,
            token_ttl: args.token_ttl,
            inactive_after: args.inactive_after,
            graph_audience: args.graph_audience,
            registration_audience: args.registration_audience,
            client_audiences,
            sync_interval: args.sync_interval,
            mask_secrets: args.mask_secrets,
        },
        agent_ca,
    );
    tokio::spawn(sync::ticker(app.clone()));

    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on https://{addr}")?;
        stdout.flush()?;
    }
    tracing::info!(%addr, "provd-tenant-emulator started (LAB tool, not Microsoft's service)");

    tokio::select! {
        () = serve(listener, tls, router(app)) => {}
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
