//! The Win32 calls the stand-in makes, each behind a safe function: the registry, the
//! ProgramData known folder, a file's version resource, the computer name and a service's
//! logon account. The only `unsafe` of the crate.

#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString, c_void};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_SZ,
    RRF_RT_ANY, RegGetValueW, RegSetKeyValueW,
};

fn wide(s: &str) -> Vec<u16> {
    OsStr::new(s)
        .encode_wide()
        .chain(std::iter::once(0))
        .collect()
}

fn from_wide(buf: &[u16]) -> String {
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    OsString::from_wide(&buf[..len])
        .to_string_lossy()
        .into_owned()
}

/// A registry value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegValue {
    Sz(String),
    MultiSz(Vec<String>),
    Dword(u32),
    Binary(Vec<u8>),
    Other,
}

impl RegValue {
    /// As text: a string, the strings of a multi-string joined by `\n`, a number.
    pub fn text(&self) -> Option<String> {
        match self {
            RegValue::Sz(s) => Some(s.clone()),
            RegValue::MultiSz(v) => Some(v.join("\n")),
            RegValue::Dword(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A flag: a non-zero DWORD, a binary whose first byte is non-zero
    /// (`ServiceAccountManaged` is `01 00 00 00`), or the string `1`.
    pub fn is_set(&self) -> bool {
        match self {
            RegValue::Dword(n) => *n != 0,
            RegValue::Binary(b) => b.first().is_some_and(|&x| x != 0),
            RegValue::Sz(s) => s.trim() == "1",
            _ => false,
        }
    }
}

/// `HKLM\…` or `HKCU\…` (also PowerShell's `HKLM:\…`): the hive and the subkey.
fn split(path: &str) -> Option<(HKEY, &str)> {
    let (root, rest) = path.split_once('\\')?;
    let hive = match root.trim_end_matches(':').to_ascii_uppercase().as_str() {
        "HKLM" | "HKEY_LOCAL_MACHINE" => HKEY_LOCAL_MACHINE,
        "HKCU" | "HKEY_CURRENT_USER" => HKEY_CURRENT_USER,
        _ => return None,
    };
    Some((hive, rest))
}

/// The value `name` of key `path` (`HKLM\SOFTWARE\…`), if there is one.
pub fn reg_get(path: &str, name: &str) -> Option<RegValue> {
    let (hive, subkey) = split(path)?;
    let (subkey, name) = (wide(subkey), wide(name));
    let mut ty = 0u32;
    let mut size = 0u32;
    // SAFETY: NUL-terminated key and value names that outlive the call; a null data
    // pointer with a size out-pointer asks for the size only.
    let rc = unsafe {
        RegGetValueW(
            hive,
            subkey.as_ptr(),
            name.as_ptr(),
            RRF_RT_ANY,
            &mut ty,
            std::ptr::null_mut(),
            &mut size,
        )
    };
    if rc != 0 {
        return None;
    }
    // Room for a missing terminator, in u16 units.
    let mut buf = vec![0u16; (size as usize).div_ceil(2) + 2];
    let mut size = (buf.len() * 2) as u32;
    // SAFETY: as above, with a writable buffer of `size` bytes.
    let rc = unsafe {
        RegGetValueW(
            hive,
            subkey.as_ptr(),
            name.as_ptr(),
            RRF_RT_ANY,
            &mut ty,
            buf.as_mut_ptr().cast::<c_void>(),
            &mut size,
        )
    };
    if rc != 0 {
        return None;
    }
    let bytes: Vec<u8> = buf
        .iter()
        .flat_map(|u| u.to_le_bytes())
        .take(size as usize)
        .collect();
    Some(match ty {
        REG_SZ => RegValue::Sz(from_wide(&buf)),
        REG_MULTI_SZ => {
            let units = &buf[..(size as usize / 2).min(buf.len())];
            RegValue::MultiSz(
                units
                    .split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| OsString::from_wide(s).to_string_lossy().into_owned())
                    .collect(),
            )
        }
        REG_DWORD => RegValue::Dword(u32::from_le_bytes([
            bytes.first().copied().unwrap_or(0),
            bytes.get(1).copied().unwrap_or(0),
            bytes.get(2).copied().unwrap_or(0),
            bytes.get(3).copied().unwrap_or(0),
        ])),
        REG_BINARY => RegValue::Binary(bytes),
        _ => RegValue::Other,
    })
}

/// Sets `name` of key `path` to a string (the key is created when missing).
pub fn reg_set_sz(path: &str, name: &str, value: &str) -> Result<(), String> {
    let (hive, subkey) = split(path).ok_or_else(|| format!("not a registry path: {path}"))?;
    let (subkey_w, name_w, data) = (wide(subkey), wide(name), wide(value));
    // SAFETY: NUL-terminated names; `data` is a NUL-terminated UTF-16 string of exactly
    // `data.len() * 2` bytes, as REG_SZ wants.
    let rc = unsafe {
        RegSetKeyValueW(
            hive,
            subkey_w.as_ptr(),
            name_w.as_ptr(),
            REG_SZ,
            data.as_ptr().cast::<c_void>(),
            (data.len() * 2) as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot write {path}\\{name}: {}",
            std::io::Error::from_raw_os_error(rc as i32)
        ))
    }
}

/// The ProgramData known folder (`C:\ProgramData`; not `%ProgramData%`, which Wine sets to
/// `C:\users\Public` for services).
pub fn program_data() -> PathBuf {
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};

