//! What the domain knows of the Windows host: the agent's services and the
//! Microsoft cloud its installer targets.

/// The Microsoft cloud (the agent installer's ENVIRONMENTNAME).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cloud {
    #[default]
    AzurePublic,
    AzureUsGovernment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    NotInstalled,
    Stopped,
    StartPending,
    StopPending,
    Running,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    Automatic,
    AutomaticDelayed,
    Manual,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub name: String,
    pub display_name: String,
    pub state: ServiceState,
    pub start_type: Option<StartType>,
    pub account: String,
}

#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// The Provisioning Agent's own entry's DisplayVersion (not the
    /// package's, not the updater's).
    pub installed_version: Option<String>,
    pub services: Vec<ServiceStatus>,
    /// Every Add/Remove Programs entry of the agent's package, in the
    /// order they are removed (`backends::host::installer::removal_order`).
    pub products: Vec<AgentProduct>,
}

/// Which of the package's three Add/Remove Programs entries one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductRole {
    /// The bundle (Microsoft's `AADConnectProvisioningAgentSetup.exe`).
    Package,
    /// "… Agent Updater".
    Updater,
    /// "… Provisioning Agent".
    Agent,
}

/// How an entry is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductUninstall {
    /// A Windows Installer product: `msiexec /x {code}`.
    Msi { product_code: String },
    /// A WiX Burn bundle: its `QuietUninstallString` as the registry holds
    /// it, and its `BundleCachePath` (the cached bundle exe) when present.
    Bundle {
        quiet_uninstall: String,
        cache_path: Option<String>,
    },
    /// Neither (no product code, no bundle values): provd does not guess.
    Unknown,
}

/// One Add/Remove Programs entry of the agent's package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProduct {
    /// The uninstall key's name (an MSI's ProductCode, a bundle's id).
    pub key: String,
    pub display_name: String,
    pub version: String,
    pub role: ProductRole,
    pub uninstall: ProductUninstall,
}

impl std::fmt::Display for AgentProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" {} ({})",
            self.display_name, self.version, self.key
        )
    }
}

/// The host's computer account: the first DNS label, at most 15
/// characters (the NetBIOS limit), plus `$`.
pub fn computer_account(machine_name: &str) -> String {
    let label = machine_name.split('.').next().unwrap_or_default();
    let short: String = label.chars().take(15).collect();
    format!("{}$", short.to_ascii_uppercase())
}

/// One registry value as the host read it. `Absent` and `Unreadable` are
/// kept apart: an absent SCHANNEL key means "the OS default", an unreadable
/// one means provd could not tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    Absent,
    Dword(u32),
    Text(String),
    Binary(Vec<u8>),
    /// Any other type (QWORD, MULTI_SZ, ...), by its type number.
    Other(u32),
    Unreadable(String),
}

/// A registry value and where it was read (`HKLM\...\Name`), so a check can
/// show the evidence as it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegReading {
    pub path: String,
    pub value: RegValue,
}

impl RegReading {
    pub fn new(path: impl Into<String>, value: RegValue) -> Self {
        Self {
            path: path.into(),
            value,
        }
    }

    pub fn dword(&self) -> Option<u32> {
        match self.value {
            RegValue::Dword(v) => Some(v),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match &self.value {
            RegValue::Text(v) => Some(v),
            _ => None,
        }
    }

    /// The value as evidence text: `1`, `"RemoteSigned"`, `absent`, ...
    pub fn shown(&self) -> String {
        match &self.value {
            RegValue::Absent => "absent".into(),
            RegValue::Dword(v) => v.to_string(),
            RegValue::Text(v) => format!("{v:?}"),
            RegValue::Binary(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            RegValue::Other(t) => format!("a value of registry type {t}"),
            RegValue::Unreadable(e) => format!("unreadable ({e})"),
        }
    }
}

/// The host facts the prerequisite checks judge, each read as it is (the
/// workflows decide what is wanted). Fields are in the order the checks
/// report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPrerequisites {
    /// SCHANNEL `TLS 1.2\Client` and `\Server` `Enabled` and
    /// `DisabledByDefault`, then .NET v4.0.30319 `SchUseStrongCrypto` in the
    /// 64-bit and the 32-bit (`WOW6432Node`) registry views.
    pub tls12: Vec<RegReading>,
    /// `NDP\v4\Full` `Release`: the installed .NET Framework 4.x.
    pub dotnet_release: RegReading,
    /// `CurrentVersion` `ProductName`, `CurrentBuildNumber` and
    /// `InstallationType` ("Server", "Server Core", "Client").
    pub os_product_name: RegReading,
    pub os_build: RegReading,
    pub os_installation_type: RegReading,
    /// Physically installed memory in bytes, or why it could not be read.
    pub total_memory_bytes: Result<u64, String>,
    /// The Credential Manager service (VaultSvc): its start type, `None`
    /// when it is not installed; or why it could not be read.
    pub vault_service: Result<Option<StartType>, String>,
    /// The LocalMachine scope's execution policy.
    pub execution_policy: RegReading,
    /// The Group Policy scope: `EnableScripts` and `ExecutionPolicy` under
    /// `HKLM\SOFTWARE\Policies\Microsoft\Windows\PowerShell`.
    pub execution_policy_gpo_enabled: RegReading,
    pub execution_policy_gpo: RegReading,
    /// `ServiceAccountManaged` of the agent service (what
    /// `sc.exe managedaccount AADConnectProvisioningAgent true` writes);
    /// `None` when the agent service is not installed.
    pub service_account_managed: Option<RegReading>,
    /// The host's Kerberos `SupportedEncryptionTypes` policy (read for the
    /// gMSA's encryption-type comparison).
    pub kerberos_encryption_types: RegReading,
}

/// A change RemediateHost can make; each is safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostFix {
    /// SCHANNEL TLS 1.2 Client/Server on, .NET strong crypto in both views.
    Tls12,
    /// VaultSvc from Disabled to Manual.
    VaultSvcManual,
    /// The agent service flagged as running as a managed account.
    ServiceAccountManaged,
    /// The LocalMachine execution policy set to RemoteSigned.
    ExecutionPolicyRemoteSigned,
}

