//! The desired-state document ApplyConfiguration and PlanConfiguration
//! take, and its validation into a [`Plan`]: every violation at once, each
//! under its field path (`desired.domains[1].domain`, …).

use std::collections::BTreeSet;

use super::settings::{self, AgentSettingsInput};
use super::{ApplyWorkflows, install_request};
use crate::backends::directory::BindCredential;
use crate::backends::host::AgentSettings;
use crate::backends::host::{Cloud, HostFix};
use crate::workflows::cloud_sync::{self, CloudSyncInput, CloudSyncSpec};
use crate::workflows::directory::DirectoryWorkflows;
use crate::workflows::host_fix::{fix_name, validate_fixes};
use crate::workflows::operations::RequestFingerprint;
use crate::workflows::permissions::Profile;
use crate::workflows::permissions::ProfileChoice;
use crate::workflows::service_account::{self, CreateGmsaRequest, UseCustomGmsaRequest};
use crate::workflows::validate::{self, dns_name};
use crate::workflows::{Error, FieldViolation};

#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    pub source: String,
    pub sha256: String,
    pub accept_license: bool,
    pub cloud: Option<Cloud>,
    pub skip_registration: bool,
    /// `[agent.settings]`: `None` leaves every setting as it is.
    pub settings: Option<AgentSettingsInput>,
    /// `state = "absent"`: decommission the agent (every field above unset).
    pub absent: bool,
    /// With `absent`: leave the gMSA's principals and permissions alone.
    pub keep_gmsa: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DomainSpec {
    pub domain: String,
    pub preferred: Vec<String>,
    /// The domain's cloud sync configuration; `None`: see `Plan::cloud_sync`.
    pub cloud_sync: Option<CloudSyncInput>,
}

#[derive(Debug, Clone)]
pub enum AccountChoice {
    Create {
        name: String,
        principals: Vec<String>,
        container_dn: String,
        encryption_types: Vec<Option<u32>>,
    },
    Custom {
        name: String,
        host_account: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct AccountSpec {
    pub domain: String,
    /// `None`: the document named neither (rejected).
    pub choice: Option<AccountChoice>,
    /// `None` entries: values the transport could not map (rejected).
    pub permissions: Vec<Option<ProfileChoice>>,
}

/// `[host]`: the prerequisite fixes the document keeps made.
#[derive(Debug, Clone, Default)]
pub struct HostSpec {
    /// `None` entries: values the transport could not map (rejected).
    pub remediate: Vec<Option<HostFix>>,
}

#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub host: Option<HostSpec>,
    pub agent: Option<AgentSpec>,
    pub domains: Vec<DomainSpec>,
    pub service_account: Option<AccountSpec>,
    pub writeback: Option<bool>,
}

/// A validated document: domain names normalized, profiles expanded.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The host fixes to keep made, sorted; `None`: no section.
    pub(super) host: Option<Vec<HostFix>>,
    pub(super) agent: Option<AgentSpec>,
    /// The agent's validated settings; `None` (or empty): no section.
    pub(super) agent_settings: Option<AgentSettings>,
    pub(super) domains: Vec<DomainSpec>,
    pub(super) account: Option<(String, AccountChoice, Vec<Profile>)>,
    pub(super) writeback: Option<bool>,
    /// Per document domain, in order: its validated configuration, or
    /// `None` (released if provd manages one, else left alone).
    pub(super) cloud_sync: Vec<(String, Option<CloudSyncSpec>)>,
}

