//! The bench's PKI (a CA, the server's certificate, a viewer and an admin)
//! and the one client setup used against every server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use provd::pki::{Ca, PemPair, Role};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const DAY: Duration = Duration::from_secs(86_400);

pub struct Pki {
    pub ca_pem: String,
    pub server: PemPair,
    pub viewer: PemPair,
    pub admin: PemPair,
    dir: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Result<Pki> {
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

    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// The one client setup used against every server: rustls (ring) mTLS,
/// HTTP/2, TCP_NODELAY.
pub async fn connect(
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

/// `n` viewer channels to `addr`.
pub async fn connect_many(addr: SocketAddr, pki: &Pki, n: usize) -> Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(connect(addr, &pki.ca_pem, &pki.viewer, Duration::from_secs(5)).await?);
    }
    Ok(channels)
}
