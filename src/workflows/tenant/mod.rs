//! The tenant side of the workflows: the session (`session.rs`:
//! device-code sign-in relayed to the remote operator as an
//! ACTION_REQUIRED event, tokens for the registration service and Graph
//! kept in memory only and refreshed before they expire), the SignIn
//! operation, and this machine's agent registration.
//!
//! Any operation that needs the tenant runs the `sign-in` step through
//! [`TenantWorkflows::ensure_signed_in`]: skipped while a token is valid,
//! otherwise the operator gets the code and URL as an event and the step
//! waits (cancellable) until they approve, decline, or the code expires.

mod session;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::operations::{OperationSpec, Outcome, Progress, RequestFingerprint, blocking, now_ms};
use super::{Caller, Error, Operations, validate};
use crate::backends::host::{AgentIdentity, Host};
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::backends::tenant::{Tenant, TenantError, Tokens};

pub use session::SignInClients;

const REGISTRATION_NS: &str = "tenant";
const REGISTRATION_KEY: &str = "registration";

/// How often the registered agent reports to the agent service.
pub const AGENT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// This machine's agent as registered with the tenant. No secret: the
/// agent's key lives with the agent on the host, never in provd's store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationRecord {
    pub agent_id: String,
    pub machine_name: String,
    pub tenant: String,
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
    /// The CA the agent should trust for the agent service, when that is
    /// not a public one (the lab).
    service_ca_pem: Option<String>,
    clients: SignInClients,
    session: tokio::sync::Mutex<Option<session::Session>>,
}

impl TenantWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        tenant: Arc<dyn Tenant>,
        store: Arc<dyn Store>,
        host: Arc<dyn Host>,
        service_ca_pem: Option<String>,
        clients: SignInClients,
    ) -> Self {
        Self {
            operations,
            tenant,
            store,
            host,
            service_ca_pem,
            clients,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// The session as GetAgent reports it: the Graph tokens'.
    pub async fn status(&self) -> Result<TenantStatus, Error> {
        let (signed_in, expires) = match &*self.session.lock().await {
            Some(session) => {
                let (expires_at, usable) = session.graph_state();
                let left = expires_at.saturating_duration_since(Instant::now());
                (usable, left.as_secs())
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
        match blocking(&self.store, |s| {
            s.get_config(REGISTRATION_NS, REGISTRATION_KEY)
        })
        .await?
        {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal("stored registration", e)),
        }
    }

    async fn save_registration(&self, record: &RegistrationRecord) -> Result<(), Error> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::internal("encoding a record for the store", e))?;
        blocking(&self.store, move |s| {
            s.put_config(REGISTRATION_NS, REGISTRATION_KEY, Some(&bytes))
        })
        .await
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

    /// The `register-agent` step: a key pair for the agent, its CSR sent to
    /// the agent service, and the issued identity handed to the agent on
    /// the host. Skipped when the host's agent already holds the identity
    /// provd recorded.
    pub async fn ensure_registered(
        &self,
        progress: &Progress,
        tokens: &Tokens,
    ) -> Result<(RegistrationRecord, bool), Error> {
        const STEP: &str = "register-agent";
        progress
            .step_started(STEP, "registering this machine's agent with the tenant")
            .await?;
        let on_host = self.host.agent_identity().await.map_err(Error::from)?;
        if let (Some(record), Some(id)) = (self.registration().await?, on_host)
            && record.agent_id == id
        {
            progress
                .step_skipped(
                    STEP,
                    format!(
                        "already registered as agent {} ({})",
                        record.agent_id, record.machine_name
                    ),
                )
                .await?;
            return Ok((record, false));
        }
        let machine_name = self.host.machine_name();
        let service_url = self
            .tenant
            .agent_service()
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::from(TenantError::Config(
                    "tenant.agent_service is not set: Microsoft does not document its agent \
                 registration service, so provd registers agents only with a service that \
                 speaks the lab emulator's shape"
                        .into(),
                ))
            })?;
        let (key_pem, csr_pem) = agent_key_and_csr(&machine_name)?;
        let registered = self
            .tenant
            .register_agent(tokens, &machine_name, &csr_pem)
            .await
            .map_err(Error::from)?;
        let identity = AgentIdentity {
            agent_id: registered.agent_id.clone(),
            machine_name: machine_name.clone(),
            service_url,
            certificate_pem: registered.certificate_pem,
            private_key_pem: SecretString::from(key_pem.as_str()),
            service_ca_pem: self.service_ca_pem.clone(),
            heartbeat_interval: AGENT_HEARTBEAT_INTERVAL,
        };
        self.host
            .install_agent_identity(&identity)
            .await
            .map_err(Error::from)?;
        let record = RegistrationRecord {
            agent_id: registered.agent_id,
            machine_name,
            tenant: self.tenant.tenant().to_owned(),
            registered_at_ms: now_ms(),
        };
        self.save_registration(&record).await?;
        progress
            .step_succeeded(
                STEP,
                format!(
                    "registered as agent {} ({})",
                    record.agent_id, record.machine_name
                ),
            )
            .await?;
        Ok((record, true))
    }

    pub fn tenant(&self) -> &Arc<dyn Tenant> {
        &self.tenant
    }
}

/// An ECDSA P-256 key for the agent and a CSR naming the machine. The key
/// PEM is zeroized when dropped.
fn agent_key_and_csr(machine_name: &str) -> Result<(Zeroizing<String>, String), Error> {
    let internal = |e: rcgen::Error| Error::internal("agent key", e);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(internal)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, machine_name);
    let csr = params.serialize_request(&key).map_err(internal)?;
    let csr_pem = csr.pem().map_err(internal)?;
    Ok((Zeroizing::new(key.serialize_pem()), csr_pem))
}
