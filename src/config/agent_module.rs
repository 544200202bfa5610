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
    }
}
