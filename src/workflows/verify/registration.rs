//! `agent.registration_certificate`: the client certificate the agent got
//! when its module registered it — PASS, WARN within 30 days of notAfter,
//! FAIL once expired, with RepairAgent as the remedy. Microsoft does not
//! document where the provisioning agent keeps it, so the location is
//! provd's configuration (`[agent_module] registration_certificate_*`,
//! defaulting to the connector framework's `LocalMachine\My`,
//! `CN=<agent id>`); a certificate not found there is a WARN saying so,
//! never a FAIL. Credential-free: the drift schedule runs it too.

use time::OffsetDateTime;

use super::{Category, Check, Run, Status, check};
use crate::pki::rfc3339;
use crate::workflows::tenant::{RegistrationCertificate, describe_certificate};

pub(super) const ID: &str = "agent.registration_certificate";

const WARN_WITHIN: time::Duration = time::Duration::days(30);

const REPAIR: &str = "RepairAgent (`provctl agent repair`) registers the agent again through \
                      its module, which issues a new certificate";

pub(super) async fn checks(run: &Run, now: OffsetDateTime) -> Vec<Check> {
    use Category::Host as H;
    if let Err(reason) = run.host.availability() {
        return vec![check(
            ID,
            H,
            Status::Skip,
            format!("the certificate store cannot be read here: {reason}"),
        )];
    }
    let lookup = match run.tenant.registration_certificate().await {
        Ok(lookup) => lookup,
        Err(e) => return vec![check(ID, H, Status::Fail, e.to_string())],
    };
    vec![judge(&lookup, now)]
}

fn judge(lookup: &RegistrationCertificate, now: OffsetDateTime) -> Check {
    use Category::Host as H;
    let found = match lookup {
        RegistrationCertificate::NotRegistered => {
            return check(ID, H, Status::Skip, describe_certificate(lookup))
                .remedy("Install registers the agent (`provctl agent install`)");
        }
        RegistrationCertificate::Unreadable(_) => {
            return check(ID, H, Status::Warn, describe_certificate(lookup));
        }
        RegistrationCertificate::NotFound { store, subject } => {
            return check(ID, H, Status::Warn, describe_certificate(lookup))
                .attr("store", store.clone())
                .attr("subject", subject.clone())
                .remedy(
                    "find the agent's certificate (certlm.msc) and set [agent_module] \
                     registration_certificate_store and registration_certificate_subject to \
                     its store and subject",
                );
        }
        RegistrationCertificate::Found(found) => found,
    };
    let left = found.not_after - now;
    let until = rfc3339(found.not_after);
    let (status, message) = if left <= time::Duration::ZERO {
        (
            Status::Fail,
            format!(
                "the agent's registration certificate {} expired at {until}: the agent cannot \
                 authenticate to the tenant",
                found.subject
            ),
        )
    } else if left < WARN_WITHIN {
        (
            Status::Warn,
            format!(
                "the agent's registration certificate {} expires in {} days, at {until}",
                found.subject,
                left.whole_days()
            ),
        )
    } else {
        (
            Status::Pass,
            format!(
                "the agent's registration certificate {} is valid until {until}",
                found.subject
            ),
        )
    };
    let out = check(ID, H, status, message)
        .subject(found.subject.clone())
        .attr("thumbprint", found.thumbprint.clone())
        .attr("not_after", until)
        .attr("issuer", found.issuer.clone())
        .attr(
            "location",
            "configured ([agent_module]); undocumented by Microsoft",
        );
    if status == Status::Pass {
        out
    } else {
        out.remedy(REPAIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::tenant::FoundCertificate;

    fn found(days: i64) -> RegistrationCertificate {
        let now = OffsetDateTime::now_utc();
        RegistrationCertificate::Found(FoundCertificate {
            subject: "CN=agent".into(),
            issuer: "CN=ca".into(),
            thumbprint: "AB".repeat(20),
            not_before: now - time::Duration::days(100),
            not_after: now + time::Duration::days(days),
        })
    }

    #[test]
    fn expiry_is_pass_warn_or_fail_and_only_the_last_two_name_repair() {
        let now = OffsetDateTime::now_utc();
        for (days, status) in [(90, Status::Pass), (10, Status::Warn), (-1, Status::Fail)] {
            let c = judge(&found(days), now);
            assert_eq!(c.status, status, "{days}: {c:?}");
            assert_eq!(c.remedy.contains("RepairAgent"), status != Status::Pass);
            assert_eq!(c.attributes["thumbprint"].len(), 40);
        }
        let missing = judge(
            &RegistrationCertificate::NotFound {
                store: "LocalMachine\\My".into(),
                subject: "CN=x".into(),
            },
            now,
        );
        assert_eq!(missing.status, Status::Warn);
        assert!(missing.message.contains("does not document"), "{missing:?}");
        assert_eq!(
            judge(&RegistrationCertificate::NotRegistered, now).status,
            Status::Skip
        );
    }
}
