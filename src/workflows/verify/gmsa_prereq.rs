//! The gMSA's prerequisites, one group per domain: the Managed Service
//! Accounts container and the domain root's well-known reference to it
//! (read on one DC), and a usable KDS root key on every DC of the domain,
//! each DC read on its own (a key that has not replicated to a DC is
//! missing there, and gMSA password requests that DC serves fail).

use std::time::{Duration, UNIX_EPOCH};

use super::{Category, Check, DISCOVERY_REMEDY, Run, Status, check};
use crate::backends::directory::{BindCredential, DirectoryError, DirectorySession, Scope};
use crate::workflows::Error;
use crate::workflows::domain_controllers::{Connect, DcSession, Reader, naming_contexts};
use crate::workflows::operations::now_ms;
use crate::workflows::service_account::{
    KdsRootKey, default_msa_container, is_deleted_dn, msa_reference, msa_reference_value,
    read_kds_keys,
};

const MSA: &str = "directory.msa_container";
const KDS: &str = "directory.kds.effective";

/// Microsoft's troubleshooting page for the agent's "There is no such
/// object on the server" (the container, or its well-known reference,
/// missing).
const MSA_SOURCE: &str = "https://learn.microsoft.com/troubleshoot/entra/entra-id/ad-dmn-services/azure-ad-hybrid-sync-no-such-object-on-server";
/// Create the KDS root key: DCs wait up to 10 hours before they use a new
/// root key, so that every DC has it.
const KDS_SOURCE: &str = "https://learn.microsoft.com/windows-server/identity/ad-ds/manage/group-managed-service-accounts/group-managed-service-accounts/create-the-key-distribution-services-kds-root-key";

pub(super) async fn checks(run: &Run, domain: &str) -> Vec<Check> {
    use Category::Directory as D;
    let reader = match run.reader_for(domain).await {
        Ok(reader) => reader,
        Err(unread) => {
            return vec![unread.check(MSA, D, domain), unread.check(KDS, D, domain)];
        }
    };
    let credential = reader.credential();
    let (msa, kds) = tokio::join!(
        msa_container(run, domain, credential),
        kds_checks(run, domain, reader)
    );
    let mut out = vec![msa];
    out.extend(kds);
    out
}

/// What one DC shows of the Managed Service Accounts container.
struct MsaFacts {
    dc: String,
    domain_dn: String,
    /// The DN the domain root's well-known reference names, if any.
    reference: Option<String>,
    /// That DN, or the default container's when there is no reference.
    container: String,
    exists: bool,
}

async fn read_msa(run: &Run, domain: &str, credential: &BindCredential) -> Result<MsaFacts, Error> {
    let mut session = DcSession::open(&run.dcs, domain, credential, Connect::Quiet).await?;
    let (domain_dn, _, _) = naming_contexts(session.as_mut()).await?;
    let root = session
        .search(
            &domain_dn,
            Scope::Base,
            "(objectClass=*)",
            &["otherWellKnownObjects"],
        )
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let reference = msa_reference(&root);
    let container = reference
        .clone()
        .unwrap_or_else(|| default_msa_container(&domain_dn));
    let exists = !is_deleted_dn(&container) && object_exists(session.as_mut(), &container).await?;
    Ok(MsaFacts {
        dc: session.server().to_owned(),
        domain_dn,
        reference,
        container,
        exists,
    })
}

