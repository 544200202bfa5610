//! The prerequisite checks of services and policies: the Credential
//! Manager service, "Log on as a service" (read through `LogonRights`),
//! the agent service's managed-account flag, the execution policy, and the
//! recorded gMSA's Kerberos encryption types against the host's policy.

use super::super::{Check, Status};
use super::{c, fixable};
use crate::backends::host::{
    ALL_SERVICES_SID, HostError, HostPrerequisites, RegValue, ServiceLogonRight, StartType,
};
use crate::model::HostFix;
use crate::workflows::host_fix::{
    GMSA_LOGON_PAGE, TROUBLESHOOT_PAGE, execution_policy_ok, managed_flag_set,
};

pub(super) fn vault(p: &HostPrerequisites) -> Check {
    // No Microsoft Learn page states this one; issue 16 names it from the
    // agent's installer behaviour, so the source says so.
    const SOURCE: &str = "provd issue 16 (no Microsoft Learn page found)";
    let by_hand = "`Set-Service VaultSvc -StartupType Manual`";
    match &p.vault_service {
        Ok(Some(StartType::Disabled)) => fixable(
            c(
                "host.vault_service",
                Status::Fail,
                "the Credential Manager service (VaultSvc) is disabled",
                SOURCE,
            )
            .attr("start_type", "Disabled"),
            p,
            HostFix::VaultSvcManual,
            by_hand,
        ),
        Ok(Some(t)) => c(
            "host.vault_service",
            Status::Pass,
            format!("the Credential Manager service (VaultSvc) starts {t:?}"),
            SOURCE,
        )
        .attr("start_type", format!("{t:?}")),
        Ok(None) => c(
            "host.vault_service",
            Status::Warn,
            "the Credential Manager service (VaultSvc) is not installed",
            SOURCE,
        )
        .remedy("a Windows Server always has VaultSvc: check the host"),
        Err(e) => c(
            "host.vault_service",
            Status::Warn,
            format!("cannot read VaultSvc: {e}"),
            SOURCE,
        ),
    }
}

pub(super) fn logon_right(read: Result<ServiceLogonRight, HostError>) -> Check {
    const ID: &str = "host.logon_right";
    let r = match read {
        Ok(r) => r,
        Err(HostError::Unavailable(m)) => return c(ID, Status::Skip, m, TROUBLESHOOT_PAGE),
        Err(e) => {
            return c(
                ID,
                Status::Warn,
                format!("cannot read the user rights: {e}"),
                TROUBLESHOOT_PAGE,
            )
            .remedy("check that provd runs as LocalSystem");
        }
    };
    let holds = r.holders.iter().any(|s| s == ALL_SERVICES_SID);
    let check = c(
        ID,
        if holds { Status::Pass } else { Status::Fail },
        if holds {
            r"NT SERVICE\ALL SERVICES holds Log on as a service".to_owned()
        } else {
            r"NT SERVICE\ALL SERVICES does not hold Log on as a service (SeServiceLogonRight): the agent service fails to start".to_owned()
        },
        TROUBLESHOOT_PAGE,
    )
    .attr("holders", r.holders.join(","))
    .attr("gpo_source", r.gpo_source.clone().unwrap_or_default());
    match (holds, &r.gpo_source) {
        (true, _) => check,
        (false, Some(gpo)) => check.remedy(format!(
            r"a Group Policy defines Log on as a service ({gpo}): add NT SERVICE\ALL SERVICES in that GPO (Computer Configuration > Windows Settings > Security Settings > Local Policies > User Rights Assignment); a local change is overwritten at the next policy refresh"
        )),
        (false, None) => check.remedy(
            r"add NT SERVICE\ALL SERVICES to Log on as a service (secpol.msc > Local Policies > User Rights Assignment), then start the agent service",
        ),
    }
}

pub(super) fn service_managed(p: &HostPrerequisites) -> Check {
    const ID: &str = "host.service_managed";
    let Some(r) = &p.service_account_managed else {
        return c(
            ID,
            Status::Skip,
            "the agent service is not installed",
            GMSA_LOGON_PAGE,
        );
    };
    let check = c(
        ID,
        if managed_flag_set(r) { Status::Pass } else { Status::Fail },
        if managed_flag_set(r) {
            "the agent service is flagged to use a managed account".to_owned()
        } else {
            "the agent service is not flagged to use a managed account: setting its gMSA fails (\"Failed changing Windows service credentials to gMSA\")".to_owned()
        },
        GMSA_LOGON_PAGE,
    )
    .attr(&r.path, r.shown());
    if managed_flag_set(r) {
        check
    } else {
        fixable(
            check,
            p,
            HostFix::ServiceAccountManaged,
            "`sc.exe managedaccount AADConnectProvisioningAgent true`",
        )
    }
}