    let mut path: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: a valid GUID, no flags, the default token, an out pointer; the string it
    // returns is NUL-terminated, read before it is freed with CoTaskMemFree (which accepts
    // null on failure).
    let known = unsafe {
        let hr = SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut path);
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

/// A file's `FileVersion` string resource (what PowerShell's `VersionInfo.FileVersion`
/// shows), else its fixed version `a.b.c.d`; `None` without a version resource.
pub fn file_version(path: &str) -> Option<String> {
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileVersionInfoSizeW, GetFileVersionInfoW, VS_FIXEDFILEINFO, VerQueryValueW,
    };
    let path = wide(path);
    let mut handle = 0u32;
    // SAFETY: a NUL-terminated path and an out pointer.
    let size = unsafe { GetFileVersionInfoSizeW(path.as_ptr(), &mut handle) };
    if size == 0 {
        return None;
    }
    let mut block = vec![0u8; size as usize];
    // SAFETY: `block` is writable for `size` bytes.
    if unsafe { GetFileVersionInfoW(path.as_ptr(), 0, size, block.as_mut_ptr().cast()) } == 0 {
        return None;
    }
    let query = |sub: &str| -> Option<(*const c_void, u32)> {
        let sub = wide(sub);
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let mut len = 0u32;
        // SAFETY: `block` holds the version resource GetFileVersionInfoW filled; the
        // pointer VerQueryValueW returns points into it (valid while `block` lives).
        let ok = unsafe { VerQueryValueW(block.as_ptr().cast(), sub.as_ptr(), &mut ptr, &mut len) };
        (ok != 0 && !ptr.is_null() && len > 0).then_some((ptr.cast_const(), len))
    };
    if let Some((ptr, len)) = query(r"\VarFileInfo\Translation")
        && len >= 4
    {
        // SAFETY: at least 4 bytes at `ptr` inside `block`: (language, code page) u16s.
        let (lang, cp) = unsafe {
            (
                ptr.cast::<u16>().read_unaligned(),
                ptr.cast::<u16>().add(1).read_unaligned(),
            )
        };
        if let Some((ptr, len)) = query(&format!(r"\StringFileInfo\{lang:04x}{cp:04x}\FileVersion"))
        {
            // SAFETY: `len` UTF-16 units (with the terminator) inside `block`.
            let units = unsafe { std::slice::from_raw_parts(ptr.cast::<u16>(), len as usize) };
            let text = from_wide(units);
            if !text.trim().is_empty() {
                return Some(text.trim().to_owned());
            }
        }
    }
    let (ptr, len) = query("\\")?;
    if (len as usize) < std::mem::size_of::<VS_FIXEDFILEINFO>() {
        return None;
    }
    // SAFETY: a VS_FIXEDFILEINFO inside `block`, possibly unaligned.
    let fixed = unsafe { ptr.cast::<VS_FIXEDFILEINFO>().read_unaligned() };
    Some(format!(
        "{}.{}.{}.{}",
        fixed.dwFileVersionMS >> 16,
        fixed.dwFileVersionMS & 0xffff,
        fixed.dwFileVersionLS >> 16,
        fixed.dwFileVersionLS & 0xffff
    ))
}

