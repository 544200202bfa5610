//! `FakeHost`: the Windows host as the workflows see it — the agent
//! package's installed version, its two services and their states, install
//! outcomes by injected installer exit code (mapped as the real host maps
//! them), the package's uninstall entries (the agent's MSI; with
//! `with_package` also the updater's and the Burn bundle's, whose
//! uninstall removes the MSIs it chained, as Burn does), the service
//! logon account and every service control asked; the
//! prerequisite facts, settable, and the fixes applied to them as the
//! Windows host applies them (`host_prereq.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backends::host::installer::{
    InstallerFailure, agent_version, bundle_command, is_success, removal_order,
};
use crate::backends::host::{
    AGENT_SERVICES, AgentProduct, AgentSettings, AgentSettingsRead, AgentStatus, DiagnosticPart,
    FixOutcome, Host, HostError, HostFix, HostPrerequisites, InstallOutcome, PackageToInstall,
    ProductRole, ProductUninstall, RegValue, ServiceAction, ServiceState, ServiceStatus, StartType,
};

/// The fake agent MSI's ProductCode.
pub const AGENT_PRODUCT_CODE: &str = "{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405A61}";
/// The fake updater MSI's ProductCode (`with_package`).
pub const UPDATER_PRODUCT_CODE: &str = "{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405B01}";
/// The fake bundle's id and cached exe (`with_package`).
pub const BUNDLE_ID: &str = "{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405C01}";
pub const BUNDLE_EXE: &str = r"C:\ProgramData\Package Cache\{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405C01}\AADConnectProvisioningAgentSetup.exe";

pub(super) struct State {
    /// The uninstall entries (the agent's MSI once installed).
    products: Vec<AgentProduct>,
    /// Files that exist (what a bundle's uninstall command may run).
    files: BTreeSet<String>,
    uninstall_exit_code: u32,
    /// Every entry removed, in order (its key).
    uninstalled: Vec<String>,
    /// Version an install puts in place.
    package_version: String,
    services: BTreeMap<String, (ServiceState, String)>,
    install_exit_code: u32,
    installs: Vec<PackageToInstall>,
    /// Every service control, in order.
    controls: Vec<(String, ServiceAction)>,
    unavailable: Option<String>,
    fail_start: bool,
    /// `agent_status` calls so far.
    status_reads: u64,
    /// The prerequisite facts (a healthy Windows Server 2022 at first).
    pub(super) prereq: HostPrerequisites,
    /// Every fix asked, in order, and whether it changed something.
    pub(super) fixes: Vec<(HostFix, bool)>,
    /// The agent's exe.config as its bytes (the lab stand-in's at first).
    pub(super) exe_config: Vec<u8>,
    /// The agent's registry options by value name.
    pub(super) agent_registry: BTreeMap<&'static str, RegValue>,
    /// `set_agent_settings` calls so far.
    pub(super) settings_writes: u64,
    /// What `diagnostic_parts` answers (tests plant secrets in it).
    pub(super) diagnostic_parts: Vec<DiagnosticPart>,
    /// The LocalMachine certificate stores by name, as DER.
    certificates: BTreeMap<String, Vec<Vec<u8>>>,
}

impl State {
    /// The agent's MSI entry at `version` (replacing the one there).
    fn set_agent(&mut self, version: &str) {
        self.products.retain(|p| p.role != ProductRole::Agent);
        self.products.push(AgentProduct {
            key: AGENT_PRODUCT_CODE.into(),
            display_name: "Microsoft Azure AD Connect Provisioning Agent".into(),
            version: version.to_owned(),
            role: ProductRole::Agent,
            uninstall: ProductUninstall::Msi {
                product_code: AGENT_PRODUCT_CODE.into(),
            },
        });
    }

    pub(super) fn services_has(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }
}

#[derive(Clone)]
pub struct FakeHost {
    machine: String,
    state: Arc<Mutex<State>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// Adds a part `diagnostic_parts` answers with (besides the exe.config).
    pub fn add_diagnostic_part(&self, path: &str, content: Result<Vec<u8>, String>) {
        self.lock().diagnostic_parts.push(DiagnosticPart {
            path: path.into(),
            content,
        });
    }

    /// Adds a certificate (DER) to `LocalMachine\<store>`.
    pub fn add_certificate(&self, store: &str, der: Vec<u8>) {
        self.lock()
            .certificates
            .entry(store.to_owned())
            .or_default()
            .push(der);
    }

