//! The grant engine: GrantPermissions (resolve → read DACLs → plan → write
//! → confirm) on a bound session, and the per-profile status reads that
//! UseCustomGmsa, GetServiceAccount and writeback report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Profile, Resolved, Wanted};
use crate::backends::directory::{
    BindCredential, DirectoryError, DirectorySession, SD_FLAGS_DACL, escape,
};
use crate::backends::store::{EventKind, OperationKind, Store};
use crate::workflows::domain_controllers::{
    Connect, DcSession, DomainControllerWorkflows, entry_sid, find_account, naming_contexts,
};
use crate::workflows::operations::{
    Job, NewEvent, OperationSpec, Outcome, Progress, RequestFingerprint, job,
};
use crate::workflows::validate::{self, dn_in_domain, dns_name, principal_name};
use crate::workflows::{Caller, Error, FieldViolation, PreconditionReason};
use provd_sd::{Ace, Acl, Sid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    Plan,
    Apply,
    Remove,
    PlanRemove,
}

impl GrantMode {
    fn name(self) -> &'static str {
        match self {
            GrantMode::Plan => "PLAN",
            GrantMode::Apply => "APPLY",
            GrantMode::Remove => "REMOVE",
            GrantMode::PlanRemove => "PLAN_REMOVE",
        }
    }
    fn writes(self) -> bool {
        matches!(self, GrantMode::Apply | GrantMode::Remove)
    }
    fn removes(self) -> bool {
        matches!(self, GrantMode::Remove | GrantMode::PlanRemove)
    }
}

#[derive(Debug, Default)]
pub struct GrantPermissionsRequest {
    pub domain: String,
    /// `None` entries are values the transport could not map (rejected).
    pub profiles: Vec<Option<ProfileChoice>>,
    pub organizational_units: Vec<String>,
    pub mode: Option<GrantMode>,
    pub trustee: String,
    pub credential: Option<BindCredential>,
    pub request_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    One(Profile),
    All,
}

/// One profile's state for GetServiceAccount.
#[derive(Debug, Clone)]
pub struct ProfileStatus {
    pub profile: Profile,
    pub present: bool,
    pub missing: Vec<AceChange>,
    pub message: String,
}

/// An ACE to add or remove, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AceChange {
    pub object_dn: String,
    pub add: bool,
    pub ace: String,
    pub description: String,
    pub profiles: Vec<Profile>,
}

/// A GrantPermissions request that passed validation. Without a trustee in
/// the request, the caller (the service account) supplies the recorded one.
pub(crate) struct ValidGrant {
    domain: String,
    profiles: Vec<Profile>,
    ous: Vec<String>,
    mode: GrantMode,
    pub(crate) trustee: Option<String>,
    credential: BindCredential,
    pub(crate) request_id: Option<String>,
    /// Taken before the trustee is resolved, so a retry matches.
    fingerprint: RequestFingerprint,
}

