//! `FakeTenant`: Entra sign-in and Graph as provd's workflows see them,
//! in memory. The device code is approved at once (unless told
//! otherwise), tokens are plainly fake strings (`sign_in.rs`), an agent
//! becomes known through [`FakeTenant::register_connector`] (what the
//! agent's module does when it connects: `FakeAgentConfig::connects_to`),
//! and failures come back as the
//! [`TenantError`] variants `HttpTenant` returns once its retries give up.

mod sign_in;
mod sync;

pub use sign_in::{FAKE_TENANT_ID, FAKE_USER};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::backends::tenant::{
    AgentGroup, ClientScope, DeviceCode, EndpointProbe, ProvisioningAgent, PublishedResource,
    ServerTime, Tenant, TenantError, Tokens,
};

/// What a Graph call, the sign-in or the registration answers, when not
/// the happy path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantFault {
    /// 429 on every retry: `Unavailable` naming HTTP 429.
    Throttled,
    /// 503 on every retry: `Unavailable` naming HTTP 503.
    ServerError,
    /// 403: `Forbidden`.
    Forbidden,
    /// The person signing in declined: `AccessDenied`.
    Declined,
    /// Nobody approved in time: `DeviceCodeExpired`.
    Expired,
}

/// Which calls a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TenantCall {
    SignIn,
    ListAgents,
    PublishedResources,
    Writeback,
}

#[derive(Default)]
struct State {
    agents: Vec<ProvisioningAgent>,
    resources: Vec<PublishedResource>,
    writeback: BTreeMap<String, bool>,
    faults: BTreeMap<TenantCall, TenantFault>,
    sign_ins: u32,
    registrations: Vec<String>,
    endpoints_down: bool,
    /// How far the tenant's clock is ahead of this host's (ms; negative:
    /// behind).
    clock_offset_ms: i64,
    /// (client, scope) pairs the tenant gives no token.
    refused: Vec<ClientScope>,
    device_codes: Vec<ClientScope>,
    refreshes: Vec<ClientScope>,
    /// Refresh token → the client it was issued to.
    refresh_tokens: HashMap<String, String>,
    issued: Vec<String>,
    sync: sync::SyncState,
}

#[derive(Clone)]
pub struct FakeTenant {
    tenant: String,
    state: Arc<Mutex<State>>,
}

