//! AADCloudSyncTools' `Start-AADCloudSyncToolsVerboseLogs` and
//! `Stop-AADCloudSyncToolsVerboseLogs [-SkipServiceRestart]` (reference-powershell: each
//! "modifies AADConnectProvisioningAgent.exe.config to enable [disable] verbose tracing and
//! restarts the AADConnectProvisioningAgent service").
//!
//! LAB STAND-IN: what Microsoft's commands write into the file is undocumented. This
//! stand-in's own invention: Start keeps the file's bytes in
//! `<ProgramData>\ProvdLabAgent\exe.config.verbose-backup` (a second Start keeps the first
//! backup) and sets every `switchValue` inside `<system.diagnostics>` to `Verbose` (adding a
//! section when there is none); Stop writes the backup back byte for byte and removes it
//! (without a backup it leaves the file alone). Both then restart the agent service through
//! the SCM unless `-SkipServiceRestart`.

use std::path::PathBuf;
use std::time::Duration;

use super::{AGENT_SERVICE, WindowsLab, say, sys};
use crate::plan::Failure;
use crate::run::{Invocation, Output};
use crate::value::Value;

/// The agent's exe.config, in its install folder.
const EXE_CONFIG: &str = r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\AADConnectProvisioningAgent.exe.config";
/// The stand-in's backup, in its data folder.
const BACKUP: &str = "exe.config.verbose-backup";
/// How long a restart waits for the agent to stop (the lab agent ends its heartbeat first).
const STOP_LIMIT: Duration = Duration::from_secs(60);

pub fn start(lab: &mut WindowsLab, call: &Invocation) -> Result<Vec<Output>, Failure> {
    let config = PathBuf::from(EXE_CONFIG);
    let original = std::fs::read(&config)
        .map_err(|e| call.failed(format!("Cannot read {EXE_CONFIG}: {e}")))?;
    let backup = lab.path(BACKUP);
    if !backup.is_file() {
        std::fs::create_dir_all(&lab.data)
            .and_then(|()| std::fs::write(&backup, &original))
            .map_err(|e| call.failed(format!("LAB STAND-IN: {}: {e}", backup.display())))?;
    }
    std::fs::write(&config, verbose(&original))
        .map_err(|e| call.failed(format!("Cannot write {EXE_CONFIG}: {e}")))?;
    say("Start-AADCloudSyncToolsVerboseLogs: verbose tracing set in the agent's exe.config");
    restart(call)
}

pub fn stop(lab: &mut WindowsLab, call: &Invocation) -> Result<Vec<Output>, Failure> {
    let backup = lab.path(BACKUP);
    match std::fs::read(&backup) {
        Ok(original) => {
            std::fs::write(EXE_CONFIG, &original)
                .map_err(|e| call.failed(format!("Cannot write {EXE_CONFIG}: {e}")))?;
            let _ = std::fs::remove_file(&backup);
            say("Stop-AADCloudSyncToolsVerboseLogs: the agent's exe.config restored");
        }
        Err(_) => say("Stop-AADCloudSyncToolsVerboseLogs: verbose tracing was not on"),
    }
    restart(call)
}

fn restart(call: &Invocation) -> Result<Vec<Output>, Failure> {
    if matches!(call.get("SkipServiceRestart"), Some(Value::Bool(true))) {
        say("-SkipServiceRestart: the change takes effect at the next start of the service");
        return Ok(Vec::new());
    }
    sys::restart_service(AGENT_SERVICE, STOP_LIMIT)
        .map_err(|e| call.failed(format!("Restarting {AGENT_SERVICE} failed: {e}")))?;
    say(&format!("{AGENT_SERVICE} restarted"));
    Ok(Vec::new())
}

/// The file with every `switchValue` of `<system.diagnostics>` set to `Verbose`, or a
/// stand-in section added before `</configuration>` when it has none.
pub fn verbose(original: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(original);
    const OPEN: &str = "<system.diagnostics>";
    const CLOSE: &str = "</system.diagnostics>";
    if let (Some(open), Some(close)) = (text.find(OPEN), text.find(CLOSE))
        && open < close
    {
        let section = &text[open..close];
        let mut out = String::with_capacity(text.len() + 16);
        out.push_str(&text[..open]);
        let mut rest = section;
        while let Some(at) = rest.find("switchValue=\"") {
            let value_start = at + "switchValue=\"".len();
            out.push_str(&rest[..value_start]);
            out.push_str("Verbose");
            rest = &rest[value_start..];
            rest = rest.find('"').map_or("", |end| &rest[end..]);
        }
        out.push_str(rest);
        out.push_str(&text[close..]);
        return out.into_bytes();
    }
    let section = "  <system.diagnostics>\r\n    <!-- LAB STAND-IN: Start-AADCloudSyncToolsVerboseLogs -->\r\n    <sources>\r\n      <source name=\"AAD Connect Provisioning Agent\" switchValue=\"Verbose\" />\r\n    </sources>\r\n  </system.diagnostics>\r\n";
    text.replacen("</configuration>", &format!("{section}</configuration>"), 1)
        .into_bytes()
}
