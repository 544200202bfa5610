//! `[host]`: where provd meets the agent on this machine.

use std::path::PathBuf;

use super::declare::{Lookup, section};
use super::parse;

section! {
    #[derive(Debug, Clone)]
    pub struct HostConfig: Default {
        /// Where provd hands the registered agent its identity (agent id,
        /// client certificate and key, service URL).
        pub agent_registration_file: PathBuf {
            toml: "host.agent_registration_file", env: "PROVD_HOST_AGENT_REGISTRATION_FILE",
            flag: "--host-agent-registration-file",
            example: "/var/lib/provd-agent/registration.json", parse: parse::path,
            default: from_env default_registration_file
        }
    }
}

impl HostConfig {
    /// `%ProgramData%\ProvdLabAgent\registration.json`: where the lab
    /// stand-in agent reads it.
    pub fn with_program_data(program_data: Option<&str>) -> Self {
        let base = PathBuf::from(program_data.unwrap_or(r"C:\ProgramData"));
        Self {
            agent_registration_file: base.join("ProvdLabAgent").join("registration.json"),
        }
    }
}

/// The default follows Windows' own `ProgramData` (not a provd setting),
/// whose name Windows keeps case-insensitively.
fn default_registration_file(env: Lookup<'_>) -> PathBuf {
    let program_data = env("ProgramData")
        .or_else(|| env("PROGRAMDATA"))
        .or_else(|| env("programdata"));
    HostConfig::with_program_data(program_data.as_deref()).agent_registration_file
}
