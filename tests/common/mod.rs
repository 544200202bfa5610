//! Shared test harness: a test CA, a daemon on 127.0.0.1:0 (in-process or
//! as the real binary), and clients per role over gRPC and HTTP/JSON.
#![allow(dead_code)]

pub mod configuration;
pub mod fixtures;
pub mod hermetic;
pub mod lab;
pub mod otlp;
pub mod otlp_prometheus;
pub mod outbound;
pub mod package_server;
pub mod prometheus;
pub mod tenant;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use provd::config::{Config, HostConfig, LogConfig, LogFormat, TenantConfig, TlsConfig};
use provd::pki::{Ca, PemPair, Role};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub const DAY: Duration = Duration::from_secs(86_400);
pub const YEAR: Duration = Duration::from_secs(365 * 86_400);

pub struct Pki {
    pub ca: Ca,
    pub dir: PathBuf,
}

impl Pki {
    /// A CA plus server files in `dir` (server.pem, server.key, ca.pem),
    /// valid for a year: Verify's `provd.certificate.expiry` passes.
    pub fn create(dir: &Path) -> Pki {
        provd::install_crypto_provider();
        std::fs::create_dir_all(dir).unwrap();
        let ca = Ca::generate("provd test CA", YEAR).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
        let pki = Pki {
            ca,
            dir: dir.to_owned(),
        };
        pki.write_server(YEAR);
        pki
    }

    /// Replaces server.pem and server.key with a new certificate for
    /// localhost and 127.0.0.1, valid `validity` from now (key first).
    pub fn write_server(&self, validity: Duration) -> PemPair {
        let server = self
            .ca
            .issue_server(
                &["localhost".into()],
                &["127.0.0.1".parse().unwrap()],
                validity,
            )
            .unwrap();
        std::fs::write(self.dir.join("server.key"), &server.key_pem).unwrap();
        std::fs::write(self.dir.join("server.pem"), &server.cert_pem).unwrap();
        server
    }

    /// Writes the CA's key beside ca.pem, as `provd pki init` leaves it
    /// (what `provd pki renew` and `provd pki crl` sign with).
    pub fn write_ca_key(&self) {
        std::fs::write(self.dir.join("ca.key"), self.ca.key_pem()).unwrap();
    }

    pub fn client(&self, name: &str, roles: &[Role]) -> PemPair {
        self.ca.issue_client(name, roles, DAY).unwrap()
    }

    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }
}

pub fn config(dir: &Path, pki_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.join("state"),
        tls: TlsConfig {
            cert: Some(pki_dir.join("server.pem")),
            key: Some(pki_dir.join("server.key")),
            client_ca: Some(pki_dir.join("ca.pem")),
            client_crl: None,
            cert_thumbprint: None,
            cert_subject: None,
            cert_store: provd::config::DEFAULT_CERT_STORE.into(),
            client_ca_store: None,
            reload_interval: Duration::from_millis(100),
        },
        log: LogConfig {
            format: LogFormat::Text,
            filter: "warn".into(),
            file: None,
        },
        shutdown_grace: Duration::from_secs(2),
        directory: Default::default(),
        // A closed loopback port, not the cloud's: a test on the real tenant
        // client (Harness, the RPC table walk) would otherwise look up and
        // reach login.microsoftonline.com and graph.microsoft.com. Tests of
        // the tenant point it at the emulator or replace the client.
        tenant: TenantConfig {
            authority: Some("https://127.0.0.1:9".into()),
            graph: Some("https://127.0.0.1:9".into()),
            ..Default::default()
        },
        // Tests hold an Install in flight by streaming its package from a pipe.
        host: HostConfig {
            allow_fifo_packages: true,
            ..Default::default()
        },
        agent_module: Default::default(),
        telemetry: Default::default(),
        http: Default::default(),
        drift: Default::default(),
        // Verify's outbound checks probe loopback servers, never
        // Microsoft's documented endpoints.
        reachability: outbound::loopback_reachability(),
        audit: Default::default(),
    }
}

