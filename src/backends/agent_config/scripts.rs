//! The PowerShell scripts provd ships to configure Microsoft's provisioning agent
//! through its own module (`Microsoft.CloudSync.PowerShell.dll`): one fixed, reviewed
//! script per action, compiled into provd, written out and re-hashed before every run,
//! and run as `powershell.exe -NoLogo -NoProfile -NonInteractive -File <script>`.
//!
//! The cmdlets are Microsoft's, with no reference page: their usage is shown on
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install-pshell>
//! (Connect-AADCloudSyncAzureAD, Add-AADCloudSyncGMSA, Add-AADCloudSyncADDomain),
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install>
//! (Set-AADCloudSyncPasswordWritebackConfiguration) and
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/reference-version-history>
//! (Get-AADCloudSyncDomains). `Connect-AADCloudSyncAzureAD -AccessToken -TenantId
//! -UserPrincipalName` is only in Microsoft's Azure/missionlz deployment script, not in
//! the docs; set-writeback's Set-AADCloudSyncPasswordWritebackConfiguration without
//! `-Credential` is an assumption to verify on a real server. What each fact rests on:
//! `crates/provd-psscript/cmdlets.toml`.
//!
//! The protocol, the same for every script: stdin is base64 of the UTF-8 JSON request
//! (base64 sidesteps Windows PowerShell 5.1's console code pages); stdout carries one
//! line `PROVD-RESULT <base64 of the UTF-8 JSON result>` and any number of transcript
//! lines; the result is `{"ok":true, …}` with exit code 0, or
//! `{"ok":false,"error":{"message","fullyQualifiedErrorId","category","exceptionType","command"}}`
//! with exit code 1.
//!
//! | script | request fields | result besides `ok` |
//! |---|---|---|
//! | `module-info` | (none) | `modulePath`, `modulePresent`, `moduleVersion` (FileVersion or null), `executionPolicies` `[{scope, policy}]`, `registeredTenant` (registry `TenantID` or null) |
//! | `connect-tenant` | `accessToken`, `tenantId`, `userPrincipalName` | |
//! | `use-gmsa` | `customGmsaName` (with the trailing `$`) | |
//! | `add-domain` | `domainName`, `userName`, `password`, `preferredDomainControllers` (array, may be empty) | |
//! | `set-writeback` | `accessToken`, `tenantId`, `userPrincipalName`, `enable` | |
//! | `list-domains` | (none) | `domains`: one object per domain, every property as a string |
//! | `verbose-trace-start` | (none) | |
//! | `verbose-trace-stop` | (none) | |
//!
//! The two verbose-trace scripts import Microsoft's other module, AADCloudSyncTools
//! (`Utility\AADCloudSyncTools` in the agent's folder, [`TOOLS_MODULE_PATH`](super::TOOLS_MODULE_PATH)),
//! and call `Start-`/`Stop-AADCloudSyncToolsVerboseLogs`
//! (<https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/reference-powershell>):
//! two scripts rather than one taking an action, because a script may not branch on
//! request data.
//!
//! Invariant ✔ (`tests/integration/ps_scripts.rs`): every script parses with
//! PowerShell's grammar, keeps the script rules (design note for issue 14, 3.2), calls
//! only commands of the table with parameters that bind, and takes request data only as
//! whole parameter arguments: never interpolated into script text, never in an
//! expression.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One shipped script. Its first line is `# provd-script: <name> v<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    pub name: &'static str,
    pub version: u32,
    pub text: &'static str,
}

/// `script!("name", version)`: `scripts/<name>.ps1`, compiled in.
macro_rules! script {
    ($name:literal, $version:literal) => {
        Script {
            name: $name,
            version: $version,
            text: include_str!(concat!("scripts/", $name, ".ps1")),
        }
    };
}

/// Every shipped script.
pub const SCRIPTS: &[Script] = &[
    script!("module-info", 1),
    script!("connect-tenant", 1),
    script!("use-gmsa", 1),
    script!("add-domain", 1),
    script!("set-writeback", 1),
    script!("list-domains", 1),
    script!("verbose-trace-start", 1),
    script!("verbose-trace-stop", 1),
];

/// The shipped script called `name`.
pub fn by_name(name: &str) -> Option<&'static Script> {
    SCRIPTS.iter().find(|s| s.name == name)
}

/// The SHA-256 of the script's bytes (computed once for the shipped scripts).
pub fn sha256(script: &Script) -> [u8; 32] {
    static SHIPPED: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let shipped = SHIPPED.get_or_init(|| SCRIPTS.iter().map(|s| digest(s.text)).collect());
    SCRIPTS
        .iter()
        .position(|s| s == script)
        .and_then(|i| shipped.get(i).copied())
        .unwrap_or_else(|| digest(script.text))
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