/// The computer's fully qualified DNS name (its host name when it has no domain).
pub fn computer_name() -> String {
    use windows_sys::Win32::System::SystemInformation::{
        ComputerNameDnsFullyQualified, GetComputerNameExW,
    };
    let mut buf = vec![0u16; 256];
    let mut len = buf.len() as u32;
    // SAFETY: a writable buffer of `len` UTF-16 units; `len` receives the length used.
    let ok =
        unsafe { GetComputerNameExW(ComputerNameDnsFullyQualified, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return std::env::var("COMPUTERNAME").unwrap_or_default();
    }
    from_wide(&buf[..(len as usize).min(buf.len())])
}

/// Sets a service's logon account (no password: a gMSA's is fetched by the SCM), changing
/// nothing else.
pub fn set_service_logon(service: &str, account: &str) -> Result<(), std::io::Error> {
    use windows_sys::Win32::System::Services::{
        ChangeServiceConfigW, CloseServiceHandle, OpenSCManagerW, OpenServiceW, SC_MANAGER_CONNECT,
        SERVICE_CHANGE_CONFIG, SERVICE_NO_CHANGE,
    };
    let (service, account, password) = (wide(service), wide(account), wide(""));
    // SAFETY: the handles are checked and closed on every path; every string is
    // NUL-terminated and outlives the calls; null pointers and SERVICE_NO_CHANGE mean
    // "leave unchanged" for every other field.
    unsafe {
        let manager = OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_CONNECT);
        if manager.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let handle = OpenServiceW(manager, service.as_ptr(), SERVICE_CHANGE_CONFIG);
        if handle.is_null() {
            let e = std::io::Error::last_os_error();
            CloseServiceHandle(manager);
            return Err(e);
        }
        let ok = ChangeServiceConfigW(
            handle,
            SERVICE_NO_CHANGE,
            SERVICE_NO_CHANGE,
            SERVICE_NO_CHANGE,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            account.as_ptr(),
            password.as_ptr(),
            std::ptr::null(),
        );
        let e = std::io::Error::last_os_error();
        CloseServiceHandle(handle);
        CloseServiceHandle(manager);
        if ok == 0 { Err(e) } else { Ok(()) }
    }
}

/// Stops a service (when it runs) and starts it again, as a service restart does; waits up
/// to `limit` for it to stop.
pub fn restart_service(service: &str, limit: std::time::Duration) -> Result<(), String> {
    use windows_sys::Win32::Foundation::ERROR_SERVICE_NOT_ACTIVE;
    use windows_sys::Win32::System::Services::{
        CloseServiceHandle, ControlService, OpenSCManagerW, OpenServiceW, QueryServiceStatus,
        SC_MANAGER_CONNECT, SERVICE_CONTROL_STOP, SERVICE_QUERY_STATUS, SERVICE_START,
        SERVICE_STATUS, SERVICE_STOP, SERVICE_STOPPED, StartServiceW,
    };
    let name = wide(service);
    let last = |what: &str| format!("{what} {service}: {}", std::io::Error::last_os_error());
    // SAFETY: the handles are checked and closed on every path; the name is NUL-terminated
    // and outlives the calls; `status` is a writable SERVICE_STATUS for each query.
    unsafe {
        let manager = OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_CONNECT);
        if manager.is_null() {
            return Err(last("OpenSCManager for"));
        }
        let handle = OpenServiceW(
            manager,
            name.as_ptr(),
            SERVICE_STOP | SERVICE_START | SERVICE_QUERY_STATUS,
        );
        if handle.is_null() {
            let e = last("OpenService");
            CloseServiceHandle(manager);
            return Err(e);
        }
        let result = (|| {
            let mut status: SERVICE_STATUS = std::mem::zeroed();
            if ControlService(handle, SERVICE_CONTROL_STOP, &mut status) == 0
                && std::io::Error::last_os_error().raw_os_error()
                    != Some(ERROR_SERVICE_NOT_ACTIVE as i32)
            {
                return Err(last("stopping"));
            }
            let began = std::time::Instant::now();
            loop {
                if QueryServiceStatus(handle, &mut status) == 0 {
                    return Err(last("querying"));
                }
                if status.dwCurrentState == SERVICE_STOPPED {
                    break;
                }
                if began.elapsed() > limit {
                    return Err(format!("{service} did not stop within {limit:?}"));
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            if StartServiceW(handle, 0, std::ptr::null()) == 0 {
                return Err(last("starting"));
            }
            Ok(())
        })();
        CloseServiceHandle(handle);
        CloseServiceHandle(manager);
        result
    }
}
