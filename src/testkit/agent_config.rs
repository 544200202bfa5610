//! `FakeAgentConfig`: the agent's PowerShell module as the workflows see
//! it. It records each call without its secrets, keeps what the calls set
//! (tenant, gMSA, domains with their DCs, the writeback flag, verbose
//! tracing), writes one
//! transcript line per call, and fails on demand with any
//! [`AgentConfigError`] variant.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::backends::agent_config::{
    AGENT_SERVICE, AgentConfig, AgentConfigError, AgentDomain, MODULE_PATH, ModuleInfo, RunContext,
    TenantConnection,
};
use crate::model::BindCredential;
use crate::testkit::{FakeHost, FakeTenant};

/// A call as recorded: its arguments minus the token and the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentConfigCall {
    ModuleInfo,
    ConnectTenant {
        tenant_id: String,
        user_principal_name: String,
    },
    UseGmsa {
        sam_account_name: String,
    },
    AddDomain {
        domain: String,
        username: String,
        preferred_dcs: Vec<String>,
    },
    SetWriteback {
        enable: bool,
        tenant_id: String,
    },
    ListDomains,
    /// `Start-` (`on`) or `Stop-AADCloudSyncToolsVerboseLogs`.
    VerboseTrace {
        on: bool,
    },
}

/// The calls a fault can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentConfigAction {
    ModuleInfo,
    ConnectTenant,
    UseGmsa,
    AddDomain,
    SetWriteback,
    ListDomains,
    StartVerboseTrace,
    StopVerboseTrace,
}

/// One injectable failure per [`AgentConfigError`] variant, with the texts
/// the real module gives where they are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentConfigFault {
    Unavailable,
    ModuleMissing,
    ModuleTooOld,
    ExecutionPolicy,
    AssemblyConflict,
    ServiceAccountNotManaged,
    TokenRejected,
    ParameterBinding,
    Cmdlet,
    Timeout,
    Cancelled,
    Protocol,
    Io,
}

impl AgentConfigFault {
    pub const ALL: [Self; 13] = [
        Self::Unavailable,
        Self::ModuleMissing,
        Self::ModuleTooOld,
        Self::ExecutionPolicy,
        Self::AssemblyConflict,
        Self::ServiceAccountNotManaged,
        Self::TokenRejected,
        Self::ParameterBinding,
        Self::Cmdlet,
        Self::Timeout,
        Self::Cancelled,
        Self::Protocol,
        Self::Io,
    ];

    pub fn error(self) -> AgentConfigError {
        let text = |s: &str| s.to_owned();
        match self {
            Self::Unavailable => AgentConfigError::Unavailable(text("injected")),
            Self::ModuleMissing => AgentConfigError::ModuleMissing {
                path: text(MODULE_PATH),
            },
            Self::ModuleTooOld => AgentConfigError::ModuleTooOld {
                version: text("1.1.281.0"),
                needed: text("1.1.354.0"),
                feature: text("-CustomGMSAName"),
            },
            Self::ExecutionPolicy => AgentConfigError::ExecutionPolicy {
                scope: text("LocalMachine"),
                policy: text("Unrestricted"),
            },
            Self::AssemblyConflict => AgentConfigError::AssemblyConflict {
                assembly: text("Newtonsoft.Json"),
                message: text(
                    "Could not load file or assembly 'Newtonsoft.Json, Version=12.0.0.0, \
                     Culture=neutral, PublicKeyToken=30ad4fe6b2a6aeed' or one of its \
                     dependencies. (Exception from HRESULT: 0x80131040)",
                ),
            },
            Self::ServiceAccountNotManaged => AgentConfigError::ServiceAccountNotManaged {
                service: text(AGENT_SERVICE),
            },
            Self::TokenRejected => AgentConfigError::TokenRejected {
                message: text("AADSTS50013: Assertion failed signature validation"),
            },
            Self::ParameterBinding => AgentConfigError::ParameterBinding {
                cmdlet: text("Add-AADCloudSyncGMSA"),
                parameter: text("CustomGMSAName"),
                fqid: text(
                    "NamedParameterNotFound,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
                ),
                message: text(
                    "A parameter cannot be found that matches parameter name 'CustomGMSAName'.",
                ),
            },
            Self::Cmdlet => AgentConfigError::Cmdlet {
                cmdlet: text("Add-AADCloudSyncADDomain"),
                message: text("injected cmdlet failure"),
                fqid: text(
                    "System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain",
                ),
                category: text("NotSpecified"),
            },
            Self::Timeout => AgentConfigError::Timeout {
                script: text("injected"),
                after: Duration::from_secs(600),
            },
            Self::Cancelled => AgentConfigError::Cancelled,
            Self::Protocol => AgentConfigError::Protocol(text("injected: no result line")),
            Self::Io => AgentConfigError::Io(text("injected: cannot start powershell.exe")),
        }
    }
}

