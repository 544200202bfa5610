//! `provd-lab-agent.exe`: a **LAB STAND-IN** for Microsoft's Entra cloud-sync provisioning
//! agent, used only by provd's Wine lab (`deploy/lab/wine.sh`). It is not Microsoft's agent,
//! talks to no Microsoft service and synchronises nothing; the only service it talks to is the
//! one provd registered it with (in the lab, `provd-tenant-emulator`), to say it is alive.
//!
//! One exe plays both of the real agent's Windows services; which one it is follows from the
//! service name the Service Control Manager starts it under:
//!
//! | service name                  | plays                                            |
//! |-------------------------------|--------------------------------------------------|
//! | `AADConnectProvisioningAgent` | Microsoft Azure AD Connect Provisioning Agent    |
//! | `AzureADConnectAgentUpdater`  | Microsoft Azure AD Connect Agent Updater         |
//!
//! Any other name is refused: the service reports Stopped with service-specific exit code 1.
//!
//! As a service it reports StartPending then Running, accepts STOP and SHUTDOWN, rewrites a
//! heartbeat file every second and reports Stopped when told to stop. The heartbeat is one line
//! of `key=value` pairs, replaced atomically (temp file + rename) so a reader never sees it half
//! written:
//!
//! ```text
//! service=AADConnectProvisioningAgent pid=42 beat=7 unix=1764230000 state=running package_version=1.1.977.0 tenant_url=- tenant=ok
//! ```
//!
//! **Tenant heartbeat** (`AADConnectProvisioningAgent` only; see `tenant.rs`): once the agent
//! has an identity (agent id, machine name, service URL, client certificate and key, optional
//! CA and interval) the service posts `{"machineName": …, "domains": [{"name", "preferredDcs"}]}`
//! to `{serviceUrl}/_agent/{agentId}/heartbeat` every `heartbeatIntervalSeconds` (default 5) over
//! HTTPS with that client certificate, so the tenant lists the agent "active" only while the
//! service runs, and publishes the domains it serves. The identity is
//! `%ProgramData%\ProvdLabAgent\identity.json`, written by the lab's `powershell.exe` stand-in
//! when provd runs `Connect-AADCloudSyncAzureAD` (provd never writes it; the `registration.json`
//! provd wrote before issue 14 is no longer read).
//!
//! `%ProgramData%` is the ProgramData known folder (`C:\ProgramData`). The domains are
//! `%ProgramData%\ProvdLabAgent\domains.json` (`[{"domain", "preferredDcs"}]`, written by the
//! stand-in's `Add-AADCloudSyncADDomain`); without the file the heartbeat has no `domains`
//! (the tenant changes nothing). Both files are re-read every second and may appear, change or
//! disappear at any time. The request runs on its own thread with a 5 s timeout: the file
//! heartbeat keeps its 1 s pace, and a stop waits at most for one request in flight. `tenant=`
//! in the heartbeat line says how it goes:
//!
//! * `unregistered` — no identity (nothing is sent);
//! * `ok` — the last heartbeat was answered with 2xx;
//! * `error:<reason>` — a reason without spaces: `registration-<field>` or
//!   `registration-not-json` (unusable identity), `http-<status>` (e.g. `http-401`, `http-403`),
//!   `timeout`, `io-connection-refused`, a TLS failure such as
//!   `invalid-peer-certificate-UnknownIssuer`, …
//!
//! The updater role never talks to the tenant; its line says `tenant=-`.
//!
//! **User count** (same role; see `ldap.rs`): on the first heartbeat, every 10th after and
//! the first that reports a new domain, the agent counts the users of each domain over LDAP,
//! as the directory account of `HKLM\SOFTWARE\ProvdLab\Directory` (a LAB shortcut for the
//! real agent's gMSA), and the heartbeat's domains carry `userCount`. What the count did (the number and where it came
//! from, or why there is none, and the first heartbeat with new counts the tenant took) is
//! logged to the heartbeat file's name with `.log` (`AADConnectProvisioningAgent.log`), one
//! `unix=<seconds> <text>` line per change (`log.rs`).
//!
//! Options (from the service's command line, i.e. the MSI's `ServiceInstall/@Arguments`):
//!
//! * `--heartbeat PATH` — the heartbeat file (default `%ProgramData%\ProvdLabAgent\<service>.txt`;
//!   the MSIs pass `[CommonAppDataFolder]ProvdLabAgent\<service>.txt`).
//! * `--package-version V` — the MSI's `ProductVersion`, echoed in the heartbeat so an upgrade test
//!   can see which package's service is running.
//! * `--identity PATH` — the identity file, and no other
//!   (default: the three above).
//! * `--domains PATH` — the domains file (default `%ProgramData%\ProvdLabAgent\domains.json`).
//! * `--tenant-url URL` — accepted and echoed in the heartbeat (`tenant_url=`) for older
//!   packages' command lines; not contacted: the address comes from the identity's
//!   `serviceUrl`.
//! * `--help`, `--version` — print and exit; the only modes that work from a console.
//!
//! Started from a console without those, the service dispatcher fails (Windows error 1063) and
//! the exe exits 1.

