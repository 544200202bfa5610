//! A loopback HTTPS file server for Install's https:// sources, with a
//! certificate from a fresh test CA (written to `ca.pem` for
//! `host.package_ca_file`), that misbehaves on demand: drops the
//! connection mid-body, ignores Range, lies about the size, never ends.
//! Nothing leaves 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use provd::pki::Ca;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::DAY;

/// How the server answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Misbehave {
    /// The first answer sends this many body bytes, then drops the
    /// connection (its Content-Length says the whole).
    pub drop_first_after: Option<usize>,
    /// Answer a Range request with 200 and the whole body.
    pub ignore_range: bool,
    /// No Content-Length; the body repeats forever (until the client goes).
    pub endless: bool,
    /// Content-Length says this, whatever the body is.
    pub claim_length: Option<u64>,
}

pub struct PackageServer {
    pub addr: SocketAddr,
    pub ca_file: PathBuf,
    /// Each request's first line and its Range header ("-" if none).
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl PackageServer {
    pub async fn start(dir: &Path, body: Vec<u8>, how: Misbehave) -> PackageServer {
        let ca = Ca::generate("provd package source test CA", DAY).unwrap();
        let leaf = ca
            .issue_server(&["localhost".into()], &["127.0.0.1".parse().unwrap()], DAY)
            .unwrap();
        let ca_file = dir.join("package-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let body = Arc::new(body);
        let answered = Arc::new(AtomicUsize::new(0));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, body, record, answered) = (
                    acceptor.clone(),
                    body.clone(),
                    record.clone(),
                    answered.clone(),
                );
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    let range = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("range")
                                .then(|| value.trim().to_owned())
                        })
                        .unwrap_or_else(|| "-".into());
                    record.lock().unwrap().push((line, range.clone()));
                    let nth = answered.fetch_add(1, Ordering::SeqCst);
                    let from = range
                        .strip_prefix("bytes=")
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|_| !how.ignore_range);
                    if how.endless {
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                            .await;
                        while tls.write_all(&body).await.is_ok() {}
                        return;
                    }
                    let total = body.len();
                    let start = from.unwrap_or(0).min(total);
                    let length = how.claim_length.unwrap_or((total - start) as u64);
                    let status = match from {
                        Some(_) => format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\n",
                            total.saturating_sub(1)
                        ),
                        None => "HTTP/1.1 200 OK\r\n".to_owned(),
                    };
                    let head = format!(
                        "{status}Content-Length: {length}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let mut part = &body[start..];
                    if nth == 0
                        && let Some(after) = how.drop_first_after
                    {
                        part = &part[..after.min(part.len())];
                        let _ = tls.write_all(part).await;
                        let _ = tls.flush().await;
                        // Dropped without close_notify: a cut connection.
                        return;
                    }
                    let _ = tls.write_all(part).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        PackageServer {
            addr,
            ca_file,
            seen,
        }
    }

    /// `https://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.addr.port())
    }

    pub fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}
