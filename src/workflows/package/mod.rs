//! Where Install's package comes from besides a local file: https://
//! sources (`download`), UNC paths on Windows and uploads through
//! PackageService (`upload`); `source` parses what Install's `source` names.

mod download;
mod source;
mod upload;

pub use download::{FetchLimits, fetch_https};
pub use source::{HttpsSource, PackageSource, parse_source, shown_source};
pub use upload::{UploadDone, UploadMetadata, UploadStart, UploadState, Uploads};
