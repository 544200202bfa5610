//! Install's fetch of an https:// source: streamed into staging while
//! hashed, never past the size cap, resumed after a dropped connection with
//! a Range request from the bytes already staged (a bounded number of
//! times), and started over when the server ignores the Range.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::super::operations::Progress;
use super::super::{Error, PreconditionReason};
use super::HttpsSource;
use crate::backends::download::{DownloadError, PackageDownload};

/// Failed requests or cut bodies tolerated in one fetch.
pub const RETRIES: u32 = 5;

/// What a fetch is bounded by.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_bytes: u64,
    /// Wait before the first retry; doubled each time, at most 5 s.
    pub first_backoff: Duration,
}

/// The file being written and the hash of what it holds.
struct Staged {
    out: tokio::fs::File,
    hasher: Sha256,
    held: u64,
}

impl Staged {
    async fn restart(&mut self, path: &Path) -> Result<(), Error> {
        let io = |e| Error::internal(format!("cannot rewrite {}", path.display()), e);
        self.out.set_len(0).await.map_err(io)?;
        self.out.rewind().await.map_err(io)?;
        self.hasher = Sha256::new();
        self.held = 0;
        Ok(())
    }
}

fn too_large(source: &HttpsSource, max: u64) -> Error {
    Error::FailedPrecondition {
        reason: PreconditionReason::PackageTooLarge,
        subject: source.shown.clone(),
        message: format!(
            "source: the package {} is larger than host.max_package_bytes ({max} bytes); \
             nothing was installed",
            source.shown
        ),
    }
}

/// Downloads `source` into `staged`; the caller removes it on failure.
pub async fn fetch_https(
    progress: &Progress,
    download: &dyn PackageDownload,
    source: &HttpsSource,
    staged: &Path,
    limits: FetchLimits,
) -> Result<([u8; 32], u64), Error> {
    let cancel = progress.cancellation().clone();
    let out = tokio::fs::File::create(staged)
        .await
        .map_err(|e| Error::internal(format!("cannot create {}", staged.display()), e))?;
    let mut file = Staged {
        out,
        hasher: Sha256::new(),
        held: 0,
    };
    let mut failures = 0u32;
    let mut last_reported = 0u32;
    loop {
        let answer = tokio::select! {
            answer = download.get(&source.url, file.held) => answer,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        let cut = match answer {
            Ok(response) => {
                if response.starts_at != file.held {
                    // 200 to a Range request: the server sends it all again.
                    progress
                        .warning(
                            "fetch-package",
                            format!(
                                "the server ignored the request to resume at byte {}; \
                                 downloading from the start",
                                file.held
                            ),
                        )
                        .await?;
                    file.restart(staged).await?;
                    if response.starts_at != 0 {
                        failures += 1;
                        retry_or_fail(
                            source,
                            failures,
                            "the server sent another range than asked",
                        )?;
                        continue;
                    }
                }
                if response.total.is_some_and(|t| t > limits.max_bytes) {
                    return Err(too_large(source, limits.max_bytes));
                }
                let mut body = response.body;
                let mut cut = None;
                loop {
                    let chunk = tokio::select! {
                        chunk = body.next() => chunk,
                        () = cancel.cancelled() => return Err(Error::Cancelled),
                    };
                    let chunk = match chunk {
                        None => break,
                        Some(Ok(chunk)) => chunk,
                        Some(Err(e)) => {
                            cut = Some(e.to_string());
                            break;
                        }
                    };
                    // A server that sends more than it said, or never ends,
                    // stops at the cap.
                    file.held += chunk.len() as u64;
                    if file.held > limits.max_bytes {
                        return Err(too_large(source, limits.max_bytes));
                    }
                    file.hasher.update(&chunk);
                    file.out.write_all(&chunk).await.map_err(|e| {
                        Error::internal(format!("cannot write {}", staged.display()), e)
                    })?;
                    if let Some(total) = response.total.filter(|t| *t > 0) {
                        let percent =
                            u32::try_from(file.held.saturating_mul(100) / total).unwrap_or(100);
                        if percent >= last_reported + 25 {
                            last_reported = percent;
                            progress
                                .progress(
                                    "fetch-package",
                                    format!("{} of {total} bytes", file.held),
                                    percent.min(100),
                                )
                                .await?;
                        }
                    }
                }
                if cut.is_none() && response.total.is_some_and(|t| file.held < t) {
                    cut = Some(format!(
                        "the body ended after {} of {} bytes",
                        file.held,
                        response.total.unwrap_or_default()
                    ));
                }
                match cut {
                    None => break,
                    Some(cut) => cut,
                }
            }
            Err(DownloadError::NotFound { status }) => {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::PackageNotFound,
                    subject: source.shown.clone(),
                    message: format!("package {} does not exist (HTTP {status})", source.shown),
                });
            }
            Err(DownloadError::Refused { status: 416 }) if file.held > 0 => {
                // Nothing past what is held: start over rather than trust it.
                file.restart(staged).await?;
                "the server refused the range (416)".to_owned()
            }
            Err(DownloadError::Refused { status }) => {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::PackageNotFound,
                    subject: source.shown.clone(),
                    message: format!(
                        "cannot download package {}: the server answered {status}",
                        source.shown
                    ),
                });
            }
            Err(e @ (DownloadError::Unavailable(_) | DownloadError::Config(_))) => e.to_string(),
        };
        failures += 1;
        retry_or_fail(source, failures, &cut)?;
        progress
            .warning(
                "fetch-package",
                format!(
                    "{cut}; resuming at byte {} (retry {failures} of {RETRIES})",
                    file.held
                ),
            )
            .await?;
        let wait = limits
            .first_backoff
            .saturating_mul(1 << (failures - 1).min(5))
            .min(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => return Err(Error::Cancelled),
        }
    }
    file.out
        .flush()
        .await
        .map_err(|e| Error::internal(format!("cannot write {}", staged.display()), e))?;
    Ok((file.hasher.finalize().into(), file.held))
}

fn retry_or_fail(source: &HttpsSource, failures: u32, why: &str) -> Result<(), Error> {
    if failures > RETRIES {
        return Err(Error::Unavailable(format!(
            "cannot download package {}: {why} (gave up after {RETRIES} retries)",
            source.shown
        )));
    }
    Ok(())
}
