//! The tenant side of the workflows: the session (`session.rs`:
//! device-code sign-in relayed to the remote operator as an
//! ACTION_REQUIRED event, tokens for the registration service and Graph
//! kept in memory only and refreshed before they expire), the SignIn
//! operation, and this machine's agent registration through the agent's
//! own module (`connect-tenant`).
//!
//! Any operation that needs the tenant runs the `sign-in` step through
//! [`TenantWorkflows::ensure_signed_in`]: skipped while a token is valid,
//! otherwise the operator gets the code and URL as an event and the step
//! waits (cancellable) until they approve, decline, or the code expires.

mod certificate;
mod repair;
mod session;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::operations::{OperationSpec, Outcome, Progress, RequestFingerprint, blocking, now_ms};
use super::{Caller, Error, Operations, validate};
use crate::backends::agent_config::{
    AGENT_SERVICE, AgentConfig, AgentConfigError, RunContext, TenantConnection, classify,
};
use crate::backends::host::{Host, ServiceAction};
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::backends::tenant::{CloudSyncApi, ProvisioningAgent, Tenant, Tokens};

#[cfg(test)]
pub use certificate::FoundCertificate;
pub use certificate::{CertificateRule, RegistrationCertificate};
pub use repair::{RepairRequest, describe as describe_certificate};
pub use session::SignInClients;

/// Runs one module call (`$call`, given the `RunContext` as `$cx`) with its
/// transcript relayed, line by line, as PROGRESS events of `$step`; the
/// call's error converts to the workflow's.
macro_rules! relayed {
    ($progress:expr, $step:expr, |$cx:ident| $call:expr) => {{
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let cancel = $progress.cancellation().clone();
        let run = async move {
            let transcript = move |line: String| {
                let _ = tx.send(line);
            };
            let $cx = RunContext {
                cancel: &cancel,
                transcript: &transcript,
            };
            $call.await
        };
        let (result, relay) = tokio::join!(run, relay_transcript($progress, $step, rx));
        match (result, relay) {
            (Err(e), _) => Err(Error::from(e)),
            (Ok(_), Err(e)) => Err(e),
            (Ok(value), Ok(())) => Ok(value),
        }
    }};
}

// After the macro: it uses `relayed!`.
mod agent_writeback;

/// Relays transcript lines until the call drops its sender.
async fn relay_transcript(
    progress: &Progress,
    step: &str,
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), Error> {
    let mut relayed = Ok(());
    while let Some(line) = lines.recv().await {
        if relayed.is_ok() {
            relayed = progress.progress(step, line, 0).await;
        }
    }
    relayed
}

const REGISTRATION_NS: &str = "tenant";
const REGISTRATION_KEY: &str = "registration";

const CONNECT_STEP: &str = "connect-tenant";

/// How long Graph may take to list the agent after the module registered it.
const AGENT_LISTED_WITHIN: Duration = Duration::from_secs(60);
const AGENT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long the agent service may take to restart.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// This machine's agent as registered with the tenant (its id as Graph
/// lists it). No secret: the agent's key is the agent's own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationRecord {
    pub agent_id: String,
    pub machine_name: String,
    pub tenant: String,
    /// The tenant's GUID the module registered with (absent in records
    /// written before issue 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub registered_at_ms: i64,
}

/// What GetAgent says about the tenant side.
#[derive(Debug, Clone, Default)]
pub struct TenantStatus {
    pub signed_in: bool,
    /// Seconds until the access token expires (0 when not signed in).
    pub token_expires_in_secs: u64,
    pub registration: Option<RegistrationRecord>,
}

pub struct TenantWorkflows {
    operations: Arc<Operations>,
    tenant: Arc<dyn Tenant>,
    store: Arc<dyn Store>,
    host: Arc<dyn Host>,
    agent_config: Arc<dyn AgentConfig>,
    clients: SignInClients,
    session: tokio::sync::Mutex<Option<session::Session>>,
    /// What GetAgent reports of the session, published whenever it changes:
    /// the session's own lock is held across a token refresh (network I/O),
    /// which a read of the agent must not wait for.
    graph_status: std::sync::Mutex<Option<session::GraphStatus>>,
    /// The stored registration record, `None` until first read. Its writers
    /// hold the write lock across the store write, so no read fills it stale;
    /// GetAgent then reads no store.
    registration_cache: tokio::sync::RwLock<Option<Option<RegistrationRecord>>>,
    /// Where the agent's registration certificate is looked for.
    certificate_rule: CertificateRule,
    /// Graph's cloud sync API: RepairAgent reads quarantines and puts a
    /// re-registered agent back in its groups.
    cloud_sync: Arc<dyn CloudSyncApi>,
}

