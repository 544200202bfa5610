//! The tenant: Microsoft Entra sign-in with the OAuth 2.0 device
//! authorization grant (RFC 8628) and Microsoft Graph (provisioning agents),
//! over HTTPS with retries on 429/5xx that honour Retry-After.
//!
//! Shapes: Microsoft identity platform "OAuth 2.0 device authorization grant"
//! (`/{tenant}/oauth2/v2.0/devicecode`, `/token`), Graph beta
//! `onPremisesAgent` (`GET /beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups`).
//! The same code talks to the lab's `provd-tenant-emulator` when pointed at it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tracing::Instrument;

use super::host::Cloud;

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

/// Where sign-in and Graph live, per cloud (as the installer's
/// ENVIRONMENTNAME chooses), or overridden (the lab emulator).
#[derive(Debug, Clone)]
pub struct TenantEndpoints {
    /// e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// e.g. `https://graph.microsoft.com`.
    pub graph: String,
    /// Tenant id or domain; `organizations` for any work account.
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
}

impl TenantEndpoints {
    pub fn for_cloud(cloud: Cloud, tenant: &str, client_id: &str) -> Self {
        let (authority, graph) = match cloud {
            Cloud::AzurePublic => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::AzureUsGovernment => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
        };
        Self {
            authority: authority.into(),
            graph: graph.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            scope: format!("{graph}/.default offline_access"),
        }
    }
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

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    /// The longest single wait, whatever Retry-After says.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_backoff: Duration::from_millis(250),
            max_wait: Duration::from_secs(60),
        }
    }
}

pub struct HttpTenant {
    http: reqwest::Client,
    endpoints: TenantEndpoints,
    retry: RetryPolicy,
    agent_service: Option<String>,
}

#[derive(Deserialize)]
struct DeviceCodeBody {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    message: String,
    expires_in: u64,
    #[serde(default = "default_interval")]
    interval: u64,
}

fn default_interval() -> u64 {
    5
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct GraphList<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentBody {
    id: String,
    #[serde(default)]
    machine_name: String,
    #[serde(default)]
    external_ip: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    agent_groups: Vec<GroupBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    id: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceBody {
    id: String,
    #[serde(default)]
    resource_name: String,
    #[serde(default)]
    agent_groups: Vec<GroupBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    agent_id: String,
    certificate: String,
}

#[derive(Deserialize)]
struct WritebackBody {
    enabled: bool,
}

/// Characters escaped in one URL path segment.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The error and its causes, e.g. "error sending request: tcp connect
/// error: Connection refused".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client span for one HTTP request to the tenant: method, host and path.
/// Never the query, a header or a body: tokens, refresh tokens and device
/// codes travel there.
fn http_span(method: &reqwest::Method, url: &str) -> tracing::Span {
    let (host, path) = match reqwest::Url::parse(url) {
        Ok(u) => (
            u.host_str().unwrap_or_default().to_owned(),
            u.path().to_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let name = format!("{method} {path}");
    tracing::info_span!(
        "tenant.http",
        otel.name = name.as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method.as_str(),
        server.address = host.as_str(),
        url.path = path.as_str(),
        http.response.status_code = tracing::field::Empty,
        http.request.resend_count = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}

/// Records how a request ended on its span.
fn record_response(span: &tracing::Span, response: &Result<reqwest::Response, reqwest::Error>) {
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            span.record("http.response.status_code", status);
            if status >= 400 {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status);
            }
        }
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            span.record(
                "error.type",
                if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                },
            );
        }
    }
}

fn transport(err: &reqwest::Error) -> TenantError {
    TenantError::Unavailable(err.to_string())
}

