//! Steps `set-tenant-flag` / `clear-tenant-flag` of SetPasswordWriteback:
//! the agent's own module turns password writeback on or off for this
//! agent — `Set-AADCloudSyncPasswordWritebackConfiguration -Enable`
//! (<https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install-pshell>,
//! and the cloud sync password writeback page), after
//! `Connect-AADCloudSyncAzureAD -AccessToken` in the same script
//! (`set-writeback.ps1`).
//!
//! Microsoft's pages show the cmdlet with `-Credential` (a Global
//! Administrator's password) only. provd signs in with a device code (MFA
//! works) and so has no password: it connects with the session's
//! registration-audience token instead. That this suffices is not
//! documented; `deploy/windows/README.md` lists it among what is verified
//! only in the lab. Microsoft documents no way to read the setting back, so
//! the skip-if-already-set read uses the tenant backend's writeback flag
//! (a configured endpoint, modelled by the lab's emulator): when that read
//! fails, a WARNING says so and the module call is made anyway (setting
//! the same value twice is harmless).

use super::{TenantWorkflows, relay_transcript};
use crate::backends::agent_config::RunContext;
use crate::backends::tenant::Tokens;
use crate::workflows::Error;
use crate::workflows::operations::Progress;

impl TenantWorkflows {
    /// Turns writeback `on` or off for agent `agent_id` through the
    /// module; `graph` is the session's Graph token (for the read).
    pub async fn set_agent_writeback(
        &self,
        progress: &Progress,
        graph: &Tokens,
        agent_id: &str,
        on: bool,
    ) -> Result<(), Error> {
        let (step, what) = if on {
            ("set-tenant-flag", "on")
        } else {
            ("clear-tenant-flag", "off")
        };
        progress
            .step_started(
                step,
                format!("turning password writeback {what} through the agent's module"),
            )
            .await?;
        match self.tenant.password_writeback(graph, agent_id).await {
            Ok(now) if now == on => {
                return progress
                    .step_skipped(step, format!("already {what} for agent {agent_id}"))
                    .await;
            }
            Ok(_) => {}
            Err(e) => {
                progress
                    .warning(
                        step,
                        format!(
                            "the tenant's writeback setting cannot be read ({}); setting it \
                             through the module anyway",
                            Error::from(e)
                        ),
                    )
                    .await?;
            }
        }
        let connection = self.module_connection().await?;
        let agent_config = &self.agent_config;
        relayed!(progress, step, |cx| agent_config.set_writeback(
            on,
            &connection,
            &cx
        ))?;
        progress
            .step_succeeded(step, format!("{what} for agent {agent_id}"))
            .await
    }
}
