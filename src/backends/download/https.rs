//! HttpsDownload: reqwest over rustls (ring), https only, redirects only to
//! https, the public web roots or a configured CA bundle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{DownloadError, DownloadResponse, PackageDownload};

pub struct HttpsDownload {
    http: reqwest::Client,
}

impl HttpsDownload {
    /// `ca_file`: a PEM bundle to trust instead of the public web roots.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, DownloadError> {
        let config = |e: &dyn std::fmt::Display| match ca_file {
            Some(path) => DownloadError::Config(format!("{}: {e}", path.display())),
            None => DownloadError::Config(e.to_string()),
        };
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| config(&e))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    roots
                        .add(cert.map_err(|e| config(&e))?)
                        .map_err(|e| config(&e))?;
                }
                if roots.is_empty() {
                    return Err(config(&"no certificate in the file"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| config(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .connect_timeout(Duration::from_secs(10))
            // No whole-request timeout (a package may take minutes); a
            // stalled body is cut by the read timeout and then resumed.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| config(&e))?;
        Ok(Self { http })
    }
}

/// A transport failure, without the URL reqwest would print.
fn unavailable(err: reqwest::Error) -> DownloadError {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    DownloadError::Unavailable(text)
}

/// The total of `Content-Range: bytes <a>-<b>/<total>` and its first byte.
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, _) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, total.trim().parse().ok()))
}

#[async_trait::async_trait]
impl PackageDownload for HttpsDownload {
    async fn get(&self, url: &str, from: u64) -> Result<DownloadResponse, DownloadError> {
        let mut request = self.http.get(url);
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        let (starts_at, total) = match status {
            200 => (0, response.content_length()),
            206 => response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range)
                .ok_or_else(|| {
                    DownloadError::Unavailable(
                        "the server answered 206 without a readable Content-Range".into(),
                    )
                })?,
            404 | 410 => return Err(DownloadError::NotFound { status }),
            408 | 429 | 500..=599 => {
                return Err(DownloadError::Unavailable(format!(
                    "the server answered {status}"
                )));
            }
            _ => return Err(DownloadError::Refused { status }),
        };
        // Read chunk by chunk (reqwest's `stream` feature is not needed).
        let body = futures_util::stream::unfold(Some(response), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                Ok(None) => None,
                Err(e) => Some((Err(unavailable(e)), None)),
            }
        })
        .boxed();
        Ok(DownloadResponse {
            starts_at,
            total,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_their_start_and_total() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("bytes */200"), None);
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
