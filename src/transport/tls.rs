//! Server-side mutual TLS: one rustls configuration (ring provider) that
//! requires a client certificate signed directly by one of the client CAs
//! (no intermediate CAs; see [`DirectClientVerifier`]) and not revoked by
//! the optional client CRL file, offers both `h2` (gRPC, JSON) and
//! `http/1.1` (JSON, health) by ALPN, and is republished through a `watch`
//! channel whenever its sources change, so rotation and revocation need no
//! restart. The sources are files (`tls.cert`, `tls.key`, `tls.client_ca`)
//! or, on Windows, the LocalMachine certificate store (`tls.cert_thumbprint`
//! or `tls.cert_subject`, `tls.client_ca_store`), whose key never leaves the
//! store. A bad new source keeps the old configuration and is logged (at
//! each check, until it loads). Each configuration that loads is also
//! published as plain DER certificates ([`ServedCertificates`]) for
//! Verify's `provd.certificate.expiry`, and as the key it serves, which the
//! audit checkpoints sign with when it has no file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use tokio::sync::watch;

use crate::config::{ClientCaSource, ServerCertSource};
use crate::pki::store::{self, CertQuery, StoreCertificate, StoreError};
use crate::pki::{self, ServedCertificates};

/// The settings that make up the configuration, as errors name them.
const CERT: &str = "tls.cert";
const KEY: &str = "tls.key";
const CLIENT_CA: &str = "tls.client_ca";
const CLIENT_CRL: &str = "tls.client_crl";
const CLIENT_CA_STORE: &str = "tls.client_ca_store";

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
    /// The certificate store: nothing found, or a call that failed.
    #[error("{setting}: {error}")]
    Store {
        setting: &'static str,
        error: StoreError,
    },
    /// A client certificate that chains to the CA only through an
    /// intermediate the client sent.
    #[error(
        "client certificate is not signed directly by the client CA; intermediate CAs are not accepted"
    )]
    IntermediateCa,
}