/// An in-process daemon with its own temp dir and CA.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub addr: SocketAddr,
    pub daemon: Option<provd::DaemonHandle>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    /// A daemon with `adjust` applied to its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
        Self::start_prepared(|_, config| adjust(config)).await
    }

    /// A daemon started after `prepare` saw its PKI (to write other
    /// certificates, a CRL) and adjusted its configuration.
    pub async fn start_prepared(prepare: impl FnOnce(&Pki, &mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(&dir.path().join("pki"));
        let mut config = config(dir.path(), &pki.dir);
        prepare(&pki, &mut config);
        let daemon = provd::Daemon::builder(config).start().await.unwrap();
        Harness {
            addr: daemon.local_addr(),
            dir,
            pki,
            daemon: Some(daemon),
        }
    }

    pub async fn channel(&self, role: Role) -> Channel {
        let pair = self.pki.client(role.as_str(), &[role]);
        channel(self.addr, &self.pki.ca_pem(), &pair).await.unwrap()
    }

    pub fn http(&self, role: Role) -> reqwest::Client {
        let pair = self.pki.client(role.as_str(), &[role]);
        http_client(&self.pki.ca_pem(), Some(&pair))
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }

    pub async fn shutdown(mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await;
        }
    }
}

pub async fn channel(
    addr: SocketAddr,
    ca_pem: &str,
    pair: &PemPair,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(&pair.cert_pem, &pair.key_pem))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// A rustls client config trusting `ca_pem`, presenting `pair` if given.
pub fn rustls_client(ca_pem: &str, pair: Option<&PemPair>) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    provd::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match pair {
        Some(pair) => {
            let chain = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

pub fn http_client(ca_pem: &str, pair: Option<&PemPair>) -> reqwest::Client {
    let mut tls = rustls_client(ca_pem, pair);
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Connects with raw TLS, sends `GET /healthz` over HTTP/1.1 and returns the
/// status line, or the error that ended the handshake or the read.
pub async fn raw_healthz(addr: SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    text.lines()
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| "empty response".to_owned())
}

/// The certificate (DER) a new TLS connection is served, presenting `pair`.
pub async fn served_certificate(
    addr: SocketAddr,
    ca_pem: &str,
    pair: &PemPair,
) -> Result<Vec<u8>, String> {
    served_tls(addr, ca_pem, pair).await.map(|(_, leaf)| leaf)
}

/// The protocol version and the certificate (DER) a new TLS connection is
/// served, presenting `pair`.
pub async fn served_tls(
    addr: SocketAddr,
    ca_pem: &str,
    pair: &PemPair,
) -> Result<(rustls::ProtocolVersion, Vec<u8>), String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(rustls_client(ca_pem, Some(pair))));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let connection = tls.get_ref().1;
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or("no server certificate")?;
    let version = connection.protocol_version().ok_or("no protocol version")?;
    Ok((version, leaf.to_vec()))
}

/// The DER of the first certificate in a PEM file.
pub fn certificate_der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    provd::pki::certificates_from_pem(&pem, "test")
        .unwrap()
        .remove(0)
}

/// Polls `probe` every 100 ms until it returns `Some`, for up to 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything logged on this thread (a current-thread runtime: the
/// daemon's tasks too), at every level, while it lives.
pub struct LogCapture {
    /// `&File` writes, so an `Arc<File>` is a `MakeWriter`.
    log: Arc<std::fs::File>,
    _guard: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

impl LogCapture {
    pub fn start() -> LogCapture {
        // A second (silent) dispatcher is registered first: with a single
        // one, tracing-core computes a callsite's interest from the default
        // of whichever thread hits it first, and other tests' threads would
        // disable provd's callsites for this capture too.
        let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let log = Arc::new(tempfile::tempfile().unwrap());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .finish();
        LogCapture {
            log,
            _guard: tracing::subscriber::set_default(subscriber),
            _second: second,
        }
    }