#[cfg(not(windows))]
fn main() {
    eprintln!(
        "provd-lab-agent is a Windows service (a lab stand-in); build it for x86_64-pc-windows-gnu"
    );
    std::process::exit(1);
}

#[cfg(windows)]
fn main() {
    agent::main();
}

// Platform-neutral (their unit tests run on Linux: `cargo test --target x86_64-unknown-linux-gnu`);
// only the Windows service uses them.
#[cfg_attr(not(windows), allow(dead_code))]
mod ldap;
#[cfg_attr(not(windows), allow(dead_code))]
mod log;
#[cfg_attr(not(windows), allow(dead_code))]
mod tenant;

#[cfg(windows)]
mod agent {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::sync::{OnceLock, mpsc};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use windows_service::service::{
        ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus,
        ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::{define_windows_service, service_dispatcher};

    use crate::tenant::{self, Heartbeat};

    /// The real agent's service names (display names: see the module doc; the MSI sets them).
    const SERVICES: [&str; 2] = ["AADConnectProvisioningAgent", "AzureADConnectAgentUpdater"];
    /// The role that heartbeats to the tenant.
    const TENANT_ROLE: &str = SERVICES[0];

    /// Service-specific exit codes reported with Stopped.
    const EXIT_UNKNOWN_SERVICE: u32 = 1;
    const EXIT_BAD_ARGUMENTS: u32 = 2;

    const USAGE: &str = "\
provd-lab-agent: LAB STAND-IN for Microsoft's Entra provisioning agent services (provd Wine lab).
Not Microsoft's agent. Runs only as the Windows service AADConnectProvisioningAgent or
AzureADConnectAgentUpdater, e.g. installed by the lab MSI.

AADConnectProvisioningAgent heartbeats to the tenant named in identity.json (written by the
lab's powershell.exe stand-in), reporting the domains of domains.json.

options: --heartbeat PATH  --package-version V  --identity PATH
         --domains PATH  --tenant-url URL (echoed only)  --help  --version";

    #[derive(Debug, Default)]
    struct Options {
        heartbeat: Option<PathBuf>,
        package_version: Option<String>,
        identity: Option<PathBuf>,
        domains: Option<PathBuf>,
        /// Accepted and echoed; the tenant's address comes from the identity.
        tenant_url: Option<String>,
    }

    /// The process command line, parsed once in `main` and read by the service thread
    /// (`service_main` is a plain function pointer and cannot capture it).
    static OPTIONS: OnceLock<Result<Options, String>> = OnceLock::new();

    fn parse(args: impl Iterator<Item = OsString>) -> Result<Options, String> {
        let mut opts = Options::default();
        let mut args = args.map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--heartbeat" => opts.heartbeat = Some(PathBuf::from(value()?)),
                "--package-version" => opts.package_version = Some(value()?),
                "--identity" => opts.identity = Some(PathBuf::from(value()?)),
                "--domains" => opts.domains = Some(PathBuf::from(value()?)),
                "--tenant-url" => opts.tenant_url = Some(value()?),
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(opts)
    }

    pub fn main() {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h" || a == "/?") {
            println!("{USAGE}");
            return;
        }
        if args.iter().any(|a| a == "--version") {
            println!(
                "provd-lab-agent {} (lab stand-in)",
                env!("CARGO_PKG_VERSION")
            );
            return;
        }
        // Bad arguments are reported through the SCM (Stopped + exit code), not by refusing to
        // start the dispatcher: that would leave the SCM waiting 30 s (10 s on Wine) for nothing.
        let _ = OPTIONS.set(parse(args.into_iter()));
        // For an own-process service the dispatcher table's name is not used to route the
        // start request, so one entry serves both service names.
        if let Err(e) = service_dispatcher::start(SERVICES[0], ffi_service_main) {
            eprintln!(
                "provd-lab-agent: not started by the Service Control Manager ({e:?})\n\n{USAGE}"
            );
            std::process::exit(1);
        }
    }

    define_windows_service!(ffi_service_main, service_main);

    /// `arguments[0]` is the name the SCM started us under; it picks the role.
    fn service_main(arguments: Vec<OsString>) {
        let requested = arguments
            .first()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = run(&requested) {
            eprintln!("provd-lab-agent: service {requested}: {e}");
        }
    }