impl Plan {
    /// The document as an apply's request fingerprint (every section, in
    /// the document's order).
    pub(super) fn fingerprint(&self) -> RequestFingerprint {
        let mut f = RequestFingerprint::new();
        if let Some(fixes) = &self.host {
            let names: Vec<&str> = fixes.iter().map(|x| fix_name(*x)).collect();
            f = f.list("host.remediate", &names);
        }
        if let Some(a) = &self.agent {
            f = f
                .text(
                    "agent.source",
                    &crate::workflows::package::shown_source(&a.source),
                )
                .text("agent.sha256", &a.sha256.to_ascii_lowercase())
                .flag("agent.accept_license", a.accept_license)
                .variant("agent.cloud", &a.cloud)
                .flag("agent.skip_registration", a.skip_registration)
                .flag("agent.absent", a.absent)
                .flag("agent.keep_gmsa", a.keep_gmsa);
        }
        if let Some(settings) = &self.agent_settings {
            f = f.variant("agent.settings", settings);
        }
        for d in &self.domains {
            f = f
                .text("domains.domain", &d.domain)
                .list("domains.preferred", &d.preferred);
        }
        for (domain, spec) in &self.cloud_sync {
            // Debug shows whether an email is set, never the address.
            f = f
                .text("cloud_sync.domain", domain)
                .variant("cloud_sync.spec", spec);
        }
        if let Some((domain, choice, profiles)) = &self.account {
            f = f.text("service_account.domain", domain);
            f = match choice {
                AccountChoice::Create {
                    name,
                    principals,
                    container_dn,
                    encryption_types,
                } => f
                    .text("create.name", name)
                    .list("create.principals", principals)
                    .text("create.container_dn", container_dn)
                    .variant("create.encryption_types", encryption_types),
                AccountChoice::Custom { name, host_account } => f
                    .text("custom.name", name)
                    .text("custom.host_account", host_account),
            };
            let names: Vec<_> = profiles.iter().map(|p| p.name()).collect();
            f = f.list("service_account.permissions", &names);
        }
        f.variant("writeback", &self.writeback)
    }
}

