//! The Windows host: runs the agent installer silently as Microsoft
//! documents it, reads the installed version from the uninstall registry
//! entry, and queries the agent's services through the Service Control
//! Manager API (never by parsing `sc.exe` output).

use std::ffi::OsString;
use std::path::Path;

use std::time::Duration;

use windows_service::service::{ServiceAccess, ServiceStartType, ServiceState as WinState};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_32KEY, KEY_WOW64_64KEY};

use super::installer::{
    InstallerFailure, UninstallEntry, agent_product, agent_version, bundle_command, is_success,
    removal_order,
};
use super::{
    AGENT_SERVICES, AgentProduct, AgentSettings, AgentSettingsRead, AgentStatus, Cloud, FixOutcome,
    Host, HostError, HostFix, HostPrerequisites, InstallOutcome, PackageKind, PackageToInstall,
    ProductUninstall, ServiceAction, ServiceState, ServiceStatus, StartType,
};

const UNINSTALL_KEY: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";
/// ERROR_SERVICE_DOES_NOT_EXIST.
const SERVICE_DOES_NOT_EXIST: i32 = 1060;

#[derive(Debug, Clone)]
pub struct WindowsHost {
    /// Longest an installer may run.
    pub install_timeout: Duration,
}

impl Default for WindowsHost {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowsHost {
    pub fn new() -> Self {
        Self {
            install_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The package's uninstall entries, from both registry views (a 32-bit
/// Burn registers its bundle in the 32-bit one), in removal order.
fn agent_products() -> Vec<AgentProduct> {
    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let mut found: Vec<AgentProduct> = Vec::new();
    for view in [KEY_WOW64_64KEY, KEY_WOW64_32KEY] {
        let Ok(uninstall) = hklm.open_subkey_with_flags(UNINSTALL_KEY, KEY_READ | view) else {
            continue;
        };
        for name in uninstall.enum_keys().flatten() {
            let Ok(key) = uninstall.open_subkey_with_flags(&name, KEY_READ) else {
                continue;
            };
            let text = |value: &str| key.get_value::<String, _>(value).ok();
            let Some(display_name) = text("DisplayName") else {
                continue;
            };
            let entry = UninstallEntry {
                display_name,
                display_version: text("DisplayVersion").unwrap_or_default(),
                windows_installer: key.get_value::<u32, _>("WindowsInstaller").ok() == Some(1),
                bundle: ["BundleCachePath", "BundleProviderKey", "BundleUpgradeCode"]
                    .iter()
                    .any(|v| key.get_raw_value(v).is_ok()),
                bundle_cache_path: text("BundleCachePath"),
                quiet_uninstall: text("QuietUninstallString"),
                key: name,
            };
            if let Some(product) = agent_product(&entry)
                && !found
                    .iter()
                    .any(|p| p.key.eq_ignore_ascii_case(&product.key))
            {
                found.push(product);
            }
        }
    }
    removal_order(&mut found);
    found
}

fn current_state(service: &windows_service::service::Service) -> Result<WinState, HostError> {
    service
        .query_status()
        .map(|s| s.current_state)
        .map_err(|e| HostError::Io(format!("query service status: {e}")))
}

/// Sends `action` and polls until the target state or `timeout`.
fn control_now(
    name: &str,
    action: ServiceAction,
    timeout: Duration,
) -> Result<ServiceState, HostError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| HostError::Io(format!("cannot open the Service Control Manager: {e}")))?;
    let service = manager
        .open_service(
            name,
            ServiceAccess::START | ServiceAccess::STOP | ServiceAccess::QUERY_STATUS,
        )
        .map_err(|e| HostError::Io(format!("service {name}: {e}")))?;
    let wait_for = |target: WinState| -> Result<(), HostError> {
        let deadline = std::time::Instant::now() + timeout;
        while current_state(&service)? != target {
            if std::time::Instant::now() >= deadline {
                return Err(HostError::Io(format!(
                    "service {name} did not reach {target:?} within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };
    if matches!(action, ServiceAction::Stop | ServiceAction::Restart)
        && current_state(&service)? != WinState::Stopped
    {
        // 1062 (not active) is fine: it is stopping or stopped already.
        let _ = service.stop();
        wait_for(WinState::Stopped)?;
    }
    if matches!(action, ServiceAction::Start | ServiceAction::Restart)
        && current_state(&service)? != WinState::Running
    {
        // 1056 (already running) is fine.
        let _ = service.start::<&str>(&[]);
        wait_for(WinState::Running)?;
    }
    Ok(match action {
        ServiceAction::Stop => ServiceState::Stopped,
        ServiceAction::Start | ServiceAction::Restart => ServiceState::Running,
    })
}

/// One installer run (msiexec or the package's own setup), as a span with
/// the program, its action (`/i`, `/x`, `/quiet`) and the exit code; never
/// the whole command line.
#[tracing::instrument(
    name = "installer.run",
    skip_all,
    fields(
        process.executable.name = %Path::new(program).display(),
        installer.action = %args.first().map(|a| a.to_string_lossy()).unwrap_or_default(),
        installer.log = %log.display(),
        process.exit_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
)]
async fn run_installer(
    program: &OsString,
    args: &[OsString],
    timeout: Duration,
    log: &Path,
) -> Result<InstallOutcome, HostError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| HostError::Io(format!("cannot run {}: {e}", Path::new(program).display())))?;
    let status = tokio::time::timeout(timeout, child.wait())
        .await
        .map_err(|_| HostError::Io(format!("the installer ran longer than {timeout:?}")))?
        .map_err(|e| HostError::Io(e.to_string()))?;
    // The full 32-bit code (Windows exit codes are DWORDs).
    let code = status.code().map_or(u32::MAX, |c| c as u32);
    let span = tracing::Span::current();
    span.record("process.exit_code", code);
    if is_success(code).is_none() {
        span.record("otel.status_code", "ERROR");
    }
    match is_success(code) {
        Some(reboot_required) => Ok(InstallOutcome { reboot_required }),
        None => Err(HostError::Installer {
            code,
            failure: InstallerFailure::from_code(code),
            log: log.display().to_string(),
        }),
    }
}

fn service_status(manager: &ServiceManager, name: &str, display: &str) -> ServiceStatus {
    let missing = ServiceStatus {
        name: name.into(),
        display_name: display.into(),
        state: ServiceState::NotInstalled,
        start_type: None,
        account: String::new(),
    };
    let service = match manager.open_service(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    ) {
        Ok(s) => s,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(SERVICE_DOES_NOT_EXIST) =>
        {
            return missing;
        }
        Err(_) => return missing,
    };
    let state = match service.query_status().map(|s| s.current_state) {
        Ok(WinState::Stopped) => ServiceState::Stopped,
        Ok(WinState::StartPending) | Ok(WinState::ContinuePending) => ServiceState::StartPending,
        Ok(WinState::StopPending) | Ok(WinState::PausePending) => ServiceState::StopPending,
        Ok(WinState::Running) => ServiceState::Running,
        Ok(WinState::Paused) => ServiceState::Paused,
        Err(_) => ServiceState::Stopped,
    };
    let config = service.query_config().ok();
    ServiceStatus {
        name: name.into(),
        display_name: display.into(),
        state,
        start_type: config.as_ref().map(|c| match c.start_type {
            ServiceStartType::AutoStart => StartType::Automatic,
            ServiceStartType::OnDemand => StartType::Manual,
            ServiceStartType::Disabled => StartType::Disabled,
            _ => StartType::Manual,
        }),
        account: config
            .and_then(|c| c.account_name)
            .map(|a: OsString| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

fn status_now() -> Result<AgentStatus, HostError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| HostError::Io(format!("cannot open the Service Control Manager: {e}")))?;
    let products = agent_products();
    Ok(AgentStatus {
        installed_version: agent_version(&products),
        products,
        services: AGENT_SERVICES
            .iter()
            .map(|(name, display)| service_status(&manager, name, display))
            .collect(),
    })
}

/// The documented silent command line for a package.
fn command(package: &PackageToInstall) -> (OsString, Vec<OsString>) {
    let mut args: Vec<OsString> = Vec::new();
    let program = match package.kind {
        PackageKind::Msi => {
            args.extend(["/i".into(), package.path.clone().into_os_string()]);
            args.extend(["/quiet".into(), "/norestart".into(), "/l*v".into()]);
            args.push(package.log_path.clone().into_os_string());
            OsString::from("msiexec.exe")
        }
        PackageKind::Exe => {
            args.push("/quiet".into());
            package.path.clone().into_os_string()
        }
    };
    if package.cloud == Cloud::AzureUsGovernment {
        args.push("ENVIRONMENTNAME=AzureUSGovernment".into());
    }
    (program, args)
}

#[async_trait::async_trait]
impl Host for WindowsHost {
    fn availability(&self) -> Result<(), String> {
        Ok(())
    }

    async fn agent_status(&self) -> Result<AgentStatus, HostError> {
        tokio::task::spawn_blocking(status_now)
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn service_status(&self, name: &str) -> Result<ServiceStatus, HostError> {
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let manager =
                ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
                    .map_err(|e| {
                        HostError::Io(format!("cannot open the Service Control Manager: {e}"))
                    })?;
            Ok(service_status(&manager, &name, &name))
        })
        .await
        .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn install_package(
        &self,
        package: &PackageToInstall,
    ) -> Result<InstallOutcome, HostError> {
        let (program, args) = command(package);
        run_installer(&program, &args, self.install_timeout, &package.log_path).await
    }

    async fn uninstall_product(
        &self,
        product: &AgentProduct,
        log_path: &Path,
    ) -> Result<InstallOutcome, HostError> {
        let refused = |reason: String| HostError::Refused {
            entry: product.to_string(),
            reason,
        };
        let (program, args): (OsString, Vec<OsString>) = match &product.uninstall {
            ProductUninstall::Msi { product_code } => (
                "msiexec.exe".into(),
                vec![
                    "/x".into(),
                    product_code.into(),
                    "/quiet".into(),
                    "/norestart".into(),
                    "/l*v".into(),
                    log_path.as_os_str().to_owned(),
                ],
            ),
            ProductUninstall::Bundle {
                quiet_uninstall,
                cache_path,
            } => {
                let (program, args) =
                    bundle_command(quiet_uninstall, cache_path.as_deref(), log_path, |p| {
                        Path::new(p).is_file()
                    })
                    .map_err(refused)?;
                (program.into(), args.into_iter().map(Into::into).collect())
            }
            ProductUninstall::Unknown => {
                return Err(refused(
                    "it is neither a Windows Installer product (no product code) nor a WiX Burn \
                     bundle (no Bundle* values and QuietUninstallString)"
                        .into(),
                ));
            }
        };
        run_installer(&program, &args, self.install_timeout, log_path).await
    }

    async fn control_service(
        &self,
        name: &str,
        action: ServiceAction,
        timeout: Duration,
    ) -> Result<ServiceState, HostError> {
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || control_now(&name, action, timeout))
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn prerequisites(&self) -> Result<HostPrerequisites, HostError> {
        tokio::task::spawn_blocking(super::windows_prereq::prerequisites)
            .await
            .map_err(|e| HostError::Io(e.to_string()))
    }

    async fn remediate(&self, fix: HostFix) -> Result<FixOutcome, HostError> {
        tokio::task::spawn_blocking(move || super::windows_prereq::remediate(fix))
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn agent_settings(&self) -> Result<AgentSettingsRead, HostError> {
        tokio::task::spawn_blocking(super::windows_settings::agent_settings)
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn set_agent_settings(&self, settings: &AgentSettings) -> Result<(), HostError> {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || super::windows_settings::set_agent_settings(&settings))
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
    }

    async fn local_machine_certificates(&self, store: &str) -> Result<Vec<Vec<u8>>, HostError> {
        let store = store.to_owned();
        tokio::task::spawn_blocking(move || crate::pki::store::certificates(&store))
            .await
            .map_err(|e| HostError::Io(e.to_string()))?
            .map_err(|e| HostError::Io(e.to_string()))
    }

    async fn diagnostic_parts(
        &self,
        since: std::time::SystemTime,
        limit: u64,
    ) -> Vec<super::DiagnosticPart> {
        tokio::task::spawn_blocking(move || super::windows_diagnostics::parts(since, limit))
            .await
            .unwrap_or_else(|e| {
                vec![super::DiagnosticPart {
                    path: "agent".into(),
                    content: Err(e.to_string()),
                }]
            })
    }
}
