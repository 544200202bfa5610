//! Server-side mutual TLS: one rustls configuration (ring provider) that
//! requires a client certificate signed directly by a certificate in the
//! configured CA file (no intermediate CAs; see [`DirectClientVerifier`]), offers both
//! `h2` (gRPC, JSON) and `http/1.1` (JSON, health) by ALPN, and is republished
//! through a `watch` channel whenever the certificate, key or CA files change,
//! so rotation needs no restart. A bad new file keeps the old configuration
//! and is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no PEM {what}")]
    Empty { path: String, what: &'static str },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// A client certificate that chains to the CA only through an
    /// intermediate the client sent.
    #[error(
        "client certificate is not signed directly by the client CA; intermediate CAs are not accepted"
    )]
    IntermediateCa,
}

/// The three files that make up the server's TLS identity and trust.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Installs ring as the process-wide rustls provider (idempotent). provd
/// uses exactly one provider; a second one in the graph would make rustls
/// refuse to pick.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Builds the server configuration from the files as they are now.
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_pem, key_pem, ca_pem) = (
        read(&files.cert)?,
        read(&files.key)?,
        read(&files.client_ca)?,
    );
    server_config_from_pem(files, &cert_pem, &key_pem, &ca_pem)
}

fn server_config_from_pem(
    files: &TlsFiles,
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(&files.cert, cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Invalid {
        path: files.key.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&files.client_ca, ca_pem)? {
        roots.add(ca).map_err(|e| TlsError::Invalid {
            path: files.client_ca.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Invalid {
            path: files.client_ca.display().to_string(),
            reason: e.to_string(),
        })?;
    let verifier = Arc::new(DirectClientVerifier { inner });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: files.cert.display().to_string(),
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: files.cert.display().to_string(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// webpki's client verification, given none of the intermediates the client
/// sent: a client certificate must be signed directly by a certificate in
/// the CA file. The provd CA signs leaves only (path length 0), but webpki
/// does not apply a trust anchor's own path length, and CAs made elsewhere
/// may have none; ignoring intermediates enforces it for every CA. A leaf
/// that is itself a CA is refused by webpki (`CaUsedAsEndEntity`).
#[derive(Debug)]
struct DirectClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for DirectClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.inner.verify_client_cert(end_entity, &[], now) {
            // Say why in the log when a sub-CA's leaf is what failed.
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if !intermediates.is_empty() =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(TlsError::IntermediateCa)),
                )))
            }
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The live server configuration plus the task that keeps it current.
pub struct ReloadingConfig {
    pub current: watch::Receiver<Arc<ServerConfig>>,
}

impl ReloadingConfig {
    /// Loads the files once (failing start-up if they are bad), then polls
    /// them every `interval` until `stop` fires, publishing a new
    /// configuration when their contents change and load cleanly.
    pub fn start(
        files: TlsFiles,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Self, TlsError> {
        let mut seen = snapshot(&files);
        let initial = load_server_config(&files)?;
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                let now = snapshot(&files);
                if now == seen {
                    continue;
                }
                match (&now.0, &now.1, &now.2) {
                    (Some(cert), Some(key), Some(ca)) => {
                        match server_config_from_pem(&files, cert, key, ca) {
                            Ok(config) => {
                                tracing::info!(cert = %files.cert.display(), "TLS certificates reloaded");
                                let _ = tx.send(config);
                                seen = now;
                            }
                            // Often a half-written rotation: retry next tick.
                            Err(err) => {
                                tracing::warn!(error = %err, "new TLS files rejected; keeping the current ones");
                            }
                        }
                    }
                    _ => tracing::warn!(
                        "a TLS file is unreadable; keeping the current configuration"
                    ),
                }
            }
        });
        Ok(Self { current: rx })
    }
}

type Snapshot = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Contents rather than mtimes: rotations by rename keep mtimes, and the
/// files are a few KB.
fn snapshot(files: &TlsFiles) -> Snapshot {
    (
        std::fs::read(&files.cert).ok(),
        std::fs::read(&files.key).ok(),
        std::fs::read(&files.client_ca).ok(),
    )
}