impl HttpTenant {
    /// `ca_file`: a PEM bundle to trust instead of the public web roots (the
    /// lab emulator's CA).
    pub fn new(
        endpoints: TenantEndpoints,
        ca_file: Option<&Path>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, TenantError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| TenantError::Config(format!("{}: {e}", path.display())))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert =
                        cert.map_err(|e| TenantError::Config(format!("{}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| TenantError::Config(format!("{}: {e}", path.display())))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TenantError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TenantError::Config(e.to_string()))?;
        Ok(Self {
            http,
            endpoints,
            retry,
            agent_service: None,
        })
    }

    /// Where agents register and heartbeat (`POST {base}/_agent/register`).
    /// Microsoft does not document its registration service; provd only
    /// registers with a service that speaks the lab emulator's shape.
    pub fn with_agent_service(mut self, base_url: Option<String>) -> Self {
        self.agent_service = base_url.map(|u| u.trim_end_matches('/').to_owned());
        self
    }

    fn oauth_url(&self, leaf: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/{leaf}",
            self.endpoints.authority.trim_end_matches('/'),
            self.endpoints.tenant
        )
    }

    /// Starts a device-code sign-in: what to show the operator.
    pub async fn start_device_code(&self) -> Result<DeviceCode, TenantError> {
        let url = self.oauth_url("devicecode");
        let span = http_span(&reqwest::Method::POST, &url);
        let response = self
            .http
            .post(&url)
            .form(&[
                ("client_id", self.endpoints.client_id.as_str()),
                ("scope", self.endpoints.scope.as_str()),
            ])
            .send()
            .instrument(span.clone())
            .await;
        record_response(&span, &response);
        let response = response.map_err(|e| transport(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| transport(&e))?;
        if !status.is_success() {
            return Err(oauth_failure(status.as_u16(), &text));
        }
        let body: DeviceCodeBody = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("device code answer: {e}")))?;
        Ok(DeviceCode {
            user_code: body.user_code,
            verification_uri: body.verification_uri,
            message: body.message,
            expires_at: Instant::now() + Duration::from_secs(body.expires_in),
            interval: Duration::from_secs(body.interval.max(1)),
            device_code: SecretString::from(body.device_code),
        })
    }

