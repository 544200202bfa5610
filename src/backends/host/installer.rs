//! Platform-independent installer knowledge: Windows Installer exit codes
//! and reading an MSI's ProductVersion before it is run.

use std::fmt;
use std::path::Path;

/// A failed installer run, by the documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallerFailure {
    /// 1602: the user cancelled.
    UserCancelled,
    /// 1603: fatal error during installation (rolled back).
    FatalError,
    /// 1618: another installation is in progress; retry later.
    AnotherInstallInProgress,
    /// 1619: the package could not be opened.
    PackageOpenFailed,
    /// 1620: the package is not a valid installation package.
    InvalidPackage,
    /// 1627: a function failed during execution (Wine reports a failed
    /// install this way where Windows says 1603).
    FunctionFailed,
    /// 1638: another version of the product is installed.
    AnotherVersionInstalled,
    /// 1605: the product is not installed (uninstall).
    ProductNotInstalled,
    /// 1633: the package does not support this platform.
    PlatformUnsupported,
    /// Any other non-zero code.
    Other,
}

impl InstallerFailure {
    /// The meaning of a non-success exit code (0, 3010 and 1641 are success).
    pub fn from_code(code: u32) -> InstallerFailure {
        match code {
            1602 => Self::UserCancelled,
            1603 => Self::FatalError,
            1605 => Self::ProductNotInstalled,
            1618 => Self::AnotherInstallInProgress,
            1619 => Self::PackageOpenFailed,
            1620 => Self::InvalidPackage,
            1627 => Self::FunctionFailed,
            1633 => Self::PlatformUnsupported,
            1638 => Self::AnotherVersionInstalled,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for InstallerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UserCancelled => "cancelled",
            Self::FatalError => "fatal error during installation, rolled back",
            Self::AnotherInstallInProgress => "another installation is in progress",
            Self::PackageOpenFailed => "the package could not be opened",
            Self::InvalidPackage => "not a valid installation package",
            Self::FunctionFailed => "an installer action failed, rolled back",
            Self::AnotherVersionInstalled => "another version of the agent is installed",
            Self::ProductNotInstalled => "the product is not installed",
            Self::PlatformUnsupported => "the package does not support this platform",
            Self::Other => "unrecognised installer failure",
        })
    }
}

/// Exit codes that mean success: 0, and 3010 / 1641 (restart needed or
/// started).
pub fn is_success(code: u32) -> Option<bool> {
    match code {
        0 => Some(false),
        3010 | 1641 => Some(true),
        _ => None,
    }
}

/// The ProductVersion (and ProductName) in an MSI's Property table.
#[tracing::instrument(name = "installer.read_version", skip_all, fields(package = %path.display()))]
pub fn package_version(path: &Path) -> Result<(String, String), String> {
    let mut package = msi::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = package
        .select_rows(msi::Select::table("Property"))
        .map_err(|e| format!("{}: Property table: {e}", path.display()))?;
    let (mut name, mut version) = (String::new(), String::new());
    for row in rows {
        if row.len() < 2 {
            continue;
        }
        match (row[0].as_str(), row[1].as_str()) {
            (Some("ProductVersion"), Some(v)) => version = v.to_owned(),
            (Some("ProductName"), Some(v)) => name = v.to_owned(),
            _ => {}
        }
    }
    if version.is_empty() {
        return Err(format!("{} has no ProductVersion", path.display()));
    }
    Ok((name, version))
}

/// Dotted version order ("1.1.977.0" < "1.1.1000.0").
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |v: &str| {
        v.split('.')
            .map(|p| p.trim().parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(is_success(0), Some(false));
        assert_eq!(is_success(3010), Some(true));
        assert_eq!(is_success(1603), None);
        assert_eq!(
            InstallerFailure::from_code(1618),
            InstallerFailure::AnotherInstallInProgress
        );
        assert_eq!(
            InstallerFailure::from_code(1627),
            InstallerFailure::FunctionFailed
        );
        assert_eq!(InstallerFailure::from_code(42), InstallerFailure::Other);
    }

    #[test]
    fn versions() {
        use std::cmp::Ordering;
        assert_eq!(version_cmp("1.1.977.0", "1.1.1000.0"), Ordering::Less);
        assert_eq!(version_cmp("1.1.977.0", "1.1.977.0"), Ordering::Equal);
        assert_eq!(version_cmp("2.0", "1.9.9.9"), Ordering::Greater);
    }

    #[test]
    fn not_an_msi() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.msi");
        std::fs::write(&p, b"not an msi").unwrap();
        assert!(package_version(&p).is_err());
    }
}
