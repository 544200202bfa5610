//! What to do about a quarantine, from Microsoft's cloud sync error code
//! reference (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/reference-error-codes>)
//! and, for deletes held back, the how-to's "Allowing deletes"
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>),
//! with the provd call that carries it out. Shared by GetCloudSync and
//! Verify.

use crate::model::Quarantine;

/// The remedy for a quarantine, when provd knows one for its code.
pub fn for_quarantine(q: &Quarantine) -> Option<String> {
    let text = match q.error_code.as_str() {
        "HybridIdentityServiceNoAgentsAssigned" => {
            "no agent is assigned to the domain (Microsoft: \"Probably agents have been removed. \
             Register a new agent.\"): apply the document again (its assign-agent-group change \
             puts this host's agent in the domain's group), or run Install to register the \
             agent; then RestartCloudSync with QUARANTINE_STATE"
        }
        "HybridIdentityServiceNoActiveAgents" => {
            "no agent of the domain is listening (Microsoft: check that the Microsoft Entra \
             Connect provisioning agent service is running, and that outbound 443 to \
             *.servicebus.windows.net is allowed through any proxy): start \
             AADConnectProvisioningAgent (Verify's host.services.running), then RestartCloudSync \
             with QUARANTINE_STATE or wait for the next retry"
        }
        "HybridIdentityServiceInvalidResource" => {
            "the tenant does not know which agent serves the domain (Microsoft: \"The resource \
             name must be set so HIS knows which agent to contact\"; re-register the agent on the \
             domain and restart the configuration): RepairAgent (`provctl agent repair`) \
             registers the agent again through its module, AddDirectory for the domain runs \
             Add-AADCloudSyncADDomain, then RestartCloudSync with FULL"
        }
        "AzureActiveDirectoryInvalidCredential" => {
            "the sync service account (ADToAADSyncServiceAccount) is missing in the tenant \
             (Microsoft: use Repair-AADCloudSyncToolsAccount from the AADCloudSyncTools module, \
             then restart the configuration); provd does not run AADCloudSyncTools"
        }
        _ if q.reason == "TooManyDeletes" => {
            "more users would be deleted than the accidental delete threshold allows: review the \
             deletes; if they are intended, RestartCloudSync with FORCE_DELETES (ADMIN), else \
             fix the scope or the directory"
        }
        _ => return None,
    };
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(code: &str, reason: &str) -> Quarantine {
        Quarantine {
            reason: reason.into(),
            error_code: code.into(),
            error_message: String::new(),
            current_began: None,
            next_attempt: None,
            series_count: 1,
        }
    }

    #[test]
    fn each_documented_code_has_its_remedy() {
        for (code, needle) in [
            ("HybridIdentityServiceNoAgentsAssigned", "Install"),
            (
                "HybridIdentityServiceNoActiveAgents",
                "AADConnectProvisioningAgent",
            ),
            ("HybridIdentityServiceInvalidResource", "AddDirectory"),
            (
                "AzureActiveDirectoryInvalidCredential",
                "Repair-AADCloudSyncToolsAccount",
            ),
        ] {
            let text = for_quarantine(&q(code, "EncounteredQuarantineException")).unwrap();
            assert!(text.contains(needle), "{code}: {text}");
        }
        assert!(
            for_quarantine(&q("", "TooManyDeletes"))
                .unwrap()
                .contains("FORCE_DELETES")
        );
        assert_eq!(for_quarantine(&q("SomethingNew", "Unknown")), None);
    }
}