/// What applying one fix did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FixOutcome {
    pub changed: bool,
    /// Effective only after a restart (SCHANNEL is read at boot); provd
    /// never restarts the host itself.
    pub reboot_required: bool,
}

/// "Log on as a service" (SeServiceLogonRight) as LSA reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLogonRight {
    /// The string SIDs holding the right now (effective policy).
    pub holders: Vec<String>,
    /// Where a Group Policy defines the right (it then overwrites a local
    /// change at the next refresh); `None` when no GPO does.
    pub gpo_source: Option<String>,
}

/// `NT SERVICE\ALL SERVICES`: every service SID's group.
pub const ALL_SERVICES_SID: &str = "S-1-5-80-0";

/// The agent's outbound proxy: the `<system.net><defaultProxy>` element of
/// `AADConnectProvisioningAgent.exe.config` (Microsoft's troubleshooting
/// page, "Agent times out or certificate isn't valid").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentProxy {
    /// No `<defaultProxy>` element: .NET's own default.
    None,
    /// `<proxy proxyaddress=... bypassonlocal=...>` and a `<bypasslist>`
    /// of `<add address=.../>` (regular expressions, as .NET reads them).
    Address {
        address: String,
        bypass_on_local: bool,
        bypass_list: Vec<String>,
    },
}

/// The agent's settings as desired: each `None` leaves that setting as it
/// is. The registry options are REG_SZ values under
/// `HKLM\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect
/// Provisioning Agent` (how-to-manage-registry-options).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSettings {
    pub proxy: Option<AgentProxy>,
    /// `<runtime><enforceFIPSPolicy enabled="..."/>` in the exe.config.
    pub enforce_fips_policy: Option<bool>,
    /// `LdapConnectionTimeoutInMilliseconds` (the agent's default: 30 s).
    pub ldap_connection_timeout_ms: Option<u32>,
    /// `ReferralChasingOptions`: .NET's ReferralChasingOptions flags (0
    /// none, 32 subordinate, 64 external, 96 all).
    pub referral_chasing_options: Option<u32>,
    /// `UserPasswordLength`: 127 to 256.
    pub user_password_length: Option<u32>,
}

impl AgentSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The agent's settings as the host holds them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettingsRead {
    /// Where the exe.config was read.
    pub exe_config: String,
    pub proxy: AgentProxy,
    /// `None`: no `<enforceFIPSPolicy>` element.
    pub enforce_fips_policy: Option<bool>,
    pub ldap_connection_timeout_ms: RegReading,
    pub referral_chasing_options: RegReading,
    pub user_password_length: RegReading,
}

/// The agent's registry options key, under HKLM.
pub const AGENT_KEY: &str =
    r"SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent";
/// The registry options' value names.
pub const LDAP_TIMEOUT_VALUE: &str = "LdapConnectionTimeoutInMilliseconds";
pub const REFERRAL_CHASING_VALUE: &str = "ReferralChasingOptions";
pub const USER_PASSWORD_LENGTH_VALUE: &str = "UserPasswordLength";
/// The agent's exe.config file name, beside its service's exe.
pub const EXE_CONFIG: &str = "AADConnectProvisioningAgent.exe.config";

/// One file of a support bundle as the host read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticPart {
    /// Its path inside the bundle (`agent/trace/…`, `eventlog/System.xml`).
    pub path: String,
    /// The bytes, or why they could not be read (the bundle notes it).
    pub content: Result<Vec<u8>, String>,
}
