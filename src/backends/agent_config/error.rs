//! How a module call fails. Each message ends with what the operator can
//! do. Texts that come from PowerShell (`message`) have been through the
//! request's redaction before they get here, so no variant carries a
//! secret.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    /// Not a Windows host.
    #[error("the agent's PowerShell module cannot run here: {0}; run provd on the agent's host")]
    Unavailable(String),
    /// `Import-Module` found no module: the agent is not installed.
    #[error(
        "the agent's PowerShell module {path} is not installed; install the agent first \
         (AgentService.Install)"
    )]
    ModuleMissing { path: String },
    /// The installed module predates a cmdlet or parameter provd uses.
    #[error(
        "the installed agent {version} is older than {needed}, which {feature} needs; \
         upgrade the agent (AgentService.Install with a newer package)"
    )]
    ModuleTooOld {
        version: String,
        needed: String,
        feature: String,
    },
    /// An execution policy stops the module (Microsoft: machine and user
    /// policies must be Undefined or RemoteSigned) or PowerShell refused
    /// provd's unsigned script.
    #[error(
        "PowerShell execution policy {policy} ({scope}) stops the agent's module: \
         machine and user policies must be Undefined or RemoteSigned; {}",
        policy_remedy(.scope)
    )]
    ExecutionPolicy { scope: String, policy: String },
    /// The module loads an assembly version the agent did not install
    /// (MicrosoftDocs/azure-docs#104689: Newtonsoft.Json 12 wanted, 13
    /// shipped).
    #[error(
        "the agent's module cannot load {assembly} ({message}); upgrade the agent to a \
         build whose module matches its assemblies (azure-docs#104689; copying another \
         Newtonsoft.Json.dll over the agent's, a third-party workaround, is not \
         something provd does)"
    )]
    AssemblyConflict { assembly: String, message: String },
    /// "Failed changing Windows service credentials to gMSA": the service is
    /// not flagged as using a managed account.
    #[error(
        "the module could not make {service} log on as the gMSA (the service is not \
         flagged for a managed account); run `sc.exe managedaccount {service} true` \
         (check with `sc.exe qmanagedaccount {service}`) and retry"
    )]
    ServiceAccountNotManaged { service: String },
    /// `Connect-AADCloudSyncAzureAD` refused the access token.
    #[error(
        "the agent's module refused the tenant token ({message}); check \
         tenant.registration_client_id and tenant.registration_scope, then sign in \
         again"
    )]
    TokenRejected { message: String },
    /// PowerShell's parameter binder refused what provd passes: this
    /// module version takes other parameters (or lacks the cmdlet).
    #[error(
        "{cmdlet} does not take what provd passes ({fqid}: {message}); this agent \
         version's module differs from the documented one: upgrade the agent, or report \
         it with the agent's version"
    )]
    ParameterBinding {
        cmdlet: String,
        parameter: String,
        fqid: String,
        message: String,
    },
    /// Any other error record of a cmdlet, verbatim.
    #[error("{cmdlet} failed: {message} ({fqid}, {category})")]
    Cmdlet {
        cmdlet: String,
        message: String,
        fqid: String,
        category: String,
    },
    /// The script ran longer than allowed; its process tree was ended.
    #[error(
        "the module script {script} did not finish within {}; it was stopped (raise \
         agent_module.script_timeout if the agent is just slow)",
        humantime::format_duration(*.after)
    )]
    Timeout { script: String, after: Duration },
    /// The operation was cancelled; the script's process tree was ended.
    #[error("cancelled")]
    Cancelled,
    /// The script's answer was missing or unreadable.
    #[error("the module script gave no usable answer: {0}")]
    Protocol(String),
    /// PowerShell could not be started, or the scripts directory written.
    #[error("cannot run the agent's module: {0}")]
    Io(String),
}

/// Where each scope's policy is changed: the two policy scopes come from
/// Group Policy, which `Set-ExecutionPolicy` cannot override.
fn policy_remedy(scope: &str) -> String {
    match scope {
        "MachinePolicy" | "UserPolicy" => format!(
            "it is set by Group Policy ({scope}): change \"Turn on Script Execution\" \
          (Administrative Templates > Windows Components > Windows PowerShell) to allow \
          local scripts, or leave it not configured"
        ),
        "LocalMachine" | "CurrentUser" => {
            format!("run `Set-ExecutionPolicy RemoteSigned -Scope {scope}` as an administrator")
        }
        _ => "see which scope sets it with `Get-ExecutionPolicy -List`, then \
           `Set-ExecutionPolicy RemoteSigned -Scope LocalMachine` (or the Group Policy \
           \"Turn on Script Execution\" for a policy scope)"
            .into(),
    }
}