impl Default for FakeTenant {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeTenant {
    /// Tenant `contoso.example`.
    pub fn new() -> Self {
        Self {
            tenant: "contoso.example".into(),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `call` fails with `fault` until [`Self::clear_faults`].
    pub fn fail(&self, call: TenantCall, fault: TenantFault) {
        self.lock().faults.insert(call, fault);
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.faults.clear();
        s.sync.clear_faults();
    }

    /// The probes of the sign-in and Graph endpoints fail.
    pub fn set_endpoints_down(&self, down: bool) {
        self.lock().endpoints_down = down;
    }

    /// The tenant's clock runs `offset_ms` ahead of this host's (negative:
    /// behind), as its answers' `Date` header shows it.
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.lock().clock_offset_ms = offset_ms;
    }

    /// Marks an agent active or inactive (as Graph reports it).
    pub fn set_agent_active(&self, agent_id: &str, active: bool) {
        if let Some(a) = self.lock().agents.iter_mut().find(|a| a.id == agent_id) {
            a.active = active;
        }
    }

    /// An agent registered elsewhere (another machine).
    pub fn add_agent(&self, agent: ProvisioningAgent) {
        self.lock().agents.push(agent);
    }

    /// Publishes `domain` for the agent groups given.
    pub fn publish(&self, domain: &str, group_ids: &[&str]) {
        let mut s = self.lock();
        let id = format!("resource-{}", s.resources.len() + 1);
        s.resources.push(PublishedResource {
            id,
            domain: domain.to_owned(),
            group_ids: group_ids.iter().map(|g| (*g).to_owned()).collect(),
        });
    }

    /// The agent of `machine_name` serves `domain`, as a real agent's
    /// domain registration does: the domain's published resource is made
    /// (with a group of its own) when missing, and the agent joins the
    /// resource's first group. False when no agent of that machine is
    /// registered.
    pub fn agent_serves_domain(&self, machine_name: &str, domain: &str) -> bool {
        let mut s = self.lock();
        let domain = domain.to_ascii_lowercase();
        let group = match s.resources.iter().find(|r| r.domain == domain) {
            Some(r) => r.group_ids.first().cloned().unwrap_or_default(),
            None => {
                let group = format!("group-{domain}");
                let id = format!("resource-{}", s.resources.len() + 1);
                s.resources.push(PublishedResource {
                    id,
                    domain: domain.clone(),
                    group_ids: vec![group.clone()],
                });
                group
            }
        };
        let Some(agent) = s
            .agents
            .iter_mut()
            .find(|a| a.machine_name.eq_ignore_ascii_case(machine_name))
        else {
            return false;
        };
        if !agent.groups.iter().any(|g| g.id == group) {
            agent.groups.push(AgentGroup {
                id: group.clone(),
                display_name: group,
            });
        }
        true
    }

    /// Puts the agent in an agent group (the admin center can).
    pub fn join_group(&self, agent_id: &str, group: AgentGroup) {
        if let Some(a) = self.lock().agents.iter_mut().find(|a| a.id == agent_id)
            && !a.groups.iter().any(|g| g.id == group.id)
        {
            a.groups.push(group);
        }
    }

    /// Takes the agent out of an agent group (the admin center can).
    pub fn leave_group(&self, agent_id: &str, group_id: &str) {
        if let Some(a) = self.lock().agents.iter_mut().find(|a| a.id == agent_id) {
            a.groups.retain(|g| g.id != group_id);
        }
    }

    pub fn agents(&self) -> Vec<ProvisioningAgent> {
        self.lock().agents.clone()
    }

    /// The machine name of every registration received.
    pub fn registrations(&self) -> Vec<String> {
        self.lock().registrations.clone()
    }

    /// An agent's module registers it (the connector registration service,
    /// not Graph): Graph lists it from now on, active, in the default
    /// group. A machine already registered keeps its agent while that one
    /// is active; an inactive one (say its certificate expired) is left
    /// listed and a new agent registered, as the lab's stand-in does.
    /// Returns its id.
    pub fn register_connector(&self, machine_name: &str) -> String {
        let mut s = self.lock();
        s.registrations.push(machine_name.to_owned());
        if let Some(agent) = s
            .agents
            .iter()
            .find(|a| a.active && a.machine_name.eq_ignore_ascii_case(machine_name))
        {
            return agent.id.clone();
        }
        let agent_id = format!("00000000-0000-4000-8000-{:012}", s.agents.len() + 1);
        s.agents.push(ProvisioningAgent {
            id: agent_id.clone(),
            machine_name: machine_name.to_owned(),
            external_ip: "192.0.2.10".into(),
            active: true,
            groups: vec![AgentGroup {
                id: "group-default".into(),
                display_name: "Default".into(),
            }],
        });
        s.writeback.insert(agent_id.clone(), false);
        agent_id
    }

    /// The agent of `machine_name` sets its writeback flag, as its module's
    /// `Set-AADCloudSyncPasswordWritebackConfiguration` does. False when no
    /// agent of that machine is registered.
    pub fn agent_sets_writeback(&self, machine_name: &str, enabled: bool) -> bool {
        let mut s = self.lock();
        let Some(id) = s
            .agents
            .iter()
            .find(|a| a.machine_name.eq_ignore_ascii_case(machine_name))
            .map(|a| a.id.clone())
        else {
            return false;
        };
        s.writeback.insert(id, enabled);
        true
    }

    pub fn writeback_flag(&self, agent_id: &str) -> Option<bool> {
        self.lock().writeback.get(agent_id).copied()
    }

    /// How many device-code sign-ins completed.
    pub fn sign_ins(&self) -> u32 {
        self.lock().sign_ins
    }

    fn check(&self, call: TenantCall) -> Result<(), TenantError> {
        let Some(fault) = self.lock().faults.get(&call).copied() else {
            return Ok(());
        };
        let url = format!("https://graph.fake.invalid/{call:?}");
        Err(match fault {
            TenantFault::Throttled => TenantError::Unavailable(format!(
                "{url} still failing after 6 attempts: HTTP 429: Too Many Requests"
            )),
            TenantFault::ServerError => TenantError::Unavailable(format!(
                "{url} still failing after 6 attempts: HTTP 503: Service Unavailable"
            )),
            TenantFault::Forbidden => TenantError::Forbidden(
                "Authorization_RequestDenied: Insufficient privileges".into(),
            ),
            TenantFault::Declined => TenantError::AccessDenied,
            TenantFault::Expired => TenantError::DeviceCodeExpired,
        })
    }
}

#[async_trait::async_trait]
impl Tenant for FakeTenant {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    async fn start_device_code(&self, client: &ClientScope) -> Result<DeviceCode, TenantError> {
        self.check(TenantCall::SignIn).or_else(|e| match e {
            // Declined/expired surface while waiting, as with Entra.
            TenantError::AccessDenied | TenantError::DeviceCodeExpired => Ok(()),
            other => Err(other),
        })?;
        Ok(self.device_code(client))
    }

