//! `provctl agent …` (AgentService).

use std::process::ExitCode;

use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;

use super::{Ctx, credential, request_id, started};
use crate::args::AgentCommand;
use crate::render;

pub(super) async fn agent(ctx: &Ctx, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    let mut client = AgentServiceClient::new(ctx.channel.clone());
    match cmd {
        AgentCommand::Install {
            source,
            sha256,
            accept_license,
            cloud,
            skip_registration,
            mutate,
        } => {
            let r = client
                .install(v1::InstallRequest {
                    source,
                    sha256,
                    accept_license,
                    cloud: cloud.map_or(0, |c| c.proto()),
                    request_id: request_id(&mutate),
                    skip_registration,
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        AgentCommand::Upload { file } => {
            let package = crate::upload::inspect(&file).await?;
            let done = crate::upload::upload(ctx.channel.clone(), &package, |_| {}).await?;
            if ctx.out.is_json() {
                ctx.out.json(&serde_json::json!({
                    "sha256": done.sha256,
                    "size": done.size,
                    "source": done.source,
                    "already_staged": done.already_staged,
                    "bytes_received": done.bytes_received,
                }))?;
            } else {
                let how = if done.already_staged {
                    "already staged"
                } else {
                    "uploaded"
                };
                ctx.out.text(&format!(
                    "{how}: {} ({} bytes)\ninstall it with: provctl agent install --source {} \
                     --sha256 {} --accept-license\n",
                    done.source, done.size, done.source, done.sha256
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::SignIn { mutate } => {
            let r = client
                .sign_in(v1::SignInRequest {
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        AgentCommand::Repair { force, mutate } => {
            let r = client
                .repair_agent(v1::RepairAgentRequest {
                    force,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        AgentCommand::Uninstall { mutate } => {
            let r = client
                .uninstall(v1::UninstallRequest {
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        AgentCommand::Decommission {
            decommission,
            mutate,
        } => {
            let credential = credential(&decommission.credential)?;
            let r = client
                .decommission_agent(v1::DecommissionAgentRequest {
                    credential,
                    keep_gmsa: decommission.keep_gmsa,
                    delete_gmsa: decommission.delete_gmsa.is_some(),
                    confirm_gmsa_name: decommission.delete_gmsa.unwrap_or_default(),
                    delete_cloud_sync: decommission.delete_cloud_sync.is_some(),
                    confirm_cloud_sync_domain: decommission.delete_cloud_sync.unwrap_or_default(),
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        AgentCommand::PlanDecommission { decommission } => {
            let credential = credential(&decommission.credential)?;
            let r = client
                .plan_decommission(v1::PlanDecommissionRequest {
                    credential,
                    keep_gmsa: decommission.keep_gmsa,
                    delete_gmsa: decommission.delete_gmsa.is_some(),
                    confirm_gmsa_name: decommission.delete_gmsa.unwrap_or_default(),
                    delete_cloud_sync: decommission.delete_cloud_sync.is_some(),
                    confirm_cloud_sync_domain: decommission.delete_cloud_sync.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.out.show(&r, |r| render::decommission_plan(&r.steps))?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Get => {
            let r = client.get_agent(v1::GetAgentRequest {}).await?.into_inner();
            ctx.out.show(&r, render::agent)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