async fn object_exists(session: &mut dyn DirectorySession, dn: &str) -> Result<bool, Error> {
    match session
        .search(dn, Scope::Base, "(objectClass=*)", &["objectClass"])
        .await
    {
        Ok(found) => Ok(!found.is_empty()),
        Err(DirectoryError::NoSuchObject { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn msa_container(run: &Run, domain: &str, credential: &BindCredential) -> Check {
    let c = check(MSA, Category::Directory, Status::Pass, String::new())
        .subject(domain)
        .attr("source", MSA_SOURCE);
    let facts = match read_msa(run, domain, credential).await {
        Ok(f) => f,
        Err(e) => {
            return Check {
                status: Status::Fail,
                message: format!("cannot check: {e}"),
                ..c
            };
        }
    };
    let c = c
        .attr("dc", facts.dc.clone())
        .attr("dn", facts.container.clone())
        .attr("reference", facts.reference.clone().unwrap_or_default());
    let expected = msa_reference_value(&facts.domain_dn);
    let fix_reference = format!(
        "restore the reference: otherWellKnownObjects of {} must hold {expected} (Microsoft's \
         page asks you to open a case with the Windows Directory Services team); see {MSA_SOURCE}",
        facts.domain_dn
    );
    let fix_container = format!(
        "restore the Managed Service Accounts container (from the AD Recycle Bin, or recreate \
         it with adprep /domainprep) so that otherWellKnownObjects of {} holds {expected}; \
         see {MSA_SOURCE}",
        facts.domain_dn
    );
    let symptom = "creating the agent's gMSA fails with \"There is no such object on the server\"";
    let fail = |c: Check, message: String, remedy: &str| {
        Check {
            status: Status::Fail,
            message,
            ..c
        }
        .remedy(remedy)
    };
    match (&facts.reference, facts.exists) {
        (Some(dn), true) => Check {
            message: format!(
                "{dn} exists and the domain root's otherWellKnownObjects names it by the \
                 container's well-known GUID"
            ),
            ..c
        },
        (None, exists) => fail(
            c,
            format!(
                "the domain root's otherWellKnownObjects has no value for the Managed Service \
                 Accounts container's well-known GUID ({} {}): {symptom}",
                facts.container,
                if exists { "exists" } else { "does not exist" }
            ),
            if exists {
                &fix_reference
            } else {
                &fix_container
            },
        ),
        (Some(dn), false) if is_deleted_dn(dn) => fail(
            c,
            format!(
                "the domain root's well-known reference names a deleted container ({dn}): \
                 {symptom}"
            ),
            &fix_container,
        ),
        (Some(dn), false) => fail(
            c,
            format!(
                "the domain root's well-known reference names {dn}, which does not exist: {symptom}"
            ),
            &fix_container,
        ),
    }
}

async fn read_kds_on(
    run: &Run,
    domain: &str,
    dc: &str,
    credential: &BindCredential,
) -> Result<Vec<KdsRootKey>, Error> {
    let only = [dc.to_owned()];
    let mut session =
        DcSession::open_preferring(&run.dcs, domain, &only, credential, Connect::Quiet).await?;
    let (_, config_dn, _) = naming_contexts(session.as_mut()).await?;
    Ok(read_kds_keys(session.as_mut(), &config_dn).await?)
}

async fn kds_checks(run: &Run, domain: &str, reader: &Reader) -> Vec<Check> {
    let credential = reader.credential();
    let discovery = match run.dcs.discover_as(domain, Some(reader), true, None).await {
        Ok(d) => d,
        Err(e) => {
            return vec![
                check(
                    KDS,
                    Category::Directory,
                    Status::Fail,
                    format!("cannot list the DCs of {domain}: {e}"),
                )
                .subject(domain)
                .remedy(DISCOVERY_REMEDY),
            ];
        }
    };
    let hosts: Vec<String> = discovery.dcs.into_iter().map(|d| d.host).collect();
    let reads = hosts
        .iter()
        .map(|host| read_kds_on(run, domain, host, credential));
    let results = futures_util::future::join_all(reads).await;
    let held_elsewhere = results
        .iter()
        .any(|r| r.as_ref().is_ok_and(|keys| !keys.is_empty()));
    hosts
        .iter()
        .zip(results)
        .map(|(host, read)| kds_check(domain, host, read, held_elsewhere))
        .collect()
}

/// `ms` since 1970 as RFC 3339, to the second.
fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn kds_check(
    domain: &str,
    dc: &str,
    read: Result<Vec<KdsRootKey>, Error>,
    held_elsewhere: bool,
) -> Check {
    let c = check(KDS, Category::Directory, Status::Pass, String::new())
        .subject(dc)
        .attr("domain", domain)
        .attr("source", KDS_SOURCE);
    let keys = match read {
        Ok(k) => k,
        Err(e) => {
            return Check {
                status: Status::Skip,
                message: format!("cannot read {dc}'s KDS root keys: {e}"),
                ..c
            };
        }
    };
    let c = c.attr("keys", keys.len().to_string());
    if keys.is_empty() {
        let (message, remedy) = if held_elsewhere {
            (
                format!(
                    "{dc} holds no KDS root key, though other DCs of {domain} do: the key has \
                     not replicated to it, and gMSA password requests it serves fail"
                ),
                format!(
                    "let replication reach {dc} (repadmin /syncall; look for its replication \
                     errors); see {KDS_SOURCE}"
                ),
            )
        } else {
            (
                format!(
                    "{dc} holds no KDS root key (or this account cannot see them: Domain Admins \
                     and Enterprise Admins can): gMSAs cannot be created or used"
                ),
                format!(
                    "as an Enterprise Admin, run Add-KdsRootKey -EffectiveImmediately and wait \
                     up to 10 hours for every DC to use it (a single-DC lab: Add-KdsRootKey \
                     -EffectiveTime ((Get-Date).AddHours(-10))); see {KDS_SOURCE}"
                ),
            )
        };
        return Check {
            status: Status::Fail,
            message,
            ..c
        }
        .remedy(remedy);
    }
    let now = now_ms();
    let starts: Vec<i64> = keys.iter().filter_map(|k| k.use_start_ms).collect();
    if let Some(since) = starts.iter().filter(|s| **s <= now).max() {
        let since = rfc3339(*since);
        return Check {
            message: format!(
                "{dc} holds {} KDS root key(s); one is usable since {since}",
                keys.len()
            ),
            ..c
        }
        .attr("usable_since", since);
    }
    let Some(first) = starts.iter().min() else {
        return Check {
            status: Status::Warn,
            message: format!(
                "cannot read msKds-UseStartTime of {dc}'s {} KDS root key(s): a confidential \
                 attribute",
                keys.len()
            ),
            ..c
        }
        .remedy("verify with a Domain Admin's credential");
    };
    let wait_min = (first - now) / 60_000 + 1;
    let at = rfc3339(*first);
    let newest_made = keys.iter().filter_map(|k| k.create_ms).max();
    Check {
        status: Status::Warn,
        message: format!(
            "{dc} holds {} KDS root key(s), none usable yet: the first becomes usable at {at} \
             (in {}h{:02}m); until then gMSAs cannot be created or used",
            keys.len(),
            wait_min / 60,
            wait_min % 60
        ),
        ..c
    }
    .attr("usable_at", at.clone())
    .attr("created", newest_made.map(rfc3339).unwrap_or_default())
    .remedy(format!(
        "wait until {at}: DCs use a root key only from its msKds-UseStartTime on (up to 10 hours \
         after it is made, so that every DC has it); see {KDS_SOURCE}"
    ))
}