struct State {
    module: ModuleInfo,
    domains: BTreeMap<String, AgentDomain>,
    gmsa: Option<String>,
    writeback: Option<bool>,
    verbose: bool,
    calls: Vec<AgentConfigCall>,
    faults: BTreeMap<AgentConfigAction, AgentConfigFault>,
}

/// Clones share state.
#[derive(Clone)]
pub struct FakeAgentConfig {
    state: Arc<Mutex<State>>,
    /// Where a successful connect registers this machine's agent.
    tenant: Arc<Mutex<Option<(FakeTenant, String)>>>,
    /// The host whose agent service `use_gmsa` re-logs, with the domain's
    /// NetBIOS name, as the real cmdlet does on its own machine.
    host: Option<(FakeHost, String)>,
}

impl Default for FakeAgentConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeAgentConfig {
    /// The module of agent 1.1.1370.0 (FakeHost's package), policies as
    /// Microsoft wants them, registered with no tenant yet.
    pub fn new() -> Self {
        let policies = [
            ("MachinePolicy", "Undefined"),
            ("UserPolicy", "Undefined"),
            ("Process", "Undefined"),
            ("CurrentUser", "Undefined"),
            ("LocalMachine", "RemoteSigned"),
        ];
        let module = ModuleInfo {
            dll_path: MODULE_PATH.into(),
            version: Some("1.1.1370.0".into()),
            execution_policies: policies.map(|(s, p)| (s.into(), p.into())).to_vec(),
            registered_tenant: None,
        };
        let state = State {
            module,
            domains: BTreeMap::new(),
            gmsa: None,
            writeback: None,
            verbose: false,
            calls: Vec::new(),
            faults: BTreeMap::new(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            tenant: Arc::new(Mutex::new(None)),
            host: None,
        }
    }

    /// A successful `connect_tenant` registers `machine_name` with `tenant`
    /// from now on, as the real module registers the agent with the
    /// connector service (so Graph lists it).
    pub fn connects_to(&self, tenant: &FakeTenant, machine_name: &str) {
        *self.tenant.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((tenant.clone(), machine_name.to_owned()));
    }

    /// `use_gmsa` also makes `host`'s agent service log on as
    /// `NETBIOS\name$`, as `Add-AADCloudSyncGMSA` does on the agent's host.
    pub fn on_host(mut self, host: FakeHost, netbios: &str) -> Self {
        self.host = Some((host, netbios.to_owned()));
        self
    }

    /// The tenant (and this host's machine name) `connects_to` linked.
    fn linked_tenant(&self) -> Option<(FakeTenant, String)> {
        self.tenant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `module_info` answers now (not recorded as a call).
    pub fn module_info_now(&self) -> ModuleInfo {
        self.lock().module.clone()
    }

    /// What `module_info` answers from now on.
    pub fn set_module_info(&self, module: ModuleInfo) {
        self.lock().module = module;
    }

    /// `action` fails with `fault` until [`Self::clear_faults`].
    pub fn fail(&self, action: AgentConfigAction, fault: AgentConfigFault) {
        self.lock().faults.insert(action, fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<AgentConfigCall> {
        self.lock().calls.clone()
    }

    /// The gMSA the agent service was last given.
    pub fn gmsa(&self) -> Option<String> {
        self.lock().gmsa.clone()
    }

    /// The last writeback setting.
    pub fn writeback(&self) -> Option<bool> {
        self.lock().writeback
    }

    /// Whether verbose tracing is on (a Start without its Stop).
    pub fn verbose_tracing(&self) -> bool {
        self.lock().verbose
    }

    /// Records `call`, then fails if a fault is set for `action`, else
    /// applies `effect` to the state.
    fn call<T>(
        &self,
        cx: &RunContext<'_>,
        action: AgentConfigAction,
        call: AgentConfigCall,
        effect: impl FnOnce(&mut State) -> T,
    ) -> Result<T, AgentConfigError> {
        (cx.transcript)(format!("fake module: {call:?}"));
        let mut state = self.lock();
        state.calls.push(call);
        if let Some(fault) = state.faults.get(&action) {
            return Err(fault.error());
        }
        if cx.cancel.is_cancelled() {
            return Err(AgentConfigError::Cancelled);
        }
        Ok(effect(&mut state))
    }
}

#[async_trait::async_trait]
impl AgentConfig for FakeAgentConfig {
    fn availability(&self) -> Result<(), String> {
        Ok(())
    }

    async fn module_info(&self, cx: &RunContext<'_>) -> Result<ModuleInfo, AgentConfigError> {
        let call = AgentConfigCall::ModuleInfo;
        self.call(cx, AgentConfigAction::ModuleInfo, call, |s| {
            s.module.clone()
        })
    }

    async fn connect_tenant(
        &self,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        let call = AgentConfigCall::ConnectTenant {
            tenant_id: connection.tenant_id.clone(),
            user_principal_name: connection.user_principal_name.clone(),
        };
        self.call(cx, AgentConfigAction::ConnectTenant, call, |s| {
            s.module.registered_tenant = Some(connection.tenant_id.clone());
        })?;
        let linked = self.linked_tenant();
        if let Some((tenant, machine_name)) = linked {
            tenant.register_connector(&machine_name);
        }
        Ok(())
    }

    async fn use_gmsa(
        &self,
        sam_account_name: &str,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        let call = AgentConfigCall::UseGmsa {
            sam_account_name: sam_account_name.into(),
        };
        self.call(cx, AgentConfigAction::UseGmsa, call, |s| {
            s.gmsa = Some(sam_account_name.into());
        })?;
        if let Some((host, netbios)) = &self.host {
            let logon = format!("{netbios}\\{sam_account_name}");
            host.set_service_account(AGENT_SERVICE, &logon)
                .map_err(|e| AgentConfigError::Cmdlet {
                    cmdlet: "Add-AADCloudSyncGMSA".into(),
                    message: e.to_string(),
                    fqid: String::new(),
                    category: String::new(),
                })?;
        }
        Ok(())
    }

    async fn add_domain(
        &self,
        domain: &str,
        credential: &BindCredential,
        preferred_dcs: &[String],
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        let call = AgentConfigCall::AddDomain {
            domain: domain.into(),
            username: credential.username.clone(),
            preferred_dcs: preferred_dcs.to_vec(),
        };
        self.call(cx, AgentConfigAction::AddDomain, call, |s| {
            let entry = AgentDomain {
                domain: domain.into(),
                preferred_dcs: preferred_dcs.to_vec(),
                raw: BTreeMap::from([("DomainName".to_owned(), domain.to_owned())]),
            };
            s.domains.insert(domain.to_ascii_lowercase(), entry);
        })?;
        if let Some((tenant, machine_name)) = self.linked_tenant() {
            tenant.agent_serves_domain(&machine_name, domain);
        }
        Ok(())
    }

    async fn set_writeback(
        &self,
        enable: bool,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        let call = AgentConfigCall::SetWriteback {
            enable,
            tenant_id: connection.tenant_id.clone(),
        };
        self.call(cx, AgentConfigAction::SetWriteback, call, |s| {
            s.writeback = Some(enable);
        })?;
        let linked = self.linked_tenant();
        if let Some((tenant, machine_name)) = linked
            && !tenant.agent_sets_writeback(&machine_name, enable)
        {
            return Err(AgentConfigError::Cmdlet {
                cmdlet: "Set-AADCloudSyncPasswordWritebackConfiguration".into(),
                message: format!("no agent of {machine_name} is registered"),
                fqid: String::new(),
                category: String::new(),
            });
        }
        Ok(())
    }

    async fn list_domains(
        &self,
        cx: &RunContext<'_>,
    ) -> Result<Vec<AgentDomain>, AgentConfigError> {
        let call = AgentConfigCall::ListDomains;
        self.call(cx, AgentConfigAction::ListDomains, call, |s| {
            s.domains.values().cloned().collect()
        })
    }

    async fn verbose_trace(&self, on: bool, cx: &RunContext<'_>) -> Result<(), AgentConfigError> {
        let action = if on {
            AgentConfigAction::StartVerboseTrace
        } else {
            AgentConfigAction::StopVerboseTrace
        };
        let call = AgentConfigCall::VerboseTrace { on };
        self.call(cx, action, call, |s| s.verbose = on)
    }
}
