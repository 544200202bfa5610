//! One handler per service: build the request from the flags, call, render.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use zeroize::Zeroizing;

use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::directory_service_client::DirectoryServiceClient;
use provd_proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd_proto::v1::verify_service_client::VerifyServiceClient;
use provd_proto::v1::writeback_service_client::WritebackServiceClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod agent;
mod cloud_sync;
mod diagnostics;
mod host;

use super::connect::Channel;
use super::render::{self, Out};
use super::{
    ApplyArgs, Cli, CloudSyncCommand, CloudSyncSpecArgs, Command, CredentialArgs, DcCommand,
    DiagnosticsCommand, DirectoryCommand, FleetCommand, GmsaCommand, HostCommand, MutateArgs,
    OpsCommand, PlanArgs, VerifyArgs, WatchArgs, WritebackCommand, connect, document, fleet, usage,
};

/// A connected daemon plus where output goes.
struct Ctx {
    channel: Channel,
    out: Out,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Out { format: cli.output };
    // A fleet reaches its hosts through the inventory, not the flags.
    if let Command::Fleet(cmd) = cli.command {
        return fleet_command(out, cli.conn.trace, cmd).await;
    }
    let settings = connect::resolve(&cli.conn)?;
    let ctx = Ctx {
        channel: connect::connect(&settings).await?,
        out,
    };
    match cli.command {
        Command::Agent(cmd) => agent::agent(&ctx, cmd).await,
        Command::Ops(cmd) => ops(&ctx, cmd).await,
        Command::Watch(args) => watch(&ctx, &args.id, args.after).await,
        Command::Gmsa(cmd) => gmsa(&ctx, cmd).await,
        Command::Directory(cmd) => directory(&ctx, cmd).await,
        Command::Dc(cmd) => dc(&ctx, cmd).await,
        Command::Apply(args) => apply(&ctx, args).await,
        Command::Plan(args) => plan(&ctx, args).await,
        Command::Fleet(_) => unreachable!("handled before connecting"),
        Command::Verify(args) => verify(&ctx, args).await,
        Command::Writeback(cmd) => writeback(&ctx, cmd).await,
        Command::CloudSync(cmd) => cloud_sync::cloud_sync(&ctx, cmd).await,
        Command::Host(cmd) => host::host(&ctx, cmd).await,
        Command::Diagnostics(cmd) => diagnostics::diagnostics(&ctx, cmd).await,
        Command::Health { service } => health(&ctx, service).await,
    }
}

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

fn opt(value: Option<String>) -> String {
    value.unwrap_or_default()
}

/// The first line of `text`, without its line ending.
fn first_line(text: &str) -> &str {
    text.split('\n').next().unwrap_or("").trim_end_matches('\r')
}

/// Builds the Credential the flags describe: none without --username; the
/// password from --password-file or --password-stdin, never from a flag.
fn credential(args: &CredentialArgs) -> anyhow::Result<Option<v1::Credential>> {
    let Some(username) = &args.username else {
        return Ok(None);
    };
    let Some(password) = secret_line(
        args.password_file.as_deref(),
        args.password_stdin,
        "password",
    )?
    else {
        return Err(usage(
            "--username needs --password-file FILE or --password-stdin",
        ));
    };
    if password.is_empty() {
        return Err(usage("the password is empty"));
    }
    Ok(Some(v1::Credential {
        username: username.clone(),
        password: password.to_string(),
        kerberos: None,
    }))
}

/// A secret's value (`what`, e.g. "password") from the first line of `file`
/// or of standard input; `None` when neither is named. Secrets are never
/// flags: they would show in the process list and the shell's history.
fn secret_line(
    file: Option<&Path>,
    stdin: bool,
    what: &str,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    let text = if let Some(path) = file {
        Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {what} file {}", path.display()))?,
        )
    } else if stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from standard input"))?;
        line
    } else {
        return Ok(None);
    };
    Ok(Some(Zeroizing::new(first_line(&text).to_string())))
}

