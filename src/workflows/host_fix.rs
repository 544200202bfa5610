//! HostService's workflows: which prerequisite fixes the host needs (the
//! plan), and RemediateHost, an operation with one step per fix. The
//! judgments here are the ones Verify's prerequisite checks use
//! (`verify/prereq.rs`), so a check that FAILs with a fixable remedy is
//! exactly a fix the plan lists, and after the fix both agree it is done.
//!
//! Never restarts the host: a fix that needs one says `reboot_required`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::operations::{OperationSpec, Outcome, Progress, RequestFingerprint};
use super::{Caller, Error, FieldViolation, Operations, validate};
use crate::backends::host::{Host, HostFix, HostPrerequisites, RegReading, RegValue, StartType};
use crate::backends::store::{OperationKind, OperationRecord};

/// Microsoft's pages the remedies come from.
pub const PREREQUISITES_PAGE: &str =
    "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites";
pub const TROUBLESHOOT_PAGE: &str =
    "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-troubleshoot";
pub const GMSA_LOGON_PAGE: &str = "https://learn.microsoft.com/troubleshoot/entra/entra-id/ad-dmn-services/azure-ad-hybrid-sync-gmsa-set-logon-service";

/// The execution policies the agent's registration accepts (the
/// troubleshooting page: "Undefined or RemoteSigned"); absent is Undefined.
pub fn execution_policy_ok(value: &RegValue) -> bool {
    match value {
        RegValue::Absent => true,
        RegValue::Text(p) => {
            p.eq_ignore_ascii_case("Undefined") || p.eq_ignore_ascii_case("RemoteSigned")
        }
        _ => false,
    }
}

/// The value a TLS 1.2 reading should have: `DisabledByDefault` 0, every
/// other (`Enabled`, `SchUseStrongCrypto`) 1.
pub fn tls12_wanted(r: &RegReading) -> u32 {
    if r.path.ends_with("DisabledByDefault") {
        0
    } else {
        1
    }
}

/// `sc.exe managedaccount … true` stores 01 00 00 00.
pub fn managed_flag_set(r: &RegReading) -> bool {
    match &r.value {
        RegValue::Binary(b) => b.first() == Some(&1),
        RegValue::Dword(v) => *v == 1,
        _ => false,
    }
}

/// The short name a fix's step and the API use.
pub fn fix_name(fix: HostFix) -> &'static str {
    match fix {
        HostFix::Tls12 => "tls12",
        HostFix::VaultSvcManual => "vault-service-manual",
        HostFix::ServiceAccountManaged => "service-account-managed",
        HostFix::ExecutionPolicyRemoteSigned => "execution-policy-remote-signed",
    }
}

/// The fix named `name` ([`fix_name`]'s inverse).
pub fn fix_from_name(name: &str) -> Option<HostFix> {
    [
        HostFix::Tls12,
        HostFix::VaultSvcManual,
        HostFix::ServiceAccountManaged,
        HostFix::ExecutionPolicyRemoteSigned,
    ]
    .into_iter()
    .find(|f| fix_name(*f) == name)
}

/// A list of fixes from a request (`None`: a value the transport could not
/// map), sorted and deduplicated, or every violation under `field`.
pub fn validate_fixes(
    field: &str,
    list: &[Option<HostFix>],
) -> Result<Vec<HostFix>, Vec<FieldViolation>> {
    validate::at_most(field, list, validate::MAX_ENUM_LIST).map_err(|e| vec![e])?;
    let v: Vec<FieldViolation> = list
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_none())
        .map(|(i, _)| {
            FieldViolation::new(
                format!("{field}[{i}]"),
                "is not a host fix (tls12, vault-service-manual, service-account-managed, \
                 execution-policy-remote-signed)",
            )
        })
        .collect();
    if !v.is_empty() {
        return Err(v);
    }
    let mut fixes: Vec<HostFix> = list.iter().flatten().copied().collect();
    fixes.sort();
    fixes.dedup();
    Ok(fixes)
}

/// One fix the host needs, with what it would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFix {
    pub fix: HostFix,
    /// One line per value: `<path>: <now> -> <wanted>`.
    pub changes: Vec<String>,
    pub reboot_required: bool,
}