    /// A Windows host without the agent; installs succeed (exit code 0)
    /// and put version 1.1.1370.0 in place.
    pub fn new() -> Self {
        Self {
            machine: "HOST1".into(),
            state: Arc::new(Mutex::new(State {
                products: Vec::new(),
                files: BTreeSet::new(),
                uninstall_exit_code: 0,
                uninstalled: Vec::new(),
                package_version: "1.1.1370.0".into(),
                services: BTreeMap::new(),
                install_exit_code: 0,
                installs: Vec::new(),
                controls: Vec::new(),
                unavailable: None,
                fail_start: false,
                status_reads: 0,
                prereq: super::host_prereq::healthy(),
                fixes: Vec::new(),
                exe_config: crate::backends::host::exe_config::SAMPLE.to_vec(),
                agent_registry: BTreeMap::new(),
                settings_writes: 0,
                diagnostic_parts: Vec::new(),
                certificates: BTreeMap::new(),
            })),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Another machine name (a second agent host sharing the fakes of the
    /// directory and the tenant).
    pub fn with_machine(mut self, machine: &str) -> Self {
        machine.clone_into(&mut self.machine);
        self
    }

    /// The agent already installed at `version`, services running.
    pub fn with_agent(self, version: &str) -> Self {
        {
            let mut s = self.lock();
            s.set_agent(version);
            for (name, _) in AGENT_SERVICES {
                s.services.insert(
                    name.to_owned(),
                    (ServiceState::Running, "LocalSystem".into()),
                );
            }
        }
        self
    }

    /// The next installer runs exit with `code` (0, 3010 and 1641 succeed).
    pub fn set_install_exit_code(&self, code: u32) {
        self.lock().install_exit_code = code;
    }

    /// The version an install puts in place.
    pub fn set_package_version(&self, version: &str) {
        self.lock().package_version = version.to_owned();
    }

    pub fn set_service_state(&self, name: &str, state: ServiceState) {
        let mut s = self.lock();
        let account = s
            .services
            .get(name)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| "LocalSystem".into());
        s.services.insert(name.to_owned(), (state, account));
    }

    /// Starting a service fails (it stays stopped), as a service without
    /// "Log on as a service" does.
    pub fn fail_service_start(&self, fail: bool) {
        self.lock().fail_start = fail;
    }

    /// The host cannot manage the agent at all (like a non-Windows host).
    pub fn set_unavailable(&self, reason: Option<&str>) {
        self.lock().unavailable = reason.map(str::to_owned);
    }

    pub fn installed_version(&self) -> Option<String> {
        agent_version(&self.lock().products)
    }

    /// The rest of the real package's entries besides the agent's MSI
    /// (which an install or `with_agent` puts in place): the Agent
    /// Updater's MSI and the Burn bundle's entry, its exe cached.
    pub fn with_package(self) -> Self {
        {
            let mut s = self.lock();
            s.products.push(AgentProduct {
                key: UPDATER_PRODUCT_CODE.into(),
                display_name: "Microsoft Azure AD Connect Agent Updater".into(),
                version: "1.1.1370.0".into(),
                role: ProductRole::Updater,
                uninstall: ProductUninstall::Msi {
                    product_code: UPDATER_PRODUCT_CODE.into(),
                },
            });
            s.files.insert(BUNDLE_EXE.into());
            s.products.push(AgentProduct {
                key: BUNDLE_ID.into(),
                display_name: "Microsoft Azure AD Connect Provisioning Agent Package".into(),
                version: "1.1.1370.0".into(),
                role: ProductRole::Package,
                uninstall: ProductUninstall::Bundle {
                    quiet_uninstall: format!("\"{BUNDLE_EXE}\" /uninstall /quiet"),
                    cache_path: Some(BUNDLE_EXE.into()),
                },
            });
        }
        self
    }

    /// Adds an uninstall entry (e.g. one provd must refuse to run).
    pub fn add_product(&self, product: AgentProduct) {
        self.lock().products.push(product);
    }

    /// The uninstall entries now, in removal order.
    pub fn products(&self) -> Vec<AgentProduct> {
        let mut p = self.lock().products.clone();
        removal_order(&mut p);
        p
    }

    /// The entries removed so far (their keys), in order.
    pub fn uninstalled(&self) -> Vec<String> {
        self.lock().uninstalled.clone()
    }

    /// The next uninstaller runs exit with `code` (0, 3010, 1641 succeed).
    pub fn set_uninstall_exit_code(&self, code: u32) {
        self.lock().uninstall_exit_code = code;
    }

    /// Puts `version` in place without an installer run provd asked for:
    /// the agent's auto-upgrade, or an administrator's hand install.
    pub fn upgrade_outside_provd(&self, version: &str) {
        self.lock().set_agent(version);
    }

    /// How many times the agent's status was read.
    pub fn status_reads(&self) -> u64 {
        self.lock().status_reads
    }

    /// The logon account of a service.
    /// Makes `name` log on as `account`: what the agent's module does on a
    /// real host (`FakeAgentConfig::on_host` calls it).
    pub fn set_service_account(&self, name: &str, account: &str) -> Result<(), HostError> {
        self.available()?;
        let mut s = self.lock();
        match s.services.get_mut(name) {
            Some((_, a)) => {
                *a = account.to_owned();
                Ok(())
            }
            None => Err(HostError::Io(format!(
                "OpenServiceW {name}: The specified service does not exist as an installed service. (os error 1060)"
            ))),
        }
    }

    pub fn service_account(&self, name: &str) -> Option<String> {
        self.lock().services.get(name).map(|(_, a)| a.clone())
    }

    pub fn service_state(&self, name: &str) -> ServiceState {
        self.lock()
            .services
            .get(name)
            .map_or(ServiceState::NotInstalled, |(s, _)| *s)
    }

    /// Installer runs so far.
    pub fn installs(&self) -> Vec<PackageToInstall> {
        self.lock().installs.clone()
    }

    /// Every start, stop and restart asked of the SCM so far, in order.
    pub fn controls(&self) -> Vec<(String, ServiceAction)> {
        self.lock().controls.clone()
    }

    fn display_name(name: &str) -> String {
        AGENT_SERVICES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| name.to_owned(), |(_, d)| (*d).to_owned())
    }

    fn status(s: &State, name: &str) -> ServiceStatus {
        let (state, account) = s
            .services
            .get(name)
            .cloned()
            .unwrap_or((ServiceState::NotInstalled, String::new()));
        ServiceStatus {
            name: name.to_owned(),
            display_name: Self::display_name(name),
            state,
            start_type: (state != ServiceState::NotInstalled).then_some(StartType::Automatic),
            account,
        }
    }

    pub(super) fn available(&self) -> Result<(), HostError> {
        match &self.lock().unavailable {
            Some(r) => Err(HostError::Unavailable(r.clone())),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Host for FakeHost {
    fn availability(&self) -> Result<(), String> {
        self.lock().unavailable.clone().map_or(Ok(()), Err)
    }

    fn machine_name(&self) -> String {
        self.machine.clone()
    }

    async fn service_status(&self, name: &str) -> Result<ServiceStatus, HostError> {
        self.available()?;
        Ok(Self::status(&self.lock(), name))
    }

    async fn agent_status(&self) -> Result<AgentStatus, HostError> {
        self.available()?;
        let mut s = self.lock();
        s.status_reads += 1;
        let mut products = s.products.clone();
        removal_order(&mut products);
        Ok(AgentStatus {
            installed_version: agent_version(&products),
            products,
            services: AGENT_SERVICES
                .iter()
                .map(|(n, _)| Self::status(&s, n))
                .collect(),
        })
    }

    async fn install_package(
        &self,
        package: &PackageToInstall,
    ) -> Result<InstallOutcome, HostError> {
        self.available()?;
        let mut s = self.lock();
        s.installs.push(package.clone());
        let code = s.install_exit_code;
        match is_success(code) {
            Some(reboot_required) => {
                let version = s.package_version.clone();
                s.set_agent(&version);
                for (name, _) in AGENT_SERVICES {
                    s.services
                        .entry(name.to_owned())
                        .or_insert((ServiceState::Running, "LocalSystem".into()));
                }
                Ok(InstallOutcome { reboot_required })
            }
            None => Err(HostError::Installer {
                code,
                failure: InstallerFailure::from_code(code),
                log: package.log_path.display().to_string(),
            }),
        }
    }

    async fn uninstall_product(
        &self,
        product: &AgentProduct,
        log_path: &Path,
    ) -> Result<InstallOutcome, HostError> {
        self.available()?;
        let mut s = self.lock();
        let refused = |reason: String| HostError::Refused {
            entry: product.to_string(),
            reason,
        };
        // What the uninstaller removes: the entry; a bundle also the MSIs
        // it chained (the agent's and the updater's).
        let removes: Vec<String> = match &product.uninstall {
            ProductUninstall::Msi { product_code } => vec![product_code.clone()],
            ProductUninstall::Bundle {
                quiet_uninstall,
                cache_path,
            } => {
                bundle_command(quiet_uninstall, cache_path.as_deref(), log_path, |p| {
                    s.files.contains(p)
                })
                .map_err(refused)?;
                let mut chained: Vec<String> = s
                    .products
                    .iter()
                    .filter(|p| matches!(p.uninstall, ProductUninstall::Msi { .. }))
                    .map(|p| p.key.clone())
                    .collect();
                chained.push(product.key.clone());
                chained
            }
            ProductUninstall::Unknown => {
                return Err(refused("neither an MSI nor a Burn bundle".into()));
            }
        };
        let code = match s.products.iter().any(|p| p.key == product.key) {
            true => s.uninstall_exit_code,
            false => 1605,
        };
        let Some(reboot_required) = is_success(code) else {
            return Err(HostError::Installer {
                code,
                failure: InstallerFailure::from_code(code),
                log: log_path.display().to_string(),
            });
        };
        s.products.retain(|p| !removes.contains(&p.key));
        s.uninstalled.push(product.key.clone());
        if agent_version(&s.products).is_none() {
            for (name, _) in AGENT_SERVICES {
                s.services.remove(name);
            }
        }
        Ok(InstallOutcome { reboot_required })
    }

    async fn control_service(
        &self,
        name: &str,
        action: ServiceAction,
        _timeout: std::time::Duration,
    ) -> Result<ServiceState, HostError> {
        self.available()?;
        let mut s = self.lock();
        s.controls.push((name.to_owned(), action));
        let fail_start = s.fail_start;
        let Some((state, _)) = s.services.get_mut(name) else {
            return Err(HostError::Io(format!(
                "OpenServiceW {name}: The specified service does not exist as an installed service. (os error 1060)"
            )));
        };
        match action {
            ServiceAction::Stop => *state = ServiceState::Stopped,
            ServiceAction::Start | ServiceAction::Restart if fail_start => {
                *state = ServiceState::Stopped;
                return Err(HostError::Io(format!(
                    "StartServiceW {name}: The service did not start due to a logon failure. (os error 1069)"
                )));
            }
            ServiceAction::Start | ServiceAction::Restart => *state = ServiceState::Running,
        }
        Ok(*state)
    }

    async fn prerequisites(&self) -> Result<HostPrerequisites, HostError> {
        self.available()?;
        let s = self.lock();
        let mut p = s.prereq.clone();
        // As on Windows: the flag is read only where the service exists.
        if !s.services.contains_key(AGENT_SERVICES[0].0) {
            p.service_account_managed = None;
        }
        Ok(p)
    }

    async fn remediate(&self, fix: HostFix) -> Result<FixOutcome, HostError> {
        self.available()?;
        let mut s = self.lock();
        if fix == HostFix::ServiceAccountManaged && !s.services.contains_key(AGENT_SERVICES[0].0) {
            return Err(HostError::Io(format!(
                "the agent service {} is not installed",
                AGENT_SERVICES[0].0
            )));
        }
        let outcome = super::host_prereq::apply(&mut s.prereq, fix);
        s.fixes.push((fix, outcome.changed));
        Ok(outcome)
    }

    async fn agent_settings(&self) -> Result<AgentSettingsRead, HostError> {
        self.available()?;
        super::host_settings::read(&self.lock())
    }

    async fn set_agent_settings(&self, settings: &AgentSettings) -> Result<(), HostError> {
        self.available()?;
        super::host_settings::write(&mut self.lock(), settings)
    }

    async fn local_machine_certificates(&self, store: &str) -> Result<Vec<Vec<u8>>, HostError> {
        let state = self.lock();
        if let Some(reason) = &state.unavailable {
            return Err(HostError::Unavailable(reason.clone()));
        }
        Ok(state.certificates.get(store).cloned().unwrap_or_default())
    }

    async fn diagnostic_parts(
        &self,
        _since: std::time::SystemTime,
        _limit: u64,
    ) -> Vec<DiagnosticPart> {
        let state = self.lock();
        if let Some(reason) = &state.unavailable {
            return vec![DiagnosticPart {
                path: "agent".into(),
                content: Err(reason.clone()),
            }];
        }
        let mut parts = state.diagnostic_parts.clone();
        parts.push(DiagnosticPart {
            path: "agent/AADConnectProvisioningAgent.exe.config".into(),
            content: Ok(state.exe_config.clone()),
        });
        parts
    }
}
