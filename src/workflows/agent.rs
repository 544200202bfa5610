//! AgentService's workflows: install the agent package, report its state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::drift::AgentChanges;
use super::operations::{Job, OperationSpec, Outcome, Progress, RequestFingerprint, job};
use super::package::{FetchLimits, PackageSource, Uploads, fetch_https, parse_source};
use super::staging::fetch;
use super::tenant::{TenantStatus, TenantWorkflows};
use super::{Caller, Error, FieldViolation, Operations, Paths, validate};
use crate::backends::download::PackageDownload;
use crate::backends::host::installer::version_cmp;
use crate::backends::host::{
    AgentStatus, Cloud, Host, HostError, InstallerFailure, PackageKind, PackageToInstall,
    ServiceAction, ServiceState, package_kind, package_version,
};
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::workflows::PreconditionReason;

/// Install as the transport hands it over: raw fields, validated here.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    pub source: String,
    pub sha256: String,
    pub accept_license: bool,
    pub cloud: Option<Cloud>,
    pub request_id: String,
    pub skip_registration: bool,
}

/// A validated install request.
#[derive(Debug, Clone)]
struct InstallPlan {
    source: PackageSource,
    /// `None` for an upload: its staged file's extension says.
    kind: Option<PackageKind>,
    digest: [u8; 32],
    cloud: Cloud,
    register: bool,
}

/// GetAgent's answer.
#[derive(Debug, Clone)]
pub enum AgentReport {
    Unavailable { reason: String },
    Available(AgentStatus),
}

pub struct AgentWorkflows {
    operations: Arc<Operations>,
    /// Where DecommissionAgent's record is, which a successful Install
    /// clears.
    store: Arc<dyn Store>,
    host: Arc<dyn Host>,
    /// Marks the installer runs as provd's (the drift watch).
    changes: Arc<AgentChanges>,
    paths: Paths,
    tenant: Arc<TenantWorkflows>,
    /// The cloud provd's tenant is configured for.
    tenant_cloud: Cloud,
    /// Where `staged:` sources are.
    uploads: Arc<Uploads>,
    /// How https:// sources are fetched.
    download: Arc<dyn PackageDownload>,
}

/// Where an Install's package comes from, beside a local file.
pub struct PackageSources {
    pub uploads: Arc<Uploads>,
    pub download: Arc<dyn PackageDownload>,
}

