//! From what PowerShell and the module say to a typed error with its
//! remedy. Platform-neutral, and shared with Verify's checks of the same
//! failure modes (issue 16): the texts are matched here once.
//!
//! Sources of the texts: the Newtonsoft.Json record is verbatim from
//! MicrosoftDocs/azure-docs#104689; "Failed changing Windows service
//! credentials to gMSA" from Microsoft's troubleshooting page
//! (azure-ad-hybrid-sync-gmsa-set-logon-service); the binder's, the
//! missing-module and the execution-policy texts are PowerShell 5.1's
//! standard ones, written from memory: confirm them on a real server.

use serde::{Deserialize, Deserializer};

use super::{AGENT_SERVICE, AgentConfigError, MODULE_PATH};
use crate::backends::host::installer::version_cmp;

/// The first version whose module takes `-CustomGMSAName` (1.1.354.0:
/// "support for pre-custom created GMSA Account").
pub const MIN_CUSTOM_GMSA: &str = "1.1.354.0";
/// The first version with `Set-AADCloudSyncPasswordWritebackConfiguration`
/// generally available (1.1.977.0).
pub const MIN_WRITEBACK: &str = "1.1.977.0";

/// The error record a script's `catch` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScriptError {
    #[serde(deserialize_with = "text")]
    pub message: String,
    #[serde(deserialize_with = "text")]
    pub fully_qualified_error_id: String,
    #[serde(deserialize_with = "text")]
    pub category: String,
    #[serde(deserialize_with = "text")]
    pub exception_type: String,
    #[serde(deserialize_with = "text")]
    pub command: String,
}

/// ConvertTo-Json writes `$null` for an absent property.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// PowerShell's parameter binder's error ids (the FQID's first part) that
/// mean the module's parameters differ from what provd passes. A value the
/// binder cannot convert or validate is about the data instead, so it stays
/// the cmdlet's own error.
const BINDER_IDS: [&str; 3] = [
    "NamedParameterNotFound",
    "MissingMandatoryParameter",
    "AmbiguousParameterSet",
];

/// The typed error for a script's error record.
pub fn classify(error: &ScriptError) -> AgentConfigError {
    let (id, class) = error
        .fully_qualified_error_id
        .split_once(',')
        .unwrap_or((error.fully_qualified_error_id.as_str(), ""));
    let cmdlet = cmdlet_of(error, class);
    let message = error.message.trim();
    if let Some(refused) = refused_script(&format!("{id}\n{message}")) {
        return refused;
    }
    if id == "Modules_ModuleNotFound"
        || (cmdlet == "Import-Module" && error.exception_type.ends_with("FileNotFoundException"))
    {
        // Two modules are imported (the agent's and AADCloudSyncTools):
        // Import-Module's message quotes the one it did not find.
        let path = quoted(message)
            .filter(|p| p.contains('\\'))
            .unwrap_or(MODULE_PATH);
        return AgentConfigError::ModuleMissing { path: path.into() };
    }
    if message.contains("Could not load file or assembly") || message.contains("0x80131040") {
        return AgentConfigError::AssemblyConflict {
            assembly: quoted(message).unwrap_or("an assembly").to_owned(),
            message: message.to_owned(),
        };
    }
    if message.contains("Failed changing Windows service credentials to gMSA") {
        return AgentConfigError::ServiceAccountNotManaged {
            service: AGENT_SERVICE.into(),
        };
    }
    if BINDER_IDS.contains(&id) || id == "CommandNotFoundException" {
        return AgentConfigError::ParameterBinding {
            parameter: parameter_of(id, message),
            cmdlet: if id == "CommandNotFoundException" {
                quoted(message).unwrap_or(&cmdlet).to_owned()
            } else {
                cmdlet
            },
            fqid: error.fully_qualified_error_id.clone(),
            message: message.to_owned(),
        };
    }
    if message.contains("AADSTS")
        || (cmdlet == "Connect-AADCloudSyncAzureAD"
            && (message.contains("401") || message.contains("Unauthorized")))
    {
        return AgentConfigError::TokenRejected {
            message: message.to_owned(),
        };
    }
    AgentConfigError::Cmdlet {
        cmdlet,
        message: message.to_owned(),
        fqid: error.fully_qualified_error_id.clone(),
        category: error.category.clone(),
    }
}