impl GrantPermissionsRequest {
    /// Every field checked, each violation named.
    pub(crate) fn validate(self) -> Result<ValidGrant, Error> {
        let mut request = self;
        let mut v = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|e| v.push(e))
            .ok();
        let mut profiles = BTreeSet::new();
        if request.profiles.is_empty() {
            v.push(FieldViolation::new(
                "profiles",
                "at least one profile is required",
            ));
        }
        let too_many = validate::at_most("profiles", &request.profiles, validate::MAX_ENUM_LIST);
        let listed = if too_many.is_ok() {
            &request.profiles[..]
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
                    format!("profiles[{i}]"),
                    "is not a permission profile",
                )),
            }
        }
        let domain_dn = domain.as_deref().map(escape::domain_dn);
        let too_many = validate::at_most(
            "organizational_units",
            &request.organizational_units,
            validate::MAX_NAME_LIST,
        );
        // Too many is reported alone, not entry by entry.
        let listed: &[String] = if too_many.is_ok() {
            &request.organizational_units
        } else {
            &[]
        };
        v.extend(too_many.err());
        let ous: Vec<String> = match &domain_dn {
            Some(d) => listed
                .iter()
                .enumerate()
                .filter_map(|(i, ou)| {
                    dn_in_domain(&format!("organizational_units[{i}]"), ou, d)
                        .map_err(|e| v.push(e))
                        .ok()
                })
                .collect(),
            // Without a domain, each OU is still checked as a DN.
            None => {
                for (i, ou) in listed.iter().enumerate() {
                    v.extend(
                        validate::distinguished_name(&format!("organizational_units[{i}]"), ou)
                            .err(),
                    );
                }
                Vec::new()
            }
        };
        let mode = request.mode;
        if mode.is_none() {
            v.push(FieldViolation::new(
                "mode",
                "is required: PLAN, APPLY, REMOVE or PLAN_REMOVE",
            ));
        }
        let trustee = if request.trustee.is_empty() {
            None
        } else {
            principal_name("trustee", &request.trustee)
                .map_err(|e| v.push(e))
                .ok()
        };
        v.extend(validate::credential(
            "credential",
            request.credential.as_ref(),
        ));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(domain), Some(mode), Some(credential)) =
            (domain, mode, request.credential.take())
        else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let profiles: Vec<Profile> = profiles.into_iter().collect();
        let fingerprint = RequestFingerprint::new()
            .text("domain", &domain)
            .list(
                "profiles",
                &profiles.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .list("organizational_units", &ous)
            .variant("mode", &mode)
            .text("trustee", trustee.as_deref().unwrap_or_default());
        Ok(ValidGrant {
            domain,
            profiles,
            ous,
            mode,
            trustee,
            credential,
            request_id,
            fingerprint,
        })
    }
}

