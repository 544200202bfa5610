//! ConfigurationService from a test: plan as (step, action) pairs, apply
//! without a credential and wait for the operation, and the agent's
//! exe.config less what provd's `agent-settings` section writes.

use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::transport::Channel;

/// PlanConfiguration's changes (no credential).
pub async fn plan_changes(channel: &Channel, desired: &v1::DesiredState) -> Vec<v1::PlannedChange> {
    plan_changes_as(channel, desired, None).await
}

/// PlanConfiguration's changes with `credential`.
pub async fn plan_changes_as(
    channel: &Channel,
    desired: &v1::DesiredState,
    credential: Option<v1::Credential>,
) -> Vec<v1::PlannedChange> {
    ConfigurationServiceClient::new(channel.clone())
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential,
        })
        .await
        .unwrap()
        .into_inner()
        .changes
}

/// PlanConfiguration's changes as (step, action).
pub async fn plan_actions(channel: &Channel, desired: &v1::DesiredState) -> Vec<(String, String)> {
    plan_changes(channel, desired)
        .await
        .into_iter()
        .map(|c| (c.step, c.action))
        .collect()
}

/// ApplyConfiguration without a credential, to its end.
pub async fn apply_document(
    channel: &Channel,
    desired: &v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    apply_document_as(channel, desired, None).await
}

/// ApplyConfiguration with `credential`: the call's answer.
pub async fn start_document(
    channel: &Channel,
    desired: &v1::DesiredState,
    credential: Option<v1::Credential>,
) -> Result<v1::Operation, tonic::Status> {
    ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired.clone()),
            credential,
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().operation.unwrap_or_default())
}

/// ApplyConfiguration with `credential`, to its end.
pub async fn apply_document_as(
    channel: &Channel,
    desired: &v1::DesiredState,
    credential: Option<v1::Credential>,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = start_document(channel, desired, credential).await.unwrap();
    super::finish(channel, op).await
}

/// A UTF-8-with-BOM, CRLF exe.config less the `<system.net>` block and the
/// `<enforceFIPSPolicy enabled="false"/>` line provd inserted into the
/// lab's stand-in file: what the installer wrote, byte for byte.
pub fn without_provd_elements(bytes: &[u8]) -> Vec<u8> {
    let (bom, body) = bytes.split_at(3);
    let text = std::str::from_utf8(body).unwrap();
    let start = text
        .find("\r\n  <system.net>")
        .expect("a <system.net> block");
    let end = text.find("</system.net>").unwrap() + "</system.net>".len();
    let rest = format!("{}{}", &text[..start], &text[end..])
        .replace("\r\n    <enforceFIPSPolicy enabled=\"false\"/>", "");
    [bom, rest.as_bytes()].concat()
}
