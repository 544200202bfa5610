//! `[audit]`: the audit trail of mutating and denied calls
//! (`backends::audit`): where it is written, how long it is kept, and how
//! many denied calls per second are recorded one by one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::declare::section;
use super::layers::Source;
use super::parse;

/// True for the words that switch a limit off.
fn off(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || value.eq_ignore_ascii_case("off")
}

/// A retention age of at least one second, or `off`.
fn max_age(value: &str, source: &Source) -> Result<Option<Duration>, String> {
    if off(value) {
        return Ok(None);
    }
    match parse::duration(value.trim(), source)? {
        d if d < Duration::from_secs(1) => Err("must be at least 1s, or \"off\"".into()),
        d => Ok(Some(d)),
    }
}

/// A record count of at least one, or `off`.
fn max_records(value: &str, _: &Source) -> Result<Option<u64>, String> {
    if off(value) {
        return Ok(None);
    }
    match value.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!(
            "{value:?} is not a count of at least 1, or \"off\""
        )),
        Ok(n) => Ok(Some(n)),
    }
}

/// Denied calls recorded per second: more than zero, at most 1000.
fn rate(value: &str, _: &Source) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1000.0 => Ok(r),
        _ => Err(format!(
            "{value:?} is not a rate like \"1\" or \"0.5\" (per second, more than 0, at most 1000)"
        )),
    }
}

/// The burst: 1 to 100000 records.
fn burst(value: &str, _: &Source) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!("{value:?} is not a count from 1 to 100000")),
    }
}

section! {
    #[derive(Debug, Clone)]
    pub struct AuditConfig: Default {
        /// The audit log file (append-only, one hash-chained JSON record
        /// per line; `provd audit verify` checks it). Unset:
        /// `audit.log` in `state_dir`.
        pub path: Option<PathBuf> {
            toml: "audit.path", env: "PROVD_AUDIT_PATH", flag: "--audit-path",
            example: "/var/log/provd/audit.log", parse: parse::some_path, default: None
        }
        /// Records older than this are pruned (the file then starts with a
        /// checkpoint signed with the TLS server key), or "off".
        pub max_age: Option<Duration> {
            toml: "audit.max_age", env: "PROVD_AUDIT_MAX_AGE", flag: "--audit-max-age",
            example: "90days", parse: max_age,
            default: Some(Duration::from_secs(365 * 86_400))
        }
        /// At most this many records are kept (the newest), or "off";
        /// pruning starts once the count is a tenth over.
        pub max_records: Option<u64> {
            toml: "audit.max_records", env: "PROVD_AUDIT_MAX_RECORDS",
            flag: "--audit-max-records",
            example: "100000", parse: max_records, default: Some(500_000)
        }
        /// Denied calls recorded one by one, per second on average; beyond
        /// it (and the burst) they are counted, and one `suppressed`
        /// record with the count and the callers follows when the rate
        /// allows again, so a flood cannot fill the disk.
        pub denied_rate: f64 {
            toml: "audit.denied_rate", env: "PROVD_AUDIT_DENIED_RATE",
            flag: "--audit-denied-rate",
            example: "5", parse: rate, default: 1.0
        }
        /// Denied calls recorded one by one in a burst before the rate
        /// applies.
        pub denied_burst: u32 {
            toml: "audit.denied_burst", env: "PROVD_AUDIT_DENIED_BURST",
            flag: "--audit-denied-burst",
            example: "100", parse: burst, default: 20
        }
    }
}

impl AuditConfig {
    /// The log file: `path`, else `audit.log` in `state_dir`.
    pub fn file(&self, state_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| state_dir.join("audit.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_off_or_positive_and_the_rate_is_bounded() {
        let src = Source::Env;
        assert_eq!(max_age("off", &src), Ok(None));
        assert_eq!(
            max_age("30d", &src),
            Ok(Some(Duration::from_secs(30 * 86_400)))
        );
        assert!(max_age("10ms", &src).is_err());
        assert_eq!(max_records("", &src), Ok(None));
        assert_eq!(max_records("10", &src), Ok(Some(10)));
        for bad in ["0", "-1", "ten"] {
            assert!(max_records(bad, &src).is_err(), "{bad:?} accepted");
        }
        assert_eq!(rate("0.5", &src), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1001"] {
            assert!(rate(bad, &src).is_err(), "{bad:?} accepted");
        }
        assert_eq!(burst("1", &src), Ok(1));
        assert!(burst("0", &src).is_err());
        let config = AuditConfig::default();
        assert_eq!(config.file(Path::new("/s")), PathBuf::from("/s/audit.log"));
    }
}
