//! Server-side mutual TLS: one rustls configuration (ring provider) that
//! requires a client certificate signed directly by a certificate in the
//! configured CA file (no intermediate CAs; see [`DirectClientVerifier`]) and
//! not revoked by the optional client CRL file, offers both `h2` (gRPC,
//! JSON) and `http/1.1` (JSON, health) by ALPN, and is republished through a
//! `watch` channel whenever the certificate, key, CA or CRL files change, so
//! rotation and revocation need no restart. A bad new file keeps the old
//! configuration and is logged (at each check, until the files load). Each
//! configuration that loads is also published as plain DER certificates
//! ([`ServedCertificates`]) for Verify's `provd.certificate.expiry`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use tokio::sync::watch;

use crate::pki::{self, ServedCertificates};

/// The settings whose files make up the configuration, as errors name them.
const CERT: &str = "tls.cert";
const KEY: &str = "tls.key";
const CLIENT_CA: &str = "tls.client_ca";
const CLIENT_CRL: &str = "tls.client_crl";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting} {path}: cannot read it: {reason}")]
    Read {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("{setting} {path} holds no PEM {what}")]
    Empty {
        setting: &'static str,
        path: String,
        what: &'static str,
    },
    #[error("{setting} {path}: {reason}")]
    Invalid {
        setting: &'static str,
        path: String,
        reason: String,
    },
    /// A client certificate that chains to the CA only through an
    /// intermediate the client sent.
    #[error(
        "client certificate is not signed directly by the client CA; intermediate CAs are not accepted"
    )]
    IntermediateCa,
}

