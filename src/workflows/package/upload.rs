//! UploadPackage: packages pushed through the API into
//! `<staging>/uploads`, one file per SHA-256 (`<hex>.msi` / `<hex>.exe`),
//! written as `<hex>.partial` and renamed only once complete, fsynced and
//! verified. A partial file outlives a broken stream and a restart, so an
//! upload resumes from the bytes held.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::super::{Error, FieldViolation, PreconditionReason, validate};
use super::source::staged_name;

/// The installer kinds a staged package may be, by extension.
const KINDS: [&str; 2] = ["msi", "exe"];

/// UploadPackage's first message, as the transport hands it over.
#[derive(Debug, Clone, Default)]
pub struct UploadMetadata {
    pub sha256: String,
    pub size: u64,
    pub file_name: String,
    pub offset: u64,
}

/// What provd holds of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    Absent,
    Partial { bytes_held: u64 },
    Staged { size: u64, source: String },
}

/// An upload's end.
#[derive(Debug, Clone)]
pub struct UploadDone {
    pub sha256: String,
    pub size: u64,
    pub source: String,
    pub already_staged: bool,
    pub bytes_received: u64,
}

pub struct Uploads {
    dir: PathBuf,
    max_bytes: u64,
    slots: Arc<Semaphore>,
    /// The digests with a stream writing now.
    active: Arc<Mutex<HashSet<[u8; 32]>>>,
}

/// The start of an upload: done already, or a writer for the chunks.
pub enum UploadStart {
    Done(UploadDone),
    Receiving(Box<UploadWriter>),
}

/// Frees the upload's slot and digest when the stream ends, however.
struct Claim {
    _permit: OwnedSemaphorePermit,
    digest: [u8; 32],
    active: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.remove(&self.digest);
    }
}

pub struct UploadWriter {
    out: tokio::fs::File,
    hasher: Sha256,
    held: u64,
    received: u64,
    size: u64,
    digest: [u8; 32],
    partial: PathBuf,
    staged: PathBuf,
    _claim: Claim,
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Unavailable(format!("cannot write {}: {e}", path.display()))
}

fn kind_of(file_name: &str) -> Option<&'static str> {
    let ext = Path::new(file_name)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    KINDS.into_iter().find(|k| *k == ext)
}

impl Uploads {
    pub fn new(staging_dir: &Path, max_bytes: u64, max_concurrent: u32) -> Self {
        Self {
            dir: staging_dir.join("uploads"),
            max_bytes,
            slots: Arc::new(Semaphore::new(
                usize::try_from(max_concurrent).unwrap_or(1).max(1),
            )),
            active: Arc::default(),
        }
    }

    fn partial_path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.partial", hex::encode(digest)))
    }

    /// The staged package of `digest`, if there is one.
    pub async fn staged_path(&self, digest: &[u8; 32]) -> Option<PathBuf> {
        for kind in KINDS {
            let path = self.dir.join(format!("{}.{kind}", hex::encode(digest)));
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                return Some(path);
            }
        }
        None
    }

    /// GetUpload.
    pub async fn state(&self, sha256: &str) -> Result<UploadState, Error> {
        let digest =
            validate::sha256_hex("sha256", sha256).map_err(|v| Error::InvalidArgument(vec![v]))?;
        if let Some(path) = self.staged_path(&digest).await {
            let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
            return Ok(UploadState::Staged {
                size,
                source: staged_name(&digest),
            });
        }
        match tokio::fs::metadata(self.partial_path(&digest)).await {
            Ok(m) => Ok(UploadState::Partial {
                bytes_held: m.len(),
            }),
            Err(_) => Ok(UploadState::Absent),
        }
    }

    /// Checks the metadata, answers at once for a package already staged,
    /// else claims a slot and opens the partial file at `offset`.
    pub async fn begin(&self, meta: UploadMetadata) -> Result<UploadStart, Error> {
        let mut violations = Vec::new();
        let digest = validate::sha256_hex("metadata.sha256", &meta.sha256)
            .map_err(|v| violations.push(v))
            .ok();
        if meta.size == 0 {
            violations.push(FieldViolation::new(
                "metadata.size",
                "is required (bytes, more than 0)",
            ));
        }
        let kind = check_file_name(&meta.file_name)
            .map_err(|v| violations.push(v))
            .ok();
        if meta.size > 0 && meta.offset > meta.size {
            violations.push(FieldViolation::new(
                "metadata.offset",
                format!("must not be more than size ({})", meta.size),
            ));
        }
        let (Some(digest), Some(kind), true) = (digest, kind, violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };
        if let Some(path) = self.staged_path(&digest).await {
            let size = tokio::fs::metadata(&path)
                .await
                .map_or(meta.size, |m| m.len());
            return Ok(UploadStart::Done(UploadDone {
                sha256: hex::encode(digest),
                size,
                source: staged_name(&digest),
                already_staged: true,
                bytes_received: 0,
            }));
        }
        if meta.size > self.max_bytes {
            return Err(Error::FailedPrecondition {
                reason: PreconditionReason::PackageTooLarge,
                subject: staged_name(&digest),
                message: format!(
                    "metadata.size: {} bytes is more than host.max_package_bytes ({} bytes)",
                    meta.size, self.max_bytes
                ),
            });
        }
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            Error::Unavailable(
                "as many uploads as host.max_concurrent_uploads allows are running; retry later"
                    .into(),
            )
        })?;
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if !active.insert(digest) {
                return Err(Error::Aborted(format!(
                    "another upload of {} is running; retry when it ends",
                    staged_name(&digest)
                )));
            }
        }
        let claim = Claim {
            _permit: permit,
            digest,
            active: self.active.clone(),
        };
        let partial = self.partial_path(&digest);
        let (out, hasher) = self.open_partial(&partial, meta.offset).await?;
        Ok(UploadStart::Receiving(Box::new(UploadWriter {
            out,
            hasher,
            held: meta.offset,
            received: 0,
            size: meta.size,
            digest,
            staged: self.dir.join(format!("{}.{kind}", hex::encode(digest))),
            partial,
            _claim: claim,
        })))
    }

    /// The partial file cut to `offset`, its first `offset` bytes hashed,
    /// positioned at its end. More than it holds is ABORTED.
    async fn open_partial(
        &self,
        partial: &Path,
        offset: u64,
    ) -> Result<(tokio::fs::File, Sha256), Error> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error(&self.dir, e))?;
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(partial)
            .await
            .map_err(|e| io_error(partial, e))?;
        let held = file
            .metadata()
            .await
            .map_err(|e| io_error(partial, e))?
            .len();
        if offset > held {
            return Err(Error::Aborted(format!(
                "metadata.offset: provd holds {held} bytes of this package, not {offset}; \
                 resume with offset {held}"
            )));
        }
        file.set_len(offset)
            .await
            .map_err(|e| io_error(partial, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = offset;
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = file
                .read(&mut buf[..want])
                .await
                .map_err(|e| io_error(partial, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        Ok((file, hasher))
    }
}

fn check_file_name(name: &str) -> Result<&'static str, FieldViolation> {
    const FIELD: &str = "metadata.file_name";
    if name.is_empty() {
        return Err(FieldViolation::new(FIELD, "is required"));
    }
    validate::max_len(FIELD, name, 255)?;
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(FieldViolation::new(
            FIELD,
            "must be a file name, not a path",
        ));
    }
    kind_of(name).ok_or_else(|| FieldViolation::new(FIELD, "must name a .msi or .exe package"))
}

