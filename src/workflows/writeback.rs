//! WritebackService: password writeback's two halves — the directory (the
//! PasswordWriteBack profile on each domain root, readiness checks) and the
//! tenant (the registered agent's writeback setting, which the agent's own
//! module sets: `tenant::agent_writeback`).

use std::sync::Arc;

use super::directory::DirectoryWorkflows;
use super::domain_controllers::{
    Connect, DcSession, DomainControllerWorkflows, NO_READER, Reader, naming_contexts,
};
use super::operations::{Job, OperationSpec, Outcome, RequestFingerprint, job};
use super::permissions::{
    self, GrantMode, Profile, ProfileStatus, Resolved, grant_in_session, status_of,
};
use super::service_account::load_account;
use super::tenant::TenantWorkflows;
use super::validate::{self, dns_name};
use super::{Caller, Error, FieldViolation, Operations};
use crate::backends::directory::{BindCredential, DirectorySession, Scope};
use crate::backends::host::Host;
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::workflows::PreconditionReason;
use provd_sd::{SE_DACL_PROTECTED, SecurityDescriptor, Sid};

/// The first agent version that supports password writeback.
pub const MIN_AGENT_VERSION: &str = "1.1.977.0";
pub const DEFAULT_USER_SAMPLE: usize = 1000;
pub const MAX_USER_SAMPLE: usize = 10_000;

#[derive(Debug, Default)]
pub struct SetWritebackRequest {
    pub enable: bool,
    pub domains: Vec<String>,
    pub credential: Option<BindCredential>,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantState {
    Enabled,
    Disabled,
    Unknown(String),
}

#[derive(Debug, Clone, Default)]
pub struct DomainReadiness {
    pub domain: String,
    pub read_error: Option<String>,
    pub status: Option<ProfileStatus>,
    pub sampled: usize,
    pub blocked: usize,
    pub blocked_samples: Vec<String>,
    /// minPwdAge in seconds (0: none).
    pub min_password_age_secs: u64,
    pub observe_time_ms: i64,
}

impl DomainReadiness {
    pub fn ready(&self) -> bool {
        self.read_error.is_none() && self.status.as_ref().is_some_and(|s| s.present)
    }
}

#[derive(Debug, Clone)]
pub struct WritebackReport {
    pub tenant: TenantState,
    pub domains: Vec<DomainReadiness>,
    pub agent_version: Option<String>,
    pub consistent: bool,
    pub message: String,
}

pub struct WritebackWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    dcs: Arc<DomainControllerWorkflows>,
    host: Arc<dyn Host>,
    tenant: Arc<TenantWorkflows>,
}

/// Dotted version comparison ("1.1.977.0" ≥ "1.1.96.0").
pub fn version_at_least(version: &str, minimum: &str) -> bool {
    let parse = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(version) >= parse(minimum)
}

