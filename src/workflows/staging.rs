//! The staging directory: Install copies a package in (a regular file, or a
//! named pipe when allowed, never more than the size cap), and at start-up
//! provd removes what a previous run left there.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::operations::{Progress, blocking};
use super::{Error, PreconditionReason};
use crate::backends::store::Store;

/// What Install accepts as a package (`[host]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct PackageLimits {
    /// The most bytes a package may have; more fails the fetch.
    pub max_bytes: u64,
    /// Whether a named pipe may stream the package.
    pub allow_fifo: bool,
    /// UploadPackage streams writing at once.
    pub max_concurrent_uploads: u32,
}

/// Chunk size for streaming a package through the hasher.
const COPY_CHUNK: usize = 256 * 1024;

/// What a path resolves to, as far as Install cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))] // only Unix tells these kinds apart
enum FileKind {
    Regular,
    Fifo,
    Directory,
    CharDevice,
    BlockDevice,
    Socket,
    Other,
}

impl FileKind {
    fn of(file_type: std::fs::FileType) -> Self {
        if file_type.is_file() {
            return Self::Regular;
        }
        if file_type.is_dir() {
            return Self::Directory;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_fifo() {
                return Self::Fifo;
            }
            if file_type.is_char_device() {
                return Self::CharDevice;
            }
            if file_type.is_block_device() {
                return Self::BlockDevice;
            }
            if file_type.is_socket() {
                return Self::Socket;
            }
        }
        Self::Other
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Regular => "a regular file",
            Self::Fifo => "a named pipe (FIFO)",
            Self::Directory => "a directory",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Socket => "a socket",
            Self::Other => "not a regular file",
        }
    }
}

/// Streams `source` into `staged`, hashing as it goes, never past the size
/// cap; stops at once when the operation is cancelled, including while
/// waiting on a slow source. The caller removes `staged` on failure.
pub(super) async fn fetch(
    progress: &Progress,
    source: &Path,
    staging_dir: &Path,
    staged: &Path,
    limits: PackageLimits,
) -> Result<([u8; 32], u64), Error> {
    let cancel = progress.cancellation().clone();
    let open = async {
        tokio::fs::create_dir_all(staging_dir)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}", staging_dir.display()), e))?;
        let (reader, total) = open_source(source, limits).await?;
        let out = tokio::fs::File::create(staged)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}", staged.display()), e))?;
        Ok::<_, Error>((reader, total, out))
    };
    let (mut reader, total, mut out) = tokio::select! {
        opened = open => opened?,
        () = cancel.cancelled() => return Err(Error::Cancelled),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut copied: u64 = 0;
    let mut last_reported = 0u32;
    loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => read.map_err(|e| source_error(source, &e))?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        if n == 0 {
            break;
        }
        // A file that grows, or a pipe that never ends, stops at the cap.
        copied += n as u64;
        if copied > limits.max_bytes {
            return Err(too_large(source, limits.max_bytes));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .await
            .map_err(|e| Error::internal(format!("cannot write {}", staged.display()), e))?;
        if let Some(total) = total.filter(|t| *t > 0) {
            let percent = u32::try_from(copied.saturating_mul(100) / total).unwrap_or(100);
            if percent >= last_reported + 25 {
                last_reported = percent;
                progress
                    .progress(
                        "fetch-package",
                        format!("{copied} of {total} bytes"),
                        percent,
                    )
                    .await?;
            }
        }
    }
    out.flush()
        .await
        .map_err(|e| Error::internal(format!("cannot write {}", staged.display()), e))?;
    Ok((hasher.finalize().into(), copied))
}

fn source_error(source: &Path, err: &std::io::Error) -> Error {
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::FailedPrecondition {
            reason: PreconditionReason::PackageNotFound,
            subject: format!("file://{}", source.display()),
            message: format!("package {} does not exist", source.display()),
        },
        _ => Error::Unavailable(format!("cannot read package {}: {err}", source.display())),
    }
}

/// The cap was reached. The package's own size is not said: the path may
/// resolve to a file the caller could not otherwise see.
fn too_large(source: &Path, max: u64) -> Error {
    Error::FailedPrecondition {
        reason: PreconditionReason::PackageTooLarge,
        subject: format!("file://{}", source.display()),
        message: format!(
            "source: the package {} is larger than host.max_package_bytes ({max} bytes); \
             nothing was installed",
            source.display()
        ),
    }
}

