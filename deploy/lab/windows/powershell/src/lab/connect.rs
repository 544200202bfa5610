//! `Connect-AADCloudSyncAzureAD -AccessToken -TenantId -UserPrincipalName`: registers this
//! machine as an agent of the tenant.
//!
//! In the lab: a P-256 key and a CSR (rcgen), `POST {Url}/register/RegisterConnector` to the
//! tenant emulator with the token in the body (`emulator.rs`; the emulator checks the
//! token's audience, tenant and expiry and signs the CSR with CN = the new agent id), then
//! the identity into `<ProgramData>\ProvdLabAgent\identity.json` (where the lab agent reads
//! it) and `TenantID` under the agent's registry key. The emulator's address and CA are the
//! lab key `HKLM\SOFTWARE\ProvdLab\TenantEmulator` (`Url`, `CaPem`, optional
//! `HeartbeatIntervalSeconds`): the real module derives its endpoints from the agent's
//! environment (ENVIRONMENTNAME), the lab maps that to the emulator.
//!
//! The one choice the stand-in makes where Microsoft documents nothing (design note, risk
//! R2): [`REUSE_IDENTITY`]. Connect again with the tenant of the identity already stored
//! re-authenticates without registering a new agent, so `set-writeback` (Connect, then
//! Set-…) does not add agents — unless the stored certificate has expired: then it
//! registers anew (what provd's RepairAgent relies on in the lab). Verify on a real server
//! whether the module re-registers. The issued certificate also goes into
//! `LocalMachine\My` (`certstore.rs`).
//!
//! Fails as documented when a machine or user execution policy is `Unrestricted`
//! (how-to-troubleshoot: "Agent registration fails with security error"; the text below is
//! the stand-in's, Microsoft does not quote the error).

use super::{AGENT_KEY, WindowsLab, certstore, http, module, say, sys};
use crate::emulator;
use crate::errors;
use crate::plan::Failure;
use crate::policy;
use crate::run::{Invocation, Output};
use crate::state::{self, Identity};

/// Connect with the tenant of the stored identity reuses it (no new registration).
pub const REUSE_IDENTITY: bool = true;

pub const EMULATOR_KEY: &str = r"HKLM\SOFTWARE\ProvdLab\TenantEmulator";

pub fn connect(lab: &mut WindowsLab, call: &Invocation) -> Result<Vec<Output>, Failure> {
    if call.parameter_set != "AccessToken" {
        return Err(errors::not_modelled(
            &call.cmdlet,
            "Connect-AADCloudSyncAzureAD -Credential (the lab signs in with a token only)",
        ));
    }
    let token = call.string("AccessToken").unwrap_or_default();
    let tenant = call.string("TenantId").unwrap_or_default();
    if let Some(scope) = policy::unrestricted(&module::execution_policies()) {
        return Err(errors::record(
            format!(
                "Agent registration failed with a security error: the {scope} execution policy is \
                 Unrestricted; machine and user policies must be Undefined or RemoteSigned. \
                 (LAB STAND-IN wording of the failure Microsoft documents in how-to-troubleshoot.)"
            ),
            format!("System.Security.SecurityException,{}", call.class),
            "SecurityError",
            "System.Security.SecurityException",
            &call.cmdlet,
        ));
    }
    if REUSE_IDENTITY
        && let Some(identity) = lab.read::<Identity>(state::IDENTITY)
        && identity.tenant_id.eq_ignore_ascii_case(tenant)
        && !emulator::certificates(&identity.certificate_pem)
            .first()
            .is_none_or(|der| certstore::expired(der))
    {
        say(&format!(
            "Connect-AADCloudSyncAzureAD: already registered as agent {} of tenant {tenant}; reusing it",
            identity.agent_id
        ));
        lab.session = Some(identity);
        return Ok(Vec::new());
    }
    let url = sys::reg_get(EMULATOR_KEY, "Url")
        .and_then(|v| v.text())
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            call.failed(format!(
                "LAB STAND-IN: no tenant emulator to register with: {EMULATOR_KEY} has no Url \
             (deploy/lab/wine.sh tenant-emulator URL CA_FILE)"
            ))
        })?;
    let url = url.trim().trim_end_matches('/').to_owned();
    let ca = sys::reg_get(EMULATOR_KEY, "CaPem").and_then(|v| v.text());
    let interval = match sys::reg_get(EMULATOR_KEY, "HeartbeatIntervalSeconds") {
        Some(sys::RegValue::Dword(n)) if n > 0 => Some(u64::from(n)),
        _ => None,
    };
    let machine = sys::computer_name();
    let key = rcgen::KeyPair::generate()
        .map_err(|e| call.failed(format!("Cannot create the agent's key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| {
        call.failed(format!(
            "Cannot create the agent's certificate request: {e}"
        ))
    })?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, machine.clone());
    let csr = params.serialize_request(&key).map_err(|e| {
        call.failed(format!(
            "Cannot create the agent's certificate request: {e}"
        ))
    })?;
    let body = emulator::registration_request(token, tenant, &machine, csr.der());
    let agent =
        http::agent(ca.as_deref(), None).map_err(|e| call.failed(format!("LAB STAND-IN: {e}")))?;
    let endpoint = format!("{url}/register/RegisterConnector");
    let (status, answer) = http::answer(
        agent
            .post(&endpoint)
            .content_type("application/xml; charset=utf-8")
            .send(body.as_str()),
    )
    .map_err(|e| {
        call.failed(format!(
            "Unable to reach the registration service at {endpoint}: {e}"
        ))
    })?;
    if status != 200 && emulator::element_text(&answer, "IsSuccessful").is_none() {
        return Err(call.failed(format!(
            "The registration service answered HTTP {status}: {}",
            http::error_message(&answer)
        )));
    }
    let der = emulator::registration_result(&answer)
        .map_err(|m| call.failed(format!("Agent registration failed: {m}")))?;
    let agent_id = emulator::subject_common_name(&der)
        .ok_or_else(|| call.failed("Agent registration failed: the certificate names no agent"))?;
    let identity = Identity {
        agent_id: agent_id.clone(),
        machine_name: machine.clone(),
        service_url: url.clone(),
        certificate_pem: emulator::pem("CERTIFICATE", &der),
        private_key_pem: key.serialize_pem(),
        service_ca_pem: ca.filter(|c| !c.trim().is_empty()).map(|c| {
            emulator::certificates(&c)
                .iter()
                .map(|der| emulator::pem("CERTIFICATE", der))
                .collect()
        }),
        heartbeat_interval_seconds: interval,
        tenant_id: tenant.to_owned(),
    };
    lab.write(state::IDENTITY, &identity)
        .map_err(|e| call.failed(format!("Cannot store the agent's identity: {e}")))?;
    certstore::add_to_my(&der).map_err(|e| call.failed(format!("LAB STAND-IN: {e}")))?;
    sys::reg_set_sz(AGENT_KEY, "TenantID", tenant).map_err(|e| call.failed(e))?;
    say(&format!(
        "Connect-AADCloudSyncAzureAD: registered {machine} as agent {agent_id} with {url}"
    ));
    lab.session = Some(identity);
    Ok(Vec::new())
}