/// Every fix `p` needs, in a fixed order. A setting a GPO decides (the
/// execution policy's Group Policy scope) is no fix: Verify names the GPO.
pub fn plan(p: &HostPrerequisites) -> Vec<PlannedFix> {
    let mut out = Vec::new();
    let tls: Vec<String> = p
        .tls12
        .iter()
        .filter(|r| r.dword() != Some(tls12_wanted(r)))
        .map(|r| format!("{}: {} -> {}", r.path, r.shown(), tls12_wanted(r)))
        .collect();
    if !tls.is_empty() {
        out.push(PlannedFix {
            fix: HostFix::Tls12,
            changes: tls,
            reboot_required: true,
        });
    }
    if p.vault_service == Ok(Some(StartType::Disabled)) {
        out.push(PlannedFix {
            fix: HostFix::VaultSvcManual,
            changes: vec!["service VaultSvc start type: Disabled -> Manual".into()],
            reboot_required: false,
        });
    }
    if let Some(r) = p
        .service_account_managed
        .as_ref()
        .filter(|r| !managed_flag_set(r))
    {
        out.push(PlannedFix {
            fix: HostFix::ServiceAccountManaged,
            changes: vec![format!("{}: {} -> 01000000", r.path, r.shown())],
            reboot_required: false,
        });
    }
    if !execution_policy_ok(&p.execution_policy.value) {
        out.push(PlannedFix {
            fix: HostFix::ExecutionPolicyRemoteSigned,
            changes: vec![format!(
                "{}: {} -> \"RemoteSigned\"",
                p.execution_policy.path,
                p.execution_policy.shown()
            )],
            reboot_required: false,
        });
    }
    out
}

pub struct HostWorkflows {
    operations: Arc<Operations>,
    host: Arc<dyn Host>,
}

impl HostWorkflows {
    pub fn new(operations: Arc<Operations>, host: Arc<dyn Host>) -> Self {
        Self { operations, host }
    }

    /// The fixes the host needs now.
    pub async fn plan(&self) -> Result<Vec<PlannedFix>, Error> {
        Ok(plan(&self.host.prerequisites().await?))
    }

    /// Starts RemediateHost: `only` limits it to those fixes (empty: every
    /// planned one); `None` in it marks a value the transport could not map.
    pub async fn remediate(
        &self,
        caller: &Caller,
        request_id: &str,
        only: Vec<Option<HostFix>>,
    ) -> Result<OperationRecord, Error> {
        let mut v = Vec::new();
        let fixes = validate_fixes("fixes", &only)
            .map_err(|e| v.extend(e))
            .unwrap_or_default();
        let request_id = validate::request_id("request_id", request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        // Refused before an operation is recorded where there is no host.
        self.host
            .availability()
            .map_err(|reason| Error::from(crate::backends::host::HostError::Unavailable(reason)))?;
        let names: Vec<&str> = fixes.iter().map(|f| fix_name(*f)).collect();
        let spec = OperationSpec {
            kind: OperationKind::RemediateHost,
            request_id,
            fingerprint: RequestFingerprint::new().list("fixes", &names),
            description: "remediate the host's prerequisites".into(),
            initiator: caller.name.clone(),
        };
        let host = self.host.clone();
        self.operations
            .start(spec, move |progress| run(progress, host, fixes))
            .await
    }
}

async fn run(
    progress: Progress,
    host: Arc<dyn Host>,
    only: Vec<HostFix>,
) -> Result<Outcome, Error> {
    progress
        .step_started("read-host", "reading the host's prerequisites")
        .await?;
    let planned: Vec<PlannedFix> = plan(&host.prerequisites().await?)
        .into_iter()
        .filter(|p| only.is_empty() || only.contains(&p.fix))
        .collect();
    let names: Vec<&str> = planned.iter().map(|p| fix_name(p.fix)).collect();
    progress
        .step_succeeded(
            "read-host",
            if names.is_empty() {
                "nothing to fix".to_owned()
            } else {
                format!("to fix: {}", names.join(", "))
            },
        )
        .await?;
    let fixed = make_fixes(&progress, host.as_ref(), &planned).await?;
    Ok(BTreeMap::from([
        ("changed".into(), (!fixed.changed.is_empty()).to_string()),
        ("fixes".into(), fixed.changed.join(",")),
        ("reboot_required".into(), fixed.reboot_required.to_string()),
    ]))
}

/// What [`make_fixes`] changed.
#[derive(Debug, Default)]
pub struct Fixed {
    /// The fixes' names, in the order made.
    pub changed: Vec<&'static str>,
    pub reboot_required: bool,
}

/// Makes each planned fix as a step of its own (named after the fix); a fix
/// the host reports already made (changed since the plan) is skipped. Used
/// by RemediateHost and by apply's host sections, so both report alike.
pub async fn make_fixes(
    progress: &Progress,
    host: &dyn Host,
    planned: &[PlannedFix],
) -> Result<Fixed, Error> {
    let mut fixed = Fixed::default();
    for p in planned {
        progress.checkpoint()?;
        let step = fix_name(p.fix);
        progress.step_started(step, p.changes.join("; ")).await?;
        let outcome = host.remediate(p.fix).await?;
        if !outcome.changed {
            progress
                .step_skipped(step, "already as wanted (changed since the plan)")
                .await?;
            continue;
        }
        fixed.changed.push(step);
        progress.step_succeeded(step, p.changes.join("; ")).await?;
        if outcome.reboot_required {
            fixed.reboot_required = true;
            progress
                .warning(
                    step,
                    "takes effect after a restart of the server; provd never restarts it",
                )
                .await?;
        }
    }
    Ok(fixed)
}
