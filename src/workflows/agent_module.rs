//! The agent's host as workflows drive it: its services through `Host`
//! (state, logon, restarts) and its own PowerShell module through
//! `AgentConfig` (`backends::agent_config`: what Microsoft documents for
//! configuring the agent).

use std::sync::{Arc, Mutex};

use crate::backends::agent_config::{AgentConfig, RunContext};
use crate::backends::directory::BindCredential;
use crate::backends::host::Host;
use crate::backends::store::Store;
use crate::workflows::operations::Progress;
use crate::workflows::{Error, service_account};

#[derive(Clone)]
pub(crate) struct AgentSide {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) agent_config: Arc<dyn AgentConfig>,
}

impl AgentSide {
    pub(crate) fn new(host: &Arc<dyn Host>, agent_config: &Arc<dyn AgentConfig>) -> Self {
        Self {
            host: host.clone(),
            agent_config: agent_config.clone(),
        }
    }

    /// Why neither the host nor its module can be driven from here, if so.
    pub(crate) fn unavailable(&self) -> Option<String> {
        self.host
            .availability()
            .and_then(|()| self.agent_config.availability())
            .err()
    }
}

/// A module call's output lines (already redacted by the runner), kept
/// while the call runs — the runner's callback must not block — and
/// emitted as PROGRESS events of the step afterwards.
#[derive(Default)]
pub(crate) struct Transcript(Mutex<Vec<String>>);

impl Transcript {
    pub(crate) fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    pub(crate) async fn emit(self, progress: &Progress, step: &str) -> Result<(), Error> {
        for line in self.0.into_inner().unwrap_or_else(|p| p.into_inner()) {
            progress.progress(step, line, 0).await?;
        }
        Ok(())
    }
}

/// Same DCs in the same order, case-insensitively: how the agent's
/// preferred DCs are compared with provd's priority.
pub(crate) fn same_order(agent: &[String], provd: &[String]) -> bool {
    agent.len() == provd.len()
        && agent
            .iter()
            .zip(provd)
            .all(|(a, p)| a.eq_ignore_ascii_case(p))
}

/// Step `add-domain`: the agent serves `domain`, preferring provd's DC
/// priority — `Add-AADCloudSyncADDomain -DomainName -Credential
/// [-PreferredDomainControllers]` from the agent's module
/// (<https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install-pshell>).
/// Microsoft's order is the agent registered, then its gMSA, then its
/// domains, so before a gMSA is recorded the step is skipped with a WARNING
/// (Apply runs it again after the service account). `true` when the agent
/// was changed.
pub(crate) async fn add_to_agent(
    progress: &Progress,
    agent: &AgentSide,
    store: &Arc<dyn Store>,
    domain: &str,
    wanted: &[String],
    credential: &BindCredential,
) -> Result<bool, Error> {
    const STEP: &str = "add-domain";
    progress
        .step_started(STEP, format!("the agent serves {domain}"))
        .await?;
    let skip = |why: String| async move {
        progress.warning(STEP, why).await?;
        progress
            .step_skipped(STEP, "the agent was not changed")
            .await?;
        Ok(false)
    };
    if let Some(reason) = agent.unavailable() {
        return skip(format!(
            "{reason}: on the agent host, run Add-AADCloudSyncADDomain -DomainName {domain}"
        ))
        .await;
    }
    let status = agent
        .host
        .agent_status()
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    if status.installed_version.is_none() {
        return skip("the agent is not installed: Install, then AddDirectory again".into()).await;
    }
    if service_account::load_account(store).await?.is_none() {
        return skip(
            "the agent has no gMSA yet (Microsoft's order: the gMSA, then the domains): \
             CreateGmsa or UseCustomGmsa, then AddDirectory again — Apply does this itself"
                .into(),
        )
        .await;
    }
    let transcript = Transcript::default();
    let sink = |line: String| transcript.push(line);
    let cx = RunContext {
        cancel: progress.cancellation(),
        transcript: &sink,
    };
    let listed = agent.agent_config.list_domains(&cx).await;
    let served = listed.as_ref().ok().and_then(|list| {
        list.iter()
            .find(|d| d.domain.eq_ignore_ascii_case(domain))
            .map(|d| same_order(&d.preferred_dcs, wanted))
    });
    if served == Some(true) {
        transcript.emit(progress, STEP).await?;
        progress
            .step_skipped(STEP, format!("the agent already serves {domain} as wanted"))
            .await?;
        return Ok(false);
    }
    let added = agent
        .agent_config
        .add_domain(domain, credential, wanted, &cx)
        .await;
    transcript.emit(progress, STEP).await?;
    added?;
    progress
        .step_succeeded(
            STEP,
            if wanted.is_empty() {
                format!("the agent serves {domain}")
            } else {
                format!(
                    "the agent serves {domain}, preferring {}",
                    wanted.join(", ")
                )
            },
        )
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::same_order;

    #[test]
    fn dc_order_matters_case_does_not() {
        let a = ["DC1.lab.test".to_owned(), "dc2.lab.test".to_owned()];
        let b = ["dc1.lab.test".to_owned(), "dc2.lab.test".to_owned()];
        assert!(same_order(&a, &b));
        let reversed = [b[1].clone(), b[0].clone()];
        assert!(!same_order(&a, &reversed));
        assert!(!same_order(&a, &b[..1]));
    }
}
