//! One Graph request and its retries. Graph's error envelope and status
//! codes follow <https://learn.microsoft.com/graph/errors>; 429 and 503 may
//! carry `Retry-After`, in seconds or as an HTTP-date
//! (<https://learn.microsoft.com/graph/throttling>, RFC 9110 §10.2.3).
//!
//! Which failures are retried depends on whether Graph may already have
//! acted: a 429 (throttled, not processed) and a connection that never
//! opened are safe for every request; a 5xx, a timeout or a connection lost
//! after sending are retried only for an idempotent request. A
//! non-idempotent one (instantiate, create job) ends `Unavailable` so that
//! the caller reads the tenant before trying again: Graph has no
//! idempotency key, and a blind retry could make a second application.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use secrecy::ExposeSecret;
use tracing::Instrument;

use super::http::{HttpTenant, http_span, record_response, transport};
use super::sync::SyncCall;
use super::{TenantError, Tokens};

/// Whether sending a request twice has the effect of sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idempotent {
    Yes,
    No,
}

/// One request to the tenant's Graph.
pub(super) struct Request<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// A JSON body, serialized once by the caller (who may check its size).
    /// Never logged: secrets travel here.
    pub body: Option<Bytes>,
    pub idempotent: Idempotent,
    /// The cloud sync call, to name its permission in a 403.
    pub call: Option<SyncCall>,
}

impl<'a> Request<'a> {
    /// An idempotent GET outside the cloud sync calls.
    pub fn get(url: &'a str) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            body: None,
            idempotent: Idempotent::Yes,
            call: None,
        }
    }
}

/// What one attempt left to do.
enum Attempt {
    Done(Result<String, TenantError>),
    /// Retry after `wait` (else the backoff; at most `max_wait`). `why`
    /// may quote Graph and is not logged; `status` is none without answer.
    Again {
        wait: Option<Duration>,
        why: String,
        status: Option<u16>,
    },
}

impl HttpTenant {
    /// Sends `request` under the retry policy; the answer's body on 2xx
    /// (empty for 201/204 without one).
    pub(super) async fn send(
        &self,
        tokens: &Tokens,
        request: Request<'_>,
    ) -> Result<String, TenantError> {
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            let span = http_span(&request.method, request.url);
            if attempt > 1 {
                span.record("http.request.resend_count", attempt - 1);
            }
            let (wait, why, status) = match self.attempt(tokens, &request, &span).await {
                Attempt::Done(result) => return result,
                Attempt::Again { wait, why, status } => (wait, why, status),
            };
            last = why;
            if attempt == self.retry.attempts {
                break;
            }
            let wait = wait.unwrap_or(backoff).min(self.retry.max_wait);
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
        Err(TenantError::Unavailable(format!(
            "{} {} still failing after {} attempts: {last}",
            request.method, request.url, self.retry.attempts
        )))
    }

    async fn attempt(
        &self,
        tokens: &Tokens,
        request: &Request<'_>,
        span: &tracing::Span,
    ) -> Attempt {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url)
            .bearer_auth(tokens.access.expose_secret());
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = builder.send().instrument(span.clone()).await;
        record_response(span, &response);
        let response = match response {
            Ok(r) => r,
            // Never connected (nothing was sent) or idempotent: go again.
            Err(e) if e.is_connect() || request.idempotent == Idempotent::Yes => {
                return Attempt::Again {
                    wait: None,
                    why: e.to_string(),
                    status: None,
                };
            }
            Err(e) => return Attempt::Done(Err(not_resent(request, &e.to_string()))),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return Attempt::Done(Err(transport(&e))),
        };
        let message = graph_message(&text);
        let again = |message: &str| Attempt::Again {
            wait: retry_after,
            why: format!("HTTP {status}: {message}"),
            status: Some(status),
        };
        let error = match status {
            200..=299 => return Attempt::Done(Ok(text)),
            400 => TenantError::Protocol(format!("HTTP 400: {message}")),
            401 => TenantError::Unauthorized(message),
            403 => TenantError::Forbidden(match request.call {
                Some(call) => call.forbidden(&message),
                None => message,
            }),
            404 => TenantError::NotFound(message),
            409 => TenantError::Conflict(message),
            // Throttled: Graph did not process the request.
            429 => return again(&message),
            500..=599 if request.idempotent == Idempotent::Yes => return again(&message),
            500..=599 => not_resent(request, &format!("HTTP {status}: {message}")),
            other => TenantError::Protocol(format!("HTTP {other}: {message}")),
        };
        Attempt::Done(Err(error))
    }
}

/// A non-idempotent request that may have been carried out.
fn not_resent(request: &Request<'_>, why: &str) -> TenantError {
    TenantError::Unavailable(format!(
        "{} {}: {why}; not sent again, as the tenant may have carried it out: read the tenant \
         before trying again",
        request.method, request.url
    ))
}

/// `Retry-After` as delay-seconds or an HTTP-date (a date in the past is
/// no wait).
fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `{"error":{"code":..., "message":...}}` → "code: message".
pub(super) fn graph_message(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn graph_errors_are_summarised() {
        assert_eq!(
            graph_message(r#"{"error":{"code":"Authorization_RequestDenied","message":"nope"}}"#),
            "Authorization_RequestDenied: nope"
        );
        assert_eq!(graph_message("plain"), "plain");
    }

    fn after(value: &str, now: SystemTime) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        retry_after(&headers, now)
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        // RFC 9110's example date, 784111777 s after the epoch.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(after("120", now), Some(Duration::from_secs(120)));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(after(date, now), Some(Duration::from_secs(7)));
        // The obsolete forms RFC 9110 asks recipients to accept.
        let rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
        assert_eq!(after(rfc850, now), Some(Duration::from_secs(7)));
        assert_eq!(
            after(date, now + Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
        assert_eq!(after("soon", now), None);
    }
}
