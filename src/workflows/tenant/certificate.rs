//! The agent's registration certificate: the client certificate the
//! registration service issued when the agent's module registered it.
//!
//! Microsoft does not document where the provisioning agent keeps it. The
//! rule (`[agent_module] registration_certificate_store` and `_subject`)
//! defaults to what the connector framework it shares with the private
//! network connector does — `LocalMachine\My`, subject `CN=<agent id>` —
//! and every report says the location is configured, not documented.

use time::OffsetDateTime;

use super::{RegistrationRecord, TenantWorkflows};
use crate::backends::host::HostError;
use crate::pki::CertificateInfo;
use crate::workflows::Error;

/// Where to look, from `[agent_module]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRule {
    /// A LocalMachine system store, e.g. `My`.
    pub store: String,
    /// The subject with `{agent_id}` / `{machine_name}` to fill in.
    pub subject: String,
}

impl Default for CertificateRule {
    fn default() -> Self {
        Self {
            store: "My".into(),
            subject: "CN={agent_id}".into(),
        }
    }
}

impl CertificateRule {
    /// The subject this registration's certificate has.
    pub fn subject_for(&self, record: &RegistrationRecord) -> String {
        self.subject
            .replace("{agent_id}", &record.agent_id)
            .replace("{machine_name}", &record.machine_name)
    }

    /// `LocalMachine\My`, for messages.
    pub fn store_path(&self) -> String {
        format!("LocalMachine\\{}", self.store)
    }
}

/// One certificate found by the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCertificate {
    pub subject: String,
    pub issuer: String,
    /// SHA-1 of the DER, upper-case hex: Windows' thumbprint.
    pub thumbprint: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl FoundCertificate {
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.not_after <= now
    }
}

/// What the lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationCertificate {
    /// provd has no registration recorded: nothing to look for.
    NotRegistered,
    /// The store could not be read (no Windows host, access denied).
    Unreadable(String),
    /// No certificate of the store has the subject.
    NotFound { store: String, subject: String },
    /// The matching certificate that expires last.
    Found(FoundCertificate),
}

/// The certificate of `certificates` (DER) whose subject is `subject`
/// (case-insensitive) and that expires last. Unparsable entries of the
/// store are skipped: they are not the agent's.
pub fn find(certificates: &[Vec<u8>], subject: &str) -> Option<FoundCertificate> {
    certificates
        .iter()
        .filter_map(|der| {
            let info = CertificateInfo::from_der(der, "store certificate").ok()?;
            info.subject
                .eq_ignore_ascii_case(subject)
                .then(|| FoundCertificate {
                    subject: info.subject,
                    issuer: info.issuer,
                    thumbprint: thumbprint(der),
                    not_before: info.not_before,
                    not_after: info.not_after,
                })
        })
        .max_by_key(|c| c.not_after)
}

fn thumbprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    hex::encode_upper(digest.as_ref())
}

impl TenantWorkflows {
    /// This host's registration certificate by the configured rule.
    pub async fn registration_certificate(&self) -> Result<RegistrationCertificate, Error> {
        let Some(record) = self.registration().await? else {
            return Ok(RegistrationCertificate::NotRegistered);
        };
        let rule = &self.certificate_rule;
        let subject = rule.subject_for(&record);
        Ok(
            match self.host.local_machine_certificates(&rule.store).await {
                Err(HostError::Unavailable(reason)) | Err(HostError::Io(reason)) => {
                    RegistrationCertificate::Unreadable(reason)
                }
                Err(other) => RegistrationCertificate::Unreadable(other.to_string()),
                Ok(certificates) => match find(&certificates, &subject) {
                    Some(found) => RegistrationCertificate::Found(found),
                    None => RegistrationCertificate::NotFound {
                        store: rule.store_path(),
                        subject,
                    },
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, days: i64) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(400);
        params.not_after = now + time::Duration::days(days);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_subject_names_the_agent_and_the_latest_match_wins() {
        let rule = CertificateRule::default();
        let record = RegistrationRecord {
            agent_id: "0f3c".into(),
            machine_name: "VM".into(),
            ..Default::default()
        };
        let subject = rule.subject_for(&record);
        assert_eq!(subject, "CN=0f3c");
        let store = vec![
            cert("0f3c", -10),
            b"not a certificate".to_vec(),
            cert("0F3C", 90),
            cert("someone-else", 400),
        ];
        let found = find(&store, &subject).unwrap();
        let left = found.not_after - OffsetDateTime::now_utc();
        assert!(left > time::Duration::days(89), "{left}");
        assert_eq!(found.thumbprint.len(), 40);
        assert!(!found.expired_at(OffsetDateTime::now_utc()));
        assert!(find(&store, "CN=absent").is_none());
    }
}