/// PowerShell refusing to run provd's script at all (it prints this on
/// stderr, before any script code runs).
pub fn refused_script(text: &str) -> Option<AgentConfigError> {
    let policy = if text.contains("running scripts is disabled on this system") {
        "Restricted"
    } else if text.contains("is not digitally signed") {
        "AllSigned or RemoteSigned (the script counts as remote)"
    } else if text.lines().any(|l| l.trim() == "UnauthorizedAccess")
        || text.contains("FullyQualifiedErrorId : UnauthorizedAccess")
    {
        "one that refuses the script"
    } else {
        return None;
    };
    Some(AgentConfigError::ExecutionPolicy {
        scope: "effective".into(),
        policy: policy.into(),
    })
}

/// The first machine or user scope (in the order `Get-ExecutionPolicy
/// -List` gives, PowerShell's precedence) whose policy breaks the agent:
/// "You need to have machine and user policies set as Undefined or
/// RemoteSigned. If they're set as Unrestricted, you'll see this error."
/// (Microsoft's cloud sync troubleshooting page). The Process scope is
/// provd's own child's, not the host's, so it is not judged.
pub fn execution_policy(policies: &[(String, String)]) -> Result<(), AgentConfigError> {
    const SCOPES: [&str; 4] = ["MachinePolicy", "UserPolicy", "LocalMachine", "CurrentUser"];
    let bad = policies.iter().find(|(scope, policy)| {
        SCOPES.contains(&scope.as_str())
            && !["Undefined", "RemoteSigned"].contains(&policy.as_str())
    });
    match bad {
        Some((scope, policy)) => Err(AgentConfigError::ExecutionPolicy {
            scope: scope.clone(),
            policy: policy.clone(),
        }),
        None => Ok(()),
    }
}

/// `Ok` when the module at `installed` is at least `needed` for `feature`.
pub fn require_version(
    installed: Option<&str>,
    needed: &str,
    feature: &str,
) -> Result<(), AgentConfigError> {
    match installed {
        Some(v) if version_cmp(v, needed).is_ge() => Ok(()),
        Some(v) => Err(AgentConfigError::ModuleTooOld {
            version: v.into(),
            needed: needed.into(),
            feature: feature.into(),
        }),
        None => Err(AgentConfigError::ModuleMissing {
            path: MODULE_PATH.into(),
        }),
    }
}

/// The cmdlet: the record's command, else the FQID's class
/// (`Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain`).
fn cmdlet_of(error: &ScriptError, class: &str) -> String {
    if !error.command.trim().is_empty() {
        return error.command.trim().to_owned();
    }
    class.rsplit('.').next().unwrap_or(class).to_owned()
}

/// The first 'quoted' text of `message`, up to a comma: the assembly in
/// "Could not load file or assembly 'Newtonsoft.Json, Version=…'", the
/// command in "The term 'X' is not recognized".
fn quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('\'')?;
    let (inner, _) = rest.split_once('\'')?;
    Some(inner.split(',').next().unwrap_or(inner).trim())
}

/// The parameter a binder error names.
fn parameter_of(id: &str, message: &str) -> String {
    let after = |marker: &str| {
        message
            .split_once(marker)
            .map(|(_, rest)| rest.trim().trim_end_matches('.').to_owned())
    };
    match id {
        "NamedParameterNotFound" => quoted(message).map(str::to_owned),
        "MissingMandatoryParameter" => after("missing mandatory parameters:"),
        _ => quoted(message).map(str::to_owned),
    }
    .unwrap_or_default()
}
