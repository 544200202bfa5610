//! `Import-Module` of the agent's module, and the execution policies (`Get-ExecutionPolicy
//! -List`; `policy.rs` has what they change).
//!
//! The module is a file: `Microsoft.CloudSync.PowerShell.dll` in the agent's install folder.
//! The lab MSI installs a placeholder with a version resource equal to its ProductVersion
//! (what `module-info` reports); importing it only checks it is there [I: the real import
//! loads a .NET assembly, which a placeholder is not]. AADCloudSyncTools (a folder beside
//! it, `Utility\AADCloudSyncTools`) is taken as there with the agent ([`tools_present`]).

use std::path::Path;

use super::sys;
use crate::errors;
use crate::plan::Failure;
use crate::policy;

pub fn import(path: &str) -> Result<(), Failure> {
    if Path::new(path).is_file() || tools_present(path) {
        Ok(())
    } else {
        Err(errors::module_not_found(path))
    }
}

/// AADCloudSyncTools, a folder module in the agent's `Utility` folder: the lab MSI installs
/// no such folder, so the stand-in takes the module as there when the folder is, or when the
/// agent's own module is installed beside `Utility` [I: the real folder holds a script
/// module, which the stand-in does not load].
fn tools_present(path: &str) -> bool {
    let folder = Path::new(path);
    if !folder
        .file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case(crate::run::TOOLS_MODULE))
    {
        return false;
    }
    folder.is_dir()
        || folder
            .parent()
            .and_then(Path::parent)
            .is_some_and(|agent| agent.join(AGENT_MODULE_FILE).is_file())
}

/// The agent's module file, in its install folder.
const AGENT_MODULE_FILE: &str = "Microsoft.CloudSync.PowerShell.dll";

/// (scope, policy) for the five scopes, in PowerShell's precedence order.
pub fn execution_policies() -> Vec<(String, String)> {
    const SHELL: &str = r"SOFTWARE\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell";
    let group_policy = |hive: &str| {
        let key = format!(r"{hive}\SOFTWARE\Policies\Microsoft\Windows\PowerShell");
        if sys::reg_get(&key, "EnableScripts") == Some(sys::RegValue::Dword(0)) {
            return "Restricted".to_owned();
        }
        policy::canonical(
            sys::reg_get(&key, "ExecutionPolicy")
                .and_then(|v| v.text())
                .as_deref(),
        )
    };
    let values = [
        group_policy("HKLM"),
        group_policy("HKCU"),
        policy::canonical(std::env::var("PSExecutionPolicyPreference").ok().as_deref()),
        policy::canonical(
            sys::reg_get(&format!(r"HKCU\{SHELL}"), "ExecutionPolicy")
                .and_then(|v| v.text())
                .as_deref(),
        ),
        policy::canonical(
            sys::reg_get(&format!(r"HKLM\{SHELL}"), "ExecutionPolicy")
                .and_then(|v| v.text())
                .as_deref(),
        ),
    ];
    policy::SCOPES
        .iter()
        .zip(values)
        .map(|(scope, value)| ((*scope).to_owned(), value))
        .collect()
}
