//! Where the scripts live and how each is put there.
//!
//! Paths come from known folders, never from the environment: inside a
//! service `%ProgramData%` can differ (Wine gives services
//! `C:\users\Public`), and PATH could name any powershell.exe. The scripts
//! directory gets a protected DACL (SYSTEM and Administrators, full
//! control, inherited by the files; `backends::windows_fs`), re-applied
//! before every run. A script is rewritten when missing or different from
//! provd's copy, then opened again read-only and hashed; that handle allows
//! others only to read, so nobody can change, replace or delete the file
//! (or rename its directory) until PowerShell has run it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use windows_sys::Win32::Storage::FileSystem::FILE_SHARE_READ;

use crate::backends::agent_config::scripts::{self, Script};
use crate::backends::windows_fs::{
    ADMIN_ONLY_DACL, FOLDERID_System, known_folder, program_data, protect,
};

/// Windows PowerShell 5.1 in the System folder.
pub(super) fn system_powershell() -> Result<PathBuf, String> {
    known_folder(&FOLDERID_System)
        .map(|system| system.join(r"WindowsPowerShell\v1.0\powershell.exe"))
        .map_err(|e| format!("cannot find the System folder: {e}"))
}

/// `provd\scripts` under ProgramData.
pub(super) fn default_scripts_dir() -> Result<PathBuf, String> {
    program_data().map(|data| data.join("provd").join("scripts"))
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
    protect(&dir, ADMIN_ONLY_DACL).map_err(|e| {
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