impl TlsError {
    fn invalid(setting: &'static str, path: &Path, reason: impl ToString) -> TlsError {
        TlsError::Invalid {
            setting,
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The files that make up the server's TLS identity and trust.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    /// Revoked client certificates (PEM or DER CRLs of the client CAs).
    pub client_crl: Option<PathBuf>,
}

/// Installs ring as the process-wide rustls provider (idempotent). provd
/// uses exactly one provider; a second one in the graph would make rustls
/// refuse to pick.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        setting,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certs(
    setting: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::invalid(setting, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            setting,
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The CRLs of the client CRL file, each checked to be signed by a CA in
/// the client CA file (a CRL of another CA would revoke nothing provd
/// accepts: a mistake to report, not to ignore).
fn crls(
    path: &Path,
    bytes: &[u8],
    cas: &[CertificateDer<'static>],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let ders =
        pki::crl_ders(bytes).map_err(|reason| TlsError::invalid(CLIENT_CRL, path, reason))?;
    let cas: Vec<Vec<u8>> = cas.iter().map(|ca| ca.to_vec()).collect();
    for der in &ders {
        pki::crl_signed_by_any(der, &cas).map_err(|reason| {
            TlsError::invalid(CLIENT_CRL, path, format!("{reason} ({CLIENT_CA})"))
        })?;
    }
    Ok(ders
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect())
}

/// What one load produced: the configuration and what it serves.
type Loaded = (Arc<ServerConfig>, Arc<ServedCertificates>);

/// The files' bytes, as read together.
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Vec<u8>,
    client_crl: Option<Vec<u8>>,
}

impl Contents {
    /// The files as they are now; an unreadable one is an error naming it.
    fn read(files: &TlsFiles) -> Result<Contents, TlsError> {
        Ok(Contents {
            cert: read(CERT, &files.cert)?,
            key: read(KEY, &files.key)?,
            client_ca: read(CLIENT_CA, &files.client_ca)?,
            client_crl: match &files.client_crl {
                Some(path) => Some(read(CLIENT_CRL, path)?),
                None => None,
            },
        })
    }
}

fn server_config(files: &TlsFiles, contents: &Contents) -> Result<Loaded, TlsError> {
    let chain = certs(CERT, &files.cert, &contents.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key)
        .map_err(|e| TlsError::invalid(KEY, &files.key, e))?;
    let cas = certs(CLIENT_CA, &files.client_ca, &contents.client_ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in &cas {
        roots
            .add(ca.clone())
            .map_err(|e| TlsError::invalid(CLIENT_CA, &files.client_ca, e))?;
    }
    let crls = match (&files.client_crl, &contents.client_crl) {
        (Some(path), Some(bytes)) => crls(path, bytes, &cas)?,
        _ => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !crls.is_empty() {
        // A CRL covers the clients of the CA that signed it; a client of
        // another CA in the bundle (a rotation's new CA with no CRL yet)
        // is not refused for want of one. webpki checks each CRL's
        // signature and refuses a revoked serial at the handshake
        // (CertificateRevoked). A CRL past its nextUpdate still applies.
        builder = builder.with_crls(crls).allow_unknown_revocation_status();
    }
    let inner = builder.build().map_err(|e| match (&e, &files.client_crl) {
        (VerifierBuilderError::InvalidCrl(_), Some(path)) => TlsError::invalid(CLIENT_CRL, path, e),
        _ => TlsError::invalid(CLIENT_CA, &files.client_ca, e),
    })?;
    let verifier = Arc::new(DirectClientVerifier { inner });
    let served = ServedCertificates {
        cert_file: files.cert.clone(),
        client_ca_file: files.client_ca.clone(),
        chain: chain.iter().map(|c| c.to_vec()).collect(),
        client_cas: cas.iter().map(|c| c.to_vec()).collect(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::invalid(CERT, &files.cert, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::invalid(CERT, &files.cert, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), Arc::new(served)))
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
    /// What `current` serves, republished with it.
    pub served: watch::Receiver<Arc<ServedCertificates>>,
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
        let (config, served) = server_config(&files, &Contents::read(&files)?)?;
        let (tx, rx) = watch::channel(config);
        let (served_tx, served_rx) = watch::channel(served);
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
                let Some(contents) = now.contents(&files) else {
                    tracing::warn!("a TLS file is unreadable; keeping the current configuration");
                    continue;
                };
                match server_config(&files, &contents) {
                    Ok((config, served)) => {
                        tracing::info!(cert = %files.cert.display(), "TLS certificates reloaded");
                        let _ = tx.send(config);
                        let _ = served_tx.send(served);
                        seen = now;
                    }
                    // Often a half-written rotation: retry next tick.
                    Err(err) => {
                        tracing::warn!(error = %err, "new TLS files rejected; keeping the current ones");
                    }
                }
            }
        });
        Ok(Self {
            current: rx,
            served: served_rx,
        })
    }
}

/// The files' contents, `None` for one that cannot be read. Contents
/// rather than mtimes: rotations by rename keep mtimes, and the files are a
/// few KB.
#[derive(PartialEq, Eq)]
struct Snapshot {
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    client_ca: Option<Vec<u8>>,
    /// `Some(None)` when no CRL file is configured.
    client_crl: Option<Option<Vec<u8>>>,
}

impl Snapshot {
    /// Every configured file's bytes, or `None` when one is unreadable.
    fn contents(&self, files: &TlsFiles) -> Option<Contents> {
        let client_crl = match (&files.client_crl, &self.client_crl) {
            (None, _) => None,
            (Some(_), Some(Some(bytes))) => Some(bytes.clone()),
            (Some(_), _) => return None,
        };
        Some(Contents {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            client_ca: self.client_ca.clone()?,
            client_crl,
        })
    }
}

fn snapshot(files: &TlsFiles) -> Snapshot {
    Snapshot {
        cert: std::fs::read(&files.cert).ok(),
        key: std::fs::read(&files.key).ok(),
        client_ca: std::fs::read(&files.client_ca).ok(),
        client_crl: match &files.client_crl {
            Some(path) => std::fs::read(path).ok().map(Some),
            None => Some(None),
        },
    }
}
