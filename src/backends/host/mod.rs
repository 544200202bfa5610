//! The host: the agent package installer, the Windows Service Control
//! Manager, the prerequisite facts (registry, SCM, memory) and the fixes
//! RemediateHost applies. Windows gets `windows::WindowsHost`; every other
//! platform gets [`UnavailableHost`], which says so plainly.
//!
//! User rights are a trait of their own, [`LogonRights`]: they are read
//! through LSA, which Wine only stubs, so the lab cannot exercise the
//! Windows implementation (`lsa::LsaLogonRights`) and tests use a recorded
//! fake instead.

use std::path::{Path, PathBuf};

/// The agent's two Windows services, in the order reports list them.
pub const AGENT_SERVICES: [(&str, &str); 2] = [
    (
        "AADConnectProvisioningAgent",
        "Microsoft Azure AD Connect Provisioning Agent",
    ),
    (
        "AzureADConnectAgentUpdater",
        "Microsoft Azure AD Connect Agent Updater",
    ),
];

#[cfg(windows)]
#[allow(unsafe_code)]
pub mod lsa;
#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows_diagnostics;
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows_prereq;
#[cfg(windows)]
mod windows_settings;

pub mod exe_config;
pub mod installer;

pub use installer::{InstallerFailure, package_version};

pub use crate::model::{
    AGENT_KEY, ALL_SERVICES_SID, AgentProduct, AgentProxy, AgentSettings, AgentSettingsRead,
    AgentStatus, Cloud, DiagnosticPart, EXE_CONFIG, FixOutcome, HostFix, HostPrerequisites,
    LDAP_TIMEOUT_VALUE, ProductRole, ProductUninstall, REFERRAL_CHASING_VALUE, RegReading,
    RegValue, ServiceLogonRight, ServiceState, ServiceStatus, StartType,
    USER_PASSWORD_LENGTH_VALUE,
};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// This platform cannot manage the agent.
    #[error("host backend unavailable: {0}")]
    Unavailable(String),
    /// The installer ran and failed; the log says why.
    #[error("the installer failed with exit code {code} ({failure}); log: {log}")]
    Installer {
        code: u32,
        failure: InstallerFailure,
        log: String,
    },
    /// provd would not run an entry's uninstaller (its command is not one
    /// it trusts, or the entry is neither an MSI nor a Burn bundle).
    #[error("provd does not remove the uninstall entry {entry}: {reason}; remove it by hand")]
    Refused { entry: String, reason: String },
    /// The installer or the SCM could not be used at all.
    #[error("{0}")]
    Io(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageKind {
    /// Run through `msiexec /i`.
    Msi,
    /// Microsoft's bootstrapper, run with `/quiet`.
    Exe,
}

#[derive(Debug, Clone)]
pub struct PackageToInstall {
    pub path: PathBuf,
    pub kind: PackageKind,
    pub cloud: Cloud,
    /// Where the installer writes its verbose log.
    pub log_path: PathBuf,
}

/// What a successful installer run reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallOutcome {
    /// Exit code 3010 (or 1641): done, effective after a restart.
    pub reboot_required: bool,
}

#[async_trait::async_trait]
pub trait Host: Send + Sync + 'static {
    /// `Err(reason)` when this host cannot manage the agent at all.
    fn availability(&self) -> Result<(), String>;
    /// This machine's name, as its agent registers with the tenant.
    fn machine_name(&self) -> String {
        gethostname::gethostname().to_string_lossy().into_owned()
    }
    /// Any service's state (e.g. provd's own).
    async fn service_status(&self, name: &str) -> Result<ServiceStatus, HostError>;
    async fn agent_status(&self) -> Result<AgentStatus, HostError>;
    async fn install_package(
        &self,
        package: &PackageToInstall,
    ) -> Result<InstallOutcome, HostError>;
    /// Removes one of the package's entries (`AgentStatus::products`)
    /// silently: an MSI with `msiexec /x`, a bundle through its
    /// `QuietUninstallString` ([`installer::bundle_command`]), the log at
    /// `log_path`. Exit codes as Install's.
    async fn uninstall_product(
        &self,
        product: &AgentProduct,
        log_path: &Path,
    ) -> Result<InstallOutcome, HostError>;
    /// Starts, stops or restarts one service, waiting up to `timeout` for it
    /// to reach the target state.
    async fn control_service(
        &self,
        name: &str,
        action: ServiceAction,
        timeout: std::time::Duration,
    ) -> Result<ServiceState, HostError>;
    /// Reads every prerequisite fact. A fact that cannot be read is
    /// recorded as such in the result, never an error of the call; `Err`
    /// only when the host backend is unavailable.
    async fn prerequisites(&self) -> Result<HostPrerequisites, HostError>;
    /// Applies one fix. Idempotent: `changed=false` when it was already so.
    /// Never restarts the host; `reboot_required` says when one is needed.
    async fn remediate(&self, fix: HostFix) -> Result<FixOutcome, HostError>;
    /// The agent's settings as they are: the proxy and FIPS flag of its
    /// exe.config (beside the agent service's exe), and its registry
    /// options. `Err` when the agent is not installed or the exe.config
    /// cannot be read or parsed.
    async fn agent_settings(&self) -> Result<AgentSettingsRead, HostError>;
    /// Puts each `Some` setting in place (the exe.config edited as XML,
    /// every other byte kept; the registry options as REG_SZ) and leaves
    /// the rest alone. Does not restart the agent: the caller does, once.
    async fn set_agent_settings(&self, settings: &AgentSettings) -> Result<(), HostError>;
    /// What a support bundle takes from the host (what Microsoft's
    /// `Export-AADCloudSyncToolsLogs` collects): the agent's trace folder
    /// (newest first, at most `limit` bytes in all), its exe.config, and
    /// the Application, System and `Microsoft-AzureADConnect-
    /// ProvisioningAgent/Admin` event logs from `since`. A part that cannot
    /// be read says why; the call itself never fails.
    async fn diagnostic_parts(
        &self,
        since: std::time::SystemTime,
        limit: u64,
    ) -> Vec<DiagnosticPart>;
    /// Every certificate of the `LocalMachine\<store>` certificate store
    /// (e.g. `My`), as DER. Read-only.
    async fn local_machine_certificates(&self, store: &str) -> Result<Vec<Vec<u8>>, HostError> {
        Err(HostError::Unavailable(format!(
            "certificate store LocalMachine\\{store}: the Windows certificate store exists on \
             Windows only; this host runs {}",
            std::env::consts::OS
        )))
    }
}

