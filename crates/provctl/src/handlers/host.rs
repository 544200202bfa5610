//! `provctl host …`: HostService.

use std::process::ExitCode;

use provd_proto::v1;
use provd_proto::v1::host_service_client::HostServiceClient;

use super::*;

pub(super) async fn host(ctx: &Ctx, cmd: HostCommand) -> anyhow::Result<ExitCode> {
    let mut client = HostServiceClient::new(ctx.channel.clone());
    match cmd {
        HostCommand::Plan => {
            let r = client
                .plan_host_remediation(v1::PlanHostRemediationRequest {})
                .await?
                .into_inner();
            ctx.out.show(&r, render::host_plan)?;
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Remediate { fixes, mutate } => {
            let r = client
                .remediate_host(v1::RemediateHostRequest {
                    fixes: fixes.iter().map(|f| f.proto()).collect(),
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
    }
}
