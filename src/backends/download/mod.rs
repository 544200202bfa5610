//! `PackageDownload`: one GET of an https:// package source, from a byte
//! offset. The resume loop, the size cap and the hashing are Install's
//! (`workflows::package::download`); this backend only speaks HTTP.
//!
//! Invariant: no error or log line carries the URL (its query may hold a
//! token); the workflow names the source with the query cut off.

mod https;

use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use https::HttpsDownload;

/// One answer: where its body starts in the package and how big the
/// package is, when the server says.
pub struct DownloadResponse {
    /// The offset of the body's first byte: the requested offset when the
    /// server honoured the Range (206), 0 when it sent everything (200).
    pub starts_at: u64,
    /// The whole package's size (Content-Length of a 200, the total of a
    /// 206's Content-Range), when given.
    pub total: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, DownloadError>>,
}

impl std::fmt::Debug for DownloadResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadResponse")
            .field("starts_at", &self.starts_at)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// 404 or 410: the package is not there.
    #[error("the server answered {status}: no such package")]
    NotFound { status: u16 },
    /// Another answer that a retry will not change (401, 403, 416, ...).
    #[error("the server answered {status}")]
    Refused { status: u16 },
    /// No answer, a TLS failure, a 5xx/408/429, or a body cut short: a
    /// retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The client could not be built (the CA file).
    #[error("{0}")]
    Config(String),
}

/// Fetches package sources over HTTPS.
#[async_trait::async_trait]
pub trait PackageDownload: Send + Sync {
    /// GET `url`; with `from` > 0 asks for the bytes from `from` on
    /// (`Range: bytes=<from>-`).
    async fn get(&self, url: &str, from: u64) -> Result<DownloadResponse, DownloadError>;
}
