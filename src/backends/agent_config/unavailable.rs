//! The agent-configuration backend of every non-Windows platform: the
//! module is a Windows PowerShell module, so every call says so.

use super::{AgentConfig, AgentConfigError, AgentDomain, ModuleInfo, RunContext, TenantConnection};
use crate::model::BindCredential;

#[derive(Debug, Clone)]
pub struct UnavailableAgentConfig {
    reason: String,
}

impl UnavailableAgentConfig {
    pub fn for_this_platform() -> Self {
        Self {
            reason: format!(
                "the agent's PowerShell module runs only on Windows; this host runs {}",
                std::env::consts::OS
            ),
        }
    }

    fn refuse<T>(&self) -> Result<T, AgentConfigError> {
        Err(AgentConfigError::Unavailable(self.reason.clone()))
    }
}

#[async_trait::async_trait]
impl AgentConfig for UnavailableAgentConfig {
    fn availability(&self) -> Result<(), String> {
        Err(self.reason.clone())
    }

    async fn module_info(&self, _: &RunContext<'_>) -> Result<ModuleInfo, AgentConfigError> {
        self.refuse()
    }

    async fn connect_tenant(
        &self,
        _: &TenantConnection,
        _: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.refuse()
    }

    async fn use_gmsa(&self, _: &str, _: &RunContext<'_>) -> Result<(), AgentConfigError> {
        self.refuse()
    }

    async fn add_domain(
        &self,
        _: &str,
        _: &BindCredential,
        _: &[String],
        _: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.refuse()
    }

    async fn set_writeback(
        &self,
        _: bool,
        _: &TenantConnection,
        _: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.refuse()
    }

    async fn list_domains(&self, _: &RunContext<'_>) -> Result<Vec<AgentDomain>, AgentConfigError> {
        self.refuse()
    }

    async fn verbose_trace(&self, _: bool, _: &RunContext<'_>) -> Result<(), AgentConfigError> {
        self.refuse()
    }
}