impl WritebackWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        dcs: Arc<DomainControllerWorkflows>,
        host: Arc<dyn Host>,
        tenant: Arc<TenantWorkflows>,
    ) -> Self {
        Self {
            operations,
            store,
            dcs,
            host,
            tenant,
        }
    }

    /// The tenant's flag for this machine's agent, or why it is unknown.
    pub async fn tenant_state(&self) -> TenantState {
        let registration = match self.tenant.registration().await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return TenantState::Unknown(
                    "this machine's agent is not registered (run Install)".into(),
                );
            }
            Err(e) => return TenantState::Unknown(e.to_string()),
        };
        let tokens = match self.tenant.tokens().await {
            Ok(Some(t)) => t,
            Ok(None) => {
                return TenantState::Unknown(
                    "provd holds no tenant session (sign in with SignIn)".into(),
                );
            }
            Err(e) => return TenantState::Unknown(e.to_string()),
        };
        match self
            .tenant
            .tenant()
            .password_writeback(&tokens, &registration.agent_id)
            .await
        {
            Ok(true) => TenantState::Enabled,
            Ok(false) => TenantState::Disabled,
            Err(e) => TenantState::Unknown(Error::from(e).to_string()),
        }
    }

    async fn added_domains(&self) -> Result<Vec<String>, Error> {
        DirectoryWorkflows::list_domains(&self.store).await
    }

    async fn agent_version(&self) -> Option<String> {
        self.host.availability().ok()?;
        self.host.agent_status().await.ok()?.installed_version
    }

    pub async fn set(
        &self,
        caller: &Caller,
        request: SetWritebackRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_set(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_set(
        &self,
        caller: &Caller,
        mut request: SetWritebackRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut v = Vec::new();
        let domains =
            validate::dns_names("domains", &request.domains, validate::MAX_WRITEBACK_DOMAINS)
                .map_err(|e| v.push(e))
                .ok();
        v.extend(validate::credential(
            "credential",
            request.credential.as_ref(),
        ));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(mut domains), Some(credential)) = (domains, request.credential.take()) else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        // The domains as asked: an empty list means "every added domain".
        let fingerprint = RequestFingerprint::new()
            .flag("enable", request.enable)
            .list("domains", &domains);
        let retried = self.operations.is_retry(request_id.as_deref()).await?;
        let added = self.added_domains().await?;
        if !retried {
            if let Some(missing) = domains.iter().find(|d| !added.contains(d)) {
                return Err(Error::NotFound(format!(
                    "directory {missing} (add it with AddDirectory)"
                )));
            }
            if domains.is_empty() && added.is_empty() {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::NoDirectory,
                    subject: "domains".into(),
                    message: "no domain is added: add one with AddDirectory first".into(),
                });
            }
        }
        if domains.is_empty() {
            domains = added;
        }
        let account = load_account(&self.store).await?;
        let trustee = match account {
            Some(a) => a.sid,
            None if retried => String::new(),
            None => {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::NoServiceAccount,
                    subject: "service_account".into(),
                    message:
                        "no service account is recorded: run CreateGmsa or UseCustomGmsa first"
                            .into(),
                });
            }
        };
        let registration = match self.tenant.registration().await? {
            Some(r) => r,
            None if retried => Default::default(),
            None => {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::NotRegistered,
                    subject: "agent".into(),
                    message: "this machine's agent is not registered with the tenant: run \
                              Install first"
                        .into(),
                });
            }
        };
        let tenant = self.tenant.clone();
        let enable = request.enable;
        let spec = OperationSpec {
            kind: OperationKind::SetPasswordWriteback,
            request_id,
            fingerprint,
            description: format!(
                "{} password writeback for {}",
                if enable { "enable" } else { "disable" },
                domains.join(", ")
            ),
            initiator: caller.name.clone(),
        };
        let dcs = self.dcs.clone();
        let version = self.agent_version().await;
        Ok((
            spec,
            job(move |progress| async move {
                let (mut added, mut removed) = (0, 0);
                if enable {
                    progress
                        .step_started("check-agent", "checking the agent version")
                        .await?;
                    match &version {
                        Some(v) if !version_at_least(v, MIN_AGENT_VERSION) => {
                            return Err(Error::FailedPrecondition {
                                reason: PreconditionReason::AgentTooOld,
                                subject: "agent".into(),
                                message: format!(
                                    "the agent is {v}; password writeback needs {MIN_AGENT_VERSION} or later: upgrade it with Install"
                                ),
                            });
                        }
                        Some(v) => {
                            progress
                                .step_succeeded("check-agent", format!("agent {v}"))
                                .await?
                        }
                        None => {
                            progress
                                .warning(
                                    "check-agent",
                                    "the installed agent's version cannot be read on this host",
                                )
                                .await?
                        }
                    }
                }
                // Signed in before anything changes, so a failed sign-in
                // leaves the directory as it was.
                let tokens = tenant.ensure_signed_in(&progress).await?;
                if !enable {
                    tenant
                        .set_agent_writeback(&progress, &tokens, &registration.agent_id, false)
                        .await?;
                }
                for domain in &domains {
                    let step = format!("{} {domain}", if enable { "grant" } else { "revoke" });
                    progress
                        .step_started(&step, format!("PasswordWriteBack on {domain}"))
                        .await?;
                    let mut session = DcSession::open(
                        &dcs,
                        domain,
                        &credential,
                        Connect::Within(&progress, &step),
                    )
                    .await?;
                    let mode = if enable {
                        GrantMode::Apply
                    } else {
                        GrantMode::Remove
                    };
                    let totals = grant_in_session(
                        &progress,
                        session.as_mut(),
                        &trustee,
                        &[Profile::PasswordWriteBack],
                        &[],
                        mode,
                    )
                    .await?;
                    let readiness = if enable {
                        Some(readiness(session.as_mut(), domain, &trustee, 200).await)
                    } else {
                        None
                    };
                    drop(session);
                    added += totals.added;
                    removed += totals.removed;
                    if let Some(Ok(r)) = readiness {
                        if r.blocked > 0 {
                            progress.warning(&step, format!("{} of {} sampled users have inheritance disabled (e.g. {}); writeback cannot reset their passwords", r.blocked, r.sampled, r.blocked_samples.first().cloned().unwrap_or_default())).await?;
                        }
                        if r.min_password_age_secs > 0 {
                            progress.warning(&step, format!("minPwdAge is {} s: a password cannot be changed again before that", r.min_password_age_secs)).await?;
                        }
                    }
                    let summary = format!("{} added, {} removed", totals.added, totals.removed);
                    if totals.added + totals.removed == 0 {
                        progress.step_skipped(&step, summary).await?;
                    } else {
                        progress.step_succeeded(&step, summary).await?;
                    }
                }
                if enable {
                    tenant
                        .set_agent_writeback(&progress, &tokens, &registration.agent_id, true)
                        .await?;
                }
                drop(credential);
                Ok(Outcome::from([
                    ("enabled".into(), enable.to_string()),
                    ("domains".into(), domains.join(",")),
                    ("added".into(), added.to_string()),
                    ("removed".into(), removed.to_string()),
                    ("agent_id".into(), registration.agent_id.clone()),
                ]))
            }),
        ))
    }

    /// GetPasswordWriteback: the directories read as the request's
    /// credential, else as this host (see [`Reader`]).
    pub async fn get(
        &self,
        domain: &str,
        credential: Option<BindCredential>,
        sample: u32,
    ) -> Result<WritebackReport, Error> {
        let reader = self.dcs.reader(credential);
        self.get_as(domain, reader.as_ref(), sample).await
    }

    /// The report with the directories read as `reader` (Verify resolves
    /// its own once per run).
    pub(crate) async fn get_as(
        &self,
        domain: &str,
        reader: Option<&Reader>,
        sample: u32,
    ) -> Result<WritebackReport, Error> {
        let mut v = Vec::new();
        let domain = if domain.is_empty() {
            None
        } else {
            dns_name("domain", domain).map_err(|e| v.push(e)).ok()
        };
        let sample = match usize::try_from(sample).unwrap_or(usize::MAX) {
            0 => DEFAULT_USER_SAMPLE,
            n if n > MAX_USER_SAMPLE => {
                v.push(FieldViolation::new(
                    "user_sample_size",
                    format!("must be at most {MAX_USER_SAMPLE}"),
                ));
                0
            }
            n => n,
        };
        if let Some(Reader::Request(credential)) = reader {
            v.extend(validate::credential("credential", Some(credential)));
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let added = self.added_domains().await?;
        let domains = match domain {
            Some(d) if !added.contains(&d) => {
                return Err(Error::NotFound(format!("directory {d}")));
            }
            Some(d) => vec![d],
            None => added,
        };
        let account = load_account(&self.store).await?;
        let mut reports = Vec::new();
        for d in &domains {
            let report = match (reader, &account) {
                (None, _) => DomainReadiness {
                    domain: d.clone(),
                    read_error: Some(NO_READER.into()),
                    ..Default::default()
                },
                (_, None) => DomainReadiness {
                    domain: d.clone(),
                    read_error: Some("no service account is recorded".into()),
                    ..Default::default()
                },
                (Some(reader), Some(a)) => {
                    match DcSession::open(&self.dcs, d, reader.credential(), Connect::Quiet).await {
                        Err(e) => DomainReadiness {
                            domain: d.clone(),
                            read_error: Some(reader.unread(e)?),
                            ..Default::default()
                        },
                        Ok(mut s) => {
                            let r = readiness(s.as_mut(), d, &a.sid, sample).await;
                            drop(s);
                            match r {
                                Ok(r) => r,
                                Err(e) => DomainReadiness {
                                    domain: d.clone(),
                                    read_error: Some(reader.unread(e)?),
                                    ..Default::default()
                                },
                            }
                        }
                    }
                }
            };
            reports.push(report);
        }
        let tenant = self.tenant_state().await;
        let agent_version = self.agent_version().await;
        let (consistent, message) = consistency(&tenant, &reports);
        Ok(WritebackReport {
            tenant,
            domains: reports,
            agent_version,
            consistent,
            message,
        })
    }
}