impl TlsError {
    /// `place`: the file, or the store path (`cert:\LocalMachine\My\…`).
    fn invalid(setting: &'static str, place: &str, reason: impl ToString) -> TlsError {
        TlsError::Invalid {
            setting,
            path: place.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Where the server's TLS identity and trust come from.
#[derive(Debug, Clone)]
pub struct TlsSources {
    pub server: ServerCertSource,
    pub client_ca: ClientCaSource,
    /// Revoked client certificates (PEM or DER CRLs of the client CAs).
    pub client_crl: Option<PathBuf>,
}

/// Installs ring as the process-wide rustls provider (idempotent). provd
/// uses exactly one provider; a second one in the graph would make rustls
/// refuse to pick.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(setting: &'static str, path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        setting,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certs(
    setting: &'static str,
    path: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::invalid(setting, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            setting,
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The CRLs of the client CRL file, each checked to be signed by a client
/// CA (a CRL of another CA would revoke nothing provd accepts: a mistake
/// to report, not to ignore).
fn crls(
    path: &str,
    bytes: &[u8],
    cas: &[CertificateDer<'static>],
    ca_setting: &str,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let ders =
        pki::crl_ders(bytes).map_err(|reason| TlsError::invalid(CLIENT_CRL, path, reason))?;
    let cas: Vec<Vec<u8>> = cas.iter().map(|ca| ca.to_vec()).collect();
    for der in &ders {
        pki::crl_signed_by_any(der, &cas).map_err(|reason| {
            TlsError::invalid(CLIENT_CRL, path, format!("{reason} ({ca_setting})"))
        })?;
    }
    Ok(ders
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect())
}

/// What one load produced: the configuration, what it serves, its key.
struct Loaded {
    config: Arc<ServerConfig>,
    served: Arc<ServedCertificates>,
    key: Arc<CertifiedKey>,
}

/// The server certificate as read: its files' bytes, or the store's
/// certificate (its key is opened only when it changed).
#[derive(Clone, PartialEq, Eq)]
enum ServerContents {
    Files { cert: Vec<u8>, key: Vec<u8> },
    Store(StoreCertificate),
}

/// The client CAs as read: the file's bytes, or the store's certificates.
#[derive(Clone, PartialEq, Eq)]
enum CaContents {
    File(Vec<u8>),
    Store(Vec<Vec<u8>>),
}

/// Every source's contents, read together. Contents rather than mtimes:
/// rotations by rename keep mtimes, the files are a few KB, and a store
/// has no mtime.
#[derive(Clone, PartialEq, Eq)]
struct Contents {
    server: ServerContents,
    client_ca: CaContents,
    client_crl: Option<Vec<u8>>,
}

/// The setting a store query comes from.
fn query_setting(query: &CertQuery) -> &'static str {
    match query {
        CertQuery::Thumbprint(_) => "tls.cert_thumbprint",
        CertQuery::Subject(_) => "tls.cert_subject",
    }
}

impl Contents {
    /// The sources as they are now; an unreadable one is an error naming it.
    fn read(sources: &TlsSources) -> Result<Contents, TlsError> {
        let server = match &sources.server {
            ServerCertSource::Files { cert, key } => ServerContents::Files {
                cert: read(CERT, cert)?,
                key: read(KEY, key)?,
            },
            ServerCertSource::Store { store, query } => {
                ServerContents::Store(store::find(store, query).map_err(|error| {
                    TlsError::Store {
                        setting: query_setting(query),
                        error,
                    }
                })?)
            }
        };
        let client_ca = match &sources.client_ca {
            ClientCaSource::File(path) => CaContents::File(read(CLIENT_CA, path)?),
            ClientCaSource::Store(name) => {
                let ders = store::certificates(name).map_err(|error| TlsError::Store {
                    setting: CLIENT_CA_STORE,
                    error,
                })?;
                if ders.is_empty() {
                    return Err(TlsError::invalid(
                        CLIENT_CA_STORE,
                        &store_path(name),
                        "holds no certificate: no client could connect",
                    ));
                }
                CaContents::Store(ders)
            }
        };
        Ok(Contents {
            server,
            client_ca,
            client_crl: match &sources.client_crl {
                Some(path) => Some(read(CLIENT_CRL, path)?),
                None => None,
            },
        })
    }
}

fn store_path(name: &str) -> String {
    format!(r"cert:\LocalMachine\{name}")
}

/// The server's chain and key, where they came from, and whether the key
/// allows TLS 1.3.
fn server_identity(
    sources: &TlsSources,
    contents: &ServerContents,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(CertifiedKey, String, bool), TlsError> {
    match (&sources.server, contents) {
        (
            ServerCertSource::Files { cert, key },
            ServerContents::Files {
                cert: pem,
                key: kpem,
            },
        ) => {
            let place = cert.display().to_string();
            let chain = certs(CERT, &place, pem)?;
            let key_der = PrivateKeyDer::from_pem_slice(kpem)
                .map_err(|e| TlsError::invalid(KEY, &key.display().to_string(), e))?;
            let certified = CertifiedKey::from_der(chain, key_der, provider)
                .map_err(|e| TlsError::invalid(CERT, &place, e))?;
            Ok((certified, place, false))
        }
        (ServerCertSource::Store { query, .. }, ServerContents::Store(found)) => {
            let identity = store::signing_key(found).map_err(|error| TlsError::Store {
                setting: query_setting(query),
                error,
            })?;
            // The leaf alone: clients trust the CA that signed it (as
            // they do for tls.cert holding one certificate).
            let chain = vec![CertificateDer::from(found.der.clone())];
            Ok((
                CertifiedKey::new(chain, identity.key),
                found.path(),
                identity.tls12_only,
            ))
        }
        _ => Err(TlsError::invalid(
            CERT,
            "",
            "the server certificate's contents do not match its source",
        )),
    }
}

fn server_config(sources: &TlsSources, contents: &Contents) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (certified, cert_place, tls12_only) =
        server_identity(sources, &contents.server, &provider)?;
    let (ca_setting, ca_place, cas) = match (&sources.client_ca, &contents.client_ca) {
        (ClientCaSource::File(path), CaContents::File(pem)) => {
            let place = path.display().to_string();
            let cas = certs(CLIENT_CA, &place, pem)?;
            (CLIENT_CA, place, cas)
        }
        (ClientCaSource::Store(name), CaContents::Store(ders)) => (
            CLIENT_CA_STORE,
            store_path(name),
            ders.iter().cloned().map(CertificateDer::from).collect(),
        ),
        _ => {
            return Err(TlsError::invalid(
                CLIENT_CA,
                "",
                "the client CAs' contents do not match their source",
            ));
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in &cas {
        roots
            .add(ca.clone())
            .map_err(|e| TlsError::invalid(ca_setting, &ca_place, e))?;
    }
    let crl_place = sources.client_crl.as_ref().map(|p| p.display().to_string());
    let crls = match (&crl_place, &contents.client_crl) {
        (Some(path), Some(bytes)) => crls(path, bytes, &cas, ca_setting)?,
        _ => Vec::new(),
    };
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
    let inner = builder.build().map_err(|e| match (&e, &crl_place) {
        (VerifierBuilderError::InvalidCrl(_), Some(path)) => TlsError::invalid(CLIENT_CRL, path, e),
        _ => TlsError::invalid(ca_setting, &ca_place, e),
    })?;
    let verifier = Arc::new(DirectClientVerifier { inner });
    let served = ServedCertificates {
        cert_file: PathBuf::from(&cert_place),
        client_ca_file: PathBuf::from(&ca_place),
        chain: certified.cert.iter().map(|c| c.to_vec()).collect(),
        client_cas: cas.iter().map(|c| c.to_vec()).collect(),
    };
    // A key that signs PKCS#1 v1.5 only cannot do TLS 1.3 (RSA there is
    // PSS): offering 1.3 would fail every modern client's handshake.
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let key = Arc::new(certified);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::invalid(CERT, &cert_place, e))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        served: Arc::new(served),
        key,
    })
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
    /// The chain and key `current` serves, republished with it.
    pub key: watch::Receiver<Arc<CertifiedKey>>,
}

impl ReloadingConfig {
    /// Loads the sources once (failing start-up if they are bad), then
    /// polls them every `interval` until `stop` fires, publishing a new
    /// configuration when their contents change and load cleanly. A store
    /// is polled too: Windows can signal its changes
    /// (`CERT_STORE_CTRL_NOTIFY_CHANGE`), Wine cannot, and the interval
    /// bounds the wait either way.
    pub fn start(
        sources: TlsSources,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Self, TlsError> {
        let mut seen = Contents::read(&sources)?;
        let loaded = server_config(&sources, &seen)?;
        let (tx, rx) = watch::channel(loaded.config);
        let (served_tx, served_rx) = watch::channel(loaded.served);
        let (key_tx, key_rx) = watch::channel(loaded.key);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                // The store calls block: off the runtime's threads.
                let reading = sources.clone();
                let read = tokio::task::spawn_blocking(move || Contents::read(&reading)).await;
                let now = match read {
                    Ok(Ok(now)) => now,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "a TLS source is unreadable; keeping the current configuration");
                        continue;
                    }
                    Err(_) => continue,
                };
                if now == seen {
                    continue;
                }
                let loading = sources.clone();
                let contents = now.clone();
                let loaded =
                    tokio::task::spawn_blocking(move || server_config(&loading, &contents)).await;
                match loaded {
                    Ok(Ok(loaded)) => {
                        tracing::info!(
                            cert = %loaded.served.cert_file.display(),
                            "TLS certificates reloaded"
                        );
                        let _ = tx.send(loaded.config);
                        let _ = served_tx.send(loaded.served);
                        let _ = key_tx.send(loaded.key);
                        seen = now;
                    }
                    // Often a half-written rotation: retry next tick.
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "new TLS sources rejected; keeping the current ones");
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(Self {
            current: rx,
            served: served_rx,
            key: key_rx,
        })
    }
}
