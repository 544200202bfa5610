//! `[agent_module]`: how provd runs the agent's PowerShell module scripts
//! (Windows only; other platforms ignore it).

use std::path::PathBuf;
use std::time::Duration;

use super::declare::section;
use super::parse;

section! {
    #[derive(Debug, Clone)]
    pub struct AgentModuleConfig: Default {
        /// The powershell.exe that runs the scripts. Default: Windows
        /// PowerShell 5.1 under the System known folder
        /// (`System32\WindowsPowerShell\v1.0\powershell.exe`), never a PATH
        /// lookup.
        pub powershell: Option<PathBuf> {
            toml: "agent_module.powershell", env: "PROVD_AGENT_MODULE_POWERSHELL",
            flag: "--agent-module-powershell",
            example: "/opt/provd-lab/powershell.exe", parse: parse::some_path, default: None
        }
        /// Where provd writes its scripts before running them, with a
        /// protected DACL (SYSTEM and Administrators only). Default:
        /// `provd\scripts` under the ProgramData known folder.
        pub scripts_dir: Option<PathBuf> {
            toml: "agent_module.scripts_dir", env: "PROVD_AGENT_MODULE_SCRIPTS_DIR",
            flag: "--agent-module-scripts-dir",
            example: "/var/lib/provd/scripts", parse: parse::some_path, default: None
        }
        /// Longest a script that changes the agent may run before its
        /// process tree is ended (the read-only ones get at most 2 minutes).
        pub script_timeout: Duration {
            toml: "agent_module.script_timeout", env: "PROVD_AGENT_MODULE_SCRIPT_TIMEOUT",
            flag: "--agent-module-script-timeout",
            example: "20m", parse: parse::nonzero_duration, default: Duration::from_secs(600)
        }
        /// The LocalMachine certificate store holding the agent's
        /// registration certificate. Microsoft does not document where the
        /// provisioning agent keeps it: the default is inferred from the
        /// connector framework it shares with the private network connector
        /// (`LocalMachine\My`), and Verify says so when nothing matches.
        pub registration_certificate_store: String {
            toml: "agent_module.registration_certificate_store",
            env: "PROVD_AGENT_MODULE_REGISTRATION_CERTIFICATE_STORE",
            flag: "--agent-module-registration-certificate-store",
            example: "TrustedPeople", parse: store_name, default: "My".into()
        }
        /// The registration certificate's subject, with `{agent_id}` (the
        /// agent's id as the tenant lists it) and `{machine_name}` filled in;
        /// compared case-insensitively. Inferred like the store (the
        /// connector framework issues `CN=<agent id>`): undocumented.
        pub registration_certificate_subject: String {
            toml: "agent_module.registration_certificate_subject",
            env: "PROVD_AGENT_MODULE_REGISTRATION_CERTIFICATE_SUBJECT",
            flag: "--agent-module-registration-certificate-subject",
            example: "CN={machine_name}", parse: subject_template, default: "CN={agent_id}".into()
        }
    }
}

/// A system store's name: letters and digits (`My`, `Root`, `CA`).
fn store_name(value: &str, _: &super::layers::Source) -> Result<String, String> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "{value:?} is not a certificate store name (letters and digits, e.g. My)"
        ));
    }
    Ok(value.to_owned())
}

/// A subject template naming the agent: `{agent_id}` or `{machine_name}`.
fn subject_template(value: &str, _: &super::layers::Source) -> Result<String, String> {
    if !(value.contains("{agent_id}") || value.contains("{machine_name}")) || value.len() > 256 {
        return Err(format!(
            "{value:?} must name the agent with {{agent_id}} or {{machine_name}} (e.g. CN={{agent_id}})"
        ));
    }
    Ok(value.to_owned())
}