impl AgentWorkflows {
    #[expect(clippy::too_many_arguments, reason = "the backends it composes")]
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        host: Arc<dyn Host>,
        changes: Arc<AgentChanges>,
        paths: Paths,
        tenant: Arc<TenantWorkflows>,
        tenant_cloud: Cloud,
        sources: PackageSources,
    ) -> Self {
        Self {
            operations,
            store,
            host,
            changes,
            paths,
            tenant,
            tenant_cloud,
            uploads: sources.uploads,
            download: sources.download,
        }
    }

    /// Install's field checks alone (for a document that embeds it).
    pub fn check_install(&self, request: &InstallRequest) -> Vec<FieldViolation> {
        match validate_install(request, self.tenant_cloud) {
            Err(Error::InvalidArgument(v)) => v,
            _ => Vec::new(),
        }
    }

    /// The version an MSI at a `file://` or `staged:` source installs;
    /// `None` for an .exe, a pipe, an https:// source (not fetched to
    /// plan) or an unreadable package. Reading an MSI is blocking I/O, so
    /// it runs on the blocking pool, and `cancel` ends the wait.
    pub async fn package_version_of(
        &self,
        source: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<Option<String>, Error> {
        let path = match parse_source(source) {
            Ok(PackageSource::File(path)) => path,
            Ok(PackageSource::Staged(digest)) => match self.uploads.staged_path(&digest).await {
                Some(path) => path,
                None => return Ok(None),
            },
            Ok(PackageSource::Https(_)) | Err(_) => return Ok(None),
        };
        if package_kind(&path) != Some(PackageKind::Msi) {
            return Ok(None);
        }
        // Only a regular file can be read ahead of the install: a named pipe
        // would block the reader until a writer comes, and its bytes are
        // Install's to stream. Its version is then unknown, as an .exe's.
        if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let read = tokio::task::spawn_blocking(move || package_version(&path).ok().map(|(_, v)| v));
        let never = CancellationToken::new();
        tokio::select! {
            version = read => Ok(version.ok().flatten()),
            () = cancel.unwrap_or(&never).cancelled() => Err(Error::Cancelled),
        }
    }

    pub async fn tenant_status(&self) -> Result<TenantStatus, Error> {
        self.tenant.status().await
    }

    pub fn tenant_name(&self) -> String {
        self.tenant.tenant().tenant().to_owned()
    }

    pub async fn sign_in(
        &self,
        caller: &Caller,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        self.tenant.sign_in(caller, request_id).await
    }

    /// RepairAgent: the registration again, when it is what is broken.
    pub async fn repair(
        &self,
        caller: &Caller,
        request: super::tenant::RepairRequest,
    ) -> Result<OperationRecord, Error> {
        self.tenant.repair(caller, request).await
    }

    pub async fn get_agent(&self) -> Result<AgentReport, Error> {
        if let Err(reason) = self.host.availability() {
            return Ok(AgentReport::Unavailable { reason });
        }
        match self.host.agent_status().await {
            Ok(status) => Ok(AgentReport::Available(status)),
            Err(HostError::Unavailable(reason)) => Ok(AgentReport::Unavailable { reason }),
            Err(
                err @ (HostError::Installer { .. } | HostError::Refused { .. } | HostError::Io(_)),
            ) => Err(Error::Unavailable(err.to_string())),
        }
    }

    pub async fn uninstall(
        &self,
        caller: &Caller,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", request_id)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let spec = OperationSpec {
            kind: OperationKind::Uninstall,
            request_id,
            fingerprint: RequestFingerprint::new(),
            description: "uninstall the agent package".into(),
            initiator: caller.name.clone(),
        };
        let host = self.host.clone();
        let changes = self.changes.clone();
        let log = self.paths.staging_dir.clone();
        self.operations
            .start(spec, move |progress| {
                super::uninstall::run(progress, host, changes, log)
            })
            .await
    }

    pub async fn install(
        &self,
        caller: &Caller,
        request: InstallRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_install(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_install(
        &self,
        caller: &Caller,
        request: InstallRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let (plan, request_id) = validate_install(&request, self.tenant_cloud)?;
        let spec = OperationSpec {
            kind: OperationKind::Install,
            request_id,
            // An https URL's query is left out: it may be a token.
            fingerprint: RequestFingerprint::new()
                .text("source", &plan.source.shown())
                .text("sha256", &hex::encode(plan.digest))
                .variant("cloud", &plan.cloud)
                .flag("register", plan.register),
            description: format!("install agent package from {}", plan.source.shown()),
            initiator: caller.name.clone(),
        };
        let host = self.host.clone();
        let changes = self.changes.clone();
        let paths = self.paths.clone();
        let tenant = self.tenant.clone();
        let store = self.store.clone();
        let sources = PackageSources {
            uploads: self.uploads.clone(),
            download: self.download.clone(),
        };
        Ok((
            spec,
            job(move |progress| async move {
                let result =
                    run_install(progress, host, changes, tenant, paths, sources, plan).await?;
                // The agent is provd's again: Verify checks it as installed.
                super::decommission::record::clear(&store).await?;
                Ok(result)
            }),
        ))
    }
}

fn validate_install(
    request: &InstallRequest,
    tenant_cloud: Cloud,
) -> Result<(InstallPlan, Option<String>), Error> {
    let mut violations = Vec::new();
    let cloud = request.cloud.unwrap_or(tenant_cloud);
    if !request.skip_registration && cloud != tenant_cloud {
        violations.push(FieldViolation::new(
            "cloud",
            format!(
                "provd's tenant is configured for {tenant_cloud:?}, so the agent cannot \
                 register in {cloud:?}; change tenant.cloud or set skip_registration"
            ),
        ));
    }
    let source = parse_source(&request.source)
        .map_err(|v| violations.push(v))
        .ok();
    let kind = source.as_ref().map(|source| {
        let name = source.file_name()?;
        let kind = package_kind(Path::new(&name));
        if kind.is_none() {
            violations.push(FieldViolation::new(
                "source",
                "must name a .msi or .exe package",
            ));
        }
        kind
    });
    let digest = match &source {
        // An upload is named by its digest: `sha256` may repeat it.
        Some(PackageSource::Staged(named)) if request.sha256.is_empty() => Some(*named),
        Some(PackageSource::Staged(named)) => validate::sha256_hex("sha256", &request.sha256)
            .and_then(|given| {
                (given == *named).then_some(given).ok_or_else(|| {
                    FieldViolation::new(
                        "sha256",
                        "differs from the digest the staged:sha256: source names",
                    )
                })
            })
            .map_err(|v| violations.push(v))
            .ok(),
        Some(PackageSource::Https(_)) if request.sha256.is_empty() => {
            violations.push(FieldViolation::new(
                "sha256",
                "is required for an https:// source: provd pins what it downloads",
            ));
            None
        }
        _ => validate::sha256_hex("sha256", &request.sha256)
            .map_err(|v| violations.push(v))
            .ok(),
    };
    if !request.accept_license {
        violations.push(FieldViolation::new(
            "accept_license",
            "must be true: installing the agent requires accepting its license terms",
        ));
    }
    let request_id = validate::request_id("request_id", &request.request_id)
        .map_err(|v| violations.push(v))
        .ok()
        .flatten();
    match (source, kind, digest) {
        (Some(source), Some(kind), Some(digest)) if violations.is_empty() => Ok((
            InstallPlan {
                source,
                kind,
                digest,
                cloud,
                register: !request.skip_registration,
            },
            request_id,
        )),
        _ => Err(Error::InvalidArgument(violations)),
    }
}

async fn run_install(
    progress: Progress,
    host: Arc<dyn Host>,
    changes: Arc<AgentChanges>,
    tenant: Arc<TenantWorkflows>,
    paths: Paths,
    sources: PackageSources,
    mut plan: InstallPlan,
) -> Result<Outcome, Error> {
    // An upload is copied from its staged file, which later installs reuse.
    let local = match &plan.source {
        PackageSource::File(path) => Some(path.clone()),
        PackageSource::Staged(digest) => {
            let Some(path) = sources.uploads.staged_path(digest).await else {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::PackageNotFound,
                    subject: plan.source.shown(),
                    message: format!(
                        "no package {} was uploaded to this host (provctl agent upload)",
                        plan.source.shown()
                    ),
                });
            };
            plan.kind = package_kind(&path);
            Some(path)
        }
        PackageSource::Https(_) => None,
    };
    let Some(kind) = plan.kind else {
        return Err(Error::invalid("source", "must name a .msi or .exe package"));
    };
    let file_name = local
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| plan.source.file_name())
        .unwrap_or_else(|| "package".into());
    let staged = paths
        .staging_dir
        .join(format!("{}-{file_name}", progress.operation_id()));

    progress
        .step_started(
            "fetch-package",
            format!("copying {} to the staging directory", plan.source.shown()),
        )
        .await?;
    let fetched = match (&plan.source, &local) {
        (PackageSource::Https(https), _) => {
            let created = tokio::fs::create_dir_all(&paths.staging_dir)
                .await
                .map_err(|e| {
                    Error::internal(format!("cannot create {}", paths.staging_dir.display()), e)
                });
            match created {
                Ok(()) => {
                    let limits = FetchLimits {
                        max_bytes: paths.packages.max_bytes,
                        first_backoff: std::time::Duration::from_millis(200),
                    };
                    fetch_https(&progress, sources.download.as_ref(), https, &staged, limits).await
                }
                Err(e) => Err(e),
            }
        }
        (_, Some(path)) => {
            fetch(&progress, path, &paths.staging_dir, &staged, paths.packages).await
        }
        (_, None) => Err(Error::invalid("source", "names no package")),
    };
    let (digest, bytes) = match fetched {
        Ok(ok) => ok,
        Err(err) => {
            let _ = tokio::fs::remove_file(&staged).await;
            return Err(err);
        }
    };
    progress
        .step_succeeded("fetch-package", format!("fetched {bytes} bytes"))
        .await?;

    progress
        .step_started("verify-package", "comparing the package's SHA-256")
        .await?;
    if digest != plan.digest {
        let _ = tokio::fs::remove_file(&staged).await;
        // The fetched file's own digest is not said: the path may resolve
        // to a file the caller could not otherwise read.
        return Err(Error::invalid(
            "sha256",
            format!(
                "the package's SHA-256 does not match the expected {}; nothing was installed",
                hex::encode(plan.digest)
            ),
        ));
    }
    progress
        .step_succeeded(
            "verify-package",
            format!("SHA-256 {} matches", hex::encode(digest)),
        )
        .await?;

    // Idempotent by version: an MSI says what it installs before it runs.
    let package_version = match kind {
        PackageKind::Msi => package_version(&staged).ok().map(|(_, v)| v),
        PackageKind::Exe => None,
    };
    if host.availability().is_ok()
        && let Some(wanted) = &package_version
    {
        progress
            .step_started(
                "check-version",
                format!("the package installs version {wanted}"),
            )
            .await?;
        let installed = host
            .agent_status()
            .await
            .ok()
            .and_then(|s| s.installed_version);
        if let Some(have) = installed.filter(|have| version_cmp(have, wanted).is_ge()) {
            let _ = tokio::fs::remove_file(&staged).await;
            progress
                .step_skipped(
                    "check-version",
                    format!(
                        "version {have} is installed (package: {wanted}); the installer is not run"
                    ),
                )
                .await?;
            let mut result = BTreeMap::from([
                ("sha256".into(), hex::encode(digest)),
                ("installed_version".into(), have),
            ]);
            let registered = register(&progress, &tenant, &plan, &mut result).await?;
            ensure_running(&progress, &host).await?;
            result.insert("changed".into(), registered.to_string());
            return Ok(result);
        }
        progress
            .step_succeeded("check-version", "not installed yet, or older")
            .await?;
    }

    progress
        .step_started("install-package", "running the installer silently")
        .await?;
    let package = PackageToInstall {
        log_path: staged.with_extension("log"),
        path: staged.clone(),
        kind,
        cloud: plan.cloud,
    };
    let installed = {
        let _provds = changes.begin();
        host.install_package(&package).await
    };
    let _ = tokio::fs::remove_file(&staged).await;
    let outcome = installed.map_err(|err| installer_error(err, &package.log_path))?;
    if outcome.reboot_required {
        progress
            .warning(
                "install-package",
                "the installer asks for a restart to finish",
            )
            .await?;
    }
    progress
        .step_succeeded("install-package", "installer finished")
        .await?;
    let mut result = BTreeMap::from([
        ("sha256".into(), hex::encode(digest)),
        ("changed".into(), "true".into()),
        (
            "reboot_required".into(),
            outcome.reboot_required.to_string(),
        ),
    ]);
    register(&progress, &tenant, &plan, &mut result).await?;
    ensure_running(&progress, &host).await?;
    let version = host
        .agent_status()
        .await
        .ok()
        .and_then(|s| s.installed_version)
        .unwrap_or_default();
    result.insert("installed_version".into(), version);
    Ok(result)
}

