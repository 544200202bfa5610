//! Platform-independent installer knowledge: Windows Installer exit codes,
//! reading an MSI's ProductVersion before it is run, and the agent's
//! Add/Remove Programs entries and how each is removed.
//!
//! The package's entries. Microsoft's "Automatic upgrade" page
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-automatic-upgrade>,
//! "Uninstall the agent") lists three: "Microsoft Azure AD Connect Agent
//! Updater", "Microsoft Azure AD Connect Provisioning Agent" and "Microsoft
//! Azure AD Connect Provisioning Agent Package"; its current text spells
//! them "Microsoft Entra Connect Agent Updater", "Microsoft Entra
//! Provisioning Agent", "Microsoft Entra Provisioning Agent Package", so
//! both spellings match ([`DISPLAY_NAMES`], as prefixes). The package is a
//! WiX Burn bundle (`AADConnectProvisioningAgentSetup.exe`); what follows
//! is INFERRED from WiX Burn's own registration, not from a Microsoft page:
//! a bundle's entry has no Windows Installer product code but
//! `BundleCachePath` / `BundleProviderKey` / `BundleUpgradeCode` values and
//! a `QuietUninstallString` (`"…\Package Cache\{id}\setup.exe" /uninstall
//! /quiet`); Burn removes the MSIs it chained itself; it takes `/norestart`
//! and `/log FILE`; a 32-bit Burn registers per-machine bundles in the
//! registry's 32-bit view.

use std::fmt;
use std::path::Path;

use crate::model::{AgentProduct, ProductRole, ProductUninstall};

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

/// The DisplayName prefixes of the package's entries and which entry each
/// is (see the module doc for the page). A "… Provisioning Agent" name
/// ending in "Package" is the bundle's.
pub const DISPLAY_NAMES: [(&str, ProductRole); 4] = [
    (
        "Microsoft Azure AD Connect Agent Updater",
        ProductRole::Updater,
    ),
    (
        "Microsoft Entra Connect Agent Updater",
        ProductRole::Updater,
    ),
    (
        "Microsoft Azure AD Connect Provisioning Agent",
        ProductRole::Agent,
    ),
    ("Microsoft Entra Provisioning Agent", ProductRole::Agent),
];

/// One uninstall registry key as read (either registry view).
#[derive(Debug, Clone, Default)]
pub struct UninstallEntry {
    /// The key's name.
    pub key: String,
    pub display_name: String,
    pub display_version: String,
    /// `WindowsInstaller` = 1: Windows Installer wrote the entry.
    pub windows_installer: bool,
    /// Any of `BundleCachePath`, `BundleProviderKey`, `BundleUpgradeCode`.
    pub bundle: bool,
    pub bundle_cache_path: Option<String>,
    pub quiet_uninstall: Option<String>,
}

/// The agent product an entry is, if it is one.
pub fn agent_product(entry: &UninstallEntry) -> Option<AgentProduct> {
    let name = entry.display_name.trim();
    let (_, named) = DISPLAY_NAMES.iter().find(|(p, _)| name.starts_with(p))?;
    let role = if entry.bundle || (*named == ProductRole::Agent && name.contains("Agent Package")) {
        ProductRole::Package
    } else {
        *named
    };
    let uninstall = match (&entry.quiet_uninstall, is_product_code(&entry.key)) {
        (Some(quiet), _) if entry.bundle => ProductUninstall::Bundle {
            quiet_uninstall: quiet.clone(),
            cache_path: entry.bundle_cache_path.clone(),
        },
        (_, true) if !entry.bundle && entry.windows_installer => ProductUninstall::Msi {
            product_code: entry.key.clone(),
        },
        _ => ProductUninstall::Unknown,
    };
    Some(AgentProduct {
        key: entry.key.clone(),
        display_name: name.to_owned(),
        version: entry.display_version.clone(),
        role,
        uninstall,
    })
}

/// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`: the form of a ProductCode.
fn is_product_code(key: &str) -> bool {
    let Some(inner) = key.strip_prefix('{').and_then(|k| k.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The order provd removes entries in: bundles first (Burn removes the
/// MSIs it chained, so most of the rest is gone after it), then the
/// updater (which could otherwise put an agent back), then the agent.
pub fn removal_order(products: &mut [AgentProduct]) {
    products.sort_by_key(|p| match p.role {
        ProductRole::Package => 0,
        ProductRole::Updater => 1,
        ProductRole::Agent => 2,
    });
}

/// The installed agent's version: its own MSI entry's, never the bundle's.
pub fn agent_version(products: &[AgentProduct]) -> Option<String> {
    products
        .iter()
        .find(|p| p.role == ProductRole::Agent)
        .map(|p| p.version.clone())
}

/// Splits a command line as Windows' `CommandLineToArgvW` does: the
/// program is everything up to the closing quote (or the first blank when
/// unquoted); then `2n` backslashes before a quote are `n` and the quote
/// toggles quoting, `2n+1` are `n` and a literal quote, `""` inside quotes
/// is a literal quote, other backslashes are literal.
pub fn split_command_line(line: &str) -> Vec<String> {
    let line = line.trim_start();
    let (program, rest) = match line.strip_prefix('"') {
        Some(quoted) => match quoted.split_once('"') {
            Some((p, rest)) => (p.to_owned(), rest),
            None => (quoted.to_owned(), ""),
        },
        None => match line.split_once([' ', '\t']) {
            Some((p, rest)) => (p.to_owned(), rest),
            None => (line.to_owned(), ""),
        },
    };
    let mut out = vec![program];
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        if chars.peek().is_none() {
            return out;
        }
        let (mut arg, mut quoted) = (String::new(), false);
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let mut n = 1;
                    while chars.next_if_eq(&'\\').is_some() {
                        n += 1;
                    }
                    if chars.peek() == Some(&'"') {
                        arg.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            chars.next();
                            arg.push('"');
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', n));
                    }
                }
                '"' if quoted && chars.peek() == Some(&'"') => {
                    chars.next();
                    arg.push('"');
                }
                '"' => quoted = !quoted,
                ' ' | '\t' if !quoted => break,
                c => arg.push(c),
            }
        }
        out.push(arg);
    }
}

/// A local absolute path: a drive letter, a colon and a separator. UNC and
/// relative paths are not (a program found through the search path, or on
/// a share, is not what the entry's bundle cached on this host).
pub fn is_local_absolute(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/')
}

