//! `Set-AADCloudSyncPasswordWritebackConfiguration -Enable $true|$false`: the tenant's
//! password writeback flag for this agent.
//!
//! In the lab: `PUT {serviceUrl}/_agent/{agentId}/passwordWriteback` `{"enabled": …}` to the
//! tenant emulator over mutual TLS with the agent's own certificate (modelled: Microsoft
//! documents neither the call nor how the module makes it). It needs the agent's identity
//! from `Connect-AADCloudSyncAzureAD` earlier in the same run (in-session state, as
//! set-writeback.ps1 does it; design note risk R3: that this works without `-Credential` is
//! an assumption), or, in the `-Credential` form, the stored identity.

use super::{WindowsLab, http, say};
use crate::plan::Failure;
use crate::run::{Invocation, Output};
use crate::state::{self, Identity};
use crate::value::Value;

pub fn set(lab: &mut WindowsLab, call: &Invocation) -> Result<Vec<Output>, Failure> {
    let enable = matches!(call.get("Enable"), Some(Value::Bool(true)));
    let identity = match (&lab.session, call.get("Credential")) {
        (Some(identity), _) => identity.clone(),
        (None, Some(_)) => lab.read::<Identity>(state::IDENTITY).ok_or_else(|| {
            call.failed("The agent is not registered: run Connect-AADCloudSyncAzureAD first.")
        })?,
        (None, None) => {
            return Err(call
                .failed("Not connected: run Connect-AADCloudSyncAzureAD first in this session."));
        }
    };
    let agent = http::agent(
        identity.service_ca_pem.as_deref(),
        Some((&identity.certificate_pem, &identity.private_key_pem)),
    )
    .map_err(|e| call.failed(format!("LAB STAND-IN: {e}")))?;
    let url = format!(
        "{}/_agent/{}/passwordWriteback",
        identity.service_url.trim_end_matches('/'),
        identity.agent_id
    );
    let body = serde_json::json!({ "enabled": enable }).to_string();
    let (status, answer) = http::answer(
        agent
            .put(&url)
            .content_type("application/json")
            .send(body.as_str()),
    )
    .map_err(|e| call.failed(format!("Unable to reach the service at {url}: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(call.failed(format!(
            "Setting password writeback failed (HTTP {status}): {}",
            http::error_message(&answer)
        )));
    }
    say(&format!(
        "Set-AADCloudSyncPasswordWritebackConfiguration: password writeback {} for agent {}",
        if enable { "enabled" } else { "disabled" },
        identity.agent_id
    ));
    Ok(Vec::new())
}