/// Steps `sign-in` and `connect-tenant`; `true` when a new registration
/// was made.
async fn register(
    progress: &Progress,
    tenant: &TenantWorkflows,
    plan: &InstallPlan,
    result: &mut Outcome,
) -> Result<bool, Error> {
    if !plan.register {
        return Ok(false);
    }
    let tokens = tenant.ensure_signed_in(progress).await?;
    let (record, changed) = tenant.ensure_connected(progress, &tokens).await?;
    result.insert("agent_id".into(), record.agent_id);
    result.insert("machine_name".into(), record.machine_name);
    Ok(changed)
}

/// Starts any agent service the installer left stopped.
async fn ensure_running(progress: &Progress, host: &Arc<dyn Host>) -> Result<(), Error> {
    progress
        .step_started("start-services", "checking the agent services")
        .await?;
    let status = host
        .agent_status()
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut started = 0;
    for service in &status.services {
        match service.state {
            ServiceState::Running => {}
            ServiceState::NotInstalled => {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::ServiceMissing,
                    subject: service.name.clone(),
                    message: format!(
                        "the package did not install the service {} ({})",
                        service.display_name, service.name
                    ),
                });
            }
            _ => {
                host.control_service(&service.name, ServiceAction::Start, SERVICE_TIMEOUT)
                    .await
                    .map_err(|e| Error::Unavailable(e.to_string()))?;
                progress
                    .progress(
                        "start-services",
                        format!("started {}", service.display_name),
                        0,
                    )
                    .await?;
                started += 1;
            }
        }
    }
    // Nothing to start is a skip, so a repeated Install reads as no work.
    if started == 0 {
        progress
            .step_skipped("start-services", "both agent services are running")
            .await
    } else {
        progress
            .step_succeeded("start-services", "both agent services are running")
            .await
    }
}