/// What provd runs for a bundle entry: its `QuietUninstallString` split
/// without a shell, with `/norestart` (provd never restarts a host) and
/// `/log log` added unless present. Refused (`Err`, why) unless the
/// program is a local absolute path that `exists`, and, when the entry
/// names its `BundleCachePath`, that very file.
pub fn bundle_command(
    quiet_uninstall: &str,
    cache_path: Option<&str>,
    log: &Path,
    exists: impl Fn(&str) -> bool,
) -> Result<(String, Vec<String>), String> {
    let mut argv = split_command_line(quiet_uninstall);
    let program = argv.remove(0);
    if !is_local_absolute(&program) {
        return Err(format!(
            "its QuietUninstallString names {program:?}, which is not a local absolute path"
        ));
    }
    if let Some(cached) = cache_path
        && !cached.trim().eq_ignore_ascii_case(&program)
    {
        return Err(format!(
            "its QuietUninstallString names {program:?}, not the bundle it cached ({cached:?})"
        ));
    }
    if !exists(&program) {
        return Err(format!(
            "its QuietUninstallString names {program:?}, which does not exist"
        ));
    }
    let has = |argv: &[String], names: &[&str]| {
        argv.iter().any(|a| {
            let bare = a.trim_start_matches(['/', '-']).to_ascii_lowercase();
            a.len() > bare.len() && names.contains(&bare.as_str())
        })
    };
    if !has(&argv, &["norestart"]) {
        argv.push("/norestart".into());
    }
    if !has(&argv, &["log", "l"]) {
        argv.push("/log".into());
        argv.push(log.display().to_string());
    }
    Ok((program, argv))
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

    fn entry(key: &str, name: &str) -> UninstallEntry {
        UninstallEntry {
            key: key.into(),
            display_name: name.into(),
            display_version: "1.1.977.0".into(),
            windows_installer: true,
            ..UninstallEntry::default()
        }
    }

    const CODE: &str = "{5C0B7D3E-2A41-4E8F-9B6C-1D2E3F405A61}";

    #[test]
    fn the_three_entries_by_name_and_kind() {
        let agent = agent_product(&entry(
            CODE,
            "Microsoft Azure AD Connect Provisioning Agent",
        ))
        .unwrap();
        assert_eq!(agent.role, ProductRole::Agent);
        assert_eq!(
            agent.uninstall,
            ProductUninstall::Msi {
                product_code: CODE.into()
            }
        );
        let updater = agent_product(&entry(CODE, "Microsoft Entra Connect Agent Updater")).unwrap();
        assert_eq!(updater.role, ProductRole::Updater);
        let bundle = agent_product(&UninstallEntry {
            windows_installer: false,
            bundle: true,
            bundle_cache_path: Some(r"C:\ProgramData\Package Cache\{b}\setup.exe".into()),
            quiet_uninstall: Some(
                r#""C:\ProgramData\Package Cache\{b}\setup.exe" /uninstall /quiet"#.into(),
            ),
            ..entry(
                "{b}",
                "Microsoft Azure AD Connect Provisioning Agent Package",
            )
        })
        .unwrap();
        assert_eq!(bundle.role, ProductRole::Package);
        assert!(matches!(bundle.uninstall, ProductUninstall::Bundle { .. }));
        // Named like the package but neither an MSI nor a bundle: not guessed.
        let odd = agent_product(&entry(
            "AgentPackage",
            "Microsoft Entra Provisioning Agent Package",
        ))
        .unwrap();
        assert_eq!(odd.role, ProductRole::Package);
        assert_eq!(odd.uninstall, ProductUninstall::Unknown);
        let not_msi = UninstallEntry {
            windows_installer: false,
            ..entry(CODE, "Microsoft Azure AD Connect Provisioning Agent")
        };
        assert_eq!(
            agent_product(&not_msi).unwrap().uninstall,
            ProductUninstall::Unknown
        );
        assert!(agent_product(&entry(CODE, "Microsoft Azure AD Connect")).is_none());
        assert!(agent_product(&entry(CODE, "Microsoft Entra private network connector")).is_none());
        let mut all = vec![agent.clone(), updater.clone(), bundle.clone()];
        removal_order(&mut all);
        assert_eq!(all, [bundle, updater, agent]);
        assert_eq!(agent_version(&all).as_deref(), Some("1.1.977.0"));
    }

    #[test]
    fn command_lines_split_as_windows_does() {
        assert_eq!(
            split_command_line(r#""C:\Program Files\x\setup.exe" /uninstall /quiet"#),
            [r"C:\Program Files\x\setup.exe", "/uninstall", "/quiet"]
        );
        assert_eq!(
            split_command_line(r"C:\x.exe a  b"),
            [r"C:\x.exe", "a", "b"]
        );
        assert_eq!(
            split_command_line(r#"p "a b" c\\"d e" f\"g h\\\\ "i""j""#),
            ["p", "a b", r#"c\d e"#, r#"f"g"#, r"h\\\\", r#"i"j"#]
        );
        assert_eq!(
            split_command_line(r#""C:\odd dir\x.exe"#),
            [r"C:\odd dir\x.exe"]
        );
    }

    #[test]
    fn a_bundle_runs_only_from_an_existing_local_absolute_path() {
        let log = Path::new(r"C:\staging\u.log");
        let quiet = r#""C:\Cache\{b}\setup.exe" /uninstall /quiet"#;
        let (program, args) =
            bundle_command(quiet, Some(r"C:\Cache\{b}\setup.exe"), log, |_| true).unwrap();
        assert_eq!(program, r"C:\Cache\{b}\setup.exe");
        assert_eq!(
            args,
            [
                "/uninstall",
                "/quiet",
                "/norestart",
                "/log",
                r"C:\staging\u.log"
            ]
        );
        let (_, args) = bundle_command(
            r"C:\b.exe /uninstall -quiet -norestart -log x",
            None,
            log,
            |_| true,
        )
        .unwrap();
        assert_eq!(args, ["/uninstall", "-quiet", "-norestart", "-log", "x"]);
        for (quiet, cache, why) in [
            ("setup.exe /uninstall", None, "not a local absolute path"),
            (
                r"\\server\share\setup.exe /uninstall",
                None,
                "not a local absolute path",
            ),
            (
                r"cmd.exe /c C:\Cache\setup.exe",
                None,
                "not a local absolute path",
            ),
            (
                r"C:\Other\setup.exe /uninstall",
                Some(r"C:\Cache\setup.exe"),
                "not the bundle it cached",
            ),
        ] {
            let e = bundle_command(quiet, cache, log, |_| true).unwrap_err();
            assert!(e.contains(why), "{quiet}: {e}");
        }
        let e = bundle_command(quiet, None, log, |_| false).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn not_an_msi() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.msi");
        std::fs::write(&p, b"not an msi").unwrap();
        assert!(package_version(&p).is_err());
    }
}