    pub fn text(&self) -> String {
        use std::io::{Read, Seek};
        let mut file = self.log.as_ref();
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    }
}

/// Creates a named pipe whose name ends in `.msi`, and returns its path.
#[cfg(unix)]
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    path
}

/// Writes `data` into the pipe once the daemon opens it, then closes it.
pub fn feed_fifo(path: PathBuf, data: Vec<u8>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(&data).unwrap();
    })
}

/// (ca, cert, key) paths of an admin client certificate `name` of `h`'s
/// CA, written under `dir` (for provctl's flags and inventories).
pub fn admin_client_files(h: &Harness, dir: &Path, name: &str) -> (String, String, String) {
    client_files(h, dir, name, &[Role::Admin])
}

/// A client certificate with `roles` for `h`, written to `dir`: (CA, cert,
/// key) paths.
pub fn client_files(
    h: &Harness,
    dir: &Path,
    name: &str,
    roles: &[Role],
) -> (String, String, String) {
    let pair = h.pki.client(name, roles);
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (
        h.pki.dir.join("ca.pem").display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Discovery that read the directory's own list (every DC from DNS and
/// the directory) and bound each probe: what a read-only RPC shows when it
/// could bind, with the request's credential or as this host.
pub fn assert_read_and_bound(found: &provd_proto::v1::DiscoverDomainControllersResponse) {
    assert!(
        found.directory_unavailable_reason.is_empty(),
        "{}",
        found.directory_unavailable_reason
    );
    assert_eq!(found.domain_controllers.len(), 2, "{found:?}");
    for dc in &found.domain_controllers {
        assert_eq!(dc.source, provd_proto::v1::DcSource::Both as i32, "{dc:?}");
        let probe = dc.probe.as_ref().expect("probed");
        assert!(probe.error.is_empty(), "{}: {}", dc.host_name, probe.error);
        assert!(probe.bind_latency.is_some(), "{}: not bound", dc.host_name);
    }
}

/// Watches `op` to its terminal state: its events, then the final operation.
pub async fn finish(
    channel: &Channel,
    op: provd_proto::v1::Operation,
) -> (
    Vec<provd_proto::v1::OperationEvent>,
    provd_proto::v1::Operation,
) {
    finish_with(channel, op, None).await
}

/// [`finish`], approving each device-code sign-in the operation asks for
/// at `tenant` (as a person would, with the code from the event).
pub async fn finish_with(
    channel: &Channel,
    op: provd_proto::v1::Operation,
    tenant: Option<&tenant::TenantEmulator>,
) -> (
    Vec<provd_proto::v1::OperationEvent>,
    provd_proto::v1::Operation,
) {
    let mut ops =
        provd_proto::v1::operations_service_client::OperationsServiceClient::new(channel.clone());
    let mut stream = ops
        .watch_operation(provd_proto::v1::WatchOperationRequest {
            id: op.id,
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(180), stream.message())
            .await
            .expect("operation did not end")
            .unwrap()
            .unwrap();
        match item.item.unwrap() {
            provd_proto::v1::watch_operation_response::Item::Event(e) => {
                if let Some(tenant) = tenant
                    && e.kind == provd_proto::v1::EventKind::ActionRequired as i32
                {
                    tenant.approve(&e.attributes["user_code"]).await;
                }
                events.push(e);
            }
            provd_proto::v1::watch_operation_response::Item::Operation(op) => return (events, op),
        }
    }
}

/// A binary of another workspace crate (provctl, the tenant emulator) in the
/// target directory this test runs from. Cargo sets `CARGO_BIN_EXE_*` only for
/// the test's own package; `cargo test` at the workspace root builds every
/// member's binaries before any test runs.
pub fn workspace_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries (cargo build --workspace --bins)",
        path.display()
    );
    path.display().to_string()
}
