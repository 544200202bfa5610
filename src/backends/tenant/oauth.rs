//! Sign-in with the OAuth 2.0 device authorization grant (RFC 8628):
//! device code, polling for the tokens, refresh — each for one client and
//! one resource scope, plus `openid profile offline_access` (an id_token
//! naming who signed in, and a refresh token). Shapes:
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>,
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::http::{HttpTenant, http_span, record_response, transport};
use super::{ClientScope, DeviceCode, TenantError, Tokens, id_token};

/// The OpenID Connect scopes added to every request: `openid` for the
/// id_token, `offline_access` for the refresh token.
const OIDC_SCOPES: &str = "openid profile offline_access";

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
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    suberror: String,
}

impl OAuthError {
    /// The tenant gives the client no token for the resource: AADSTS65001
    /// (no consent) or AADSTS65002 (a Microsoft client not preauthorized
    /// for a Microsoft resource), per
    /// <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>;
    /// `consent_required` as error or MSAL's suberror says the same.
    fn consent_required(&self) -> bool {
        self.error_codes.iter().any(|c| matches!(c, 65001 | 65002))
            || self.error == "consent_required"
            || self.suberror == "consent_required"
            || ["AADSTS65001", "AADSTS65002"]
                .iter()
                .any(|code| self.error_description.starts_with(code))
    }

    fn into_consent(self, client: &ClientScope) -> TenantError {
        TenantError::ConsentRequired {
            client_id: client.client_id.clone(),
            scope: client.scope.clone(),
            message: self.error_description,
        }
    }
}

/// `scope` plus the OpenID Connect scopes.
fn with_oidc(scope: &str) -> String {
    format!("{scope} {OIDC_SCOPES}")
}

impl HttpTenant {
    fn oauth_url(&self, leaf: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/{leaf}",
            self.endpoints.authority.trim_end_matches('/'),
            self.endpoints.tenant
        )
    }

    /// Starts a device-code sign-in for `client`: what to show the operator.
    pub async fn start_device_code(&self, client: &ClientScope) -> Result<DeviceCode, TenantError> {
        let url = self.oauth_url("devicecode");
        let span = http_span(&reqwest::Method::POST, &url);
        let scope = with_oidc(&client.scope);
        let response = self
            .http
            .post(&url)
            .form(&[
                ("client_id", client.client_id.as_str()),
                ("scope", scope.as_str()),
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
            client: client.clone(),
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
                    ("client_id", code.client.client_id.as_str()),
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
            match serde_json::from_str::<OAuthError>(&text) {
                Ok(e) if e.error == "authorization_pending" => {}
                Ok(e) if e.error == "slow_down" => interval += Duration::from_secs(5),
                Ok(e) if e.error == "expired_token" => return Err(TenantError::DeviceCodeExpired),
                Ok(e) if e.error == "access_denied" || e.error == "authorization_declined" => {
                    return Err(TenantError::AccessDenied);
                }
                Ok(e) if e.consent_required() => return Err(e.into_consent(&code.client)),
                _ => return Err(oauth_failure(status.as_u16(), &text)),
            }
        }
    }

    /// Exchanges `client`'s refresh token for tokens for `client.scope`
    /// (the answer may carry a new refresh token: keep the newest).
    pub async fn refresh(
        &self,
        client: &ClientScope,
        refresh_token: &SecretString,
    ) -> Result<Tokens, TenantError> {
        let url = self.oauth_url("token");
        let span = http_span(&reqwest::Method::POST, &url);
        let scope = with_oidc(&client.scope);
        let response = self
            .http
            .post(&url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client.client_id.as_str()),
                ("refresh_token", refresh_token.expose_secret()),
                ("scope", scope.as_str()),
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
            Ok(e) if e.consent_required() => Err(e.into_consent(client)),
            Ok(e) if e.error == "invalid_grant" => Err(TenantError::Unauthorized(format!(
                "the refresh token was refused: {}",
                e.error_description
            ))),
            _ => Err(oauth_failure(status.as_u16(), &text)),
        }
    }
}

fn tokens(text: &str) -> Result<Tokens, TenantError> {
    let body: TokenBody = serde_json::from_str(text)
        .map_err(|e| TenantError::Protocol(format!("token answer: {e}")))?;
    let (tenant_id, user_principal_name) = match &body.id_token {
        Some(token) => id_token::signed_in(token)?,
        None => (None, None),
    };
    Ok(Tokens {
        access: SecretString::from(body.access_token),
        refresh: body.refresh_token.map(SecretString::from),
        expires_at: Instant::now() + Duration::from_secs(body.expires_in),
        tenant_id,
        user_principal_name,
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