    async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError> {
        if cancel.is_cancelled() {
            return Err(TenantError::Cancelled);
        }
        self.check(TenantCall::SignIn)?;
        let tokens = self.issue(&code.client)?;
        self.lock().sign_ins += 1;
        Ok(tokens)
    }

    async fn refresh(
        &self,
        client: &ClientScope,
        refresh_token: &SecretString,
    ) -> Result<Tokens, TenantError> {
        self.check(TenantCall::SignIn)?;
        self.redeem(client, refresh_token)?;
        self.issue(client)
    }

    async fn list_agents(&self, _tokens: &Tokens) -> Result<Vec<ProvisioningAgent>, TenantError> {
        self.check(TenantCall::ListAgents)?;
        Ok(self.lock().agents.clone())
    }

    async fn list_published_resources(
        &self,
        _tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError> {
        self.check(TenantCall::PublishedResources)?;
        Ok(self.lock().resources.clone())
    }

    async fn password_writeback(
        &self,
        _tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError> {
        self.check(TenantCall::Writeback)?;
        self.lock()
            .writeback
            .get(agent_id)
            .copied()
            .ok_or_else(|| TenantError::NotFound(format!("agent {agent_id}")))
    }

    async fn probe_endpoints(&self) -> Vec<EndpointProbe> {
        let down = self.lock().endpoints_down;
        let urls = vec![
            "https://login.fake.invalid/".to_owned(),
            "https://graph.fake.invalid/".to_owned(),
        ];
        urls.into_iter()
            .map(|url| EndpointProbe {
                outcome: if down {
                    Err(format!("{url}: connection refused"))
                } else {
                    Ok(Duration::from_millis(3))
                },
                url,
            })
            .collect()
    }

    async fn server_time(&self) -> Result<ServerTime, TenantError> {
        let (down, offset) = {
            let s = self.lock();
            (s.endpoints_down, s.clock_offset_ms)
        };
        let url = "https://login.fake.invalid/".to_owned();
        if down {
            return Err(TenantError::Unavailable(format!(
                "{url}: connection refused"
            )));
        }
        let local = SystemTime::now();
        let shift = Duration::from_millis(offset.unsigned_abs());
        // Exact, where a real Date header has whole seconds.
        let server = if offset >= 0 {
            local + shift
        } else {
            local - shift
        };
        Ok(ServerTime { url, server, local })
    }
}