    fn status(state: ServiceState, exit_code: ServiceExitCode, wait_secs: u64) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(wait_secs),
            process_id: None,
        }
    }

    fn run(requested: &str) -> windows_service::Result<()> {
        let (stop_tx, stop_rx) = mpsc::channel();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                let _ = stop_tx.send(());
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let scm = service_control_handler::register(requested, handler)?;
        let ok = ServiceExitCode::Win32(0);
        scm.set_service_status(status(ServiceState::StartPending, ok, 5))?;

        let refuse = |code: u32, why: &str| {
            eprintln!("provd-lab-agent: refusing to run as {requested:?}: {why}");
            scm.set_service_status(status(
                ServiceState::Stopped,
                ServiceExitCode::ServiceSpecific(code),
                0,
            ))
        };
        let Some(&name) = SERVICES.iter().find(|n| n.eq_ignore_ascii_case(requested)) else {
            return refuse(EXIT_UNKNOWN_SERVICE, "not one of the agent's service names");
        };
        let opts = match OPTIONS.get() {
            Some(Ok(opts)) => opts,
            Some(Err(e)) => return refuse(EXIT_BAD_ARGUMENTS, e),
            None => return refuse(EXIT_BAD_ARGUMENTS, "options not parsed"),
        };
        let heartbeat = opts
            .heartbeat
            .clone()
            .unwrap_or_else(|| data_dir().join(format!("{name}.txt")));
        if let Some(dir) = heartbeat.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let line = |beat: u64, state: &str, tenant: &str| {
            format!(
                "service={name} pid={} beat={beat} unix={} state={state} package_version={} tenant_url={} tenant={tenant}\n",
                std::process::id(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                opts.package_version.as_deref().unwrap_or("-"),
                opts.tenant_url.as_deref().unwrap_or("-"),
            )
        };
        // Only the provisioning agent role talks to the tenant. A thread that cannot be
        // started is reported in the heartbeat rather than failing the service.
        let tenant = (name == TENANT_ROLE).then(|| {
            let identity = match &opts.identity {
                Some(path) => vec![path.clone()],
                None => identity_paths(),
            };
            let domains = opts
                .domains
                .clone()
                .unwrap_or_else(|| data_dir().join("domains.json"));
            Heartbeat::spawn(identity, domains, heartbeat.with_extension("log"))
        });
        let tenant_word = |tenant: &Option<std::io::Result<Heartbeat>>| match tenant {
            None => "-".to_owned(),
            Some(Ok(h)) => h.status().to_string(),
            Some(Err(_)) => "error:no-thread".to_owned(),
        };

        scm.set_service_status(status(ServiceState::Running, ok, 0))?;
        let mut beat = 0;
        loop {
            beat += 1;
            write_atomically(&heartbeat, &line(beat, "running", &tenant_word(&tenant)));
            match stop_rx.recv_timeout(Duration::from_secs(1)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // A heartbeat request in flight may take up to its timeout: say so to the SCM.
        let wait = tenant::REQUEST_TIMEOUT + Duration::from_secs(1);
        scm.set_service_status(status(ServiceState::StopPending, ok, wait.as_secs() + 2))?;
        let last = match tenant {
            Some(Ok(h)) => h.stop(wait).to_string(),
            other => tenant_word(&other),
        };
        write_atomically(&heartbeat, &line(beat, "stopped", &last));
        scm.set_service_status(status(ServiceState::Stopped, ok, 0))
    }

    /// `%ProgramData%\ProvdLabAgent` (`C:\ProgramData\ProvdLabAgent`): heartbeats, the
    /// identity and the domains.
    fn data_dir() -> PathBuf {
        program_data().join("ProvdLabAgent")
    }

    /// Where the identity is: identity.json (the stand-in powershell.exe's) in the
    /// ProgramData known folder (what Windows and the MSI's `[CommonAppDataFolder]` use).
    fn identity_paths() -> Vec<PathBuf> {
        vec![data_dir().join("identity.json")]
    }

    /// The ProgramData known folder, as Windows Installer's `[CommonAppDataFolder]` sees it.
    /// Not the `ProgramData` environment variable: Wine sets that to `C:\users\Public` for
    /// services (measured under Wine 8.0), where Windows has `C:\ProgramData`.
    #[allow(unsafe_code)]
    fn program_data() -> PathBuf {
        use std::os::windows::ffi::OsStringExt;
        use windows_sys::Win32::System::Com::CoTaskMemFree;
        use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};

        let mut path: windows_sys::core::PWSTR = std::ptr::null_mut();
        // SAFETY: a valid GUID, no flags, the default token and an out pointer; on success
        // `path` is a NUL-terminated string we own and free with CoTaskMemFree (also on
        // failure, where it may be allocated or null: CoTaskMemFree accepts null).
        let known = unsafe {
            let hr =
                SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut path);
            let known = (hr >= 0 && !path.is_null()).then(|| {
                let len = (0..).take_while(|&i| *path.add(i) != 0).count();
                OsString::from_wide(std::slice::from_raw_parts(path, len))
            });
            CoTaskMemFree(path.cast());
            known
        };
        known
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
    }

    /// Temp file + rename, so a concurrent reader (the lab's smoke test on the Linux side) never
    /// sees a truncated file. A failed beat is simply retried a second later.
    fn write_atomically(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}
