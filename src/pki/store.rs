//! The server certificate and client CAs from the Windows certificate store
//! (`LocalMachine\<store>`), for the TLS listener and the audit checkpoints.
//!
//! This file and `store_key.rs` are what does not depend on Windows, so
//! every platform tests them: here the thumbprint as administrators copy
//! it and the queries; there which certificate a subject selects, the
//! signature schemes a store key offers, and a store key as a rustls
//! [`SigningKey`] (ECDSA's raw `r‖s` made DER, the key checked against
//! its certificate). The store and the key calls are `windows_store.rs`
//! (cfg(windows)); elsewhere every call is [`StoreError::Unsupported`].

use std::fmt;
use std::sync::Arc;

use rustls::sign::SigningKey;

/// A certificate's SHA-1 hash: how certlm, PowerShell's `cert:` drive and
/// IIS name a certificate of the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint(pub [u8; 20]);

impl Thumbprint {
    /// 40 hex digits; the spaces and colons certlm's Details tab shows (and
    /// an invisible left-to-right mark its copy often starts with) are
    /// ignored.
    pub fn parse(text: &str) -> Result<Thumbprint, String> {
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | ':' | '\u{200e}' | '\u{feff}'))
            .collect();
        let bytes = hex::decode(&digits)
            .map_err(|_| format!("{text:?} is not a SHA-1 thumbprint (40 hex digits)"))?;
        let bytes: [u8; 20] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{text:?} has {} bytes, a thumbprint 20", b.len()))?;
        Ok(Thumbprint(bytes))
    }

    /// The thumbprint of a DER certificate.
    pub fn of(der: &[u8]) -> Thumbprint {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let mut out = [0; 20];
        out.copy_from_slice(digest.as_ref());
        Thumbprint(out)
    }
}

/// Upper-case hex without separators, as PowerShell prints it.
impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// Which certificate of the store serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertQuery {
    /// This one, or the certificate that renewed it (the store's renewal
    /// link, which certificate enrollment sets on the old certificate).
    Thumbprint(Thumbprint),
    /// The newest certificate valid now, for Server Authentication, with a
    /// private key, whose subject common name (or whole subject) this is.
    Subject(String),
}

impl fmt::Display for CertQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertQuery::Thumbprint(t) => write!(f, "with thumbprint {t}"),
            CertQuery::Subject(s) => write!(
                f,
                "with subject {s:?} (valid now, for Server Authentication, with a private key)"
            ),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the Windows certificate store exists only on Windows (use tls.cert and tls.key)")]
    Unsupported,
    #[error("no certificate {query} in LocalMachine\\{store}")]
    NotFound { store: String, query: String },
    #[error("LocalMachine\\{store}: {reason}")]
    Failed { store: String, reason: String },
}

/// The certificate a query found, without its key: what the listener
/// compares between two reads of the store to see a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCertificate {
    pub store: String,
    pub der: Vec<u8>,
    pub thumbprint: Thumbprint,
    /// Where the store says its key is (provider, container, key spec): a
    /// new key in place of the old one is a change too.
    pub key_location: String,
}

impl StoreCertificate {
    /// PowerShell's path to it: `cert:\LocalMachine\My\<thumbprint>`.
    pub fn path(&self) -> String {
        format!(r"cert:\LocalMachine\{}\{}", self.store, self.thumbprint)
    }
}

/// A store certificate's private key, which never leaves the store.
pub struct StoreIdentity {
    pub key: Arc<dyn SigningKey>,
    /// The key signs PKCS#1 v1.5 only (a CAPI key: Wine's, or a legacy
    /// CSP's): TLS 1.3 needs PSS for RSA, so the listener offers TLS 1.2.
    pub tls12_only: bool,
}

/// The certificate `query` selects in `LocalMachine\<store>`.
pub fn find(store: &str, query: &CertQuery) -> Result<StoreCertificate, StoreError> {
    #[cfg(windows)]
    return super::windows_store::find(store, query);
    #[cfg(not(windows))]
    {
        let _ = (store, query);
        Err(StoreError::Unsupported)
    }
}

/// The private key of `cert`, checked to be its certificate's key.
pub fn signing_key(cert: &StoreCertificate) -> Result<StoreIdentity, StoreError> {
    #[cfg(windows)]
    return super::windows_store::signing_key(cert);
    #[cfg(not(windows))]
    {
        let _ = cert;
        Err(StoreError::Unsupported)
    }
}

/// Every certificate of `LocalMachine\<store>` (DER).
pub fn certificates(store: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    #[cfg(windows)]
    return super::windows_store::certificates(store);
    #[cfg(not(windows))]
    {
        let _ = store;
        Err(StoreError::Unsupported)
    }
}
