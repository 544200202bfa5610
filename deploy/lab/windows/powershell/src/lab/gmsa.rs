//! `Add-AADCloudSyncGMSA -CustomGMSAName name$`: the agent service logs on as the gMSA.
//!
//! In the lab: unless the service is flagged as using a managed account
//! (`ServiceAccountManaged` = `01 00 00 00` in its service key, what `sc.exe managedaccount
//! AADConnectProvisioningAgent true` writes; the lab MSI sets it), it fails with the text of
//! Microsoft's troubleshooting page ("Failed changing Windows service credentials to gMSA",
//! azure-ad-hybrid-sync-gmsa-set-logon-service); otherwise the service's logon becomes
//! `DOMAIN\name$` through ChangeServiceConfigW, DOMAIN being the lab's
//! `HKLM\SOFTWARE\ProvdLab\PowerShell\DomainNetbiosName` (a real host is joined to its
//! domain; a Wine prefix is not). Wine stores the account and does not enforce it.

use super::{AGENT_SERVICE, LAB_KEY, sys};
use crate::errors;
use crate::plan::Failure;
use crate::run::{Invocation, Output};

pub fn add(call: &Invocation) -> Result<Vec<Output>, Failure> {
    let Some(name) = call.string("CustomGMSAName") else {
        return Err(errors::not_modelled(
            &call.cmdlet,
            "Add-AADCloudSyncGMSA -Credential (creating provAgentgMSA$)",
        ));
    };
    let service_key = format!(r"HKLM\SYSTEM\CurrentControlSet\Services\{AGENT_SERVICE}");
    let managed = sys::reg_get(&service_key, "ServiceAccountManaged").is_some_and(|v| v.is_set());
    if !managed {
        return Err(call.failed("Failed changing Windows service credentials to gMSA"));
    }
    let account = if name.contains('\\') {
        name.to_owned()
    } else {
        let domain = sys::reg_get(LAB_KEY, "DomainNetbiosName")
            .and_then(|v| v.text())
            .filter(|d| !d.trim().is_empty());
        let Some(domain) = domain else {
            return Err(call.failed(format!(
                "LAB STAND-IN: this host is in no domain: set {LAB_KEY}\\DomainNetbiosName (deploy/lab/wine.sh up does)"
            )));
        };
        format!(r"{}\{name}", domain.trim())
    };
    sys::set_service_logon(AGENT_SERVICE, &account).map_err(|e| {
        call.failed(format!(
            "Failed changing Windows service credentials to gMSA: {e}"
        ))
    })?;
    super::say(&format!(
        "Add-AADCloudSyncGMSA: {AGENT_SERVICE} now logs on as {account}"
    ));
    Ok(Vec::new())
}
