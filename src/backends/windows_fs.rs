//! (Windows) Folders Windows knows and directories only SYSTEM and
//! Administrators may touch: shared by the agent module runner's scripts
//! directory and `provd service prepare` (the MSI's `%ProgramData%\provd`).
//!
//! Paths come from known folders, never from the environment: inside a
//! service `%ProgramData%` can differ (Wine gives services
//! `C:\users\Public`). Every `unsafe` block is one documented Win32 call.

use std::ffi::OsString;
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::ptr;

use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1, SE_FILE_OBJECT,
    SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::UI::Shell::{KF_FLAG_DEFAULT, SHGetKnownFolderPath};
use windows_sys::core::{GUID, PWSTR};

pub use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, FOLDERID_System};

/// SYSTEM and Administrators, full control, inherited by files and
/// subfolders; "P": nothing inherited from the parent (in ProgramData,
/// Users may read and create).
pub const ADMIN_ONLY_DACL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// ProgramData as Windows knows it (the environment variable can differ,
/// e.g. in a service's environment).
pub fn program_data() -> Result<PathBuf, String> {
    known_folder(&FOLDERID_ProgramData)
        .map_err(|e| format!("cannot find the ProgramData folder: {e}"))
}

/// A known folder (`FOLDERID_*`) as this process sees it.
pub fn known_folder(id: &GUID) -> io::Result<PathBuf> {
    let mut path: PWSTR = ptr::null_mut();
    // SAFETY: `id` is a valid GUID for the call; default flags and a null
    // token ask for the folder as this process sees it; `path` receives a
    // string the caller frees with CoTaskMemFree (done below, success or
    // not).
    let hr =
        unsafe { SHGetKnownFolderPath(id, KF_FLAG_DEFAULT as u32, ptr::null_mut(), &mut path) };
    let found = if hr >= 0 && !path.is_null() {
        let mut len = 0;
        // SAFETY: on success `path` is a NUL-terminated UTF-16 string; this
        // reads up to its NUL and no further.
        while unsafe { *path.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: the `len` units before the NUL were just read: they are
        // initialized, and stay valid until the CoTaskMemFree below.
        let wide = unsafe { std::slice::from_raw_parts(path, len) };
        Ok(PathBuf::from(OsString::from_wide(wide)))
    } else {
        Err(io::Error::other(format!("HRESULT {hr:#010x}")))
    };
    // SAFETY: `path` came from SHGetKnownFolderPath (or is null, which
    // CoTaskMemFree accepts) and is not used after this.
    unsafe { CoTaskMemFree(path.cast_const().cast()) };
    found
}

/// Creates `dir` (and its parents) and sets its protected DACL `sddl`,
/// which Windows also propagates to what is already in it.
pub fn protect(dir: &Path, sddl: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let descriptor = Descriptor::from_sddl(sddl)?;
    let dacl = descriptor.dacl()?;
    let path: Vec<u16> = dir.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `path` is a NUL-terminated UTF-16 path; `dacl` points into
    // `descriptor`, which outlives the call; owner, group and SACL are null,
    // as the flags (DACL only) say they are unused.
    let err = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err.cast_signed()));
    }
    Ok(())
}

/// A security descriptor built from SDDL, freed on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Descriptor {
    fn from_sddl(sddl: &str) -> io::Result<Self> {
        let sddl: Vec<u16> = sddl.encode_utf16().chain([0]).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated UTF-16; `descriptor` receives a
        // LocalAlloc'd descriptor that Drop frees; the size output is
        // optional and not wanted (null).
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(descriptor))
    }

    /// The descriptor's DACL (a pointer into it).
    fn dacl(&self) -> io::Result<*const ACL> {
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = ptr::null_mut();
        // SAFETY: `self.0` is the valid descriptor built in `from_sddl`; the
        // three outputs are locals.
        let ok =
            unsafe { GetSecurityDescriptorDacl(self.0, &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        if present == 0 || dacl.is_null() {
            return Err(io::Error::other("the SDDL has no DACL"));
        }
        Ok(dacl.cast_const())
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: `self.0` was allocated by
        // ConvertStringSecurityDescriptorToSecurityDescriptorW, which
        // documents LocalFree, and is freed only here.
        unsafe { LocalFree(self.0) };
    }
}