fn not_a_package(source: &Path, kind: FileKind) -> Error {
    let allowed = if kind == FileKind::Fifo {
        " (a named pipe only with host.allow_fifo_packages = true)"
    } else {
        ""
    };
    Error::invalid(
        "source",
        format!(
            "{} is {}: a package must be a regular file{allowed}",
            source.display(),
            kind.describe()
        ),
    )
}

/// Opens the package and says how big it is when it can. Judged after
/// following symlinks and before opening, so a device is never opened; a
/// regular file is judged again as opened, in case the path changed.
async fn open_source(
    source: &Path,
    limits: PackageLimits,
) -> Result<(Box<dyn AsyncRead + Send + Unpin>, Option<u64>), Error> {
    let meta = tokio::fs::metadata(source)
        .await
        .map_err(|e| source_error(source, &e))?;
    match FileKind::of(meta.file_type()) {
        FileKind::Regular => {
            if meta.len() > limits.max_bytes {
                return Err(too_large(source, limits.max_bytes));
            }
            let file = tokio::fs::File::open(source)
                .await
                .map_err(|e| source_error(source, &e))?;
            let opened = file
                .metadata()
                .await
                .map_err(|e| source_error(source, &e))?;
            match FileKind::of(opened.file_type()) {
                FileKind::Regular if opened.len() > limits.max_bytes => {
                    Err(too_large(source, limits.max_bytes))
                }
                FileKind::Regular => Ok((Box::new(file), Some(opened.len()))),
                other => Err(not_a_package(source, other)),
            }
        }
        FileKind::Fifo if limits.allow_fifo => Ok((open_pipe(source)?, None)),
        other => Err(not_a_package(source, other)),
    }
}

/// A named pipe, read asynchronously so a producer can stream the package
/// and cancellation never waits on it.
#[cfg(unix)]
fn open_pipe(source: &Path) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
    let pipe = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(source)
        .map_err(|e| source_error(source, &e))?;
    Ok(Box::new(pipe))
}

#[cfg(not(unix))]
fn open_pipe(source: &Path) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
    Err(not_a_package(source, FileKind::Fifo))
}

/// Removes what a previous run left in staging: packages and partial
/// copies (no operation of this process is running yet, so none is in
/// use), and installer logs of operations the store no longer has. Logs of
/// recorded operations stay: their errors name them. Directories are left:
/// `uploads/` holds PackageService's packages, which outlive a restart. A file that cannot be removed is a warning, never
/// a reason not to start.
pub(super) async fn clean(store: &Arc<dyn Store>, staging_dir: &Path) {
    let mut entries = match tokio::fs::read_dir(staging_dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(dir = %staging_dir.display(), error = %e, "cannot read the staging directory");
            return;
        }
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        // A log is kept unless the store says its operation is gone.
        if let Some(id) = name.to_str().and_then(log_operation_id)
            && !matches!(
                blocking(store, move |s| s.get_operation(&id)).await,
                Ok(None)
            )
        {
            continue;
        }
        match tokio::fs::remove_file(entry.path()).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a staged file");
            }
        }
    }
    tracing::info!(
        dir = %staging_dir.display(),
        removed,
        "removed {removed} files a previous run left in the staging directory"
    );
}

/// The operation an installer log belongs to: `<id>-<package>.log` (Install)
/// or `uninstall-<id>.log`.
fn log_operation_id(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".log")?;
    let id = stem.strip_prefix("uninstall-").unwrap_or(stem).get(..36)?;
    uuid::Uuid::try_parse(id).ok().map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installer_logs_name_their_operation() {
        let id = "0b5f3e9c-6a4e-4a53-9f0e-2d2b1c1d0e0f";
        assert_eq!(
            log_operation_id(&format!("{id}-AgentSetup.log")).as_deref(),
            Some(id)
        );
        assert_eq!(
            log_operation_id(&format!("uninstall-{id}.log")).as_deref(),
            Some(id)
        );
        for other in [
            format!("{id}-agent.msi"),
            "notes.log".to_owned(),
            format!("uninstall-{}.log", &id[..35]),
            "é".repeat(40) + ".log",
        ] {
            assert_eq!(log_operation_id(&other), None, "{other}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn kinds_are_judged_after_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("x.msi");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let kind = FileKind::of(std::fs::metadata(&link).unwrap().file_type());
        assert_eq!(kind, FileKind::CharDevice);
        assert_eq!(
            FileKind::of(std::fs::metadata(dir.path()).unwrap().file_type()),
            FileKind::Directory
        );
    }
}