impl ApplyWorkflows {
    pub(super) async fn validate(
        &self,
        desired: Option<DesiredState>,
        credential: Option<&BindCredential>,
    ) -> Result<Plan, Error> {
        let mut v = Vec::new();
        // Missing, the document is reported with the request's other
        // mistakes rather than alone.
        let desired = desired.unwrap_or_else(|| {
            v.push(FieldViolation::new("desired", "is required"));
            DesiredState::default()
        });
        let prefix = |path: &str, list: Vec<FieldViolation>| {
            list.into_iter()
                .map(|f| FieldViolation::new(format!("{path}.{}", f.field), f.description))
                .collect::<Vec<_>>()
        };
        let host = desired.host.as_ref().and_then(|h| {
            validate_fixes("desired.host.remediate", &h.remediate)
                .map_err(|e| v.extend(e))
                .ok()
        });
        match &desired.agent {
            Some(spec) if spec.absent => v.extend(absent_violations(&desired, spec)),
            Some(spec) => v.extend(prefix(
                "desired.agent",
                self.agent.check_install(&install_request(spec)),
            )),
            None => {}
        }
        let agent_settings = desired
            .agent
            .as_ref()
            .and_then(|a| a.settings.as_ref())
            .and_then(|input| {
                settings::validate("desired.agent.settings", input)
                    .map_err(|e| v.extend(e))
                    .ok()
            })
            .filter(|s| !s.is_empty());
        let mut domains = Vec::new();
        let mut syncs = Vec::new();
        let mut seen = BTreeSet::new();
        let too_many =
            validate::at_most("desired.domains", &desired.domains, validate::MAX_NAME_LIST);
        // Too many is reported alone, not entry by entry.
        let listed = if too_many.is_ok() {
            &desired.domains[..]
        } else {
            &[]
        };
        v.extend(too_many.err());
        for (i, d) in listed.iter().enumerate() {
            let path = format!("desired.domains[{i}]");
            let name = dns_name(&format!("{path}.domain"), &d.domain)
                .map_err(|e| v.push(e))
                .ok();
            let preferred = validate::dc_list(
                &format!("{path}.preferred_domain_controllers"),
                &d.preferred,
            )
            .map_err(|e| v.push(e))
            .ok();
            let sync = d.cloud_sync.as_ref().and_then(|input| {
                cloud_sync::validate_spec(&format!("{path}.cloud_sync"), name.as_deref(), input)
                    .map_err(|e| v.extend(e))
                    .ok()
            });
            if let (Some(domain), Some(preferred)) = (name, preferred) {
                if !seen.insert(domain.clone()) {
                    v.push(FieldViolation::new(
                        format!("{path}.domain"),
                        format!("{domain} is listed twice"),
                    ));
                }
                syncs.push((domain.clone(), sync));
                domains.push(DomainSpec {
                    domain,
                    preferred,
                    cloud_sync: d.cloud_sync.clone(),
                });
            }
        }
        let mut account = None;
        if let Some(spec) = &desired.service_account {
            let path = "desired.service_account";
            let domain = dns_name(&format!("{path}.domain"), &spec.domain)
                .map_err(|e| v.push(e))
                .ok();
            let added = DirectoryWorkflows::list_domains(&self.store).await?;
            if let Some(d) = &domain
                && !seen.contains(d)
                && !added.contains(d)
            {
                v.push(FieldViolation::new(
                    format!("{path}.domain"),
                    format!("{d} is neither in desired.domains nor added"),
                ));
            }
            let choice = match &spec.choice {
                None => {
                    v.push(FieldViolation::new(
                        format!("{path}.account"),
                        "name either `create` or `custom`",
                    ));
                    None
                }
                Some(AccountChoice::Create {
                    name,
                    principals,
                    container_dn,
                    encryption_types,
                }) => {
                    let request = CreateGmsaRequest {
                        name: name.clone(),
                        container_dn: container_dn.clone(),
                        encryption_types: encryption_types.clone(),
                        principals: principals.clone(),
                        ..Default::default()
                    };
                    let mut found = Vec::new();
                    service_account::create_fields(domain.as_deref(), &request, &mut found);
                    v.extend(prefix(&format!("{path}.create"), found));
                    spec.choice.clone()
                }
                Some(AccountChoice::Custom { name, host_account }) => {
                    let request = UseCustomGmsaRequest {
                        name: name.clone(),
                        host_account: host_account.clone(),
                        ..Default::default()
                    };
                    let mut found = Vec::new();
                    service_account::custom_fields(&request, &mut found);
                    v.extend(prefix(&format!("{path}.custom"), found));
                    spec.choice.clone()
                }
            };
            let mut profiles = BTreeSet::new();
            let too_many = validate::at_most(
                &format!("{path}.permissions"),
                &spec.permissions,
                validate::MAX_ENUM_LIST,
            );
            let listed = if too_many.is_ok() {
                &spec.permissions[..]
            } else {
                &[]
            };
            v.extend(too_many.err());
            for (i, p) in listed.iter().enumerate() {
                match p {
                    Some(ProfileChoice::One(p)) => {
                        profiles.insert(*p);
                    }
                    Some(ProfileChoice::All) => profiles.extend(Profile::ALL),
                    None => v.push(FieldViolation::new(
                        format!("{path}.permissions[{i}]"),
                        "is not a permission profile",
                    )),
                }
            }
            if profiles.is_empty() {
                profiles.insert(Profile::BasicRead);
            }
            if let (Some(domain), Some(choice)) = (domain, choice) {
                account = Some((domain, choice, profiles.into_iter().collect()));
            }
        }
        let decommissions = desired
            .agent
            .as_ref()
            .is_some_and(|a| a.absent && !a.keep_gmsa);
        let needs_credential = !desired.domains.is_empty()
            || desired.service_account.is_some()
            || desired.writeback.is_some()
            || decommissions;
        if needs_credential {
            match credential {
                None => v.push(FieldViolation::new(
                    "credential",
                    "is required: the document changes the directory",
                )),
                // Domains reach the agent's module, which takes a password.
                Some(c) if !desired.domains.is_empty() => {
                    v.extend(validate::password_credential("credential", Some(c)))
                }
                Some(c) => v.extend(validate::credential("credential", Some(c))),
            }
        } else if let Some(c) = credential {
            v.extend(validate::credential("credential", Some(c)));
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        Ok(Plan {
            host,
            agent: desired.agent,
            agent_settings,
            domains,
            account,
            writeback: desired.writeback,
            cloud_sync: syncs,
        })
    }
}

/// An absent agent: its own fields unset, and no section that needs it.
fn absent_violations(desired: &DesiredState, spec: &AgentSpec) -> Vec<FieldViolation> {
    const UNSET: &str = "must be unset when the agent is absent";
    let mut v = Vec::new();
    let set = [
        ("desired.agent.source", !spec.source.is_empty()),
        ("desired.agent.sha256", !spec.sha256.is_empty()),
        ("desired.agent.accept_license", spec.accept_license),
        ("desired.agent.cloud", spec.cloud.is_some()),
        ("desired.agent.skip_registration", spec.skip_registration),
        ("desired.agent.settings", spec.settings.is_some()),
    ];
    for (field, is_set) in set {
        if is_set {
            v.push(FieldViolation::new(field, UNSET));
        }
    }
    const ONLY_HOST: &str =
        "must be left out when the agent is absent: such a document configures only `host`";
    if !desired.domains.is_empty() {
        v.push(FieldViolation::new("desired.domains", ONLY_HOST));
    }
    if desired.service_account.is_some() {
        v.push(FieldViolation::new("desired.service_account", ONLY_HOST));
    }
    if desired.writeback.is_some() {
        v.push(FieldViolation::new("desired.writeback", ONLY_HOST));
    }
    v
}