    /// Polls until the operator approves, declines, or the code expires
    /// (RFC 8628 §3.4–3.5: `interval`, plus 5 s after each `slow_down`).
    pub async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError> {
        let mut interval = code.interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = cancel.cancelled() => return Err(TenantError::Cancelled),
            }
            if Instant::now() >= code.expires_at {
                return Err(TenantError::DeviceCodeExpired);
            }
            let url = self.oauth_url("token");
            let span = http_span(&reqwest::Method::POST, &url);
            let response = self
                .http
                .post(&url)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", self.endpoints.client_id.as_str()),
                    ("device_code", code.device_code.expose_secret()),
                ])
                .send()
                .instrument(span.clone())
                .await;
            record_response(&span, &response);
            let response = match response {
                Ok(r) => r,
                // A transient network error does not end the sign-in.
                Err(e) => {
                    tracing::warn!(error = %e, "token poll failed; polling again");
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.map_err(|e| transport(&e))?;
            if status.is_success() {
                return tokens(&text);
            }
            match serde_json::from_str::<OAuthError>(&text).map(|e| e.error) {
                Ok(e) if e == "authorization_pending" => {}
                Ok(e) if e == "slow_down" => interval += Duration::from_secs(5),
                Ok(e) if e == "expired_token" => return Err(TenantError::DeviceCodeExpired),
                Ok(e) if e == "access_denied" || e == "authorization_declined" => {
                    return Err(TenantError::AccessDenied);
                }
                _ => return Err(oauth_failure(status.as_u16(), &text)),
            }
        }
    }

    /// A Graph call with the retry policy: 429 and 5xx are retried, waiting
    /// Retry-After when given, else exponential backoff.
    async fn graph_get(&self, path: &str, tokens: &Tokens) -> Result<String, TenantError> {
        let url = format!("{}{path}", self.endpoints.graph.trim_end_matches('/'));
        self.send_with_retry(&url, tokens, reqwest::Method::GET, None)
            .await
    }

    async fn send_with_retry(
        &self,
        url: &str,
        tokens: &Tokens,
        method: reqwest::Method,
        body: Option<&serde_json::Value>,
    ) -> Result<String, TenantError> {
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(tokens.access.expose_secret());
            if let Some(body) = body {
                request = request.json(body);
            }
            let span = http_span(&method, url);
            if attempt > 1 {
                span.record("http.request.resend_count", attempt - 1);
            }
            let response = request.send().instrument(span.clone()).await;
            record_response(&span, &response);
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    drop(span);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_wait);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.map_err(|e| transport(&e))?;
            match status {
                200..=299 => return Ok(text),
                401 => return Err(TenantError::Unauthorized(graph_message(&text))),
                403 => return Err(TenantError::Forbidden(graph_message(&text))),
                404 => return Err(TenantError::NotFound(graph_message(&text))),
                429 | 500..=599 => {
                    last = format!("HTTP {status}: {}", graph_message(&text));
                    let wait = retry_after.unwrap_or(backoff).min(self.retry.max_wait);
                    tracing::info!(
                        parent: &span,
                        status,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "tenant throttled or failing; retrying"
                    );
                    drop(span);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.retry.max_wait);
                }
                other => {
                    return Err(TenantError::Protocol(format!(
                        "HTTP {other}: {}",
                        graph_message(&text)
                    )));
                }
            }
        }
        Err(TenantError::Unavailable(format!(
            "{url} still failing after {} attempts: {last}",
            self.retry.attempts
        )))
    }

    /// Exchanges a refresh token for fresh tokens (the refresh token
    /// rotates).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, TenantError> {
        let url = self.oauth_url("token");
        let span = http_span(&reqwest::Method::POST, &url);
        let response = self
            .http
            .post(&url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.endpoints.client_id.as_str()),
                ("refresh_token", refresh_token.expose_secret()),
                ("scope", self.endpoints.scope.as_str()),
            ])
            .send()
            .instrument(span.clone())
            .await;
        record_response(&span, &response);
        let response = response.map_err(|e| transport(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| transport(&e))?;
        if status.is_success() {
            return tokens(&text);
        }
        match serde_json::from_str::<OAuthError>(&text) {
            Ok(e) if e.error == "invalid_grant" => Err(TenantError::Unauthorized(format!(
                "the refresh token was refused: {}",
                e.error_description
            ))),
            _ => Err(oauth_failure(status.as_u16(), &text)),
        }
    }

    /// The published resources (one per AD domain) with their agent groups.
    pub async fn list_published_resources(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError> {
        let text = self
            .graph_get(
                "/beta/onPremisesPublishingProfiles/provisioning/publishedResources?$expand=agentGroups",
                tokens,
            )
            .await?;
        let list: GraphList<ResourceBody> = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("published resources: {e}")))?;
        Ok(list
            .value
            .into_iter()
            .map(|r| PublishedResource {
                id: r.id,
                domain: r.resource_name.to_ascii_lowercase(),
                group_ids: r.agent_groups.into_iter().map(|g| g.id).collect(),
            })
            .collect())
    }

    fn agent_service_url(&self, leaf: &str) -> Result<String, TenantError> {
        let base = self.agent_service.as_deref().ok_or_else(|| {
            TenantError::Config(
                "tenant.agent_service is not set: Microsoft does not document its agent \
                 registration service, so provd registers agents only with a service that \
                 speaks the lab emulator's shape"
                    .into(),
            )
        })?;
        Ok(format!("{base}{leaf}"))
    }

    /// Registers this machine's agent: CSR in, client certificate out.
    pub async fn register_agent(
        &self,
        tokens: &Tokens,
        machine_name: &str,
        csr_pem: &str,
    ) -> Result<Registration, TenantError> {
        let url = self.agent_service_url("/_agent/register")?;
        let body = serde_json::json!({ "machineName": machine_name, "csr": csr_pem });
        let text = self
            .send_with_retry(&url, tokens, reqwest::Method::POST, Some(&body))
            .await?;
        let answer: RegisterBody = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("registration answer: {e}")))?;
        Ok(Registration {
            agent_id: answer.agent_id,
            certificate_pem: answer.certificate,
        })
    }

    fn writeback_url(&self, agent_id: &str) -> String {
        format!(
            "{}/beta/onPremisesPublishingProfiles/provisioning/agents/{}/passwordWriteback",
            self.endpoints.graph.trim_end_matches('/'),
            utf8_percent_encode(agent_id, PATH_SEGMENT)
        )
    }

    /// The agent's password writeback flag (modelled endpoint, see the
    /// emulator's graph module).
    pub async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError> {
        let text = self
            .send_with_retry(
                &self.writeback_url(agent_id),
                tokens,
                reqwest::Method::GET,
                None,
            )
            .await?;
        let body: WritebackBody = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("writeback flag: {e}")))?;
        Ok(body.enabled)
    }

    pub async fn set_password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        enabled: bool,
    ) -> Result<(), TenantError> {
        let body = serde_json::json!({ "enabled": enabled });
        let text = self
            .send_with_retry(
                &self.writeback_url(agent_id),
                tokens,
                reqwest::Method::PUT,
                Some(&body),
            )
            .await?;
        let answer: WritebackBody = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("writeback flag: {e}")))?;
        if answer.enabled != enabled {
            return Err(TenantError::Protocol(format!(
                "asked to set the writeback flag to {enabled}, the tenant says {}",
                answer.enabled
            )));
        }
        Ok(())
    }

    /// Any HTTP answer over TLS counts as reachable: the point is the
    /// network path (firewall, proxy, TLS inspection), not the resource.
    pub async fn probe_endpoints(&self) -> Vec<EndpointProbe> {
        let mut urls = vec![
            self.endpoints.authority.clone(),
            self.endpoints.graph.clone(),
        ];
        urls.extend(self.agent_service.clone());
        urls.dedup();
        let probes = urls.into_iter().map(|url| async move {
            let started = Instant::now();
            let span = http_span(&reqwest::Method::GET, &url);
            let response = self.http.get(&url).send().instrument(span.clone()).await;
            record_response(&span, &response);
            let outcome = match response {
                Ok(_) => Ok(started.elapsed()),
                Err(e) => Err(error_chain(&e)),
            };
            EndpointProbe { url, outcome }
        });
        futures_util::future::join_all(probes).await
    }

    /// The tenant's provisioning agents with their groups.
    pub async fn list_agents(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<ProvisioningAgent>, TenantError> {
        let text = self
            .graph_get(
                "/beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups",
                tokens,
            )
            .await?;
        let list: GraphList<AgentBody> = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("agent list: {e}")))?;
        Ok(list
            .value
            .into_iter()
            .map(|a| ProvisioningAgent {
                id: a.id,
                machine_name: a.machine_name,
                external_ip: a.external_ip,
                // The documentation's example says "Active".
                active: a.status.eq_ignore_ascii_case("active"),
                groups: a
                    .agent_groups
                    .into_iter()
                    .map(|g| AgentGroup {
                        id: g.id,
                        display_name: g.display_name,
                    })
                    .collect(),
            })
            .collect())
    }
}

