//! The prerequisite side of `FakeHost`: a healthy Windows Server 2022 to
//! start from, setters for each bad state the checks name, and the fixes
//! applied to the facts as the Windows host applies them to the registry
//! and the SCM. Plus `RecordedLogonRights`, the recorded fake behind the
//! `LogonRights` trait: Wine's LSA is a stub, so what LSA answers on a
//! real server is recorded here by the test, not read.

use std::sync::{Arc, Mutex};

use super::host::FakeHost;
use crate::backends::host::{
    ALL_SERVICES_SID, FixOutcome, HostError, HostFix, HostPrerequisites, LogonRights, RegReading,
    RegValue, ServiceLogonRight, StartType,
};

const TLS12: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2";
const NETFX: &str = r"Microsoft\.NETFramework\v4.0.30319\SchUseStrongCrypto";
const CURRENT_VERSION: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
const PS_MACHINE: &str =
    r"HKLM\SOFTWARE\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell\ExecutionPolicy";
const PS_POLICY: &str = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\PowerShell";

fn reg(path: String, value: RegValue) -> RegReading {
    RegReading::new(path, value)
}

/// What a healthy server answers: TLS 1.2 set as Microsoft documents, .NET
/// 4.8, Server 2022 with the Desktop Experience, 8 GiB, VaultSvc Manual, no
/// execution policy set, the agent service flagged managed.
pub(super) fn healthy() -> HostPrerequisites {
    HostPrerequisites {
        tls12: vec![
            reg(format!(r"{TLS12}\Client\Enabled"), RegValue::Dword(1)),
            reg(format!(r"{TLS12}\Client\DisabledByDefault"), RegValue::Dword(0)),
            reg(format!(r"{TLS12}\Server\Enabled"), RegValue::Dword(1)),
            reg(format!(r"{TLS12}\Server\DisabledByDefault"), RegValue::Dword(0)),
            reg(format!(r"HKLM\SOFTWARE\{NETFX}"), RegValue::Dword(1)),
            reg(format!(r"HKLM\SOFTWARE\WOW6432Node\{NETFX}"), RegValue::Dword(1)),
        ],
        dotnet_release: reg(
            r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full\Release".into(),
            RegValue::Dword(528_449),
        ),
        os_product_name: reg(
            format!(r"{CURRENT_VERSION}\ProductName"),
            RegValue::Text("Windows Server 2022 Datacenter".into()),
        ),
        os_build: reg(
            format!(r"{CURRENT_VERSION}\CurrentBuildNumber"),
            RegValue::Text("20348".into()),
        ),
        os_installation_type: reg(
            format!(r"{CURRENT_VERSION}\InstallationType"),
            RegValue::Text("Server".into()),
        ),
        total_memory_bytes: Ok(8 << 30),
        vault_service: Ok(Some(StartType::Manual)),
        execution_policy: reg(PS_MACHINE.into(), RegValue::Absent),
        execution_policy_gpo_enabled: reg(format!(r"{PS_POLICY}\EnableScripts"), RegValue::Absent),
        execution_policy_gpo: reg(format!(r"{PS_POLICY}\ExecutionPolicy"), RegValue::Absent),
        service_account_managed: Some(reg(
            r"HKLM\SYSTEM\CurrentControlSet\Services\AADConnectProvisioningAgent\ServiceAccountManaged".into(),
            RegValue::Binary(vec![1, 0, 0, 0]),
        )),
        kerberos_encryption_types: reg(
            r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Kerberos\Parameters\SupportedEncryptionTypes".into(),
            RegValue::Absent,
        ),
    }
}

fn set(reading: &mut RegReading, value: RegValue) -> bool {
    let changed = reading.value != value;
    reading.value = value;
    changed
}

/// The fix, as `windows_prereq::remediate` makes it.
pub(super) fn apply(p: &mut HostPrerequisites, fix: HostFix) -> FixOutcome {
    let mut changed = false;
    match fix {
        HostFix::Tls12 => {
            for r in &mut p.tls12 {
                let want = if r.path.ends_with("DisabledByDefault") {
                    0
                } else {
                    1
                };
                changed |= set(r, RegValue::Dword(want));
            }
            return FixOutcome {
                changed,
                reboot_required: changed,
            };
        }
        HostFix::VaultSvcManual => {
            if p.vault_service == Ok(Some(StartType::Disabled)) {
                p.vault_service = Ok(Some(StartType::Manual));
                changed = true;
            }
        }
        HostFix::ServiceAccountManaged => {
            if let Some(r) = &mut p.service_account_managed {
                changed |= set(r, RegValue::Binary(vec![1, 0, 0, 0]));
            }
        }
        HostFix::ExecutionPolicyRemoteSigned => {
            changed |= set(
                &mut p.execution_policy,
                RegValue::Text("RemoteSigned".into()),
            );
        }
    }
    FixOutcome {
        changed,
        reboot_required: false,
    }
}

impl FakeHost {
    /// Changes the prerequisite facts in place.
    pub fn edit_prerequisites(&self, edit: impl FnOnce(&mut HostPrerequisites)) {
        edit(&mut self.lock().prereq);
    }

    /// Every fix bad state the checks can fix: TLS 1.2 keys off, VaultSvc
    /// disabled, execution policy Unrestricted, the agent service not
    /// flagged managed.
    pub fn break_fixable_prerequisites(&self) {
        self.edit_prerequisites(|p| {
            for r in &mut p.tls12 {
                r.value = RegValue::Absent;
            }
            p.vault_service = Ok(Some(StartType::Disabled));
            p.execution_policy.value = RegValue::Text("Unrestricted".into());
            if let Some(r) = &mut p.service_account_managed {
                r.value = RegValue::Absent;
            }
        });
    }

    /// Every fix asked so far, in order, with whether it changed anything.
    pub fn fixes(&self) -> Vec<(HostFix, bool)> {
        self.lock().fixes.clone()
    }
}

/// RECORDED FAKE of [`LogonRights`]: answers what the test recorded (by
/// default what a healthy server's LSA reports: `NT SERVICE\ALL SERVICES`
/// holds the right, no GPO defines it). It reads nothing; clones share it.
#[derive(Clone)]
pub struct RecordedLogonRights(Arc<Mutex<Result<ServiceLogonRight, String>>>);

impl Default for RecordedLogonRights {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Ok(ServiceLogonRight {
            holders: vec![ALL_SERVICES_SID.into(), "S-1-5-20".into()],
            gpo_source: None,
        }))))
    }
}

impl RecordedLogonRights {
    /// The next reads answer `right`.
    pub fn record(&self, right: ServiceLogonRight) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Ok(right);
    }

    /// The next reads fail with `error` (as LsaOpenPolicy without rights).
    pub fn record_error(&self, error: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Err(error.into());
    }
}

#[async_trait::async_trait]
impl LogonRights for RecordedLogonRights {
    async fn service_logon_right(&self) -> Result<ServiceLogonRight, HostError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map_err(HostError::Io)
    }
}
