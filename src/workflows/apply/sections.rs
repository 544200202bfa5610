//! What differs, section by section: the code PlanConfiguration runs, and
//! apply runs again inside each step so it changes exactly what it listed.

use std::collections::BTreeSet;

use tokio_util::sync::CancellationToken;

use super::ApplyWorkflows;
use super::document::{AccountChoice, AgentSpec, DomainSpec};
use crate::backends::directory::BindCredential;
use crate::backends::host::{AGENT_SERVICES, ServiceState};
use crate::workflows::Error;
use crate::workflows::directory::DirectoryWorkflows;
use crate::workflows::permissions::Profile;
use crate::workflows::service_account::{self, Origin};
use crate::workflows::writeback::TenantState;

/// Users sampled when planning writeback (only presence matters here).
const WRITEBACK_PLAN_SAMPLE: u32 = 1;

/// One change apply would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub step: String,
    pub action: &'static str,
    pub detail: String,
}

fn change(step: &str, action: &'static str, detail: impl Into<String>) -> Change {
    Change {
        step: step.to_owned(),
        action,
        detail: detail.into(),
    }
}

impl ApplyWorkflows {
    /// `cancel`: the operation's token when applying (Plan has none).
    pub(super) async fn agent_changes(
        &self,
        spec: &AgentSpec,
        cancel: Option<&CancellationToken>,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "agent";
        let mut out = Vec::new();
        let wanted = self.agent.package_version_of(&spec.source, cancel).await?;
        let status = match self.host.availability() {
            Ok(()) => self
                .host
                .agent_status()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?,
            Err(reason) => {
                out.push(change(
                    STEP,
                    "install",
                    format!(
                        "package from {} (this host cannot: {reason})",
                        crate::workflows::package::shown_source(&spec.source)
                    ),
                ));
                return Ok(out);
            }
        };
        let installed = status.installed_version.clone();
        let up_to_date = match (&installed, &wanted) {
            (Some(have), Some(want)) => {
                crate::backends::host::installer::version_cmp(have, want).is_ge()
            }
            // An .exe does not say its version before it runs: installed is
            // taken as good (Install would run it; apply does not).
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !up_to_date {
            out.push(change(
                STEP,
                "install",
                format!(
                    "package {} (installed: {})",
                    wanted.as_deref().unwrap_or("of unknown version"),
                    installed.as_deref().unwrap_or("none")
                ),
            ));
        }
        if !spec.skip_registration && !self.tenant.connected_on_host().await? {
            out.push(change(
                STEP,
                "register",
                "sign in by device code and register this machine's agent through its module",
            ));
        }
        let stopped: Vec<&str> = status
            .services
            .iter()
            .filter(|s| s.state != ServiceState::Running)
            .map(|s| s.name.as_str())
            .collect();
        if up_to_date && !stopped.is_empty() {
            out.push(change(STEP, "start", stopped.join(", ")));
        }
        Ok(out)
    }

    pub(super) async fn domain_changes(&self, d: &DomainSpec) -> Result<Vec<Change>, Error> {
        let step = format!("domain {}", d.domain);
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        if !added.contains(&d.domain) {
            let detail = if d.preferred.is_empty() {
                d.domain.clone()
            } else {
                format!("{} preferring {}", d.domain, d.preferred.join(", "))
            };
            return Ok(vec![change(&step, "add", detail)]);
        }
        let stored = self.dcs.priority(&d.domain).await?;
        if !d.preferred.is_empty() && stored.dcs != d.preferred {
            return Ok(vec![change(
                &step,
                "set-priority",
                format!(
                    "{} (now: {})",
                    d.preferred.join(", "),
                    if stored.dcs.is_empty() {
                        "DNS order".to_owned()
                    } else {
                        stored.dcs.join(", ")
                    }
                ),
            )]);
        }
        Ok(Vec::new())
    }

    pub(super) async fn account_changes(
        &self,
        domain: &str,
        choice: &AccountChoice,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "service-account";
        let recorded = service_account::load_account(&self.store).await?;
        let same_sam = |record: &service_account::AccountRecord, name: &str| {
            let want = if name.is_empty() {
                service_account::DEFAULT_GMSA
            } else {
                name
            };
            record
                .sam_account_name
                .trim_end_matches('$')
                .eq_ignore_ascii_case(want.trim_end_matches('$'))
                || record.distinguished_name.eq_ignore_ascii_case(name)
        };
        let record = match (&recorded, choice) {
            (
                Some(r),
                AccountChoice::Create {
                    name, principals, ..
                },
            ) if r.domain == domain && r.origin == Origin::Created && same_sam(r, name) => {
                let have: BTreeSet<String> = r
                    .principals
                    .iter()
                    .map(|p| p.sam_account_name.to_ascii_uppercase())
                    .collect();
                let want: BTreeSet<String> =
                    principals.iter().map(|p| p.to_ascii_uppercase()).collect();
                if have != want {
                    let effect = retrieval_effect(&self.host.machine_name(), &have, &want);
                    return Ok(vec![change(
                        STEP,
                        "update-principals",
                        format!(
                            "{}: {} (now: {}){effect}",
                            r.sam_account_name,
                            want.into_iter().collect::<Vec<_>>().join(", "),
                            have.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    )]);
                }
                r
            }
            (Some(r), AccountChoice::Custom { name, .. })
                if r.domain == domain && r.origin == Origin::Custom && same_sam(r, name) =>
            {
                r
            }
            (_, AccountChoice::Create { name, .. }) => {
                let name = if name.is_empty() {
                    service_account::DEFAULT_GMSA
                } else {
                    name
                };
                return Ok(vec![change(
                    STEP,
                    "create",
                    format!(
                        "gMSA {name} in {domain} (recorded: {})",
                        describe(&recorded)
                    ),
                )]);
            }
            (_, AccountChoice::Custom { name, .. }) => {
                return Ok(vec![change(
                    STEP,
                    "use-custom",
                    format!(
                        "gMSA {name} of {domain} (recorded: {})",
                        describe(&recorded)
                    ),
                )]);
            }
        };
        // The account is right; is the agent service logging on as it?
        if self.host.availability().is_ok() {
            let service = self
                .host
                .service_status(AGENT_SERVICES[0].0)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            let logon = format!("{}\\{}", record.netbios, record.sam_account_name);
            if service.state != ServiceState::NotInstalled
                && !service.account.eq_ignore_ascii_case(&logon)
            {
                return Ok(vec![change(
                    STEP,
                    "set-logon",
                    format!(
                        "{} logs on as {logon} (now: {})",
                        AGENT_SERVICES[0].0, service.account
                    ),
                )]);
            }
        }
        Ok(Vec::new())
    }

    pub(super) async fn permission_changes(
        &self,
        domain: &str,
        profiles: &[Profile],
        credential: &BindCredential,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "permissions";
        let recorded = service_account::load_account(&self.store).await?;
        let held: BTreeSet<Profile> = match recorded.filter(|a| a.domain == domain) {
            // Planned before the account exists: every profile is missing.
            None => BTreeSet::new(),
            Some(_) => {
                let report = self
                    .gmsa
                    .get_permissions(domain, credential.clone())
                    .await?;
                if !report.live {
                    return Err(Error::Unavailable(format!(
                        "cannot read the permissions in {domain}: {}",
                        report.live_unavailable_reason
                    )));
                }
                report
                    .permissions
                    .iter()
                    .filter(|p| p.present)
                    .map(|p| p.profile)
                    .collect()
            }
        };
        Ok(profiles
            .iter()
            .filter(|p| !held.contains(p))
            .map(|p| change(STEP, "grant", p.name()))
            .collect())
    }

    pub(super) async fn writeback_changes(
        &self,
        enabled: bool,
        desired_domains: &[DomainSpec],
        credential: &BindCredential,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "writeback";
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        let report = if added.is_empty() {
            None
        } else {
            Some(
                self.writeback
                    .get("", Some(credential.clone()), WRITEBACK_PLAN_SAMPLE)
                    .await?,
            )
        };
        let tenant = match &report {
            Some(r) => r.tenant.clone(),
            None => self.writeback.tenant_state().await,
        };
        // Domains the document adds count as lacking the ACEs.
        let mut ready = BTreeSet::new();
        let mut not_ready = BTreeSet::new();
        for d in report.iter().flat_map(|r| &r.domains) {
            if d.ready() {
                ready.insert(d.domain.clone());
            } else {
                not_ready.insert(d.domain.clone());
            }
        }
        for d in desired_domains {
            if !added.contains(&d.domain) {
                not_ready.insert(d.domain.clone());
            }
        }
        let flag = match &tenant {
            TenantState::Enabled => "on",
            TenantState::Disabled => "off",
            TenantState::Unknown(_) => "unknown",
        };
        let detail = |what: String| match &tenant {
            TenantState::Unknown(why) => format!("{what}; the tenant flag is unknown ({why})"),
            _ => what,
        };
        let change_needed = if enabled {
            tenant != TenantState::Enabled || !not_ready.is_empty()
        } else {
            tenant != TenantState::Disabled || !ready.is_empty()
        };
        if !change_needed {
            return Ok(Vec::new());
        }
        let what = if enabled {
            format!(
                "tenant flag on (now {flag}); PasswordWriteBack ACEs on {}",
                if not_ready.is_empty() {
                    "every domain (present)".to_owned()
                } else {
                    not_ready.into_iter().collect::<Vec<_>>().join(", ")
                }
            )
        } else {
            format!(
                "tenant flag off (now {flag}); ACEs removed from {}",
                if ready.is_empty() {
                    "no domain (none left)".to_owned()
                } else {
                    ready.into_iter().collect::<Vec<_>>().join(", ")
                }
            )
        };
        Ok(vec![change(
            STEP,
            if enabled { "enable" } else { "disable" },
            detail(what),
        )])
    }
}

fn describe(record: &Option<service_account::AccountRecord>) -> String {
    match record {
        None => "none".into(),
        Some(r) => format!("{} in {}", r.sam_account_name, r.domain),
    }
}

/// What a principals change does to this host's `host.gmsa.retrievable`,
/// judged on the names alone (a group in the list may still hold the host:
/// Verify reads the directory).
fn retrieval_effect(machine: &str, have: &BTreeSet<String>, want: &BTreeSet<String>) -> String {
    let me = crate::model::computer_account(machine);
    match (have.contains(&me), want.contains(&me)) {
        (true, false) => format!(
            "; this host ({me}) leaves the principals: host.gmsa.retrievable FAILs after \
             the apply unless a listed group holds {me}, and the agent service can no \
             longer log on as the gMSA"
        ),
        (false, true) => format!(
            "; this host ({me}) joins the principals: host.gmsa.retrievable PASSes after the apply"
        ),
        _ => String::new(),
    }
}
