//! provd's own MSI (`deploy/windows/provd.wxs`, built by
//! `deploy/windows/build-msi.sh`) under Wine's msiexec, with no Samba lab:
//! installed with its properties, provd.exe runs as an automatic service
//! serving mTLS to Linux with the flags they became, from the
//! `%ProgramData%\provd` that `provd service prepare` made, and the `provd`
//! event log source registered; a newer build installed without properties
//! keeps them (remembered in the registry), the port, the configuration and
//! the state (an operation recorded before the upgrade is still there); a
//! downgrade is refused with 1603 and changes nothing; `msiexec /x` stops and
//! removes the service, the exe and the event source and keeps
//! `%ProgramData%\provd`; a reinstall finds it as it was, a rebuild of the
//! same version replaces the product (a new LISTEN on its command line wins
//! over the remembered one), and `/x PURGE=1` deletes it; an install
//! whose service cannot start (no certificate given) rolls back. The test
//! leaves no provd installed, no service and no `%ProgramData%\provd`.
//!
//! The packages: `PROVD_WINE_MSI` and `PROVD_WINE_MSI_NEWER` (what
//! `deploy/test.sh` builds), else two built here from `PROVD_WINE_EXE`.
//! Wine does not enforce ACLs: that the DACL call succeeded is all it shows.

use std::time::Instant;

use super::*;

use provd::backends::audit::events::{MESSAGE_FILE, SOURCE_KEY, TYPES_SUPPORTED};
use provd_proto::v1::operations_service_client::OperationsServiceClient;

const SERVICE_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\provd";
const REMEMBERED_KEY: &str = r"HKLM\SOFTWARE\provd\Installer";
const UNINSTALL_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";
const CONFIG: &str = r"C:\ProgramData\provd\provd.toml";