impl TenantWorkflows {
    #[expect(clippy::too_many_arguments, reason = "the backends it composes")]
    pub fn new(
        operations: Arc<Operations>,
        tenant: Arc<dyn Tenant>,
        store: Arc<dyn Store>,
        host: Arc<dyn Host>,
        agent_config: Arc<dyn AgentConfig>,
        clients: SignInClients,
        certificate_rule: CertificateRule,
        cloud_sync: Arc<dyn CloudSyncApi>,
    ) -> Self {
        Self {
            operations,
            tenant,
            store,
            host,
            agent_config,
            clients,
            session: tokio::sync::Mutex::new(None),
            graph_status: std::sync::Mutex::new(None),
            registration_cache: tokio::sync::RwLock::new(None),
            certificate_rule,
            cloud_sync,
        }
    }

    /// The session as GetAgent reports it: the Graph tokens'.
    pub async fn status(&self) -> Result<TenantStatus, Error> {
        let published = *self
            .graph_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (signed_in, expires) = match published {
            Some(status) => {
                let now = Instant::now();
                let left = status.expires_at.saturating_duration_since(now);
                (
                    status.expires_at > now || status.refreshable,
                    left.as_secs(),
                )
            }
            None => (false, 0),
        };
        Ok(TenantStatus {
            signed_in,
            token_expires_in_secs: expires,
            registration: self.registration().await?,
        })
    }