pub(super) fn execution_policy(p: &HostPrerequisites) -> Check {
    const ID: &str = "host.execution_policy";
    let gpo = match p.execution_policy_gpo_enabled.dword() {
        // "Turn on Script Execution" disabled: no scripts at all.
        Some(0) => Some(RegValue::Text("Restricted".into())),
        Some(_) => Some(p.execution_policy_gpo.value.clone()),
        None => None,
    };
    let machine_ok = execution_policy_ok(&p.execution_policy.value);
    let gpo_ok = gpo.as_ref().is_none_or(execution_policy_ok);
    let mut check = c(
        ID,
        if machine_ok && gpo_ok {
            Status::Pass
        } else {
            Status::Fail
        },
        match (machine_ok, gpo_ok) {
            (true, true) => {
                "the machine's execution policy is Undefined or RemoteSigned".to_owned()
            }
            (_, false) => format!(
                "a Group Policy sets the execution policy to {} (registration needs Undefined or RemoteSigned)",
                gpo.as_ref().map_or_else(String::new, |v| match v {
                    RegValue::Text(t) => t.clone(),
                    other => format!("{other:?}"),
                })
            ),
            (false, true) => format!(
                "the LocalMachine execution policy is {} (registration needs Undefined or RemoteSigned)",
                p.execution_policy.shown()
            ),
        },
        TROUBLESHOOT_PAGE,
    );
    for r in [
        &p.execution_policy,
        &p.execution_policy_gpo_enabled,
        &p.execution_policy_gpo,
    ] {
        check = check.attr(&r.path, r.shown());
    }
    if !gpo_ok {
        // A GPO wins over any local setting: no fix of provd's lasts.
        return check.remedy(
            "change the GPO's \"Turn on Script Execution\" (Computer Configuration > Administrative Templates > Windows Components > Windows PowerShell) to \"Allow local scripts and remote signed scripts\" or Not Configured",
        );
    }
    if !machine_ok {
        check = fixable(
            check,
            p,
            HostFix::ExecutionPolicyRemoteSigned,
            "`Set-ExecutionPolicy RemoteSigned -Scope LocalMachine`",
        );
    }
    check
}

/// msDS-SupportedEncryptionTypes / SupportedEncryptionTypes bits this
/// check compares (DES-CBC-CRC, DES-CBC-MD5, RC4, AES128, AES256).
const ENCTYPE_BITS: [(u32, &str); 5] = [
    (0x1, "DES-CBC-CRC"),
    (0x2, "DES-CBC-MD5"),
    (0x4, "RC4"),
    (0x8, "AES128"),
    (0x10, "AES256"),
];

fn enctypes(bits: u32) -> String {
    let names: Vec<&str> = ENCTYPE_BITS
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The recorded gMSA's encryption types against the host's Kerberos policy
/// ("Network security: Configure encryption types allowed for Kerberos"):
/// with none in common the host cannot use the gMSA's password — the
/// install failure when RC4 is off and the gMSA has RC4 only.
pub(super) fn kerberos_enctypes(p: &HostPrerequisites, gmsa: Option<(&str, u32)>) -> Check {
    const ID: &str = "host.kerberos_enctypes";
    const SOURCE: &str = "https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/network-security-configure-encryption-types-allowed-for-kerberos";
    let r = &p.kerberos_encryption_types;
    let Some((name, gmsa_bits)) = gmsa else {
        return c(
            ID,
            Status::Skip,
            "no gMSA is recorded (CreateGmsa or UseCustomGmsa)",
            SOURCE,
        );
    };
    // An unset attribute: the KDC assumes RC4 for the account.
    let gmsa_types = match gmsa_bits & 0x1f {
        0 => 0x4,
        bits => bits,
    };
    let check = |status, message: String| {
        c(ID, status, message, SOURCE)
            .subject(name.to_owned())
            .attr(&r.path, r.shown())
            .attr("gmsa_encryption_types", enctypes(gmsa_types))
    };
    let allowed = match &r.value {
        RegValue::Absent => {
            return check(
                Status::Pass,
                "no policy restricts the host's Kerberos encryption types".into(),
            );
        }
        RegValue::Dword(v) => v & 0x1f,
        other => {
            return check(
                Status::Warn,
                format!("cannot read the host's Kerberos policy ({other:?})"),
            );
        }
    };
    let check = check(
        if allowed & gmsa_types == 0 {
            Status::Fail
        } else {
            Status::Pass
        },
        format!(
            "the host allows {}; the gMSA {name} has {}",
            enctypes(allowed),
            enctypes(gmsa_types)
        ),
    )
    .attr("host_encryption_types", enctypes(allowed));
    if allowed & gmsa_types != 0 {
        return check;
    }
    check.remedy(format!(
        "give the gMSA a type the host allows (`Set-ADServiceAccount {} -KerberosEncryptionType AES128,AES256`, or CreateGmsa with AES), or allow one of its types in the host's policy \"Network security: Configure encryption types allowed for Kerberos\"",
        name.trim_end_matches('$')
    ))
}
