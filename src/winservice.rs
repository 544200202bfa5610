//! provd as a Windows service: `provd service install|uninstall` register it
//! with the Service Control Manager (and the `provd` event log source:
//! `deploy/windows/README.md`, "The Windows event log"), and `provd service
//! run` (the command line the SCM starts) runs the daemon under the service
//! dispatcher, answering Stop and Shutdown with a graceful shutdown. The
//! service reports its start, its stop and a failure to the event log, where
//! an administrator looks first: a service that fails early (bad config,
//! port taken) has no `[log] file` yet.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use provd::backends::audit::eventlog;
use provd::backends::audit::events::ServiceEvent;
use provd::config::Config;

pub const SERVICE_NAME: &str = "provd";
const DISPLAY_NAME: &str = "provd (Entra provisioning agent setup API)";

/// The configuration `service run` loaded, for the dispatcher thread.
static CONFIG: OnceLock<Config> = OnceLock::new();

// The macro expands to the FFI entry point the SCM calls; its body converts
// raw argument pointers, which needs `unsafe` inside windows-service's own
// helper. The reviewed unsafe code provd has is listed in ARCHITECTURE.md.
#[allow(unsafe_code)]
mod entry {
    windows_service::define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<std::ffi::OsString>) {
        if let Err(err) = super::run_service() {
            let error = format!("{err:#}");
            tracing::error!(error = %error, "provd service failed");
            super::report_failed(error);
        }
    }

    pub(super) fn dispatch() -> windows_service::Result<()> {
        windows_service::service_dispatcher::start(super::SERVICE_NAME, ffi_service_main)
    }
}

/// Reports that the service did not start or ended on `error`.
pub fn report_failed(error: String) {
    eventlog::report_service(&ServiceEvent::Failed { error });
}

/// Runs under the SCM; returns when the service stops.
pub fn run(config: Config) -> anyhow::Result<()> {
    let _ = CONFIG.set(config);
    entry::dispatch().context("the service dispatcher failed (was provd started by the SCM?)")?;
    Ok(())
}

fn status(state: ServiceState, accept: ServiceControlAccept, wait: Duration) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(0),
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

fn run_service() -> anyhow::Result<()> {
    let config = CONFIG.get().cloned().context("no configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Dropped before the runtime: the exporters flush through it.
    let _telemetry = {
        let _context = runtime.enter();
        provd::telemetry::init(&config.log, &config.telemetry)?
    };
    let stop = CancellationToken::new();
    let on_control = stop.clone();
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            on_control.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    handle.set_service_status(status(
        ServiceState::StartPending,
        ServiceControlAccept::empty(),
        Duration::from_secs(10),
    ))?;
    let result = runtime.block_on(async {
        let daemon = provd::Daemon::builder(config).start().await?;
        handle.set_service_status(status(
            ServiceState::Running,
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            Duration::ZERO,
        ))?;
        eventlog::report_service(&ServiceEvent::Started {
            listen: daemon.local_addr(),
        });
        stop.cancelled().await;
        handle.set_service_status(status(
            ServiceState::StopPending,
            ServiceControlAccept::empty(),
            Duration::from_secs(15),
        ))?;
        daemon.shutdown().await;
        eventlog::report_service(&ServiceEvent::Stopped);
        anyhow::Ok(())
    });
    handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        Duration::ZERO,
    ))?;
    result
}

/// Registers provd with the SCM: automatic start, LocalSystem, started with
/// `service run --config <config>`; and the `provd` event log source.
pub fn install(config_file: PathBuf) -> anyhow::Result<()> {
    eventlog::register_source().context("cannot register the provd event log source")?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe()?,
        launch_arguments: vec![
            "service".into(),
            "run".into(),
            "--config".into(),
            config_file.into_os_string(),
        ],
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::START | ServiceAccess::QUERY_STATUS)
        .context("cannot create the provd service")?;
    service
        .start::<&str>(&[])
        .context("cannot start the provd service")?;
    Ok(())
}

/// Stops (waiting up to 30 s) and deletes the provd service.
pub fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::DELETE,
        )
        .context("the provd service is not installed")?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        let _ = service.stop();
        for _ in 0..300 {
            if service.query_status()?.current_state == ServiceState::Stopped {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    service.delete()?;
    eventlog::unregister_source().context("cannot remove the provd event log source")?;
    Ok(())
}