// Multi-threaded: the client's connections must keep answering while the
// test waits on msiexec, or provd's graceful stop (which waits for them,
// up to shutdown_grace) outlasts the upgrade's StopServices under Wine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn provd_msi_installs_serves_upgrades_and_uninstalls() {
    let started = Instant::now();
    let _lab = LAB.lock().await;
    let env = wine_env();
    let dir = PathBuf::from(&env["WINE_LAB_DIR"]).join("provd-msi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let exe = dir.join("provd.exe");
    std::fs::copy(
        std::env::var("PROVD_WINE_EXE").expect("PROVD_WINE_EXE: a cross-built provd.exe"),
        &exe,
    )
    .unwrap();
    let host = Host {
        env: env.clone(),
        dir: dir.clone(),
        exe: exe.clone(),
    };
    let (older, newer) = packages(&dir, &exe);
    let (old_version, new_version) = (product_version(&older), product_version(&newer));
    // msiexec would read a Unix path's leading "/" as an option.
    let (older, newer) = (z(&older), z(&newer));
    let pki = Pki::create(&dir.join("pki"));
    let addr: std::net::SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let prefix = PathBuf::from(&env["WINEPREFIX"]);
    let data = prefix.join("drive_c/ProgramData/provd");
    let installed_exe = prefix.join("drive_c/Program Files/provd/provd.exe");
    // Whatever an earlier run or another test left: an MSI install, a
    // `provd service install` service, the directory.
    host.remove_provd();
    eprintln!("msi test: ready in {:.1?}", started.elapsed());

    // Install with the properties: the service runs with their flags and
    // serves mTLS, from the directory `service prepare` made.
    let properties = [
        format!("LISTEN={addr}"),
        format!("TLS_CERT={}", z(&pki.dir.join("server.pem"))),
        format!("TLS_KEY={}", z(&pki.dir.join("server.key"))),
        format!("TLS_CLIENT_CA={}", z(&pki.dir.join("ca.pem"))),
    ];
    let mut install: Vec<&str> = vec!["/i", &older];
    install.extend(properties.iter().map(String::as_str));
    host.msiexec_ok("install", &install);
    let channel = wait_for(addr, &pki).await;
    assert_eq!(host.service_state(), "RUNNING");
    let image = host.reg(SERVICE_KEY, "ImagePath").unwrap_or_default();
    // Wine's msi writes the exe's path unquoted (Windows Installer quotes it).
    assert!(
        image
            .trim_start_matches('"')
            .starts_with(r"C:\Program Files\provd\provd.exe"),
        "{image}"
    );
    for flag in [
        format!(r#"service run --config "{CONFIG}""#),
        format!(r#"--listen "{addr}""#),
        format!(r#"--tls-cert "{}""#, z(&pki.dir.join("server.pem"))),
        format!(r#"--tls-key "{}""#, z(&pki.dir.join("server.key"))),
        format!(r#"--tls-client-ca "{}""#, z(&pki.dir.join("ca.pem"))),
    ] {
        assert!(image.contains(&flag), "ImagePath {image:?} lacks {flag:?}");
    }
    // Properties not given are not flags (an empty one would stop the service).
    assert!(!image.contains("--tls-cert-thumbprint"), "{image}");
    assert!(!image.contains("--tls-client-ca-store"), "{image}");
    assert_eq!(host.reg(SERVICE_KEY, "Start").as_deref(), Some("0x2"));
    let config: toml::Table = std::fs::read_to_string(data.join("provd.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        config["state_dir"].as_str(),
        Some(r"C:\ProgramData\provd\state")
    );
    assert!(data.join("state/provd.redb").is_file());
    // The log file the prepared provd.toml names is where the service speaks.
    let logged = std::fs::read_to_string(data.join("provd.log")).unwrap_or_default();
    assert!(logged.contains("provd serving"), "provd.log: {logged:?}");
    // The custom actions by hand: prepare again keeps the file (the known
    // folder and the MSI's CommonAppDataFolder agree, or it would refuse);
    // a --config outside it is refused, by purge too.
    let again = wine(&env, &[&z(&exe), "service", "prepare", "--config", CONFIG]);
    assert!(again.status.success(), "{again:?}");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("provd.toml kept"), "{said}");
    for command in ["prepare", "purge"] {
        let refused = wine(
            &env,
            &[&z(&exe), "service", command, "--config", r"C:\provd.toml"],
        );
        assert!(!refused.status.success(), "{command}: {refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .contains(r"is not C:\ProgramData\provd\provd.toml"),
            "{command}: {refused:?}"
        );
    }
    assert!(data.join("provd.toml").is_file());
    // The event source, as `provd service install` registers it.
    let event_source = format!(r"HKLM\{SOURCE_KEY}");
    // REG_EXPAND_SZ: the "#%" provd.wxs writes itself (wixl 0.101 does not).
    assert_eq!(
        host.reg_typed(&event_source, "EventMessageFile"),
        Some(("REG_EXPAND_SZ".to_owned(), MESSAGE_FILE.to_owned()))
    );
    assert_eq!(
        host.reg(&event_source, "TypesSupported"),
        Some(format!("{TYPES_SUPPORTED:#x}"))
    );
    assert_eq!(host.products(), [old_version.as_str()]);
    assert_eq!(host.reg(REMEMBERED_KEY, "Listen"), Some(addr.to_string()));

    // State to keep: a recorded operation, an administrator's edit of
    // provd.toml, a file of their own in the state folder.
    let (_, op) = uninstall(&channel).await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32, "{op:?}");
    let edited = format!(
        "{}# edited by an administrator\n",
        std::fs::read_to_string(data.join("provd.toml")).unwrap()
    );
    std::fs::write(data.join("provd.toml"), &edited).unwrap();
    std::fs::write(data.join("state/mine.txt"), "kept").unwrap();

    // A newer build without properties: the same flags, port and state.
    host.msiexec_ok("upgrade", &["/i", &newer]);
    let channel = wait_for(addr, &pki).await;
    assert_eq!(host.service_state(), "RUNNING");
    assert_eq!(host.reg(SERVICE_KEY, "ImagePath"), Some(image.clone()));
    assert_eq!(host.products(), [new_version.as_str()]);
    assert_eq!(
        host.reg(REMEMBERED_KEY, "Version").as_deref(),
        Some(new_version.as_str())
    );
    let kept = OperationsServiceClient::new(channel.clone())
        .get_operation(v1::GetOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.operation.unwrap().id, op.id);
    assert_eq!(
        std::fs::read_to_string(data.join("provd.toml")).unwrap(),
        edited
    );
    assert!(data.join("state/mine.txt").is_file());

    // A downgrade: refused, nothing changed.
    let code = host.msiexec("downgrade", &["/i", &older]);
    assert_eq!(code, 1603, "{}", host.log_tail("downgrade"));
    wait_for(addr, &pki).await;
    assert_eq!(host.products(), [new_version.as_str()]);
    assert_eq!(host.reg(SERVICE_KEY, "ImagePath"), Some(image.clone()));

    // Uninstall: service, exe, event source and remembered values go; the
    // directory stays.
    host.msiexec_ok("uninstall", &["/x", &newer]);
    assert!(channel_gone(addr, &pki).await, "provd still serves");
    host.assert_removed(&installed_exe);
    assert!(data.join("provd.toml").is_file());
    assert!(data.join("state/provd.redb").is_file());
    assert!(data.join("state/mine.txt").is_file());

    // A reinstall finds the configuration as it was; PURGE=1 deletes it.
    let mut reinstall: Vec<&str> = vec!["/i", &newer];
    reinstall.extend(properties.iter().map(String::as_str));
    host.msiexec_ok("reinstall", &reinstall);
    wait_for(addr, &pki).await;
    assert_eq!(
        std::fs::read_to_string(data.join("provd.toml")).unwrap(),
        edited
    );
    // A rebuild of the same version (a new ProductCode) replaces it rather
    // than installing beside it (build-msi.sh's Upgrade row).
    let rebuilt = z(&build_msi(
        &dir,
        &exe,
        &new_version,
        &format!("provd-{new_version}-rebuilt.msi"),
    ));
    // A property on its command line wins over the remembered one; the
    // others stay remembered.
    let moved: std::net::SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listen = format!("LISTEN={moved}");
    host.msiexec_ok("same-version", &["/i", &rebuilt, &listen]);
    wait_for(moved, &pki).await;
    assert_eq!(host.products(), [new_version.as_str()]);
    let image = host.reg(SERVICE_KEY, "ImagePath").unwrap_or_default();
    assert!(image.contains(&format!(r#"--listen "{moved}""#)), "{image}");
    assert!(image.contains("--tls-client-ca "), "{image}");
    host.msiexec_ok("purge", &["/x", &rebuilt, "PURGE=1"]);
    assert!(channel_gone(moved, &pki).await, "provd still serves");
    host.assert_removed(&installed_exe);
    assert!(!data.exists(), "PURGE=1 left {}", data.display());

    // No certificate given (and none remembered after the uninstall): the
    // service cannot start, the install rolls back. `service prepare` has no
    // rollback action (wixl 0.101): its directory stays, as documented.
    let code = host.msiexec("no-certificate", &["/i", &newer]);
    // Wine's msiexec says 1627 where Windows says 1603 (error 1920 in the log).
    assert!(
        code == 1603 || code == 1627,
        "{code}: {}",
        host.log_tail("no-certificate")
    );
    host.assert_removed(&installed_exe);
    assert!(data.join("provd.toml").is_file());

    host.remove_provd();
    assert!(!data.exists());
    eprintln!("msi test: done in {:.1?}", started.elapsed());
}

/// The two packages, older first.
fn packages(dir: &Path, exe: &Path) -> (PathBuf, PathBuf) {
    if let (Ok(older), Ok(newer)) = (
        std::env::var("PROVD_WINE_MSI"),
        std::env::var("PROVD_WINE_MSI_NEWER"),
    ) {
        return (older.into(), newer.into());
    }
    (
        build_msi(dir, exe, "0.1.1", "provd-0.1.1.msi"),
        build_msi(dir, exe, "0.1.2", "provd-0.1.2.msi"),
    )
}

/// `deploy/windows/build-msi.sh VERSION EXE DIR/NAME`.
fn build_msi(dir: &Path, exe: &Path, version: &str, name: &str) -> PathBuf {
    let out = dir.join(name);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/windows/build-msi.sh");
    let built = Command::new(script)
        .args([version, exe.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build-msi.sh {version}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

/// The package's ProductVersion (what Add/Remove Programs shows).
fn product_version(msi: &Path) -> String {
    let out = Command::new("msiinfo")
        .args(["export", msi.to_str().unwrap(), "Property"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("ProductVersion\t"))
        .map(str::to_owned)
        .expect("ProductVersion")
}

/// The Wine host as the MSI sees it.
struct Host {
    env: BTreeMap<String, String>,
    dir: PathBuf,
    /// A copy of provd.exe outside the MSI, for `service uninstall`.
    exe: PathBuf,
}

impl Host {
    /// msiexec's full exit code (`wine` itself returns it mod 256), through
    /// cmd.exe as `deploy/lab/wine.sh` reads it; a verbose log per step.
    fn msiexec(&self, step: &str, args: &[&str]) -> u32 {
        let bat = self.dir.join("msiexec-code.bat");
        std::fs::write(
            &bat,
            "@echo off\r\nmsiexec %*\r\necho MSIEXEC_EXIT=%ERRORLEVEL%\r\n",
        )
        .unwrap();
        let log = z(&self.log(step));
        let mut all = vec!["cmd", "/c"];
        let bat = z(&bat);
        all.push(&bat);
        all.extend(args);
        all.extend(["/quiet", "/l*v", &log]);
        let begun = Instant::now();
        // Wine's own reasons (a service that did not stop, a file in use)
        // are on its msi channel, not in the msiexec log.
        let mut env = self.env.clone();
        env.insert("WINEDEBUG".into(), "err+msi,warn+msi".into());
        let out = wine(&env, &all);
        std::fs::write(self.log(step).with_extension("err"), &out.stderr).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("MSIEXEC_EXIT="))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("msiexec {args:?}: no exit code in {stdout:?}"));
        eprintln!(
            "msi test: {step}: msiexec {code} in {:.1?}",
            begun.elapsed()
        );
        code
    }

    fn msiexec_ok(&self, step: &str, args: &[&str]) {
        let code = self.msiexec(step, args);
        assert_eq!(code, 0, "msiexec {step}: {}", self.log_tail(step));
    }

    fn log(&self, step: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{step}.log"))
    }

    /// The end of a step's msiexec log and Wine's msi warnings, for a
    /// failure.
    fn log_tail(&self, step: &str) -> String {
        let bytes = std::fs::read(self.log(step)).unwrap_or_default();
        let text: String = String::from_utf8_lossy(&bytes).replace('\0', "");
        let lines: Vec<&str> = text.lines().collect();
        let wine = std::fs::read_to_string(self.log(step).with_extension("err"));
        format!(
            "{}\nWine: {}",
            lines[lines.len().saturating_sub(30)..].join("\n"),
            wine.unwrap_or_default()
        )
    }

    /// A registry value's data as `reg query` prints it.
    fn reg(&self, key: &str, name: &str) -> Option<String> {
        self.reg_typed(key, name).map(|(_, data)| data)
    }

    /// A registry value's type (`REG_SZ`, …) and data.
    fn reg_typed(&self, key: &str, name: &str) -> Option<(String, String)> {
        let out = wine(&self.env, &["reg", "query", key, "/v", name]);
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut fields = l.trim().splitn(3, "    ");
            (fields.next()? == name).then_some(())?;
            let kind = fields.next()?.to_owned();
            Some((kind, fields.next().unwrap_or("").trim_end().to_owned()))
        })
    }

    fn key_exists(&self, key: &str) -> bool {
        wine(&self.env, &["reg", "query", key]).status.success()
    }

    /// `sc query provd`'s state name ("" when there is no such service).
    fn service_state(&self) -> String {
        let out = wine(&self.env, &["sc", "query", "provd"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                let l = l.trim();
                l.starts_with("STATE")
                    .then(|| l.split_whitespace().nth(3).unwrap_or("").to_owned())
            })
            .unwrap_or_default()
    }

    /// Installed provd products (Add/Remove Programs), by ProductCode:
    /// their DisplayVersion.
    fn product_entries(&self) -> Vec<(String, String)> {
        let out = wine(&self.env, &["reg", "query", UNINSTALL_KEY, "/s"]);
        let mut found = Vec::new();
        let (mut key, mut name, mut version) = (String::new(), false, String::new());
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        for line in text.lines().chain(["HKEY_END"]) {
            if line.starts_with("HKEY_") {
                if name {
                    found.push((key.clone(), version.clone()));
                }
                key = line.rsplit('\\').next().unwrap_or("").to_owned();
                (name, version) = (false, String::new());
            } else if let Some(rest) = line.trim().strip_prefix("DisplayName    REG_SZ    ") {
                name = rest == "provd";
            } else if let Some(rest) = line.trim().strip_prefix("DisplayVersion    REG_SZ    ") {
                version = rest.to_owned();
            }
        }
        found
    }

    fn products(&self) -> Vec<String> {
        self.product_entries().into_iter().map(|(_, v)| v).collect()
    }

    /// What an uninstall removes: the service, the exe, the event source,
    /// the remembered properties, the Add/Remove Programs entry.
    fn assert_removed(&self, installed_exe: &Path) {
        assert!(
            !self.key_exists(SERVICE_KEY),
            "the provd service is still there"
        );
        assert!(!installed_exe.exists(), "{}", installed_exe.display());
        let event_source = format!(r"HKLM\{SOURCE_KEY}");
        assert!(!self.key_exists(&event_source), "the event source stays");
        assert!(
            !self.key_exists(REMEMBERED_KEY),
            "the remembered values stay"
        );
        assert!(self.products().is_empty(), "{:?}", self.product_entries());
    }

    /// No provd on the host: MSI installs (by ProductCode), a service
    /// `provd service install` made, `%ProgramData%\provd`.
    fn remove_provd(&self) {
        for (code, _) in self.product_entries() {
            let _ = wine(&self.env, &["msiexec", "/x", &code, "/quiet"]);
        }
        let _ = wine(&self.env, &[&z(&self.exe), "service", "uninstall"]);
        let data = Path::new(&self.env["WINEPREFIX"]).join("drive_c/ProgramData/provd");
        let _ = std::fs::remove_dir_all(data);
    }
}

/// A failed run leaves the host as clean as a passed one.
impl Drop for Host {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.remove_provd();
        }
    }
}
