//! "Log on as a service" through LSA: who holds SeServiceLogonRight now
//! (`LsaEnumerateAccountsWithUserRight`, the effective local policy, which
//! a GPO's setting has already been applied to), and whether a GPO defines
//! the right, from the security templates the Group Policy client caches
//! in `%SystemRoot%\security\templates\policies` (a GPO's setting replaces
//! the local one at every refresh, so a local fix would not last).
//!
//! Wine's LSA is a stub (it stores nothing and enumerates nothing), so this
//! file is exercised only on a real server: deploy/windows/README.md lists
//! it among what is verified only in the lab. Every `unsafe` block is one
//! documented Win32 call.

use std::path::PathBuf;
use std::ptr;

use windows_sys::Win32::Foundation::{HLOCAL, LocalFree};
use windows_sys::Win32::Security::Authentication::Identity::{
    LSA_ENUMERATION_INFORMATION, LSA_HANDLE, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, LsaClose,
    LsaEnumerateAccountsWithUserRight, LsaFreeMemory, LsaNtStatusToWinError, LsaOpenPolicy,
    POLICY_LOOKUP_NAMES, POLICY_VIEW_LOCAL_INFORMATION,
};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::core::PWSTR;

use super::{HostError, LogonRights, ServiceLogonRight};

const RIGHT: &str = "SeServiceLogonRight";
/// STATUS_NO_MORE_ENTRIES: nobody holds the right (an empty list).
const NO_MORE_ENTRIES: i32 = 0x8000_001a_u32 as i32;
/// STATUS_OBJECT_NAME_NOT_FOUND: the same, on some Windows versions.
const NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;

/// The Windows implementation of [`LogonRights`].
#[derive(Debug, Clone, Default)]
pub struct LsaLogonRights;

fn lsa_error(call: &str, status: i32) -> HostError {
    // SAFETY: a pure conversion of a status code.
    let code = unsafe { LsaNtStatusToWinError(status) };
    HostError::Io(format!(
        "{call}: {}",
        std::io::Error::from_raw_os_error(code as i32)
    ))
}

/// A policy handle closed on drop.
struct Policy(LSA_HANDLE);

impl Drop for Policy {
    fn drop(&mut self) {
        // SAFETY: the handle came from LsaOpenPolicy and is closed once.
        unsafe { LsaClose(self.0) };
    }
}

fn sid_string(sid: windows_sys::Win32::Security::PSID) -> Option<String> {
    let mut text: PWSTR = ptr::null_mut();
    // SAFETY: `sid` points into LSA's buffer, alive until LsaFreeMemory;
    // on success `text` is a LocalAlloc'd NUL-terminated string we free.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 || text.is_null() {
        return None;
    }
    let mut len = 0;
    // SAFETY: `text` is NUL-terminated (ConvertSidToStringSidW's contract).
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units were just read from `text`.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: `text` was LocalAlloc'd by ConvertSidToStringSidW.
    unsafe { LocalFree(text as HLOCAL) };
    Some(s)
}

fn holders() -> Result<Vec<String>, HostError> {
    let attributes = LSA_OBJECT_ATTRIBUTES::default();
    let mut handle: LSA_HANDLE = 0;
    // SAFETY: null system name = this machine; zeroed attributes as the
    // documentation requires; `handle` is written on success.
    let status = unsafe {
        LsaOpenPolicy(
            ptr::null(),
            &attributes,
            (POLICY_LOOKUP_NAMES | POLICY_VIEW_LOCAL_INFORMATION) as u32,
            &mut handle,
        )
    };
    if status != 0 {
        return Err(lsa_error("LsaOpenPolicy", status));
    }
    let policy = Policy(handle);
    let mut name: Vec<u16> = RIGHT.encode_utf16().collect();
    let bytes = u16::try_from(name.len() * 2).unwrap_or(u16::MAX);
    let right = LSA_UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_mut_ptr(),
    };
    let mut buffer: *mut core::ffi::c_void = ptr::null_mut();
    let mut count: u32 = 0;
    // SAFETY: the policy handle is live; `right` points at `name`, alive for
    // the call; LSA allocates `buffer`, freed below with LsaFreeMemory.
    let status =
        unsafe { LsaEnumerateAccountsWithUserRight(policy.0, &right, &mut buffer, &mut count) };
    if status == NO_MORE_ENTRIES || status == NAME_NOT_FOUND {
        return Ok(Vec::new());
    }
    if status != 0 {
        return Err(lsa_error("LsaEnumerateAccountsWithUserRight", status));
    }
    let entries = buffer.cast::<LSA_ENUMERATION_INFORMATION>();
    let sids = (0..count as usize)
        // SAFETY: LSA returned `count` entries at `buffer`.
        .filter_map(|i| sid_string(unsafe { (*entries.add(i)).Sid }))
        .collect();
    // SAFETY: `buffer` was allocated by LSA and is freed once.
    unsafe { LsaFreeMemory(buffer) };
    Ok(sids)
}

/// The first cached GPO security template that assigns the right.
fn gpo_source() -> Option<String> {
    // From the registry, not the environment (config is its only reader).
    let root: String = winreg::RegKey::predef(winreg::enums::HKEY_LOCAL_MACHINE)
        .open_subkey(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion")
        .and_then(|k| k.get_value("SystemRoot"))
        .unwrap_or_else(|_| r"C:\Windows".into());
    let root = PathBuf::from(root);
    let dir = root.join(r"security\templates\policies");
    std::fs::read_dir(&dir).ok()?.flatten().find_map(|entry| {
        let bytes = std::fs::read(entry.path()).ok()?;
        // The templates are UTF-16LE with a BOM; tolerate ANSI too.
        let text = match bytes.strip_prefix(&[0xff, 0xfe]) {
            Some(wide) => String::from_utf16_lossy(
                &wide
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>(),
            ),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        };
        text.lines()
            .any(|l| l.trim_start().starts_with(RIGHT))
            .then(|| entry.path().display().to_string())
    })
}

#[async_trait::async_trait]
impl LogonRights for LsaLogonRights {
    async fn service_logon_right(&self) -> Result<ServiceLogonRight, HostError> {
        tokio::task::spawn_blocking(|| {
            Ok(ServiceLogonRight {
                holders: holders()?,
                gpo_source: gpo_source(),
            })
        })
        .await
        .map_err(|e| HostError::Io(e.to_string()))?
    }
}