impl ValidGrant {
    /// The operation and its job: connect, then [`grant_in_session`].
    pub(crate) fn prepare(
        self,
        caller: &Caller,
        dcs: Arc<DomainControllerWorkflows>,
        store: Arc<dyn Store>,
        trustee: String,
    ) -> (OperationSpec, Job) {
        let ValidGrant {
            domain,
            profiles,
            ous,
            mode,
            credential,
            request_id,
            fingerprint,
            ..
        } = self;
        let spec = OperationSpec {
            kind: OperationKind::GrantPermissions,
            request_id,
            fingerprint,
            description: format!(
                "{} {} for {trustee} in {domain}",
                mode.name(),
                profiles
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            initiator: caller.name.clone(),
        };
        (
            spec,
            job(move |progress| async move {
                let mut session =
                    DcSession::open(&dcs, &domain, &credential, Connect::Step(&progress)).await?;
                drop(credential);
                let totals =
                    grant_in_session(&progress, session.as_mut(), &trustee, &profiles, &ous, mode)
                        .await?;
                drop(session);
                super::record_ou_grants(&store, &domain, &totals.sid, &ous, mode).await?;
                Ok(Outcome::from([
                    ("mode".into(), mode.name().into()),
                    ("added".into(), totals.added.to_string()),
                    ("removed".into(), totals.removed.to_string()),
                    ("unchanged".into(), totals.unchanged.to_string()),
                    ("objects".into(), totals.objects.to_string()),
                ]))
            }),
        )
    }
}

/// Per profile, whether `sid` holds it on the domain root.
pub(crate) async fn profile_statuses(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    config_dn: &str,
    schema_dn: &str,
    sid: Sid,
) -> Result<Vec<ProfileStatus>, Error> {
    let resolved = Resolved::resolve(session, schema_dn, config_dn).await?;
    let sd = super::read_dacl(session, domain_dn).await?;
    let dacl = sd.dacl.unwrap_or_default();
    Ok(Profile::ALL
        .iter()
        .map(|p| status_of(*p, &resolved, sid, domain_dn, &dacl))
        .collect())
}

pub(crate) fn status_of(
    profile: Profile,
    resolved: &Resolved,
    sid: Sid,
    domain_dn: &str,
    dacl: &Acl,
) -> ProfileStatus {
    let (wanted, dropped) = super::wanted(&[profile], resolved, sid, domain_dn, &[]);
    let missing: Vec<AceChange> = wanted
        .iter()
        .filter(|w| !super::is_present(dacl, &w.ace))
        .map(|w| change(w, true))
        .collect();
    let mut message = format!(
        "{} of {} ACEs present",
        wanted.len() - missing.len(),
        wanted.len()
    );
    if !dropped.is_empty() {
        message.push_str(&format!(
            "; the schema lacks {} (those ACEs are left out)",
            dropped
                .iter()
                .map(|d| d.2)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    ProfileStatus {
        profile,
        present: missing.is_empty() && !wanted.is_empty(),
        missing,
        message,
    }
}

fn change(w: &Wanted, add: bool) -> AceChange {
    AceChange {
        object_dn: w.object_dn.clone(),
        add,
        ace: super::ace_sddl(&w.ace),
        description: w.description.clone(),
        profiles: w.profiles.clone(),
    }
}

#[derive(Debug, Default)]
pub(crate) struct GrantTotals {
    /// The trustee's SID, as resolved.
    pub sid: String,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub objects: usize,
}

/// GrantPermissions' steps 2–6 on a bound session (also used by writeback).
pub(crate) async fn grant_in_session(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    trustee: &str,
    profiles: &[Profile],
    ous: &[String],
    mode: GrantMode,
) -> Result<GrantTotals, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    progress
        .step_started(
            "resolve",
            format!("resolving {trustee} and the schema GUIDs"),
        )
        .await?;
    let sid = match trustee.parse::<Sid>() {
        Ok(sid) => sid,
        Err(_) => {
            let entry = find_account(session, &domain_dn, trustee, &["objectSid"])
                .await?
                .ok_or_else(|| Error::NotFound(format!("trustee {trustee}")))?;
            entry_sid(&entry)?
        }
    };
    // Every profile resolved: a removal must see the others whole to know
    // which shared ACEs they still need (`kept_for_other_profile`).
    let resolved = Resolved::resolve(session, &schema_dn, &config_dn).await?;
    let (wanted, dropped) = super::wanted(profiles, &resolved, sid, &domain_dn, ous);
    for (profile, description, missing) in &dropped {
        progress
            .warning(
                "resolve",
                format!(
                    "{}: left out \"{description}\": the schema has no {missing}",
                    profile.name()
                ),
            )
            .await?;
    }
    if !ous.is_empty() && wanted.iter().any(|w| w.object_dn == domain_dn) {
        progress
            .emit(NewEvent {
                step: "resolve".into(),
                kind: Some(EventKind::Progress),
                message: "rights that apply to this object only go on the domain root".into(),
                ..NewEvent::default()
            })
            .await?;
    }
    progress
        .step_succeeded("resolve", format!("trustee {sid}"))
        .await?;

    let mut objects: Vec<String> = Vec::new();
    for w in &wanted {
        if !objects.iter().any(|o| o.eq_ignore_ascii_case(&w.object_dn)) {
            objects.push(w.object_dn.clone());
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress
            .step_started("read", format!("reading {} DACLs", objects.len()))
            .await?;
        let mut dacls = BTreeMap::new();
        for dn in &objects {
            dacls.insert(dn.clone(), super::read_dacl(session, dn).await?);
        }
        progress.step_succeeded("read", "read").await?;

        progress
            .step_started("plan", format!("{} for {sid}", mode.name()))
            .await?;
        let mut totals = GrantTotals {
            sid: sid.to_string(),
            ..GrantTotals::default()
        };
        let mut changes: BTreeMap<String, Vec<(bool, Ace)>> = BTreeMap::new();
        for w in &wanted {
            let dacl = dacls
                .get(&w.object_dn)
                .and_then(|sd| sd.dacl.clone())
                .unwrap_or_default();
            let action = if mode.removes() {
                if !super::is_exactly_present(&dacl, &w.ace) {
                    totals.unchanged += 1;
                    continue;
                }
                if let Some(keeper) =
                    kept_for_other_profile(w, profiles, &resolved, sid, &domain_dn, ous, &dacl)
                {
                    progress
                        .emit(NewEvent {
                            step: "plan".into(),
                            kind: Some(EventKind::Progress),
                            message: format!(
                                "keeping \"{}\": {} also needs it and is held",
                                w.description,
                                keeper.name()
                            ),
                            ..NewEvent::default()
                        })
                        .await?;
                    totals.unchanged += 1;
                    continue;
                }
                false
            } else {
                if super::is_present(&dacl, &w.ace) {
                    totals.unchanged += 1;
                    continue;
                }
                true
            };
            let c = change(w, action);
            progress
                .emit(NewEvent {
                    step: "plan".into(),
                    kind: Some(EventKind::Progress),
                    message: c.description.clone(),
                    attributes: BTreeMap::from([
                        ("object".into(), c.object_dn.clone()),
                        ("ace".into(), c.ace.clone()),
                        (
                            "action".into(),
                            if action { "add" } else { "remove" }.into(),
                        ),
                        (
                            "profiles".into(),
                            c.profiles
                                .iter()
                                .map(|p| p.name())
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ]),
                    ..NewEvent::default()
                })
                .await?;
            if action {
                totals.added += 1;
            } else {
                totals.removed += 1;
            }
            changes
                .entry(w.object_dn.clone())
                .or_default()
                .push((action, w.ace.clone()));
        }
        totals.objects = changes.len();
        for (dn, list) in &changes {
            let before = dacls.get(dn).and_then(|sd| sd.dacl.as_ref());
            check_fits(dn, before, &with_changes(before, list))?;
        }
        if changes.is_empty() {
            progress.step_skipped("plan", "nothing to change").await?;
            return Ok(totals);
        }
        progress
            .step_succeeded(
                "plan",
                format!(
                    "{} to add, {} to remove on {} objects",
                    totals.added, totals.removed, totals.objects
                ),
            )
            .await?;
        if !mode.writes() {
            return Ok(totals);
        }

        progress
            .step_started("write", format!("writing {} DACLs", changes.len()))
            .await?;
        let mut raced = false;
        for (dn, list) in &changes {
            progress.checkpoint()?;
            let Some(before) = dacls.get(dn) else {
                continue;
            };
            let now = super::read_dacl(session, dn).await?;
            if now.dacl != before.dacl {
                raced = true;
                break;
            }
            let mut sd = now;
            sd.set_dacl(Some(with_changes(sd.dacl.as_ref(), list)));
            let bytes = sd
                .to_bytes()
                .map_err(|e| Error::internal(format!("encoding the DACL of {dn}"), e))?;
            session
                .write_security_descriptor(dn, SD_FLAGS_DACL, &bytes)
                .await
                .map_err(|e| match e {
                    DirectoryError::InsufficientAccess { .. } => {
                        Error::PermissionDenied(format!("may not write the DACL of {dn}: {e}"))
                    }
                    other => other.into(),
                })?;
            progress
                .emit(NewEvent {
                    step: "write".into(),
                    kind: Some(EventKind::Progress),
                    message: format!("wrote the DACL of {dn}"),
                    attributes: BTreeMap::from([("object".to_owned(), dn.clone())]),
                    ..NewEvent::default()
                })
                .await?;
        }
        if raced {
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::Aborted(format!(
                    "the DACLs kept changing while provd wrote them ({MAX_ATTEMPTS} attempts)"
                )));
            }
            progress
                .warning(
                    "write",
                    "a DACL changed since it was read; reading and planning again",
                )
                .await?;
            continue;
        }
        progress.step_succeeded("write", "written").await?;

        progress
            .step_started("confirm", "reading the DACLs back")
            .await?;
        if let Some(undone) = first_undone(session, &changes).await? {
            // Another writer's DACL, read before this one's write, landed
            // after it; or the DC would not keep the ACE. A fresh read and
            // plan tells them apart within the attempts.
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::Aborted(format!(
                    "{undone} ({MAX_ATTEMPTS} attempts: another writer changing that DACL at the \
                     same time, or the DC not keeping the ACE)"
                )));
            }
            let note = format!("{undone}; reading and planning again");
            progress.warning("confirm", note).await?;
            continue;
        }
        progress
            .step_succeeded("confirm", "every change is in place")
            .await?;
        progress.warning("confirm", "other domain controllers see the change after replication, which can take an hour in large forests").await?;
        return Ok(totals);
    }
}

/// Reads and plans of a grant before it gives up on DACLs that other
/// writers keep changing.
const MAX_ATTEMPTS: u32 = 3;

/// The first written change the DACLs read back do not show, described.
async fn first_undone(
    session: &mut dyn DirectorySession,
    changes: &BTreeMap<String, Vec<(bool, Ace)>>,
) -> Result<Option<String>, Error> {
    for (dn, list) in changes {
        let dacl = super::read_dacl(session, dn)
            .await?
            .dacl
            .unwrap_or_default();
        for (add, ace) in list {
            let there =
                super::is_exactly_present(&dacl, ace) || (*add && super::is_present(&dacl, ace));
            if there != *add {
                return Ok(Some(format!(
                    "the DC did not keep the change to {dn}: {} is {}",
                    super::ace_sddl(ace),
                    if *add { "missing" } else { "still there" }
                )));
            }
        }
    }
    Ok(None)
}

/// A profile outside `profiles` that the trustee holds completely and that
/// needs this ACE too.
fn kept_for_other_profile(
    w: &Wanted,
    profiles: &[Profile],
    resolved: &Resolved,
    sid: Sid,
    domain_dn: &str,
    ous: &[String],
    dacl: &Acl,
) -> Option<Profile> {
    Profile::ALL
        .into_iter()
        .filter(|p| !profiles.contains(p))
        .find(|other| {
            let (needs, dropped) = super::wanted(&[*other], resolved, sid, domain_dn, ous);
            // A profile whose ACEs could not all be resolved is not held whole.
            dropped.is_empty()
                && needs
                    .iter()
                    .any(|n| n.ace == w.ace && n.object_dn.eq_ignore_ascii_case(&w.object_dn))
                && needs
                    .iter()
                    .filter(|n| n.object_dn.eq_ignore_ascii_case(&w.object_dn))
                    .all(|n| super::is_present(dacl, &n.ace))
        })
}

/// `dacl` with the planned additions and removals made, in plan order.
fn with_changes(dacl: Option<&Acl>, changes: &[(bool, Ace)]) -> Acl {
    let mut dacl = dacl.cloned().unwrap_or_default();
    for (add, ace) in changes {
        if *add {
            dacl.insert_explicit(ace.clone());
        } else {
            dacl.remove_exact(ace);
        }
    }
    dacl
}

/// An ACL's `AclSize` is 16 bits (MS-DTYP 2.4.5): a DACL that would grow
/// past 65535 bytes is refused in the plan, before anything is written, and
/// PLAN modes say so too.
fn check_fits(dn: &str, before: Option<&Acl>, after: &Acl) -> Result<(), Error> {
    let size = after.encoded_len();
    if size <= usize::from(u16::MAX) {
        return Ok(());
    }
    let (before_size, before_aces) = before.map_or((0, 0), |d| (d.encoded_len(), d.aces.len()));
    Err(Error::FailedPrecondition {
        reason: PreconditionReason::DaclFull,
        subject: dn.to_owned(),
        message: format!(
            "the DACL of {dn} holds {before_aces} ACEs in {before_size} bytes; with these \
             changes it would need {size} bytes, and an ACL holds at most 65535. Nothing was \
             written. Remove ACEs that are no longer needed: ACEs of deleted accounts (shown as \
             bare SIDs) are the usual cause, and GrantPermissions mode REMOVE with the SID as \
             trustee removes a profile's ACEs for it"
        ),
    })
}
