//! `powershell.exe`: a **LAB STAND-IN** for Windows PowerShell 5.1, used only by provd's Wine
//! lab (`deploy/lab/wine.sh` copies it over Wine's stub
//! `C:\windows\system32\WindowsPowerShell\v1.0\powershell.exe`, which prints nothing and
//! exits 0). It is **not PowerShell** and never part of provd: provd does not link it, ship
//! it or know about it; provd runs "powershell.exe" and, in the lab, gets this.
//!
//! It runs **only provd's shipped scripts** (`src/backends/agent_config/scripts/*.ps1`), and
//! only as they were when it was built: a script is recognised by its header line
//! `# provd-script: <name> v<N>` and the SHA-256 it had at build time; a changed one is
//! refused ("changed since this stand-in was built; rebuild"), a file without the header is
//! refused (real PowerShell would run it). `build.rs` plans each script with provd's own
//! `crates/provd-psscript` (the cmdlet table `cmdlets.toml`, the extractor and the binder
//! provd's parse test uses), so the stand-in binds exactly as provd's tests check.
//!
//! A run: the command line as 5.1 reads it (`cmdline.rs`); the file (`-File` errors as
//! 5.1's); recognition (`scripts.rs`); the execution policy (`policy.rs`: `Restricted` and
//! `AllSigned` refuse the script as 5.1 would); stdin (base64 of the UTF-8 JSON request);
//! the plan run step by step (`run.rs`: request locals, the one `if ($x.Count -gt 0)`,
//! binding and type errors as the script's `catch` reports them); the agent's cmdlets done
//! in the lab (`lab/`, Windows only): `Import-Module` (the placeholder dll the lab MSI
//! installs), `Connect-AADCloudSyncAzureAD -AccessToken` (registration with the tenant
//! emulator, `lab/connect.rs`), `Add-AADCloudSyncGMSA -CustomGMSAName` (`lab/gmsa.rs`),
//! `Add-AADCloudSyncADDomain` and `Get-AADCloudSyncDomains` (`lab/domains.rs`),
//! `Set-AADCloudSyncPasswordWritebackConfiguration` (`lab/writeback.rs`); then the one line
//! `PROVD-RESULT <base64 of the JSON result>` and exit code 0 or 1, as the script would.
//!
//! Lab-only settings (registry, 64-bit view; `wine.sh` writes them):
//!
//! | key | value | |
//! |---|---|---|
//! | `HKLM\SOFTWARE\ProvdLab\TenantEmulator` | `Url` (REG_SZ), `CaPem` (REG_SZ or REG_MULTI_SZ, white space free), `HeartbeatIntervalSeconds` (REG_DWORD, optional) | where `Connect-AADCloudSyncAzureAD` registers (the real module derives its endpoints from the agent's environment) |
//! | `HKLM\SOFTWARE\ProvdLab\PowerShell` | `DomainNetbiosName` (REG_SZ) | the domain `Add-AADCloudSyncGMSA` prefixes (a real host is joined to it) |
//! | `HKLM\SOFTWARE\ProvdLab\PowerShell` | `Hang` (REG_DWORD 1, or REG_SZ `1`) | fault: start `cmd /c ping -n 600 127.0.0.1`, print its pid, sleep until killed (the runner's timeout, cancel and process-tree tests) |
//!
//! What it writes: `<ProgramData>\ProvdLabAgent\{identity.json, domains.json,
//! powershell-calls.jsonl}` (`state.rs`), `TenantID` under the agent's registry key, and the
//! agent service's logon account.

// The logic is platform-neutral and unit-tested on Linux; only the Windows program uses all of it.
#![cfg_attr(not(windows), allow(dead_code))]

mod cmdline;
mod emulator;
mod errors;
mod plan;
mod policy;
mod run;
mod scripts;
mod state;
mod value;

#[cfg(windows)]
mod lab;

/// `powershell.exe -?`.
fn banner(built: &[plan::BuiltScript]) -> String {
    let mut text = String::from(
        "powershell.exe: LAB STAND-IN for Windows PowerShell 5.1 (provd's Wine lab). NOT PowerShell.\r\n\
         It runs only provd's shipped scripts (src/backends/agent_config/scripts/*.ps1), as they\r\n\
         were when it was built (header line '# provd-script: <name> v<N>' and SHA-256), and does\r\n\
         in the lab what the agent module's cmdlets would do (registration with the tenant\r\n\
         emulator, the service's gMSA, the agent's domains, password writeback).\r\n\r\n\
         usage: powershell.exe [-NoLogo] [-NoProfile] [-NonInteractive] -File <script.ps1>\r\n\
         \x20      stdin: base64 of the UTF-8 JSON request; stdout: PROVD-RESULT <base64 JSON>\r\n\r\n\
         built with:\r\n",
    );
    for script in built {
        let state = if script.plan.is_ok() {
            ""
        } else {
            " (refused: breaks the script rules)"
        };
        text.push_str(&format!(
            "  {:<15} v{}  sha256 {}{state}\r\n",
            script.name, script.version, script.sha256
        ));
    }
    text
}

#[cfg(not(windows))]
fn main() {
    // The logic is tested on Linux (`cargo test --target x86_64-unknown-linux-gnu`); the
    // program itself is Windows-only.
    let _ = banner(&scripts::shipped());
    eprintln!(
        "powershell.exe (LAB STAND-IN) is a Windows program: build it for x86_64-pc-windows-gnu"
    );
    std::process::exit(1);
}

#[cfg(windows)]
fn main() {
    std::process::exit(lab::main(&scripts::shipped()));
}
