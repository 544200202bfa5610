//! Where the scripts live and how each is put there.
//!
//! Paths come from known folders, never from the environment: inside a
//! service `%ProgramData%` can differ (Wine gives services
//! `C:\users\Public`), and PATH could name any powershell.exe. The scripts
//! directory gets a protected DACL (SYSTEM and Administrators, full
//! control, inherited by the files), re-applied before every run. A script
//! is rewritten when missing or different from provd's copy, then opened
//! again read-only and hashed; that handle allows others only to read, so
//! nobody can change, replace or delete the file (or rename its directory)
//! until PowerShell has run it. Every `unsafe` block is one documented
//! Win32 call.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr;

use sha2::{Digest, Sha256};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1, SE_FILE_OBJECT,
    SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};
use windows_sys::Win32::Storage::FileSystem::FILE_SHARE_READ;
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::UI::Shell::{
    FOLDERID_ProgramData, FOLDERID_System, KF_FLAG_DEFAULT, SHGetKnownFolderPath,
};
use windows_sys::core::{GUID, PWSTR};

use crate::backends::agent_config::scripts::{self, Script};

/// SYSTEM and Administrators, full control, inherited by files and
/// subfolders; "P": nothing inherited from ProgramData (where Users may
/// read and create).
const SCRIPTS_DIR_DACL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Windows PowerShell 5.1 in the System folder.
pub(super) fn system_powershell() -> Result<PathBuf, String> {
    known_folder(&FOLDERID_System)
        .map(|system| system.join(r"WindowsPowerShell\v1.0\powershell.exe"))
        .map_err(|e| format!("cannot find the System folder: {e}"))
}

/// `provd\scripts` under ProgramData.
pub(super) fn default_scripts_dir() -> Result<PathBuf, String> {
    known_folder(&FOLDERID_ProgramData)
        .map(|data| data.join("provd").join("scripts"))
        .map_err(|e| format!("cannot find the ProgramData folder: {e}"))
}

/// ProgramData as Windows knows it (the environment variable can differ,
/// e.g. in a service's environment).
pub(crate) fn program_data() -> Result<PathBuf, String> {
    known_folder(&FOLDERID_ProgramData)
        .map_err(|e| format!("cannot find the ProgramData folder: {e}"))
}

fn known_folder(id: &GUID) -> io::Result<PathBuf> {
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

/// A script on disk, pinned: while this lives, the file can only be read.
pub(super) struct Installed {
    pub(super) path: PathBuf,
    pub(super) dir: PathBuf,
    _pin: File,
}

/// Puts `script` into `dir` (protected first) and pins it.
pub(super) fn install(dir: &Path, script: &Script) -> Result<Installed, String> {
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    protect(&dir).map_err(|e| {
        format!(
            "cannot prepare the scripts directory {}: {e}",
            dir.display()
        )
    })?;
    let path = dir.join(format!("{}.ps1", script.name));
    let want = scripts::sha256(script);
    let failed = |e: io::Error| format!("cannot write {}: {e}", path.display());
    let pin = match pinned_if_same(&path, &want).map_err(failed)? {
        Some(pin) => pin,
        None => {
            write(&path, script.text).map_err(failed)?;
            pinned_if_same(&path, &want)
                .map_err(failed)?
                .ok_or_else(|| {
                    format!(
                        "{} differs from provd's copy right after it was written",
                        path.display()
                    )
                })?
        }
    };
    Ok(Installed {
        path,
        dir,
        _pin: pin,
    })
}

/// The file opened so that others may only read it, if its SHA-256 is
/// `want`.
fn pinned_if_same(path: &Path, want: &[u8; 32]) -> io::Result<Option<File>> {
    let mut file = match OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok((Sha256::digest(&bytes).as_slice() == want.as_slice()).then_some(file))
}

fn write(path: &Path, text: &str) -> io::Result<()> {
    // No sharing while it is written: nobody reads half a script.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .share_mode(0)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Creates `dir` (and its parents) and sets its protected DACL, which
/// Windows also propagates to the files already in it.
fn protect(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let descriptor = Descriptor::from_sddl(SCRIPTS_DIR_DACL)?;
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
