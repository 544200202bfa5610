//! `provd service prepare` and `provd service purge`: the machine's provd
//! directory, `<ProgramData>\provd` (`provd.toml`, `state\`, `provd.log`),
//! which the MSI (`deploy/windows/provd.wxs`) does not own, so that
//! upgrades and uninstalls keep it. The MSI runs both as deferred custom
//! actions as SYSTEM: `prepare` after its files are in place, `purge` on an
//! uninstall with `PURGE=1`. Both are idempotent: wixl 0.101 has no
//! rollback custom actions, so a failed install leaves what `prepare` made
//! and the next attempt must accept it.
//!
//! ProgramData comes from the known folder (`backends::windows_fs`), never
//! from `%ProgramData%`, and `--config` must name `provd.toml` in it:
//! `purge` deletes a whole directory, which must never be one an argument
//! chose.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The configuration file's name in the directory.
const CONFIG_FILE: &str = "provd.toml";

/// `<ProgramData>\provd` and what it holds.
pub struct Layout {
    pub dir: PathBuf,
}

/// What `prepare` did with `provd.toml`.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigFile {
    Written,
    /// There was one (an upgrade, a reinstall, an administrator's edit).
    Kept,
}

impl Layout {
    /// `provd` under `program_data`.
    pub fn under(program_data: &Path) -> Layout {
        Layout {
            dir: program_data.join("provd"),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("provd.log")
    }

    /// Refuses a `--config` that is not this directory's `provd.toml`
    /// (compared as Windows does: case-insensitively, by component).
    pub fn check_config(&self, config: &Path) -> anyhow::Result<()> {
        let want = self.config();
        let fold = |p: &Path| -> Vec<String> {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().to_lowercase())
                .collect()
        };
        if fold(config) != fold(&want) {
            bail!(
                "--config {} is not {}: `provd service prepare|purge` manage only provd's directory under ProgramData",
                config.display(),
                want.display()
            );
        }
        Ok(())
    }

    /// Creates the directory with `protect` (its DACL), `state\`, and
    /// `provd.toml` when there is none.
    pub fn prepare(
        &self,
        protect: impl FnOnce(&Path) -> io::Result<()>,
    ) -> anyhow::Result<ConfigFile> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // Before anything is written into it: the files inherit the DACL.
        protect(&self.dir)
            .with_context(|| format!("cannot set the DACL of {}", self.dir.display()))?;
        let state = self.state();
        std::fs::create_dir_all(&state)
            .with_context(|| format!("cannot create {}", state.display()))?;
        let config = self.config();
        if config.exists() {
            return Ok(ConfigFile::Kept);
        }
        // Written aside and renamed, so an interrupted prepare never leaves
        // a partial file that every later one would keep.
        let text = self.config_text()?;
        let partial = self.dir.join(format!("{CONFIG_FILE}.partial"));
        let write = || -> io::Result<()> {
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&partial, &config)
        };
        write().with_context(|| format!("cannot write {}", config.display()))?;
        Ok(ConfigFile::Written)
    }

    /// The first `provd.toml`: where the state and the log go. Everything
    /// else comes from the service's flags (the MSI's properties) or from an
    /// administrator's edit.
    fn config_text(&self) -> anyhow::Result<String> {
        let text = |p: PathBuf| -> anyhow::Result<toml::Value> {
            p.to_str()
                .map(|s| toml::Value::String(s.to_owned()))
                .with_context(|| format!("{} is not valid Unicode", p.display()))
        };
        Ok(format!(
            "# Written by `provd service prepare` (provd's MSI) because there was no\n\
             # provd.toml. Upgrades and uninstalls keep it; `msiexec /x … PURGE=1`\n\
             # deletes this directory. The MSI's properties (LISTEN, TLS_CERT, …)\n\
             # are flags on the service's command line, which win over this file.\n\
             # Every key: deploy/config/provd.example.toml.\n\
             state_dir = {}\n\
             \n\
             [log]\n\
             # A service's stderr goes nowhere.\n\
             file = {}\n",
            text(self.state())?,
            text(self.log())?
        ))
    }

    /// Deletes the directory; true if there was one.
    pub fn purge(&self) -> anyhow::Result<bool> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", self.dir.display())),
        }
    }
}

