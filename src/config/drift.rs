//! `[drift]`: what provd watches on its own between requests. Off unless
//! `verify_interval` is set.

use std::time::Duration;

use super::declare::section;
use super::layers::Source;
use super::parse;

/// How often the scheduled checks run: a duration of at least one second,
/// or empty / `off` for none (so the environment or a flag can switch off
/// what the file set).
fn interval(value: &str, source: &Source) -> Result<Option<Duration>, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match parse::duration(value, source)? {
        d if d < Duration::from_secs(1) => Err("must be at least 1s, or \"off\"".into()),
        d => Ok(Some(d)),
    }
}

section! {
    #[derive(Debug, Clone)]
    pub struct DriftConfig: Default {
        /// Runs Verify's checks that need no credential (host, agent,
        /// tenant) this often, exporting each check as the
        /// `provd.verify.check` metric, and watches the agent's installed
        /// version at each run: a change no provd Install or Uninstall made
        /// counts in `provd.drift.detected` and is logged. Off by default.
        pub verify_interval: Option<Duration> {
            toml: "drift.verify_interval", env: "PROVD_DRIFT_VERIFY_INTERVAL",
            flag: "--drift-verify-interval",
            example: "5m", parse: interval, default: None
        }
        /// With `verify_interval`: when the agent's installed version, its
        /// settings or a kept host fix changes outside provd (an
        /// auto-upgrade, a hand edit, a GPO), re-apply what the last apply
        /// put in place (its `[host]` fixes and `[agent.settings]`: an
        /// upgrade of an agent older than 1.1.1365 resets the exe.config),
        /// as an APPLY_CONFIGURATION operation of its own (initiator
        /// `drift`). Never a directory or tenant section.
        pub reapply: bool {
            toml: "drift.reapply", env: "PROVD_DRIFT_REAPPLY",
            flag: "--drift-reapply",
            example: "true", parse: parse::boolean, default: false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_empty_or_at_least_a_second() {
        let parse = |v| interval(v, &Source::Env);
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("off"), Ok(None));
        assert_eq!(parse("1s"), Ok(Some(Duration::from_secs(1))));
        assert_eq!(parse("5m"), Ok(Some(Duration::from_secs(300))));
        for bad in ["0s", "500ms", "often", "-1s"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
