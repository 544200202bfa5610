//! Loopback stand-ins for what Verify's outbound checks reach: a TLS server
//! whose certificate comes from a CA of the test's choosing (Microsoft's
//! look-alike, or a TLS-inspecting proxy's), a plain HTTP server (a CRL
//! host), and a small HTTP proxy (CONNECT tunnels and absolute-form GETs,
//! or a refusal) that records what it was asked. Nothing leaves 127.0.0.1.
//!
//! `loopback_reachability()` is what every test config's `[reachability]`
//! points at: a process-wide TLS server and CRL host on their own thread,
//! so no test ever probes Microsoft's documented endpoints.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use provd::config::{OutboundScheme, OutboundUrl, ReachabilityConfig};
use provd::pki::Ca;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::DAY;

/// The CA of the process-wide TLS server every test config trusts by name.
pub const LOOPBACK_CA: &str = "provd outbound test CA";

/// What one loopback server or proxy was asked, request line by line.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// `https://127.0.0.1:<port>` or `http://127.0.0.1:<port><path>`.
pub fn url(scheme: OutboundScheme, addr: SocketAddr, path: &str) -> OutboundUrl {
    OutboundUrl {
        scheme,
        host: addr.ip().to_string(),
        port: addr.port(),
        path: path.to_owned(),
    }
}

/// A TLS server on 127.0.0.1 presenting a certificate for 127.0.0.1 issued
/// by a fresh CA named `ca_name`. It completes handshakes and sends
/// nothing.
pub struct TlsServer {
    pub addr: SocketAddr,
}

impl TlsServer {
    pub async fn start(ca_name: &str) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_tls(listener, tls_config(ca_name)));
        TlsServer { addr }
    }

    pub fn url(&self) -> OutboundUrl {
        url(OutboundScheme::Https, self.addr, "/")
    }
}

fn tls_config(ca_name: &str) -> Arc<rustls::ServerConfig> {
    let ca = Ca::generate(ca_name, DAY).unwrap();
    let leaf = ca
        .issue_server(&["localhost".into()], &["127.0.0.1".parse().unwrap()], DAY)
        .unwrap();
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

async fn serve_tls(listener: TcpListener, config: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                // Until the probe closes.
                let _ = tls.read(&mut [0u8; 1]).await;
            }
        });
    }
}

/// Reads a request head (up to the blank line) and returns its first line.
async fn request_line(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    text.lines().next().map(str::to_owned)
}

/// A plain HTTP server on 127.0.0.1 answering every request `200 OK`: a
/// CRL host.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub seen: Seen,
}

impl HttpServer {
    pub async fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        tokio::spawn(serve_http(listener, seen.clone()));
        HttpServer { addr, seen }
    }

    pub fn url(&self, path: &str) -> OutboundUrl {
        url(OutboundScheme::Http, self.addr, path)
    }
}

async fn serve_http(listener: TcpListener, seen: Seen) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            if let Some(line) = request_line(&mut tcp).await {
                seen.lock().unwrap().push(line);
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
    }
}

/// What the test proxy does with each request.
#[derive(Debug, Clone, Copy)]
pub enum ProxyMode {
    /// Tunnels CONNECT and forwards absolute-form GETs.
    Forward,
    /// Answers every request with this status.
    Refuse(u16),
}

/// An HTTP proxy on 127.0.0.1 recording each request line.
pub struct Proxy {
    pub addr: SocketAddr,
    pub seen: Seen,
}

impl Proxy {
    pub async fn start(mode: ProxyMode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        tokio::spawn(serve_proxy(listener, mode, seen.clone()));
        Proxy { addr, seen }
    }

    /// `http://127.0.0.1:<port>`, as an exe.config's `proxyaddress`.
    pub fn address(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_proxy(listener: TcpListener, mode: ProxyMode, seen: Seen) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let Some(line) = request_line(&mut client).await else {
                return;
            };
            seen.lock().unwrap().push(line.clone());
            let mut parts = line.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if let ProxyMode::Refuse(status) = mode {
                let answer = format!("HTTP/1.1 {status} Refused by the test proxy\r\n\r\n");
                let _ = client.write_all(answer.as_bytes()).await;
                return;
            }
            if method == "CONNECT" {
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            // GET http://host:port/path: the origin form to the host.
            let Some(rest) = target.strip_prefix("http://") else {
                let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                return;
            };
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let Ok(mut upstream) = TcpStream::connect(authority).await else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            };
            let request = format!(
                "{method} {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
                if path.is_empty() { "/" } else { path }
            );
            let _ = upstream.write_all(request.as_bytes()).await;
            let _ = tokio::io::copy(&mut upstream, &mut client).await;
        });
    }
}

/// A port on 127.0.0.1 nobody listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `[reachability]` pointing at the process-wide loopback TLS server and
/// CRL host (issuer `LOOPBACK_CA`), started on first use.
pub fn loopback_reachability() -> ReachabilityConfig {
    static SHARED: OnceLock<(SocketAddr, SocketAddr)> = OnceLock::new();
    let (tls, http) = *SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let tls = TlsServer::start(LOOPBACK_CA).await;
                let http = HttpServer::start().await;
                tx.send((tls.addr, http.addr)).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    });
    ReachabilityConfig {
        endpoints: vec![
            url(OutboundScheme::Https, tls, "/"),
            url(OutboundScheme::Http, http, "/crl"),
        ],
        expected_issuers: vec![LOOPBACK_CA.to_owned()],
        ..ReachabilityConfig::default()
    }
}
