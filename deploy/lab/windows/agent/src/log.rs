//! The agent's own log (LAB STAND-IN): a text file beside the heartbeat file
//! (`C:\ProgramData\ProvdLabAgent\AADConnectProvisioningAgent.log`), one line per event that a
//! person reading the lab would want to see and that the one-line heartbeat file cannot hold:
//! `unix=<seconds> <text>`. A service's stderr goes nowhere (under Wine: services.exe's
//! `/dev/null`). Past [`MAX_BYTES`] the file becomes `….log.old` (the older one is dropped).
//! Writing is best effort: a line that cannot be written is lost, the service goes on.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Size at which the log is rotated.
const MAX_BYTES: u64 = 1024 * 1024;

pub struct Log {
    path: Option<PathBuf>,
}

impl Log {
    pub fn new(path: PathBuf) -> Log {
        Log { path: Some(path) }
    }

    /// A log that writes nothing (unit tests).
    #[cfg(test)]
    pub fn none() -> Log {
        Log { path: None }
    }

    pub fn line(&self, text: &str) {
        let Some(path) = &self.path else { return };
        if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_BYTES) {
            let _ = std::fs::rename(path, path.with_extension("log.old"));
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = format!("unix={unix} {}\r\n", text.replace(['\r', '\n'], " "));
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}