/// User rights as LSA holds them (read-only: provd grants none itself).
#[async_trait::async_trait]
pub trait LogonRights: Send + Sync + 'static {
    /// Who holds "Log on as a service" now, and whether a GPO defines it.
    async fn service_logon_right(&self) -> Result<ServiceLogonRight, HostError>;
}

/// The user-rights backend of every non-Windows platform.
#[derive(Debug, Clone)]
pub struct UnavailableLogonRights;

#[async_trait::async_trait]
impl LogonRights for UnavailableLogonRights {
    async fn service_logon_right(&self) -> Result<ServiceLogonRight, HostError> {
        Err(HostError::Unavailable(format!(
            "user rights are read through LSA, on Windows only; this host runs {}",
            std::env::consts::OS
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
}

/// The host backend of every non-Windows platform.
#[derive(Debug, Clone)]
pub struct UnavailableHost {
    reason: String,
}

impl UnavailableHost {
    pub fn for_this_platform() -> Self {
        Self {
            reason: format!(
                "provd manages the provisioning agent only on Windows; this host runs {}",
                std::env::consts::OS
            ),
        }
    }
}

#[async_trait::async_trait]
impl Host for UnavailableHost {
    fn availability(&self) -> Result<(), String> {
        Err(self.reason.clone())
    }

    async fn service_status(&self, _name: &str) -> Result<ServiceStatus, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn agent_status(&self) -> Result<AgentStatus, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn install_package(
        &self,
        _package: &PackageToInstall,
    ) -> Result<InstallOutcome, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn uninstall_product(
        &self,
        _product: &AgentProduct,
        _log: &Path,
    ) -> Result<InstallOutcome, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn control_service(
        &self,
        _name: &str,
        _action: ServiceAction,
        _timeout: std::time::Duration,
    ) -> Result<ServiceState, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn prerequisites(&self) -> Result<HostPrerequisites, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn remediate(&self, _fix: HostFix) -> Result<FixOutcome, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn agent_settings(&self) -> Result<AgentSettingsRead, HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn set_agent_settings(&self, _settings: &AgentSettings) -> Result<(), HostError> {
        Err(HostError::Unavailable(self.reason.clone()))
    }

    async fn diagnostic_parts(
        &self,
        _since: std::time::SystemTime,
        _limit: u64,
    ) -> Vec<DiagnosticPart> {
        vec![DiagnosticPart {
            path: "agent".into(),
            content: Err(self.reason.clone()),
        }]
    }
}

/// The registry options of `settings`, each with its value name.
pub fn registry_options(settings: &AgentSettings) -> [(&'static str, Option<u32>); 3] {
    [
        (LDAP_TIMEOUT_VALUE, settings.ldap_connection_timeout_ms),
        (REFERRAL_CHASING_VALUE, settings.referral_chasing_options),
        (USER_PASSWORD_LENGTH_VALUE, settings.user_password_length),
    ]
}

/// The installer kind a package file name implies.
pub fn package_kind(path: &Path) -> Option<PackageKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "msi" => Some(PackageKind::Msi),
        "exe" => Some(PackageKind::Exe),
        _ => None,
    }
}
