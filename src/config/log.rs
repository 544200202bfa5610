//! `[log]`: where log lines go and in which form.

use std::path::PathBuf;

use serde::Deserialize;

use super::declare::section;
use super::layers::Source;
use super::parse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn format(value: &str, _: &Source) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of \"text\", \"json\"")),
    }
}

section! {
    #[derive(Debug, Clone)]
    pub struct LogConfig {
        /// "text" or "json".
        pub format: LogFormat {
            toml: "log.format", env: "PROVD_LOG_FORMAT", flag: "--log-format",
            example: "json", parse: format, default: LogFormat::Text
        }
        /// A tracing `EnvFilter` directive, e.g. `info,provd=debug`.
        pub filter: String {
            toml: "log.filter", env: "PROVD_LOG_FILTER", flag: "--log-filter",
            example: "warn,provd=debug", parse: parse::text, default: "info".into()
        }
        /// Append log lines to this file instead of stderr (a Windows service
        /// has no stderr anyone reads).
        pub file: Option<PathBuf> {
            toml: "log.file", env: "PROVD_LOG_FILE", flag: "--log-file",
            example: "/var/log/provd.log", parse: parse::some_path, default: None
        }
    }
}
