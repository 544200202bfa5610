//! The configuration's secrets: `GET` and `PUT
//! /servicePrincipals/{id}/synchronization/secrets` `{"value":[{key,value}…]}`
//! (<https://learn.microsoft.com/graph/api/synchronization-serviceprincipal-put-synchronization?view=graph-rest-beta>),
//! with the three keys and JSON-in-a-string values of the how-to
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>,
//! "Update targeted domain", "Accidental deletes").
//!
//! A PUT replaces every secret ("we don't support PATCH requests for
//! secrets"): all three keys always go together, in [`SECRET_KEYS`] order,
//! each value compact JSON in the how-to's field order, so equal settings
//! give equal bytes (the workflows compare or digest them). Values are
//! never logged, and no error carries one: Graph's messages are redacted.

use serde::{Deserialize, Serialize};

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::SyncCall;
use super::call::{json_body, segment};
use crate::model::{JobTemplate, SECRET_KEYS, SecretsRead, SyncSecrets};

/// `DeleteThresholdValue` sent while prevention is off: Microsoft's
/// default, what the portal would show if someone turns it on [I].
const THRESHOLD_WHEN_OFF: u32 = 500;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainValue {
    domain: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppKeyValue {
    app_key_scenario: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct NotificationValue {
    enabled: bool,
    recipients: String,
    delete_threshold_enabled: bool,
    delete_threshold_value: u32,
}

#[derive(Serialize, Deserialize)]
struct Pair {
    key: String,
    value: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Pairs {
    value: Vec<Pair>,
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings, bools and numbers always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

/// The values of `Domain`, `AppKey` and `SyncNotificationSettings`, in
/// [`SECRET_KEYS`] order, as canonical compact JSON.
pub fn canonical_secret_values(secrets: &SyncSecrets) -> [String; 3] {
    let scenario = match secrets.password_hash_sync {
        true => JobTemplate::PasswordHash,
        false => JobTemplate::Provisioning,
    };
    [
        to_json(&DomainValue {
            domain: secrets.domain.clone(),
        }),
        to_json(&AppKeyValue {
            app_key_scenario: scenario.id().to_owned(),
        }),
        to_json(&NotificationValue {
            enabled: secrets.notification_email.is_some(),
            recipients: secrets.notification_email.clone().unwrap_or_default(),
            delete_threshold_enabled: secrets.delete_threshold.is_some(),
            delete_threshold_value: secrets.delete_threshold.unwrap_or(THRESHOLD_WHEN_OFF),
        }),
    ]
}

/// The three values read back, when every one is there in the documented
/// shape (a masked `"*"` is not).
fn parse_values(pairs: &[Pair]) -> Option<SyncSecrets> {
    let value = |key: &str| {
        let pair = pairs.iter().find(|p| p.key.eq_ignore_ascii_case(key))?;
        pair.value.as_deref()
    };
    let [domain, app_key, notify] = SECRET_KEYS;
    let domain: DomainValue = serde_json::from_str(value(domain)?).ok()?;
    let app_key: AppKeyValue = serde_json::from_str(value(app_key)?).ok()?;
    let notify: NotificationValue = serde_json::from_str(value(notify)?).ok()?;
    Some(SyncSecrets {
        domain: domain.domain,
        password_hash_sync: JobTemplate::from_id(&app_key.app_key_scenario)?
            == JobTemplate::PasswordHash,
        notification_email: (notify.enabled && !notify.recipients.is_empty())
            .then_some(notify.recipients),
        delete_threshold: notify
            .delete_threshold_enabled
            .then_some(notify.delete_threshold_value),
    })
}

fn parse_read(text: &str) -> Result<SecretsRead, TenantError> {
    // No serde detail in the error: it may quote a value.
    let pairs: Pairs = serde_json::from_str(text).map_err(|_| {
        TenantError::Protocol(format!(
            "{}: not the documented {{\"value\":[{{key, value}}]}}",
            SyncCall::ReadSecrets.request()
        ))
    })?;
    Ok(SecretsRead {
        keys: pairs.value.iter().map(|p| p.key.clone()).collect(),
        values: parse_values(&pairs.value),
    })
}

/// `err` with every occurrence of a secret (as sent, and as escaped inside
/// JSON) replaced: Graph's error texts may quote the request.
fn redact(err: TenantError, values: &[String]) -> TenantError {
    let scrub = |mut text: String| {
        for value in values.iter().filter(|v| !v.is_empty()) {
            let escaped = to_json(value);
            let escaped = escaped.trim_matches('"');
            text = text.replace(value, "<secret>").replace(escaped, "<secret>");
        }
        text
    };
    match err {
        TenantError::Config(m) => TenantError::Config(scrub(m)),
        TenantError::Unavailable(m) => TenantError::Unavailable(scrub(m)),
        TenantError::Unauthorized(m) => TenantError::Unauthorized(scrub(m)),
        TenantError::Forbidden(m) => TenantError::Forbidden(scrub(m)),
        TenantError::NotFound(m) => TenantError::NotFound(scrub(m)),
        TenantError::Conflict(m) => TenantError::Conflict(scrub(m)),
        TenantError::Protocol(m) => TenantError::Protocol(scrub(m)),
        other => other,
    }
}

impl HttpTenant {
    fn secrets_url(&self, sp: &str) -> String {
        self.beta(&format!(
            "/servicePrincipals/{}/synchronization/secrets",
            segment(sp)
        ))
    }

    pub async fn secrets(&self, tokens: &Tokens, sp: &str) -> Result<SecretsRead, TenantError> {
        let url = self.secrets_url(sp);
        let text = self
            .sync_send(tokens, SyncCall::ReadSecrets, &url, None)
            .await?;
        parse_read(&text)
    }

    /// One PUT with all three keys (Graph removes keys left out).
    pub async fn put_secrets(
        &self,
        tokens: &Tokens,
        sp: &str,
        secrets: &SyncSecrets,
    ) -> Result<(), TenantError> {
        let values = canonical_secret_values(secrets);
        let body = json_body(&Pairs {
            value: SECRET_KEYS
                .iter()
                .zip(&values)
                .map(|(key, value)| Pair {
                    key: (*key).to_owned(),
                    value: Some(value.clone()),
                })
                .collect(),
        });
        let mut needles = values.to_vec();
        needles.extend(secrets.notification_email.clone());
        let url = self.secrets_url(sp);
        self.sync_send(tokens, SyncCall::PutSecrets, &url, Some(body))
            .await
            .map(drop)
            .map_err(|e| redact(e, &needles))
    }
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
