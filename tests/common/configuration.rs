//! ConfigurationService from a test: plan as (step, action) pairs, apply
//! without a credential and wait for the operation, and the agent's
//! exe.config less what provd's `agent-settings` section writes.

use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::transport::Channel;

/// PlanConfiguration's changes as (step, action).
pub async fn plan_actions(channel: &Channel, desired: &v1::DesiredState) -> Vec<(String, String)> {
    ConfigurationServiceClient::new(channel.clone())
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .map(|c| (c.step, c.action))
        .collect()
}

/// ApplyConfiguration without a credential, to its end.
pub async fn apply_document(
    channel: &Channel,
    desired: &v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired.clone()),
            credential: None,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
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
