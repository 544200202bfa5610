//! The HTTPS client every tenant call goes through: its TLS roots, a client
//! span per request (never a token, a query or a body), and the [`Tenant`]
//! implementation over it. Graph requests and their retries are in `send`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    ClientScope, DeviceCode, EndpointProbe, ProvisioningAgent, PublishedResource, ServerTime,
    Tenant, TenantEndpoints, TenantError, Tokens,
};

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
    pub(super) http: reqwest::Client,
    pub(super) endpoints: TenantEndpoints,
    pub(super) retry: RetryPolicy,
}

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
pub(super) fn http_span(method: &reqwest::Method, url: &str) -> tracing::Span {
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
pub(super) fn record_response(
    span: &tracing::Span,
    response: &Result<reqwest::Response, reqwest::Error>,
) {
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

pub(super) fn transport(err: &reqwest::Error) -> TenantError {
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
        })
    }

    /// Any HTTP answer over TLS counts as reachable: the point is the
    /// network path (firewall, proxy, TLS inspection), not the resource.
    pub async fn probe_endpoints(&self) -> Vec<EndpointProbe> {
        let mut urls = vec![
            self.endpoints.authority.clone(),
            self.endpoints.graph.clone(),
        ];
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

    /// One GET of the sign-in endpoint (any answer will do: every HTTP
    /// answer carries `Date`), read against this host's clock halfway
    /// through the request. Not retried: a retry's answer would be as late.
    pub async fn server_time(&self) -> Result<ServerTime, TenantError> {
        let url = self.endpoints.authority.clone();
        let span = http_span(&reqwest::Method::GET, &url);
        let sent = SystemTime::now();
        let started = Instant::now();
        let response = self.http.get(&url).send().instrument(span.clone()).await;
        record_response(&span, &response);
        let response = response.map_err(|e| TenantError::Unavailable(error_chain(&e)))?;
        let local = sent + started.elapsed() / 2;
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .ok_or_else(|| {
                TenantError::Protocol(format!("{url} answered without a Date header"))
            })?;
        let server = date
            .to_str()
            .ok()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .ok_or_else(|| {
                TenantError::Protocol(format!("{url} answered with an unreadable Date: {date:?}"))
            })?;
        Ok(ServerTime { url, server, local })
    }
}

#[async_trait::async_trait]
impl Tenant for HttpTenant {
    fn tenant(&self) -> &str {
        &self.endpoints.tenant
    }

    async fn start_device_code(&self, client: &ClientScope) -> Result<DeviceCode, TenantError> {
        HttpTenant::start_device_code(self, client).await
    }

    async fn wait_for_tokens(
        &self,
        code: &DeviceCode,
        cancel: &CancellationToken,
    ) -> Result<Tokens, TenantError> {
        HttpTenant::wait_for_tokens(self, code, cancel).await
    }

    async fn refresh(
        &self,
        client: &ClientScope,
        refresh_token: &SecretString,
    ) -> Result<Tokens, TenantError> {
        HttpTenant::refresh(self, client, refresh_token).await
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

    async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError> {
        HttpTenant::password_writeback(self, tokens, agent_id).await
    }

    async fn probe_endpoints(&self) -> Vec<EndpointProbe> {
        HttpTenant::probe_endpoints(self).await
    }

    async fn server_time(&self) -> Result<ServerTime, TenantError> {
        HttpTenant::server_time(self).await
    }
}
