//! The tenant: Microsoft Entra sign-in with the OAuth 2.0 device
//! authorization grant (RFC 8628) and Microsoft Graph (provisioning agents,
//! cloud sync configurations), over HTTPS with retries that honour
//! Retry-After.
//!
//! Shapes: Microsoft identity platform "OAuth 2.0 device authorization grant"
//! (`/{tenant}/oauth2/v2.0/devicecode`, `/token`), Graph beta
//! `onPremisesAgent` (`GET /beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups`).
//! The same code talks to the lab's `provd-tenant-emulator` when pointed at it.
//!
//! [`HttpTenant`] (`http`: the client and its spans; `send`: one Graph
//! request and its retries) signs in through `oauth`, reads the agents
//! through `graph` and configures cloud sync through `sync`; `endpoints`
//! says where each cloud's sign-in and Graph live; `id_token` reads who
//! signed in.
//!
//! Sign-in is per client and resource ([`ClientScope`]): one access token
//! is for one resource (its audience), and a refresh token, bound to the
//! user and the client but not to a resource, gets tokens for any resource
//! the tenant lets that client have
//! (<https://learn.microsoft.com/entra/identity-platform/refresh-tokens>).
//! Which clients and resources provd asks for is the workflows' choice
//! (`workflows::tenant`).

mod endpoints;
mod graph;
mod http;
mod id_token;
mod oauth;
mod send;
pub mod sync;

use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use endpoints::{TenantEndpoints, graph_scope};
pub use http::{HttpTenant, RetryPolicy};
pub use sync::{CloudSyncApi, Organization, SYNC_ROLES, SyncCall};

#[derive(Debug, Clone, thiserror::Error)]
pub enum TenantError {
    #[error("tenant configuration: {0}")]
    Config(String),
    /// The tenant could not be reached or kept failing; a retry may help.
    #[error("the tenant did not answer: {0}")]
    Unavailable(String),
    /// 401: the token is missing, expired or invalid.
    #[error("the tenant rejected the sign-in (401): {0}")]
    Unauthorized(String),
    /// 403: signed in, but not allowed.
    #[error("the signed-in account may not do this (403): {0}")]
    Forbidden(String),
    /// The device code expired before anyone approved it.
    #[error("the device code expired before the sign-in was completed")]
    DeviceCodeExpired,
    /// The person signing in declined.
    #[error("the sign-in was declined")]
    AccessDenied,
    /// The tenant gives this client no token for this resource (no consent
    /// or preauthorization: AADSTS65001, AADSTS65002).
    #[error("the tenant gives client {client_id} no token for {scope}: {message}")]
    ConsentRequired {
        client_id: String,
        scope: String,
        message: String,
    },
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// 404: the tenant does not know the thing asked for.
    #[error("the tenant does not know it (404): {0}")]
    NotFound(String),
    /// 409: the thing already exists (e.g. a second job of one template).
    #[error("the tenant refused: it already exists (409): {0}")]
    Conflict(String),
    /// A request body Graph would refuse for its size.
    #[error("{what} would be {bytes} bytes; Graph accepts at most {limit}")]
    TooLarge {
        what: String,
        bytes: usize,
        limit: usize,
    },
    /// An answer that does not follow the documented shape.
    #[error("unexpected answer from the tenant: {0}")]
    Protocol(String),
}

/// A public client and the resource scope it asks for (e.g.
/// `https://graph.microsoft.com/.default`); the tenant client adds the
/// OpenID Connect scopes (`openid profile offline_access`) itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientScope {
    pub client_id: String,
    pub scope: String,
}

/// What the operator must do to sign in. `device_code` stays secret.
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    pub message: String,
    pub expires_at: Instant,
    pub interval: Duration,
    /// Who asked: the poll must name the same client and scope.
    pub client: ClientScope,
    device_code: SecretString,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl DeviceCode {
    /// A device code as another [`Tenant`] implementation hands it out.
    pub fn new(
        user_code: String,
        verification_uri: String,
        message: String,
        expires_in: Duration,
        interval: Duration,
        client: ClientScope,
        device_code: SecretString,
    ) -> Self {
        Self {
            user_code,
            verification_uri,
            message,
            expires_at: Instant::now() + expires_in,
            interval,
            client,
            device_code,
        }
    }
}

/// Tokens for one resource, in memory only (zeroized on drop).
#[derive(Clone)]
pub struct Tokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    pub expires_at: Instant,
    /// Who signed in, from the answer's id_token (`tid`,
    /// `preferred_username`) when there was one. Read without verifying
    /// the token's signature (`id_token.rs`): inputs for the agent's
    /// module, never a reason to allow anything.
    pub tenant_id: Option<String>,
    pub user_principal_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentGroup {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningAgent {
    pub id: String,
    pub machine_name: String,
    pub external_ip: String,
    pub active: bool,
    pub groups: Vec<AgentGroup>,
}

/// A `publishedResource`: for provisioning, one AD domain and the agent
/// groups that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedResource {
    pub id: String,
    /// `resourceName`: the AD domain's DNS name.
    pub domain: String,
    pub group_ids: Vec<String>,
}

/// One tenant endpoint and whether a TLS connection and an HTTP answer came
/// back from it.
#[derive(Debug, Clone)]
pub struct EndpointProbe {
    pub url: String,
    pub outcome: Result<Duration, String>,
}

/// The tenant's clock as one of its answers gives it.
#[derive(Debug, Clone)]
pub struct ServerTime {
    /// Where the answer came from.
    pub url: String,
    /// The answer's `Date` header (RFC 9110 section 6.6.1: whole seconds).
    pub server: SystemTime,
    /// This host's clock halfway between sending and the answer.
    pub local: SystemTime,
}

impl ServerTime {
    /// How far the tenant's clock is ahead of this host's (negative:
    /// behind), in milliseconds.
    pub fn skew_ms(&self) -> i64 {
        match self.server.duration_since(self.local) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// The tenant as the workflows see it. [`HttpTenant`] is the real one.
#[async_trait::async_trait]
pub trait Tenant: Send + Sync + 'static {
    /// The tenant id or domain signed in to, for messages.
    fn tenant(&self) -> &str;
    /// A device-code sign-in for `client` (its scope plus the OpenID
    /// Connect scopes).
    async fn start_device_code(&self, client: &ClientScope) -> Result<DeviceCode, TenantError>;
    /// Polls until the person signs in (tokens for the code's client and
    /// scope), declines, or the code expires.
    async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError>;
    /// Tokens for `client.scope` from a refresh token of `client.client_id`
    /// (any resource the tenant lets that client have:
    /// [`TenantError::ConsentRequired`] otherwise).
    async fn refresh(
        &self,
        client: &ClientScope,
        refresh_token: &SecretString,
    ) -> Result<Tokens, TenantError>;
    async fn list_agents(&self, tokens: &Tokens) -> Result<Vec<ProvisioningAgent>, TenantError>;
    async fn list_published_resources(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError>;
    async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError>;
    /// Sign-in and Graph, over TLS.
    async fn probe_endpoints(&self) -> Vec<EndpointProbe>;
    /// The tenant's clock: the `Date` of the sign-in endpoint's answer.
    async fn server_time(&self) -> Result<ServerTime, TenantError>;
}