fn tokens(text: &str) -> Result<Tokens, TenantError> {
    let body: TokenBody = serde_json::from_str(text)
        .map_err(|e| TenantError::Protocol(format!("token answer: {e}")))?;
    Ok(Tokens {
        access: SecretString::from(body.access_token),
        refresh: body.refresh_token.map(SecretString::from),
        expires_at: Instant::now() + Duration::from_secs(body.expires_in),
    })
}

fn oauth_failure(status: u16, text: &str) -> TenantError {
    match serde_json::from_str::<OAuthError>(text) {
        Ok(e) => TenantError::Protocol(format!(
            "HTTP {status}: {}: {}",
            e.error, e.error_description
        )),
        Err(_) => TenantError::Protocol(format!("HTTP {status}")),
    }
}

/// `{"error":{"code":..., "message":...}}` → "code: message".
fn graph_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
            ))
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

#[async_trait::async_trait]
impl Tenant for HttpTenant {
    fn tenant(&self) -> &str {
        &self.endpoints.tenant
    }

    fn agent_service(&self) -> Option<&str> {
        self.agent_service.as_deref()
    }

    async fn start_device_code(&self) -> Result<DeviceCode, TenantError> {
        HttpTenant::start_device_code(self).await
    }

    async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError> {
        HttpTenant::wait_for_tokens(self, code, cancel).await
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, TenantError> {
        HttpTenant::refresh(self, refresh_token).await
    }

    async fn list_agents(&self, tokens: &Tokens) -> Result<Vec<ProvisioningAgent>, TenantError> {
        HttpTenant::list_agents(self, tokens).await
    }

    async fn list_published_resources(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError> {
        HttpTenant::list_published_resources(self, tokens).await
    }

    async fn register_agent(
        &self,
        tokens: &Tokens,
        machine_name: &str,
        csr_pem: &str,
    ) -> Result<Registration, TenantError> {
        HttpTenant::register_agent(self, tokens, machine_name, csr_pem).await
    }

    async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError> {
        HttpTenant::password_writeback(self, tokens, agent_id).await
    }

    async fn set_password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        enabled: bool,
    ) -> Result<(), TenantError> {
        HttpTenant::set_password_writeback(self, tokens, agent_id, enabled).await
    }

    async fn probe_endpoints(&self) -> Vec<EndpointProbe> {
        HttpTenant::probe_endpoints(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_are_summarised() {
        assert_eq!(
            graph_message(r#"{"error":{"code":"Authorization_RequestDenied","message":"nope"}}"#),
            "Authorization_RequestDenied: nope"
        );
        assert_eq!(graph_message("plain"), "plain");
    }

    #[test]
    fn clouds() {
        let us = TenantEndpoints::for_cloud(Cloud::AzureUsGovernment, "t", "c");
        assert_eq!(us.authority, "https://login.microsoftonline.us");
        assert!(us.scope.starts_with("https://graph.microsoft.us/"));
    }
}
