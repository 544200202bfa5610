//! What provd remembers of a configuration it manages: which service
//! principal it is, and a salted digest of the secrets it last set (Graph
//! may answer a secrets read with `*` for every value, and then the digest
//! is how a second apply knows nothing changed). Never a secret's value.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backends::store::Store;
use crate::model::SyncSecrets;
use crate::workflows::Error;
use crate::workflows::operations::{blocking, read};

const NAMESPACE: &str = "cloud_sync";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncRecord {
    pub service_principal_id: String,
    pub app_id: String,
    /// Hex SHA-256 of `salt ‖ the secrets' parts`.
    pub secrets_digest: String,
    /// Hex, 16 random bytes.
    pub salt: String,
    pub updated_at_ms: i64,
}

impl SyncRecord {
    pub fn new(service_principal_id: String, app_id: String) -> Self {
        Self {
            service_principal_id,
            app_id,
            secrets_digest: String::new(),
            salt: hex::encode(uuid::Uuid::new_v4().as_bytes()),
            updated_at_ms: now_ms(),
        }
    }

    /// Whether `secrets` are the ones last set.
    pub fn secrets_match(&self, secrets: &SyncSecrets) -> bool {
        !self.secrets_digest.is_empty() && self.secrets_digest == self.digest(secrets)
    }

    pub fn remember(&mut self, secrets: &SyncSecrets) {
        self.secrets_digest = self.digest(secrets);
        self.updated_at_ms = now_ms();
    }

    fn digest(&self, secrets: &SyncSecrets) -> String {
        let mut h = Sha256::new();
        let mut frame = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        frame(self.salt.as_bytes());
        frame(secrets.domain.as_bytes());
        frame(&[u8::from(secrets.password_hash_sync)]);
        frame(
            secrets
                .notification_email
                .as_deref()
                .unwrap_or("")
                .as_bytes(),
        );
        frame(
            secrets
                .delete_threshold
                .map(|t| t.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        hex::encode(h.finalize())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn load(store: &Arc<dyn Store>, domain: &str) -> Result<Option<SyncRecord>, Error> {
    let key = domain.to_owned();
    match read(store, |s| s.get_config(NAMESPACE, &key))? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal("stored cloud sync record", e)),
    }
}

/// Writes the record, or deletes it (`None`: provd releases the configuration).
pub async fn save(
    store: &Arc<dyn Store>,
    domain: &str,
    record: Option<&SyncRecord>,
) -> Result<(), Error> {
    let key = domain.to_owned();
    let bytes = record
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| Error::internal("cloud sync record", e))?;
    blocking(store, move |s| {
        s.put_config(NAMESPACE, &key, bytes.as_deref())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(email: Option<&str>) -> SyncSecrets {
        SyncSecrets {
            domain: "lab.example.test".into(),
            password_hash_sync: true,
            notification_email: email.map(str::to_owned),
            delete_threshold: Some(500),
        }
    }

    #[test]
    fn the_digest_tells_secrets_apart_and_holds_no_value() {
        let mut record = SyncRecord::new("sp".into(), "app".into());
        assert!(!record.secrets_match(&secrets(None)));
        record.remember(&secrets(Some("ops@lab.example.test")));
        assert!(record.secrets_match(&secrets(Some("ops@lab.example.test"))));
        assert!(!record.secrets_match(&secrets(Some("other@lab.example.test"))));
        assert!(!record.secrets_match(&secrets(None)));
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("ops@"), "{json}");
        // Salted: the same secrets give another digest in another record.
        let mut other = SyncRecord::new("sp".into(), "app".into());
        other.remember(&secrets(Some("ops@lab.example.test")));
        assert_ne!(other.secrets_digest, record.secrets_digest);
    }
}
