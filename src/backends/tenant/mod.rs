//! The tenant: Microsoft Entra sign-in with the OAuth 2.0 device
//! authorization grant (RFC 8628) and Microsoft Graph (provisioning agents),
//! over HTTPS with retries on 429/5xx that honour Retry-After.
//!
//! Shapes: Microsoft identity platform "OAuth 2.0 device authorization grant"
//! (`/{tenant}/oauth2/v2.0/devicecode`, `/token`), Graph beta
//! `onPremisesAgent` (`GET /beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups`).
//! The same code talks to the lab's `provd-tenant-emulator` when pointed at it.
//!
//! [`HttpTenant`] (`http`: the client, retries, spans) signs in through
//! `oauth` and reads Graph through `graph`; `endpoints` says where each
//! cloud's sign-in and Graph live.

mod endpoints;
mod graph;
mod http;
mod oauth;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use endpoints::TenantEndpoints;
pub use http::{HttpTenant, RetryPolicy};

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
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// 404: the tenant does not know the thing asked for.
    #[error("the tenant does not know it (404): {0}")]
    NotFound(String),
    /// An answer that does not follow the documented shape.
    #[error("unexpected answer from the tenant: {0}")]
    Protocol(String),
}

/// What the operator must do to sign in. `device_code` stays secret.
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    pub message: String,
    pub expires_at: Instant,
    pub interval: Duration,
    device_code: SecretString,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
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
        device_code: SecretString,
    ) -> Self {
        Self {
            user_code,
            verification_uri,
            message,
            expires_at: Instant::now() + expires_in,
            interval,
            device_code,
        }
    }
}

/// Tokens, in memory only (zeroized on drop).
#[derive(Clone)]
pub struct Tokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    pub expires_at: Instant,
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

/// What the agent service answered to a registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub agent_id: String,
    /// The agent's client certificate (PEM), issued for the CSR.
    pub certificate_pem: String,
}

/// One tenant endpoint and whether a TLS connection and an HTTP answer came
/// back from it.
#[derive(Debug, Clone)]
pub struct EndpointProbe {
    pub url: String,
    pub outcome: Result<Duration, String>,
}

/// The tenant as the workflows see it. [`HttpTenant`] is the real one.
#[async_trait::async_trait]
pub trait Tenant: Send + Sync + 'static {
    /// The tenant id or domain signed in to, for messages.
    fn tenant(&self) -> &str;
    /// The agent service's base URL, when one is configured.
    fn agent_service(&self) -> Option<&str>;
    async fn start_device_code(&self) -> Result<DeviceCode, TenantError>;
    async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError>;
    async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, TenantError>;
    async fn list_agents(&self, tokens: &Tokens) -> Result<Vec<ProvisioningAgent>, TenantError>;
    async fn list_published_resources(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError>;
    async fn register_agent(
        &self,
        tokens: &Tokens,
        machine_name: &str,
        csr_pem: &str,
    ) -> Result<Registration, TenantError>;
    async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError>;
    async fn set_password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        enabled: bool,
    ) -> Result<(), TenantError>;
    /// Sign-in, Graph and (when configured) the agent service, over TLS.
    async fn probe_endpoints(&self) -> Vec<EndpointProbe>;
}
