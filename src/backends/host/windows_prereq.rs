//! The prerequisite facts on Windows and the fixes RemediateHost applies:
//! registry values through winreg (both views where .NET keeps two), the
//! Credential Manager service through the SCM, the installed memory from
//! the firmware tables. Every value is read before it is written, so a fix
//! that finds its value in place changes nothing and says so.
//!
//! Two `unsafe` blocks, each one documented Win32 call:
//! `GetPhysicallyInstalledSystemMemory` and `ChangeServiceConfigW` (the
//! only way to change a start type alone: windows-service's `change_config`
//! rewrites the whole configuration, account included).

use std::io::ErrorKind;
use std::ptr;

use windows_service::service::{ServiceAccess, ServiceStartType};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_sys::Win32::System::Services::{
    ChangeServiceConfigW, SERVICE_DEMAND_START, SERVICE_NO_CHANGE,
};
use windows_sys::Win32::System::SystemInformation::GetPhysicallyInstalledSystemMemory;
use winreg::enums::{
    HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_32KEY, KEY_WOW64_64KEY, KEY_WRITE, REG_BINARY,
    REG_DWORD, REG_EXPAND_SZ, REG_SZ,
};
use winreg::{RegKey, RegValue as RawValue};

use super::{
    AGENT_SERVICES, FixOutcome, HostError, HostFix, HostPrerequisites, RegReading, RegValue,
    StartType,
};

const TLS12: &str =
    r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2";
const NETFX: &str = r"SOFTWARE\Microsoft\.NETFramework\v4.0.30319";
const NDP: &str = r"SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full";
const CURRENT_VERSION: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";
const PS_MACHINE: &str = r"SOFTWARE\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell";
const PS_POLICY: &str = r"SOFTWARE\Policies\Microsoft\Windows\PowerShell";
const KERBEROS: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Kerberos\Parameters";
const VAULT: &str = "VaultSvc";
/// What `sc.exe managedaccount <service> true` stores (REG_BINARY).
const MANAGED: [u8; 4] = [1, 0, 0, 0];

/// The 64-bit view, or the 32-bit one (`WOW6432Node`).
#[derive(Clone, Copy)]
pub(super) enum View {
    Native,
    Wow32,
}

impl View {
    fn flag(self) -> u32 {
        match self {
            View::Native => KEY_WOW64_64KEY,
            View::Wow32 => KEY_WOW64_32KEY,
        }
    }

    /// The path as regedit shows it.
    fn shown(self, key: &str, name: &str) -> String {
        match (self, key.strip_prefix(r"SOFTWARE\")) {
            (View::Wow32, Some(rest)) => format!(r"HKLM\SOFTWARE\WOW6432Node\{rest}\{name}"),
            _ => format!(r"HKLM\{key}\{name}"),
        }
    }
}

fn decode(raw: &RawValue) -> RegValue {
    match &raw.vtype {
        REG_DWORD if raw.bytes.len() >= 4 => RegValue::Dword(u32::from_le_bytes([
            raw.bytes[0],
            raw.bytes[1],
            raw.bytes[2],
            raw.bytes[3],
        ])),
        REG_SZ | REG_EXPAND_SZ => {
            let units: Vec<u16> = raw
                .bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            RegValue::Text(String::from_utf16_lossy(&units))
        }
        REG_BINARY => RegValue::Binary(raw.bytes.to_vec()),
        other => RegValue::Other(other.clone() as u32),
    }
}

pub(super) fn read_in(view: View, key: &str, name: &str) -> RegReading {
    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let value = match hklm.open_subkey_with_flags(key, KEY_READ | view.flag()) {
        Err(e) if e.kind() == ErrorKind::NotFound => RegValue::Absent,
        Err(e) => RegValue::Unreadable(e.to_string()),
        Ok(k) => match k.get_raw_value(name) {
            Err(e) if e.kind() == ErrorKind::NotFound => RegValue::Absent,
            Err(e) => RegValue::Unreadable(e.to_string()),
            Ok(raw) => decode(&raw),
        },
    };
    RegReading::new(view.shown(key, name), value)
}

pub(super) fn read(key: &str, name: &str) -> RegReading {
    read_in(View::Native, key, name)
}

/// Writes `value` unless it is already there; whether it wrote.
pub(super) fn write(view: View, key: &str, name: &str, value: RegValue) -> Result<bool, HostError> {
    if read_in(view, key, name).value == value {
        return Ok(false);
    }
    let shown = view.shown(key, name);
    let (k, _) = RegKey::predef(HKEY_LOCAL_MACHINE)
        .create_subkey_with_flags(key, KEY_READ | KEY_WRITE | view.flag())
        .map_err(|e| HostError::Io(format!("cannot open {shown} for writing: {e}")))?;
    let written = match value {
        RegValue::Dword(v) => k.set_value(name, &v),
        RegValue::Text(v) => k.set_value(name, &v),
        RegValue::Binary(bytes) => k.set_raw_value(
            name,
            &RawValue {
                bytes: bytes.into(),
                vtype: REG_BINARY,
            },
        ),
        other => return Err(HostError::Io(format!("{shown}: cannot write {other:?}"))),
    };
    written.map_err(|e| HostError::Io(format!("cannot write {shown}: {e}")))?;
    Ok(true)
}

pub(super) fn agent_service_key() -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\{}", AGENT_SERVICES[0].0)
}

