//! Checks for the PowerShell scripts provd ships to configure Microsoft's
//! provisioning agent (`src/backends/agent_config/scripts/*.ps1`), without PowerShell.
//! Pure: no I/O, no provd types. Used by provd's parse test
//! (`tests/integration/ps_scripts.rs`, a dev-dependency) and meant as the
//! build-dependency of the lab's stand-in `powershell.exe` (design note for issue 14,
//! 3.6), so the test and the stand-in bind against one table with one binder.
//!
//! * [`Table`] (`cmdlets.toml`, compiled in; [`Table::load`]): every command the
//!   scripts may call, with the parameter sets they may use, each fact labelled with
//!   its evidence ([`Evidence`]) and its source page.
//! * [`extract`]: parses a script with tree-sitter's PowerShell grammar
//!   (`tree-sitter-powershell`, MIT, from airbus-cert), refuses any tree with an
//!   ERROR or MISSING node, applies provd's script rules ([`Rule`]) and returns a
//!   [`ScriptPlan`] (header, request locals, every call with its parameters and
//!   arguments; serde-serializable for a build script).
//! * [`bind`]: binds one call as PowerShell's parameter binder would, with its errors
//!   ([`BindError`]: `NamedParameterNotFound`, `MissingMandatoryParameter`,
//!   `AmbiguousParameterSet`, …, each with its FullyQualifiedErrorId and message).
//!
//! What Microsoft documents about the agent's cmdlets (`Microsoft.CloudSync.PowerShell.dll`):
//! no reference page and no parameter tables, only examples and prose —
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install-pshell>
//! (Connect-AADCloudSyncAzureAD, Add-AADCloudSyncGMSA, Add-AADCloudSyncADDomain, the
//! module path), <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-gmsa-cmdlets>
//! (Set-AADCloudSyncPermissions, Set-AADCloudSyncRestrictedPermissions),
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install>
//! and <https://learn.microsoft.com/en-us/entra/identity/authentication/tutorial-enable-cloud-sync-sspr-writeback>
//! (Set-AADCloudSyncPasswordWritebackConfiguration),
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/reference-version-history>
//! (Get-AADCloudSyncDomains; the minimum versions). `Connect-AADCloudSyncAzureAD
//! -AccessToken -TenantId -UserPrincipalName` is on no docs page: it is the form
//! Microsoft's own Azure/missionlz script `src/artifacts/Install-EntraCloudSyncAgent.ps1`
//! uses (Microsoft code, not documentation). Parameter-set names, types and most
//! "mandatory" flags are therefore examples or inferences, and the table says which.
//! The cmdlets' class names (the second half of their error ids) are inferred from
//! one verbatim error record (MicrosoftDocs/azure-docs#104689).

mod bind;
mod extract;
mod rules;
mod syntax;
mod table;

pub use bind::{BindError, BoundCall, BoundParameter, bind};
pub use extract::{
    Arg, Arm, Branch, Call, Element, Header, ParseError, RequestLocal, ScriptPlan, extract,
};
pub use rules::{Rule, Violation};
pub use table::{
    Cmdlet, Common, Evidence, Mandatory, Param, ParamSet, ParamType, TABLE_TOML, Table, TableError,
};

/// The module, exactly as Microsoft's install page imports it (how-to-install-pshell,
/// step 8; the gMSA and writeback pages spell it `…Powershell.dll`: same file, NTFS
/// is case-insensitive). Scripts name it only as this literal.
pub const MODULE_PATH: &str = r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll";

/// The AADCloudSyncTools module (a folder), exactly as Microsoft's page imports it
/// (<https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/reference-powershell>,
/// "Install the AADCloudSyncTools PowerShell module", steps 2 and 8). Scripts name it
/// only as this literal.
pub const TOOLS_MODULE_PATH: &str =
    r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Utility\AADCloudSyncTools";

/// The prefix of the one result line a script writes to stdout.
pub const RESULT_PREFIX: &str = "PROVD-RESULT ";