    pub async fn registration(&self) -> Result<Option<RegistrationRecord>, Error> {
        if let Some(cached) = self.registration_cache.read().await.as_ref() {
            return Ok(cached.clone());
        }
        let mut cache = self.registration_cache.write().await;
        if let Some(cached) = cache.as_ref() {
            return Ok(cached.clone());
        }
        let stored = match blocking(&self.store, |s| {
            s.get_config(REGISTRATION_NS, REGISTRATION_KEY)
        })
        .await?
        {
            None => None,
            Some(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| Error::internal("stored registration", e))?,
            ),
        };
        *cache = Some(stored.clone());
        Ok(stored)
    }

    /// Clears the registration record (DecommissionAgent's `forget`);
    /// `true` when there was one.
    pub async fn forget_registration(&self) -> Result<bool, Error> {
        let had = self.registration().await?.is_some();
        if had {
            let mut cache = self.registration_cache.write().await;
            // Unknown until the store says: a failed write leaves no guess.
            *cache = None;
            blocking(&self.store, |s| {
                s.put_config(REGISTRATION_NS, REGISTRATION_KEY, None)
            })
            .await?;
            *cache = Some(None);
        }
        Ok(had)
    }

    async fn save_registration(&self, record: &RegistrationRecord) -> Result<(), Error> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::internal("encoding a record for the store", e))?;
        let mut cache = self.registration_cache.write().await;
        *cache = None;
        blocking(&self.store, move |s| {
            s.put_config(REGISTRATION_NS, REGISTRATION_KEY, Some(&bytes))
        })
        .await?;
        *cache = Some(Some(record.clone()));
        Ok(())
    }

    /// The SignIn operation: only the `sign-in` step.
    pub async fn sign_in(
        self: &Arc<Self>,
        caller: &Caller,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", request_id)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let spec = OperationSpec {
            kind: OperationKind::SignIn,
            request_id,
            fingerprint: RequestFingerprint::new(),
            description: format!("sign in to tenant {}", self.tenant.tenant()),
            initiator: caller.name.clone(),
        };
        let this = self.clone();
        self.operations
            .start(spec, move |progress| async move {
                let graph = this.ensure_signed_in(&progress).await?;
                let registration = this.registration_tokens().await?;
                let left = |t: &Tokens| {
                    t.expires_at
                        .saturating_duration_since(Instant::now())
                        .as_secs()
                        .to_string()
                };
                let mut outcome =
                    Outcome::from([("token_expires_in_secs".to_owned(), left(&graph))]);
                if let Some(registration) = &registration {
                    outcome.insert(
                        "registration_token_expires_in_secs".into(),
                        left(registration),
                    );
                }
                // Who signed in (id_token claims, not secrets).
                let who = [
                    ("tenant_id", &graph.tenant_id),
                    ("user_principal_name", &graph.user_principal_name),
                ];
                for (key, value) in who {
                    if let Some(value) = value {
                        outcome.insert(key.into(), value.clone());
                    }
                }
                Ok(outcome)
            })
            .await
    }

    /// Whether this machine's agent is registered as provd recorded it,
    /// judged without a session (Apply's plan): the record names the tenant
    /// the agent's module says it is registered with. `false` when the
    /// module cannot answer.
    pub async fn connected_on_host(&self) -> Result<bool, Error> {
        let Some(record) = self.registration().await? else {
            return Ok(false);
        };
        if self.agent_config.availability().is_err() {
            return Ok(false);
        }
        let cancel = CancellationToken::new();
        let ignore = |_line: String| {};
        let cx = RunContext {
            cancel: &cancel,
            transcript: &ignore,
        };
        Ok(match self.agent_config.module_info(&cx).await {
            Ok(module) => {
                module.registered_tenant.is_some()
                    && same_tenant(
                        module.registered_tenant.as_deref(),
                        record.tenant_id.as_deref(),
                    )
            }
            Err(_) => false,
        })
    }

    /// The `connect-tenant` step: the agent's own module registers it
    /// (`Connect-AADCloudSyncAzureAD -AccessToken -TenantId
    /// -UserPrincipalName`, with the registration-audience token), the SCM
    /// restarts the agent service, and Graph's list gives the agent's id.
    /// Skipped when the module says it is registered with the signed-in
    /// tenant and Graph lists an agent of this machine. The script's
    /// transcript (already redacted) becomes the step's PROGRESS events.
    pub async fn ensure_connected(
        &self,
        progress: &Progress,
        graph: &Tokens,
    ) -> Result<(RegistrationRecord, bool), Error> {
        self.connect(progress, graph, false).await
    }

    /// The `connect-tenant` step; with `force` the module registers the
    /// agent again even when it says it is registered (RepairAgent).
    async fn connect(
        &self,
        progress: &Progress,
        graph: &Tokens,
        force: bool,
    ) -> Result<(RegistrationRecord, bool), Error> {
        let connection = self.module_connection().await?;
        let tenant_id = connection.tenant_id.clone();
        progress
            .step_started(
                CONNECT_STEP,
                format!(
                    "registering this machine's agent with tenant {tenant_id} through its module"
                ),
            )
            .await?;
        let machine_name = self.host.machine_name();
        let agent_config = &self.agent_config;
        let module = relayed!(progress, CONNECT_STEP, |cx| agent_config.module_info(&cx))?;
        if !force
            && same_tenant(module.registered_tenant.as_deref(), Some(&tenant_id))
            && let Some(agent) = self.find_agent(graph, &machine_name).await?
        {
            let record = self.record(agent, &tenant_id).await?;
            progress
                .step_skipped(
                    CONNECT_STEP,
                    format!(
                        "already registered with tenant {tenant_id} as agent {} ({})",
                        record.agent_id, record.machine_name
                    ),
                )
                .await?;
            return Ok((record, false));
        }
        if module.version.is_none() {
            return Err(AgentConfigError::ModuleMissing {
                path: module.dll_path,
            }
            .into());
        }
        classify::execution_policy(&module.execution_policies)?;
        // A forced registration may list a second agent for this machine
        // beside the old one (still active for a while): the new id wins.
        let known: Vec<String> = if force {
            self.agents_of(graph, &machine_name)
                .await?
                .into_iter()
                .map(|a| a.id)
                .collect()
        } else {
            Vec::new()
        };
        relayed!(progress, CONNECT_STEP, |cx| agent_config
            .connect_tenant(&connection, &cx))?;
        progress
            .progress(
                CONNECT_STEP,
                format!("the module registered the agent; restarting {AGENT_SERVICE}"),
                50,
            )
            .await?;
        self.host
            .control_service(AGENT_SERVICE, ServiceAction::Restart, SERVICE_TIMEOUT)
            .await
            .map_err(|e| Error::Unavailable(format!("restarting {AGENT_SERVICE}: {e}")))?;
        let agent = self
            .wait_for_agent(progress, graph, &machine_name, &known)
            .await?;
        let record = self.record(agent, &tenant_id).await?;
        progress
            .step_succeeded(
                CONNECT_STEP,
                format!(
                    "registered as agent {} ({})",
                    record.agent_id, record.machine_name
                ),
            )
            .await?;
        Ok((record, true))
    }

    /// What `Connect-AADCloudSyncAzureAD -AccessToken -TenantId
    /// -UserPrincipalName` takes, from the signed-in session's
    /// registration-audience token and its id_token.
    async fn module_connection(&self) -> Result<TenantConnection, Error> {
        let registration = self.registration_tokens().await?.ok_or_else(|| {
            Error::Unauthenticated(
                "the sign-in ended before the agent's module could connect; sign in again".into(),
            )
        })?;
        let (Some(tenant_id), Some(user_principal_name)) = (
            registration.tenant_id.clone(),
            registration.user_principal_name.clone(),
        ) else {
            return Err(Error::Unauthenticated(
                "the sign-in's answer carried no id_token naming the tenant and the user, which \
                 Connect-AADCloudSyncAzureAD needs (-TenantId, -UserPrincipalName); sign in again \
                 with the openid and profile scopes"
                    .into(),
            ));
        };
        Ok(TenantConnection {
            access_token: registration.access.clone(),
            tenant_id,
            user_principal_name,
        })
    }

    /// This machine's agent in Graph's list: an active one first.
    async fn find_agent(
        &self,
        graph: &Tokens,
        machine_name: &str,
    ) -> Result<Option<ProvisioningAgent>, Error> {
        self.find_agent_besides(graph, machine_name, &[]).await
    }

    /// This machine's agent in Graph's list: one whose id is not in `known`
    /// first, then an active one.
    async fn find_agent_besides(
        &self,
        graph: &Tokens,
        machine_name: &str,
        known: &[String],
    ) -> Result<Option<ProvisioningAgent>, Error> {
        let mut mine = self.agents_of(graph, machine_name).await?;
        mine.sort_by_key(|a| (known.contains(&a.id), !a.active));
        Ok(mine.into_iter().next())
    }

    /// Every agent Graph lists for this machine.
    async fn agents_of(
        &self,
        graph: &Tokens,
        machine_name: &str,
    ) -> Result<Vec<ProvisioningAgent>, Error> {
        let agents = self.tenant.list_agents(graph).await.map_err(Error::from)?;
        Ok(agents
            .into_iter()
            .filter(|a| same_machine(&a.machine_name, machine_name))
            .collect())
    }

    /// Polls Graph (up to [`AGENT_LISTED_WITHIN`]) until it lists this
    /// machine's agent, active (one not in `known` first).
    async fn wait_for_agent(
        &self,
        progress: &Progress,
        graph: &Tokens,
        machine_name: &str,
        known: &[String],
    ) -> Result<ProvisioningAgent, Error> {
        let deadline = Instant::now() + AGENT_LISTED_WITHIN;
        loop {
            let found = self.find_agent_besides(graph, machine_name, known).await?;
            match found {
                Some(agent) if agent.active => return Ok(agent),
                Some(agent) if Instant::now() >= deadline => {
                    progress
                        .warning(
                            CONNECT_STEP,
                            format!(
                                "the tenant lists agent {} for {machine_name} but not as active yet",
                                agent.id
                            ),
                        )
                        .await?;
                    return Ok(agent);
                }
                None if Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!(
                        "Connect-AADCloudSyncAzureAD succeeded, but the tenant lists no agent for \
                         {machine_name} after {} s; check the agent's log and run Install again",
                        AGENT_LISTED_WITHIN.as_secs()
                    )));
                }
                _ => {}
            }
            tokio::select! {
                () = tokio::time::sleep(AGENT_POLL_INTERVAL) => {}
                () = progress.cancellation().cancelled() => return Err(Error::Cancelled),
            }
        }
    }

    async fn record(
        &self,
        agent: ProvisioningAgent,
        tenant_id: &str,
    ) -> Result<RegistrationRecord, Error> {
        if let Some(record) = self.registration().await?
            && record.agent_id == agent.id
            && record.tenant_id.as_deref() == Some(tenant_id)
        {
            return Ok(record);
        }
        let record = RegistrationRecord {
            agent_id: agent.id,
            machine_name: agent.machine_name,
            tenant: self.tenant.tenant().to_owned(),
            tenant_id: Some(tenant_id.to_owned()),
            registered_at_ms: now_ms(),
        };
        self.save_registration(&record).await?;
        Ok(record)
    }

    pub fn tenant(&self) -> &Arc<dyn Tenant> {
        &self.tenant
    }
}

/// Tenant ids are GUIDs: compared case-insensitively.
fn same_tenant(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Graph's `machineName` is this host: the same name, or the same first
/// label (the module may register the FQDN, the host name may be short),
/// case-insensitively.
fn same_machine(listed: &str, host: &str) -> bool {
    let first = |n: &str| n.split('.').next().unwrap_or_default().to_ascii_lowercase();
    !host.is_empty() && (listed.eq_ignore_ascii_case(host) || first(listed) == first(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_match_by_name_or_first_label() {
        assert!(same_machine("HOST1", "host1"));
        assert!(same_machine("host1.lab.example.test", "HOST1"));
        assert!(same_machine("HOST1", "host1.lab.example.test"));
        assert!(!same_machine("host10.lab.example.test", "host1"));
        assert!(!same_machine("other", "host1"));
        assert!(!same_machine("", ""));
    }

    #[test]
    fn tenants_match_case_insensitively_and_only_when_both_known() {
        let id = "9c1f7e52-3b8a-4c5d-9e6f-0a1b2c3d4e5f";
        assert!(same_tenant(Some(id), Some(&id.to_ascii_uppercase())));
        assert!(!same_tenant(None, Some(id)));
        assert!(!same_tenant(None, None));
    }
}