/// `provd service prepare --config PATH` on this machine.
#[cfg(windows)]
pub fn prepare(config: &Path) -> anyhow::Result<()> {
    use provd::backends::windows_fs::{ADMIN_ONLY_DACL, program_data, protect};
    let layout = Layout::under(&program_data().map_err(anyhow::Error::msg)?);
    layout.check_config(config)?;
    let written = layout.prepare(|dir| protect(dir, ADMIN_ONLY_DACL))?;
    println!(
        "{}: SYSTEM and Administrators only; provd.toml {}",
        layout.dir.display(),
        match written {
            ConfigFile::Written => "written",
            ConfigFile::Kept => "kept",
        }
    );
    Ok(())
}

/// `provd service purge --config PATH` on this machine.
#[cfg(windows)]
pub fn purge(config: &Path) -> anyhow::Result<()> {
    let layout =
        Layout::under(&provd::backends::windows_fs::program_data().map_err(anyhow::Error::msg)?);
    layout.check_config(config)?;
    let removed = layout.purge()?;
    println!(
        "{}: {}",
        layout.dir.display(),
        if removed { "deleted" } else { "not there" }
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prepare_writes_a_config_once_and_keeps_an_edited_one() {
        let data = tempfile::tempdir().unwrap();
        let layout = Layout::under(data.path());
        let mut protected = Vec::new();
        let first = layout
            .prepare(|dir| {
                protected.push(dir.to_owned());
                Ok(())
            })
            .unwrap();
        assert_eq!(first, ConfigFile::Written);
        assert_eq!(protected, [data.path().join("provd")]);
        assert!(data.path().join("provd/state").is_dir());
        let text = std::fs::read_to_string(data.path().join("provd/provd.toml")).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(
            table["state_dir"].as_str().unwrap(),
            data.path().join("provd/state").to_str().unwrap()
        );
        assert_eq!(
            table["log"]["file"].as_str().unwrap(),
            data.path().join("provd/provd.log").to_str().unwrap()
        );
        assert!(!data.path().join("provd/provd.toml.partial").exists());

        // An upgrade's prepare: the administrator's file stays as it is,
        // and the DACL is set again.
        std::fs::write(data.path().join("provd/provd.toml"), "listen = \"x\"\n").unwrap();
        let again = layout.prepare(|_| Ok(())).unwrap();
        assert_eq!(again, ConfigFile::Kept);
        assert_eq!(
            std::fs::read_to_string(data.path().join("provd/provd.toml")).unwrap(),
            "listen = \"x\"\n"
        );
    }

    #[test]
    fn a_refused_dacl_stops_prepare_before_any_file() {
        let data = tempfile::tempdir().unwrap();
        let layout = Layout::under(data.path());
        let err = layout
            .prepare(|_| Err(io::Error::other("access denied")))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot set the DACL"),
            "{err:#}"
        );
        assert!(!data.path().join("provd/provd.toml").exists());
    }

    #[test]
    fn windows_paths_survive_the_toml() {
        let layout = Layout {
            dir: PathBuf::from(r"C:\ProgramData\it's provd"),
        };
        let table: toml::Table = layout.config_text().unwrap().parse().unwrap();
        assert_eq!(
            table["state_dir"].as_str().unwrap(),
            layout.state().to_str().unwrap()
        );
    }

    #[test]
    fn purge_deletes_the_directory_and_accepts_none() {
        let data = tempfile::tempdir().unwrap();
        let layout = Layout::under(data.path());
        layout.prepare(|_| Ok(())).unwrap();
        std::fs::write(data.path().join("provd/state/provd.redb"), b"x").unwrap();
        assert!(layout.purge().unwrap());
        assert!(!data.path().join("provd").exists());
        assert!(!layout.purge().unwrap());
    }

    #[test]
    fn only_the_directorys_own_config_is_accepted() {
        let layout = Layout::under(Path::new("/data"));
        layout
            .check_config(Path::new("/data/provd/provd.toml"))
            .unwrap();
        layout
            .check_config(Path::new("/DATA/Provd/PROVD.toml"))
            .unwrap();
        for other in ["/data/provd.toml", "/data/other/provd.toml", "/provd.toml"] {
            let err = layout.check_config(Path::new(other)).unwrap_err();
            assert!(err.to_string().contains("is not"), "{err}");
        }
    }
}