/// After a mutating call: print the operation (or, with --wait, watch it to
/// its end). `response` is what JSON output prints.
async fn started<R: serde::Serialize>(
    ctx: &Ctx,
    response: &R,
    operation: Option<&v1::Operation>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let op = operation.context("the daemon's response carries no operation")?;
    if ctx.out.is_json() {
        ctx.out.json(response)?;
    } else if wait {
        ctx.out.text(&format!(
            "operation {} ({}): {}\n",
            op.id,
            render::op_kind(op.kind),
            op.description
        ))?;
    } else {
        ctx.out.text(&render::operation(op))?;
    }
    if wait {
        watch(ctx, &op.id, 0).await
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn request_id(mutate: &MutateArgs) -> String {
    opt(mutate.request_id.clone())
}

// ---------------------------------------------------------------------------
// OperationsService
// ---------------------------------------------------------------------------

async fn ops(ctx: &Ctx, cmd: OpsCommand) -> anyhow::Result<ExitCode> {
    let mut client = OperationsServiceClient::new(ctx.channel.clone());
    match cmd {
        OpsCommand::Get { id } => {
            let r = client
                .get_operation(v1::GetOperationRequest { id })
                .await?
                .into_inner();
            let op = r.operation.clone().unwrap_or_default();
            ctx.out.show(&r, |_| render::operation(&op))?;
        }
        OpsCommand::List {
            state,
            kind,
            by,
            since,
            until,
            page_size,
            page_token,
        } => {
            let r = client
                .list_operations(v1::ListOperationsRequest {
                    page_size: page_size.unwrap_or(0),
                    page_token: opt(page_token),
                    state: state.map_or(0, |s| s.proto()),
                    kind: kind.map_or(0, |k| k.proto()),
                    initiator: opt(by),
                    started_after: since,
                    started_before: until,
                })
                .await?
                .into_inner();
            ctx.out.show(&r, render::operations)?;
        }
        OpsCommand::Cancel { id, wait } => {
            let r = client
                .cancel_operation(v1::CancelOperationRequest { id })
                .await?
                .into_inner();
            return started(ctx, &r, r.operation.as_ref(), wait).await;
        }
        OpsCommand::Watch(WatchArgs { id, after }) => return watch(ctx, &id, after).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams an operation's events, then its terminal state. Exit 1 unless it
/// SUCCEEDED.
async fn watch(ctx: &Ctx, id: &str, after: u64) -> anyhow::Result<ExitCode> {
    use v1::watch_operation_response::Item;
    let mut client = OperationsServiceClient::new(ctx.channel.clone());
    let mut stream = client
        .watch_operation(v1::WatchOperationRequest {
            id: id.to_string(),
            after_sequence: after,
        })
        .await?
        .into_inner();
    let mut terminal = None;
    while let Some(message) = stream.message().await? {
        if ctx.out.is_json() {
            ctx.out.json(&message)?;
        }
        match message.item {
            Some(Item::Event(event)) if !ctx.out.is_json() => {
                ctx.out.text(&render::event(&event))?;
            }
            Some(Item::Operation(op)) => {
                if !ctx.out.is_json() {
                    ctx.out.text(&render::terminal(&op))?;
                }
                terminal = Some(op);
            }
            _ => {}
        }
    }
    let op = terminal.with_context(|| {
        format!("the watch of operation {id} ended without the operation's final state")
    })?;
    Ok(if op.state == v1::OperationState::Succeeded as i32 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---------------------------------------------------------------------------
// AgentService
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// ServiceAccountService
// ---------------------------------------------------------------------------

async fn gmsa(ctx: &Ctx, cmd: GmsaCommand) -> anyhow::Result<ExitCode> {
    let mut client = ServiceAccountServiceClient::new(ctx.channel.clone());
    match cmd {
        GmsaCommand::Create {
            domain,
            name,
            container_dn,
            dns_host_name,
            password_interval_days,
            encryption_types,
            principals,
            credential: cred,
            mutate,
        } => {
            let r = client
                .create_gmsa(v1::CreateGmsaRequest {
                    name: opt(name),
                    container_dn: opt(container_dn),
                    dns_host_name: opt(dns_host_name),
                    password_interval_days: password_interval_days.unwrap_or(0),
                    encryption_types: encryption_types.iter().map(|e| e.proto()).collect(),
                    principals_allowed_to_retrieve_password: principals,
                    domain,
                    credential: credential(&cred)?,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        GmsaCommand::UseCustom {
            name,
            domain,
            host_account,
            credential: cred,
            mutate,
        } => {
            let r = client
                .use_custom_gmsa(v1::UseCustomGmsaRequest {
                    name,
                    domain,
                    credential: credential(&cred)?,
                    host_account: opt(host_account),
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        GmsaCommand::Get {
            domain,
            credential: cred,
        } => {
            let r = client
                .get_service_account(v1::GetServiceAccountRequest {
                    domain: opt(domain),
                    credential: credential(&cred)?,
                })
                .await?
                .into_inner();
            if !ctx.out.is_json() && !r.configured {
                ctx.out.text("no service account recorded: run `provctl gmsa create` or `provctl gmsa use-custom`\n")?;
            } else {
                ctx.out.generic(&r)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        GmsaCommand::Grant {
            domain,
            profiles,
            organizational_units,
            mode,
            trustee,
            credential: cred,
            mutate,
        } => {
            let r = client
                .grant_permissions(v1::GrantPermissionsRequest {
                    domain,
                    profiles: profiles.iter().map(|p| p.proto()).collect(),
                    organizational_units,
                    mode: mode.proto(),
                    trustee: opt(trustee),
                    credential: credential(&cred)?,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
    }
}

// ---------------------------------------------------------------------------
// DirectoryService
// ---------------------------------------------------------------------------

async fn directory(ctx: &Ctx, cmd: DirectoryCommand) -> anyhow::Result<ExitCode> {
    let mut client = DirectoryServiceClient::new(ctx.channel.clone());
    match cmd {
        DirectoryCommand::Add {
            domain,
            preferred_domain_controllers,
            credential: cred,
            mutate,
        } => {
            let r = client
                .add_directory(v1::AddDirectoryRequest {
                    domain,
                    credential: credential(&cred)?,
                    preferred_domain_controllers,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        DirectoryCommand::List => {
            let r = client
                .list_directories(v1::ListDirectoriesRequest {})
                .await?
                .into_inner();
            ctx.out.show(&r, render::directories)?;
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::Remove { domain, mutate } => {
            let r = client
                .remove_directory(v1::RemoveDirectoryRequest {
                    domain,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
    }
}

// ---------------------------------------------------------------------------
// DomainControllerService
// ---------------------------------------------------------------------------

async fn dc(ctx: &Ctx, cmd: DcCommand) -> anyhow::Result<ExitCode> {
    let mut client = DomainControllerServiceClient::new(ctx.channel.clone());
    match cmd {
        DcCommand::Discover {
            domain,
            skip_probe,
            probe_timeout,
            credential: cred,
        } => {
            let r = client
                .discover_domain_controllers(v1::DiscoverDomainControllersRequest {
                    domain,
                    credential: credential(&cred)?,
                    skip_probe,
                    probe_timeout,
                })
                .await?
                .into_inner();
            ctx.out.show(&r, render::domain_controllers)?;
            Ok(ExitCode::SUCCESS)
        }
        DcCommand::GetPriority { domain } => {
            let r = client
                .get_priority(v1::GetPriorityRequest { domain })
                .await?
                .into_inner();
            ctx.out.show(&r, render::priority)?;
            Ok(ExitCode::SUCCESS)
        }
        DcCommand::SetPriority {
            domain,
            domain_controllers,
            clear: _,
            etag,
            allow_unreachable,
            credential: cred,
            mutate,
        } => {
            // clap guarantees a list or --clear; an empty list clears.
            let r = client
                .set_priority(v1::SetPriorityRequest {
                    domain,
                    domain_controllers,
                    etag: opt(etag),
                    allow_unreachable,
                    request_id: request_id(&mutate),
                    credential: credential(&cred)?,
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
    }
}

// ---------------------------------------------------------------------------
// ConfigurationService
// ---------------------------------------------------------------------------

/// Plan, then apply and follow: the operator sees what will change before
/// the events of the changes themselves.
async fn apply(ctx: &Ctx, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut desired = document::load(&args.file)?;
    // `agent.source = "upload:PATH"`: the file goes to the host first.
    if let Some(package) = crate::upload::document_package(&desired, &args.file).await? {
        crate::upload::upload(ctx.channel.clone(), &package, |_| {}).await?;
        crate::upload::name_staged(&mut desired, &package);
    }
    let mut client = ConfigurationServiceClient::new(ctx.channel.clone());
    let credential = credential(&args.credential)?;
    if !ctx.out.is_json() {
        let plan = client
            .plan_configuration(v1::PlanConfigurationRequest {
                desired: Some(desired.clone()),
                credential: credential.clone(),
            })
            .await?
            .into_inner();
        ctx.out.text(&render::plan(&plan))?;
    }
    let r = client
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired),
            credential,
            request_id: opt(args.request_id.clone()),
        })
        .await?
        .into_inner();
    started(ctx, &r, r.operation.as_ref(), !args.no_wait).await
}

async fn plan(ctx: &Ctx, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let desired = document::load(&args.file)?;
    let r = ConfigurationServiceClient::new(ctx.channel.clone())
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired),
            credential: credential(&args.credential)?,
        })
        .await?
        .into_inner();
    ctx.out.show(&r, render::plan)?;
    Ok(ExitCode::SUCCESS)
}

async fn fleet_command(out: Out, trace: bool, cmd: FleetCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FleetCommand::Apply(args) => {
            let hosts = fleet::load_inventory(&args.inventory, trace)?;
            let mut desired = document::load(&args.file)?;
            if args.no_canary {
                fleet::canary_skippable(&desired)
                    .map_err(|why| anyhow::anyhow!("--no-canary refused: {why}"))?;
            }
            // An `upload:` package goes to every host before any apply.
            crate::upload::stage_for_fleet(
                &mut desired,
                &args.file,
                &hosts,
                args.concurrency.min(args.upload_concurrency),
                out.is_json(),
            )
            .await?;
            let pacing = fleet::Pacing {
                concurrency: args.concurrency,
                wave_size: args.wave_size.unwrap_or(hosts.len()),
                registration_gap: args.registration_gap,
                continue_on_error: args.continue_on_error,
                canary: !args.no_canary,
            };
            let report = fleet::apply(
                hosts,
                desired,
                credential(&args.credential)?,
                pacing,
                out.is_json(),
            )
            .await;
            if let Some(path) = &args.report {
                std::fs::write(path, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if out.is_json() {
                out.json(&report)?;
            } else {
                out.text(&fleet::render_report(&report))?;
            }
            Ok(if report.succeeded == report.hosts.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        FleetCommand::Diagnostics(args) => {
            let hosts = fleet::load_inventory(&args.inventory, trace)?;
            std::fs::create_dir_all(&args.out_dir)?;
            let rows = crate::diagnostics::fleet(
                hosts,
                diagnostics::bounds(args.bounds),
                &args.out_dir,
                args.concurrency,
            )
            .await;
            if out.is_json() {
                out.json(&rows)?;
            } else {
                out.text(&crate::diagnostics::render_fleet(&rows))?;
            }
            Ok(if rows.iter().all(|r| r.status == "OK") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        FleetCommand::Verify(args) => {
            let hosts = fleet::load_inventory(&args.inventory, trace)?;
            let credential = credential(&args.credential)?;
            let rows = crate::fleet_verify::verify(hosts, credential, args.concurrency).await;
            show_rows(out, &rows, crate::fleet_verify::render_verify, |r| r.failed)
        }
        FleetCommand::Status(args) => {
            let hosts = fleet::load_inventory(&args.inventory, trace)?;
            let rows = crate::fleet_status::status(hosts, args.concurrency, args.timeout).await;
            show_rows(out, &rows, crate::fleet_status::render_status, |r| r.failed)
        }
    }
}

/// A fleet read's rows as one JSON array or the table; exit 1 if any host
/// failed.
fn show_rows<R: serde::Serialize>(
    out: Out,
    rows: &[R],
    table: fn(&[R]) -> String,
    failed: fn(&R) -> bool,
) -> anyhow::Result<ExitCode> {
    if out.is_json() {
        out.json(&rows)?;
    } else {
        out.text(&table(rows))?;
    }
    Ok(if rows.iter().any(failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ---------------------------------------------------------------------------
// VerifyService
// ---------------------------------------------------------------------------

/// Streams check results, then the report. Exit 1 on a FAIL report.
async fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    use v1::verify_response::Item;
    let mut client = VerifyServiceClient::new(ctx.channel.clone());
    let categories: Vec<i32> = args.categories.iter().map(|c| c.proto()).collect();
    let domains = args.domains.clone();
    let mut stream = client
        .verify(v1::VerifyRequest {
            domains: args.domains,
            categories: categories.clone(),
            credential: credential(&args.credential)?,
            check_timeout: args.check_timeout,
        })
        .await?
        .into_inner();
    if !ctx.out.is_json() {
        let mut scope = Vec::new();
        if !domains.is_empty() {
            scope.push(format!("domains {}", domains.join(",")));
        }
        if !categories.is_empty() {
            scope.push(format!(
                "categories {}",
                render::check_category_list(&categories)
            ));
        }
        if !scope.is_empty() {
            ctx.out.text(&format!("verifying {}\n", scope.join("; ")))?;
        }
    }
    let mut report = None;
    let mut checks = Vec::new();
    while let Some(message) = stream.message().await? {
        if ctx.out.is_json() {
            ctx.out.json(&message)?;
        }
        match message.item {
            Some(Item::Check(check)) => {
                if !ctx.out.is_json() {
                    ctx.out.text(&render::check_progress(&check))?;
                }
                checks.push(check);
            }
            Some(Item::Report(r)) => {
                if !ctx.out.is_json() {
                    ctx.out.text(&render::check_table(&checks))?;
                    ctx.out.text(&render::verify_report(&r))?;
                }
                report = Some(r);
            }
            None => {}
        }
    }
    let report = report.context("the verify stream ended without a report")?;
    Ok(if report.status == v1::CheckStatus::Fail as i32 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ---------------------------------------------------------------------------
// WritebackService
// ---------------------------------------------------------------------------

async fn writeback(ctx: &Ctx, cmd: WritebackCommand) -> anyhow::Result<ExitCode> {
    let mut client = WritebackServiceClient::new(ctx.channel.clone());
    match cmd {
        WritebackCommand::Set {
            enable,
            disable: _,
            domains,
            credential: cred,
            mutate,
        } => {
            // clap guarantees exactly one of --enable and --disable.
            let r = client
                .set_password_writeback(v1::SetPasswordWritebackRequest {
                    enable,
                    domains,
                    credential: credential(&cred)?,
                    request_id: request_id(&mutate),
                })
                .await?
                .into_inner();
            started(ctx, &r, r.operation.as_ref(), mutate.wait).await
        }
        WritebackCommand::Get {
            domain,
            user_sample_size,
            credential: cred,
        } => {
            let r = client
                .get_password_writeback(v1::GetPasswordWritebackRequest {
                    domain: opt(domain),
                    credential: credential(&cred)?,
                    user_sample_size: user_sample_size.unwrap_or(0),
                })
                .await?
                .into_inner();
            ctx.out.generic(&r)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---------------------------------------------------------------------------
// grpc.health.v1
// ---------------------------------------------------------------------------

async fn health(ctx: &Ctx, service: String) -> anyhow::Result<ExitCode> {
    let mut client = HealthClient::new(ctx.channel.clone());
    let r = client
        .check(tonic_health::pb::HealthCheckRequest { service })
        .await?
        .into_inner();
    let status = ServingStatus::try_from(r.status).map_or_else(
        |_| format!("UNKNOWN({})", r.status),
        |s| s.as_str_name().to_string(),
    );
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({ "status": status }))?;
    } else {
        ctx.out.text(&format!("{status}\n"))?;
    }
    Ok(if r.status == ServingStatus::Serving as i32 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests;
