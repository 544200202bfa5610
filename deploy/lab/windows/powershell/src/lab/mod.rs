//! The Windows side (LAB STAND-IN): the program's flow, and what the agent module's cmdlets
//! do in the Wine lab, one module per cmdlet group. Paths and keys are the real agent's
//! where one exists (its install folder, its registry key, its service), the lab's own
//! (`HKLM\SOFTWARE\ProvdLab\…`, `<ProgramData>\ProvdLabAgent\`) where the real module keeps
//! its state in ways not documented.

mod certstore;
mod connect;
mod domains;
mod gmsa;
mod hang;
mod http;
mod module;
mod sys;
mod verbose;
mod writeback;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cmdline::{self, Invocation as CommandLine};
use crate::plan::{BuiltScript, Failure};
use crate::run::{self, Invocation, Lab, Output};
use crate::state::{self, Identity};
use crate::{errors, policy, scripts};

/// The agent's service (the one the module gives its gMSA).
pub const AGENT_SERVICE: &str = "AADConnectProvisioningAgent";
/// The agent's registry key (how-to-manage-registry-options; AADCloudSyncTools reads
/// `TenantID` there).
pub const AGENT_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent";
/// The stand-in's own lab settings.
pub const LAB_KEY: &str = r"HKLM\SOFTWARE\ProvdLab\PowerShell";

/// The whole program: returns the exit code.
pub fn main(built: &[BuiltScript]) -> i32 {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let path = match cmdline::parse(&args) {
        CommandLine::Help => {
            print!("{}", crate::banner(built));
            return 0;
        }
        CommandLine::Refuse { stderr, exit_code } => return refuse(&stderr, exit_code),
        CommandLine::File { path, .. } => path,
    };
    let file = Path::new(&path);
    if !file.is_file() {
        return refused(cmdline::file_missing(&path));
    }
    if !file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ps1"))
    {
        return refused(cmdline::not_ps1(&path));
    }
    let Ok(bytes) = std::fs::read(file) else {
        return refused(cmdline::file_missing(&path));
    };
    let full = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let (script, plan) = match scripts::recognise(built, &bytes) {
        Ok(found) => found,
        Err(refusal) => return refuse(&format!("{}\r\n", refusal.message(&path, built)), 1),
    };
    if let Some(text) = policy::refusal(
        policy::effective(&module::execution_policies()),
        &full.display().to_string(),
    ) {
        return refuse(&text, 1);
    }
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    hang::if_asked();
    let mut lab = WindowsLab::new(&script.name);
    let outcome = run::run(script, plan, &stdin, &mut lab);
    let mut out = std::io::stdout().lock();
    if let Some(line) = outcome.result_line() {
        let _ = out.write_all(line.as_bytes());
    }
    let _ = out.flush();
    if !outcome.stderr.is_empty() {
        eprint!("{}", outcome.stderr);
    }
    outcome.exit_code
}

fn refuse(stderr: &str, exit_code: i32) -> i32 {
    eprint!("{stderr}");
    exit_code
}

fn refused(invocation: CommandLine) -> i32 {
    match invocation {
        CommandLine::Refuse { stderr, exit_code } => refuse(&stderr, exit_code),
        _ => 1,
    }
}

/// A transcript line (stdout; provd's runner keeps every line but the result as transcript).
pub fn say(line: &str) {
    println!("LAB STAND-IN: {line}");
}

/// The Wine lab as the cmdlets see it.
pub struct WindowsLab {
    script: String,
    /// `<ProgramData>\ProvdLabAgent`.
    data: PathBuf,
    /// What `Connect-AADCloudSyncAzureAD` established in this process (the module's
    /// in-session state: `Set-AADCloudSyncPasswordWritebackConfiguration` needs it).
    session: Option<Identity>,
    /// The module file `Import-Module` loaded (its folder holds the module's assemblies).
    module: Option<PathBuf>,
}

impl WindowsLab {
    fn new(script: &str) -> WindowsLab {
        WindowsLab {
            script: script.to_owned(),
            data: sys::program_data().join(state::DIR),
            session: None,
            module: None,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.data.join(file)
    }

    /// A JSON file of the data directory, if it is there and reads.
    fn read<T: DeserializeOwned>(&self, file: &str) -> Option<T> {
        let bytes = std::fs::read(self.path(file)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes a JSON file of the data directory atomically (temp file + rename: the lab agent
    /// re-reads it every second).
    fn write<T: Serialize>(&self, file: &str, value: &T) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.data).map_err(|e| format!("{}: {e}", self.data.display()))?;
        let path = self.path(file);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `powershell-calls.jsonl` (best effort: a record that cannot be written changes
    /// nothing the script does).
    fn record(&self, call: &Invocation) {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let line = state::call_record(&self.script, call, unix);
        let _ = std::fs::create_dir_all(&self.data);
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(state::CALLS))
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

impl Lab for WindowsLab {
    fn import_module(&mut self, path: &str) -> Result<(), Failure> {
        module::import(path)?;
        self.module = Some(PathBuf::from(path));
        Ok(())
    }

    fn invoke(&mut self, call: &Invocation) -> Result<Vec<Output>, Failure> {
        self.record(call);
        match call.cmdlet.as_str() {
            "Connect-AADCloudSyncAzureAD" => connect::connect(self, call),
            "Add-AADCloudSyncGMSA" => gmsa::add(call),
            "Add-AADCloudSyncADDomain" => domains::add(self, call),
            "Get-AADCloudSyncDomains" => Ok(domains::list(self)),
            "Set-AADCloudSyncPasswordWritebackConfiguration" => writeback::set(self, call),
            "Start-AADCloudSyncToolsVerboseLogs" => verbose::start(self, call),
            "Stop-AADCloudSyncToolsVerboseLogs" => verbose::stop(self, call),
            other => Err(errors::not_modelled(other, other)),
        }
    }

    fn file(&self, path: &str) -> Option<Option<String>> {
        Path::new(path).is_file().then(|| sys::file_version(path))
    }

    fn execution_policies(&self) -> Vec<(String, String)> {
        module::execution_policies()
    }

    fn registry_value(&self, path: &str, name: &str) -> Option<String> {
        sys::reg_get(path, name).and_then(|v| v.text())
    }
}
