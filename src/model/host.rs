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
    pub installed_version: Option<String>,
    pub services: Vec<ServiceStatus>,
}

/// The host's computer account: the first DNS label, at most 15
/// characters (the NetBIOS limit), plus `$`.
pub fn computer_account(machine_name: &str) -> String {
    let label = machine_name.split('.').next().unwrap_or_default();
    let short: String = label.chars().take(15).collect();
    format!("{}$", short.to_ascii_uppercase())
}