impl UploadWriter {
    /// Appends one chunk; bytes past the declared size are refused.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let after = self.held + chunk.len() as u64;
        if after > self.size {
            return Err(Error::invalid(
                "chunk",
                format!(
                    "the stream sends more than metadata.size ({} bytes)",
                    self.size
                ),
            ));
        }
        self.out
            .write_all(chunk)
            .await
            .map_err(|e| io_error(&self.partial, e))?;
        // Flushed per chunk: what a broken stream leaves is what it holds.
        self.out
            .flush()
            .await
            .map_err(|e| io_error(&self.partial, e))?;
        self.hasher.update(chunk);
        self.held = after;
        self.received += chunk.len() as u64;
        Ok(())
    }

    /// The stream ended: the whole package fsynced, verified and renamed
    /// into place; a short one kept for a resume; a wrong one removed.
    pub async fn finish(self) -> Result<UploadDone, Error> {
        if self.held < self.size {
            return Err(Error::invalid(
                "metadata.size",
                format!(
                    "the stream ended after {} of {} bytes; they are kept: resume with offset {}",
                    self.held, self.size, self.held
                ),
            ));
        }
        self.out
            .sync_all()
            .await
            .map_err(|e| io_error(&self.partial, e))?;
        drop(self.out);
        let digest: [u8; 32] = self.hasher.finalize().into();
        if digest != self.digest {
            let _ = tokio::fs::remove_file(&self.partial).await;
            return Err(Error::invalid(
                "metadata.sha256",
                format!(
                    "the uploaded bytes do not match the expected SHA-256 {}; nothing was staged",
                    hex::encode(self.digest)
                ),
            ));
        }
        tokio::fs::rename(&self.partial, &self.staged)
            .await
            .map_err(|e| io_error(&self.staged, e))?;
        sync_dir(self.staged.parent()).await;
        tracing::info!(
            sha256 = %hex::encode(digest),
            size = self.size,
            "an uploaded package is staged"
        );
        Ok(UploadDone {
            sha256: hex::encode(digest),
            size: self.size,
            source: staged_name(&digest),
            already_staged: false,
            bytes_received: self.received,
        })
    }
}

/// The rename made durable (Unix; NTFS journals it).
async fn sync_dir(dir: Option<&Path>) {
    #[cfg(unix)]
    if let Some(dir) = dir
        && let Ok(d) = tokio::fs::File::open(dir).await
    {
        let _ = d.sync_all().await;
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_choose_the_kind_and_are_names() {
        assert_eq!(check_file_name("Agent Setup.EXE"), Ok("exe"));
        assert_eq!(check_file_name("a.msi"), Ok("msi"));
        for bad in [
            "",
            "a.zip",
            "dir/a.msi",
            r"c:\a.msi",
            "..",
            &"a".repeat(252),
        ] {
            let name = if bad.len() > 250 {
                format!("{bad}.msi")
            } else {
                bad.to_owned()
            };
            assert!(check_file_name(&name).is_err(), "{name}");
        }
    }
}
