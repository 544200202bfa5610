//! `PowerShellAgentConfig`: each action runs one of provd's shipped scripts
//! with Windows PowerShell (`run.rs`), from a directory only SYSTEM and
//! Administrators may touch, the file re-checked against provd's copy
//! before every run (`dir.rs`), its process tree in a kill-on-close job
//! (`job.rs`). The scripts and their stdin/stdout contract are the
//! platform-neutral part (`scripts.rs`, `protocol.rs`, `transcript.rs`),
//! tested on Linux.
//!
//! So far this runner is only compiled and clippy-checked for
//! `x86_64-pc-windows-gnu`. Wine ships no PowerShell, so its behaviour is
//! tested under Wine later with the lab's stand-in powershell.exe
//! (`tests/wine.rs`). What Wine cannot show (ACLs are not enforced there;
//! Windows PowerShell's own share mode when it opens the `-File` script, and
//! its stdin under `-File`) stays on the real-server checklist.

// The reviewed FFI: one documented Win32 call per `unsafe` block, each with
// its SAFETY comment (the scripts directory's DACL: `backends::windows_fs`).
mod dir;
#[allow(unsafe_code)]
mod job;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::Instrument as _;

use super::protocol::{self, Request};
use super::{
    AgentConfig, AgentConfigError, AgentDomain, ModuleInfo, RunContext, TenantConnection, scripts,
};
use crate::model::BindCredential;

/// The longest a script that only reads (module-info, list-domains) may run.
const READ_ONLY_LIMIT: Duration = Duration::from_secs(120);

/// Runs the module's scripts with Windows PowerShell on this host.
#[derive(Debug, Clone)]
pub struct PowerShellAgentConfig {
    powershell: Result<PathBuf, String>,
    scripts_dir: Result<PathBuf, String>,
    timeout: Duration,
}

impl PowerShellAgentConfig {
    /// `powershell` and `scripts_dir` default to their known-folder places
    /// (`agent_module.*`); `timeout` bounds a script that changes the agent.
    pub fn new(
        powershell: Option<PathBuf>,
        scripts_dir: Option<PathBuf>,
        timeout: Duration,
    ) -> Self {
        Self {
            powershell: powershell.map_or_else(dir::system_powershell, Ok),
            scripts_dir: scripts_dir.map_or_else(dir::default_scripts_dir, Ok),
            timeout,
        }
    }

    async fn run(
        &self,
        request: Request,
        cx: &RunContext<'_>,
    ) -> Result<Map<String, Value>, AgentConfigError> {
        if cx.cancel.is_cancelled() {
            return Err(AgentConfigError::Cancelled);
        }
        let powershell = self.powershell.clone().map_err(AgentConfigError::Io)?;
        let dir = self.scripts_dir.clone().map_err(AgentConfigError::Io)?;
        let script = scripts::by_name(request.script).ok_or_else(|| {
            AgentConfigError::Protocol(format!("provd has no script named {}", request.script))
        })?;
        let limit = if request.read_only {
            self.timeout.min(READ_ONLY_LIMIT)
        } else {
            self.timeout
        };
        let span = tracing::info_span!(
            "agent_module.script",
            script.name = request.script,
            process.exit_code = tracing::field::Empty,
        );
        async {
            let installed = tokio::task::spawn_blocking(move || dir::install(&dir, script))
                .await
                .map_err(|e| AgentConfigError::Io(e.to_string()))?
                .map_err(AgentConfigError::Io)?;
            run::run(&powershell, &installed, &request, limit, cx).await
        }
        .instrument(span)
        .await
    }
}

#[async_trait::async_trait]
impl AgentConfig for PowerShellAgentConfig {
    fn availability(&self) -> Result<(), String> {
        let powershell = self.powershell.as_ref()?;
        self.scripts_dir.as_ref()?;
        if !powershell.is_file() {
            return Err(format!("{} does not exist", powershell.display()));
        }
        Ok(())
    }

    async fn module_info(&self, cx: &RunContext<'_>) -> Result<ModuleInfo, AgentConfigError> {
        protocol::module_info(self.run(Request::module_info(), cx).await?)
    }

    async fn connect_tenant(
        &self,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.run(Request::connect_tenant(connection), cx)
            .await
            .map(drop)
    }

    async fn use_gmsa(
        &self,
        sam_account_name: &str,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.run(Request::use_gmsa(sam_account_name), cx)
            .await
            .map(drop)
    }

    async fn add_domain(
        &self,
        domain: &str,
        credential: &BindCredential,
        preferred_dcs: &[String],
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        let request = Request::add_domain(domain, credential, preferred_dcs);
        self.run(request, cx).await.map(drop)
    }

    async fn set_writeback(
        &self,
        enable: bool,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.run(Request::set_writeback(enable, connection), cx)
            .await
            .map(drop)
    }

    async fn list_domains(
        &self,
        cx: &RunContext<'_>,
    ) -> Result<Vec<AgentDomain>, AgentConfigError> {
        protocol::domains(self.run(Request::list_domains(), cx).await?)
    }

    async fn verbose_trace(&self, on: bool, cx: &RunContext<'_>) -> Result<(), AgentConfigError> {
        self.run(Request::verbose_trace(on), cx).await.map(drop)
    }
}
