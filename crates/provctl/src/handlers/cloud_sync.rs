//! `provctl cloud-sync …`: CloudSyncService.

use std::process::ExitCode;

use provd_proto::v1;
use provd_proto::v1::cloud_sync_service_client::CloudSyncServiceClient;

use super::*;

/// The CloudSyncSpec the flags describe; the notification email from
/// --notification-email-file or --notification-email-stdin, never a flag.
pub(super) fn cloud_sync_spec(args: &CloudSyncSpecArgs) -> anyhow::Result<v1::CloudSyncSpec> {
    let email = secret_line(
        args.notification_email_file.as_deref(),
        args.notification_email_stdin,
        "notification email",
    )?;
    if email.as_ref().is_some_and(|e| e.trim().is_empty()) {
        return Err(usage(
            "the notification email is empty (leave out --notification-email-file / \
             --notification-email-stdin for no notifications)",
        ));
    }
    let accidental_deletes = if args.no_delete_prevention {
        Some(v1::AccidentalDeletePrevention {
            disabled: true,
            threshold: 0,
        })
    } else {
        args.delete_threshold
            .map(|threshold| v1::AccidentalDeletePrevention {
                disabled: false,
                threshold,
            })
    };
    // clap guarantees exactly one of --enabled and --disabled.
    Ok(v1::CloudSyncSpec {
        enabled: args.enabled,
        password_hash_sync: args.password_hash_sync,
        organizational_units: args.organizational_units.clone(),
        security_groups: args.security_groups.clone(),
        accidental_deletes,
        notification_email: email.map(|e| e.trim().to_owned()).unwrap_or_default(),
    })
}

pub(super) async fn cloud_sync(ctx: &Ctx, cmd: CloudSyncCommand) -> anyhow::Result<ExitCode> {
    let mut client = CloudSyncServiceClient::new(ctx.channel.clone());
    match cmd {
        CloudSyncCommand::Get { domain } => {
            let r = client
                .get_cloud_sync(v1::GetCloudSyncRequest {
                    domain: opt(domain),
                })
                .await?
                .into_inner();
            ctx.out.show(&r, render::cloud_sync)?;
            Ok(ExitCode::SUCCESS)
        }
        CloudSyncCommand::Plan { domain, spec } => {
            let r = client
                .plan_cloud_sync(v1::PlanCloudSyncRequest {
                    domain,
                    spec: Some(cloud_sync_spec(&spec)?),
                })
                .await?
                .into_inner();
            ctx.out.show(&r, |r| render::cloud_sync_plan(&r.changes))?;
            Ok(ExitCode::SUCCESS)
        }
        CloudSyncCommand::Set {
            domain,
            spec,
            mutate,
        } => {
            let r = client
                .set_cloud_sync(v1::SetCloudSyncRequest {
                    domain,
                    spec: Some(cloud_sync_spec(&spec)?),
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        CloudSyncCommand::Start { domain, mutate } => {
            let r = client
                .start_cloud_sync(v1::StartCloudSyncRequest {
                    domain,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        CloudSyncCommand::Pause {
            domain,
            release,
            mutate,
        } => {
            let r = client
                .pause_cloud_sync(v1::PauseCloudSyncRequest {
                    domain,
                    release,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        CloudSyncCommand::Restart {
            domain,
            reset_scope,
            mutate,
        } => {
            let r = client
                .restart_cloud_sync(v1::RestartCloudSyncRequest {
                    domain,
                    reset_scope: reset_scope.iter().map(|s| s.proto()).collect(),
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
    }
}