fn scm() -> Result<ServiceManager, HostError> {
    ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| HostError::Io(format!("cannot open the Service Control Manager: {e}")))
}

/// `Ok(None)`: the service is not installed.
fn vault_start_type() -> Result<Option<StartType>, String> {
    let manager = scm().map_err(|e| e.to_string())?;
    let service = match manager.open_service(VAULT, ServiceAccess::QUERY_CONFIG) {
        Ok(s) => s,
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(1060) => {
            return Ok(None);
        }
        Err(e) => return Err(format!("OpenService {VAULT}: {e}")),
    };
    let config = service
        .query_config()
        .map_err(|e| format!("QueryServiceConfig {VAULT}: {e}"))?;
    Ok(Some(match config.start_type {
        ServiceStartType::AutoStart => StartType::Automatic,
        ServiceStartType::Disabled => StartType::Disabled,
        _ => StartType::Manual,
    }))
}

fn installed_memory() -> Result<u64, String> {
    let mut kib: u64 = 0;
    // SAFETY: the only argument is a pointer to a live, writable u64.
    let ok = unsafe { GetPhysicallyInstalledSystemMemory(&mut kib) };
    if ok == 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(kib.saturating_mul(1024))
}

pub(super) fn prerequisites() -> HostPrerequisites {
    let service_key = agent_service_key();
    let agent_installed = !matches!(read(&service_key, "ImagePath").value, RegValue::Absent);
    HostPrerequisites {
        tls12: vec![
            read(&format!(r"{TLS12}\Client"), "Enabled"),
            read(&format!(r"{TLS12}\Client"), "DisabledByDefault"),
            read(&format!(r"{TLS12}\Server"), "Enabled"),
            read(&format!(r"{TLS12}\Server"), "DisabledByDefault"),
            read_in(View::Native, NETFX, "SchUseStrongCrypto"),
            read_in(View::Wow32, NETFX, "SchUseStrongCrypto"),
        ],
        dotnet_release: read(NDP, "Release"),
        os_product_name: read(CURRENT_VERSION, "ProductName"),
        os_build: read(CURRENT_VERSION, "CurrentBuildNumber"),
        os_installation_type: read(CURRENT_VERSION, "InstallationType"),
        total_memory_bytes: installed_memory(),
        vault_service: vault_start_type(),
        execution_policy: read(PS_MACHINE, "ExecutionPolicy"),
        execution_policy_gpo_enabled: read(PS_POLICY, "EnableScripts"),
        execution_policy_gpo: read(PS_POLICY, "ExecutionPolicy"),
        service_account_managed: agent_installed
            .then(|| read(&service_key, "ServiceAccountManaged")),
        kerberos_encryption_types: read(KERBEROS, "SupportedEncryptionTypes"),
    }
}

fn vault_manual() -> Result<FixOutcome, HostError> {
    if vault_start_type().map_err(HostError::Io)? != Some(StartType::Disabled) {
        return Ok(FixOutcome::default());
    }
    let manager = scm()?;
    let service = manager
        .open_service(VAULT, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| HostError::Io(format!("OpenService {VAULT}: {e}")))?;
    // SAFETY: the handle is live (owned by `service` for the whole call);
    // SERVICE_NO_CHANGE and null pointers leave every other setting as it is.
    let ok = unsafe {
        ChangeServiceConfigW(
            service.raw_handle(),
            SERVICE_NO_CHANGE,
            SERVICE_DEMAND_START,
            SERVICE_NO_CHANGE,
            ptr::null(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
        )
    };
    if ok == 0 {
        return Err(HostError::Io(format!(
            "ChangeServiceConfigW {VAULT}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(FixOutcome {
        changed: true,
        reboot_required: false,
    })
}

pub(super) fn remediate(fix: HostFix) -> Result<FixOutcome, HostError> {
    let mut changed = false;
    match fix {
        HostFix::Tls12 => {
            for side in ["Client", "Server"] {
                let key = format!(r"{TLS12}\{side}");
                changed |= write(View::Native, &key, "Enabled", RegValue::Dword(1))?;
                changed |= write(View::Native, &key, "DisabledByDefault", RegValue::Dword(0))?;
            }
            for view in [View::Native, View::Wow32] {
                changed |= write(view, NETFX, "SchUseStrongCrypto", RegValue::Dword(1))?;
            }
            // SCHANNEL reads its protocol keys at boot.
            return Ok(FixOutcome {
                changed,
                reboot_required: changed,
            });
        }
        HostFix::VaultSvcManual => return vault_manual(),
        HostFix::ServiceAccountManaged => {
            let key = agent_service_key();
            if matches!(read(&key, "ImagePath").value, RegValue::Absent) {
                return Err(HostError::Io(format!(
                    "the agent service {} is not installed",
                    AGENT_SERVICES[0].0
                )));
            }
            changed |= write(
                View::Native,
                &key,
                "ServiceAccountManaged",
                RegValue::Binary(MANAGED.to_vec()),
            )?;
        }
        HostFix::ExecutionPolicyRemoteSigned => {
            changed |= write(
                View::Native,
                PS_MACHINE,
                "ExecutionPolicy",
                RegValue::Text("RemoteSigned".into()),
            )?;
        }
    }
    Ok(FixOutcome {
        changed,
        reboot_required: false,
    })
}