/// How long a service may take to start or stop.
pub(super) const SERVICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A host failure during install, as the operation reports it.
pub(super) fn installer_error(err: HostError, log_path: &Path) -> Error {
    match err {
        HostError::Unavailable(reason) => Error::FailedPrecondition {
            reason: PreconditionReason::HostUnavailable,
            subject: "host".into(),
            message: format!("cannot install the package: {reason}"),
        },
        HostError::Installer { failure, .. } => {
            let message = err.to_string();
            match failure {
                InstallerFailure::AnotherInstallInProgress => Error::Unavailable(message),
                InstallerFailure::PackageOpenFailed | InstallerFailure::InvalidPackage => {
                    Error::invalid("source", message)
                }
                _ => Error::FailedPrecondition {
                    reason: PreconditionReason::InstallerFailed,
                    subject: log_path.display().to_string(),
                    message,
                },
            }
        }
        HostError::Refused { ref entry, .. } => Error::FailedPrecondition {
            reason: PreconditionReason::InstallerFailed,
            subject: entry.clone(),
            message: err.to_string(),
        },
        HostError::Io(message) => Error::Unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_validation_names_every_bad_field() {
        let Err(Error::InvalidArgument(v)) = validate_install(
            &InstallRequest {
                source: "http://example.test/agent.msi".into(),
                sha256: "xyz".into(),
                accept_license: false,
                cloud: None,
                request_id: "bad id".into(),
                skip_registration: false,
            },
            Cloud::AzurePublic,
        ) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["source", "sha256", "accept_license", "request_id"]);
    }

    #[test]
    fn install_validation_accepts_a_good_request() {
        let (plan, rid) = validate_install(
            &InstallRequest {
                source: "file:///srv/pkg/Agent.MSI".into(),
                sha256: "00".repeat(32),
                accept_license: true,
                cloud: Some(Cloud::AzureUsGovernment),
                request_id: "r-1".into(),
                skip_registration: false,
            },
            Cloud::AzureUsGovernment,
        )
        .unwrap();
        assert_eq!(plan.kind, Some(PackageKind::Msi));
        assert_eq!(plan.cloud, Cloud::AzureUsGovernment);
        assert!(plan.register);
        assert_eq!(rid.as_deref(), Some("r-1"));
    }

    #[test]
    fn the_cloud_must_be_the_tenants_unless_not_registering() {
        let request = InstallRequest {
            source: "file:///srv/pkg/agent.msi".into(),
            sha256: "00".repeat(32),
            accept_license: true,
            cloud: Some(Cloud::AzureUsGovernment),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = validate_install(&request, Cloud::AzurePublic) else {
            panic!("expected invalid argument");
        };
        assert_eq!(v[0].field, "cloud");
        let (plan, _) = validate_install(
            &InstallRequest {
                skip_registration: true,
                ..request
            },
            Cloud::AzurePublic,
        )
        .unwrap();
        assert_eq!(plan.cloud, Cloud::AzureUsGovernment);
        assert!(!plan.register);
    }

    #[test]
    fn only_msi_and_exe_packages() {
        let Err(Error::InvalidArgument(v)) = validate_install(
            &InstallRequest {
                source: "file:///srv/pkg/agent.zip".into(),
                sha256: "00".repeat(32),
                accept_license: true,
                ..Default::default()
            },
            Cloud::AzurePublic,
        ) else {
            panic!("expected invalid argument");
        };
        assert_eq!(v[0].field, "source");
    }
}