/// Whether the tenant flag and the directory agree: on with every domain
/// ready, or off with no domain still granting the ACEs.
pub fn consistency(tenant: &TenantState, domains: &[DomainReadiness]) -> (bool, String) {
    let unread: Vec<&str> = domains
        .iter()
        .filter(|d| d.read_error.is_some())
        .map(|d| d.domain.as_str())
        .collect();
    match tenant {
        TenantState::Unknown(why) => (
            false,
            format!("not consistent: the tenant flag is unknown ({why})"),
        ),
        _ if !unread.is_empty() => (
            false,
            format!("not known: cannot read {}", unread.join(", ")),
        ),
        TenantState::Enabled => {
            let missing: Vec<&str> = domains
                .iter()
                .filter(|d| !d.ready())
                .map(|d| d.domain.as_str())
                .collect();
            if missing.is_empty() {
                (
                    true,
                    "on in the tenant, and every domain grants the ACEs".into(),
                )
            } else {
                (
                    false,
                    format!(
                        "on in the tenant, but the ACEs are missing on {}",
                        missing.join(", ")
                    ),
                )
            }
        }
        TenantState::Disabled => {
            let left: Vec<&str> = domains
                .iter()
                .filter(|d| d.ready())
                .map(|d| d.domain.as_str())
                .collect();
            if left.is_empty() {
                (
                    true,
                    "off in the tenant, and no domain grants the ACEs".into(),
                )
            } else {
                (
                    false,
                    format!(
                        "off in the tenant, but {} still grant the ACEs",
                        left.join(", ")
                    ),
                )
            }
        }
    }
}

/// One domain's readiness, read on a bound session.
async fn readiness(
    session: &mut dyn DirectorySession,
    domain: &str,
    trustee: &str,
    sample: usize,
) -> Result<DomainReadiness, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    let sid: Sid = trustee
        .parse()
        .map_err(|e| Error::internal(format!("trustee {trustee}"), e))?;
    let resolved = Resolved::resolve(session, &schema_dn, &config_dn).await?;
    let dacl = permissions::read_dacl(session, &domain_dn)
        .await?
        .dacl
        .unwrap_or_default();
    let status = status_of(
        Profile::PasswordWriteBack,
        &resolved,
        sid,
        &domain_dn,
        &dacl,
    );
    let min_age = session
        .search(&domain_dn, Scope::Base, "(objectClass=*)", &["minPwdAge"])
        .await?
        .into_iter()
        .next()
        .and_then(|e| e.first("minPwdAge").and_then(|v| v.parse::<i64>().ok()))
        .map_or(0, |v| v.unsigned_abs() / 10_000_000);
    let users = session
        .search(
            &domain_dn,
            Scope::Subtree,
            "(&(objectCategory=person)(objectClass=user))",
            &["nTSecurityDescriptor"],
        )
        .await?;
    let mut r = DomainReadiness {
        domain: domain.to_owned(),
        status: Some(status),
        min_password_age_secs: min_age,
        observe_time_ms: super::operations::now_ms(),
        ..Default::default()
    };
    for user in users.iter().take(sample) {
        r.sampled += 1;
        let protected = user
            .first_bin("nTSecurityDescriptor")
            .and_then(|b| SecurityDescriptor::parse(b).ok())
            .is_some_and(|sd| sd.control & SE_DACL_PROTECTED != 0);
        if protected {
            r.blocked += 1;
            if r.blocked_samples.len() < 20 {
                r.blocked_samples.push(user.dn.clone());
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_at_least("1.1.977.0", MIN_AGENT_VERSION));
        assert!(version_at_least("1.2.0.0", MIN_AGENT_VERSION));
        assert!(!version_at_least("1.1.96.0", MIN_AGENT_VERSION));
    }
}
