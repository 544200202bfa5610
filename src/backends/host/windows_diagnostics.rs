//! What a support bundle takes from a Windows host, as Microsoft's
//! `Export-AADCloudSyncToolsLogs` (AADCloudSyncTools) collects it: the
//! agent's trace folder (`%ProgramData%\Microsoft\Azure AD Connect
//! Provisioning Agent\Trace`), its exe.config, and the Application, System
//! and `Microsoft-AzureADConnect-ProvisioningAgent/Admin` event logs.
//!
//! The event logs are read with the Event Log API (`EvtQuery`, `EvtNext`,
//! `EvtRender` as XML), not exported as `.evtx` with `EvtExportLog`: every
//! file of the bundle is redacted, and a binary `.evtx` cannot be (its
//! records are checksummed). Under Wine `EvtQuery` fails with
//! ERROR_CALL_NOT_IMPLEMENTED; the part then says so.

use std::path::PathBuf;
use std::time::SystemTime;

use super::DiagnosticPart;

const TRACE_DIR: &str = r"Microsoft\Azure AD Connect Provisioning Agent\Trace";
const EVENT_LOGS: [(&str, &str); 3] = [
    ("Application", "eventlog/Application.xml"),
    ("System", "eventlog/System.xml"),
    (
        "Microsoft-AzureADConnect-ProvisioningAgent/Admin",
        "eventlog/ProvisioningAgent-Admin.xml",
    ),
];

pub(super) fn parts(since: SystemTime, limit: u64) -> Vec<DiagnosticPart> {
    let mut out = trace_files(limit);
    out.push(DiagnosticPart {
        path: format!("agent/{}", super::EXE_CONFIG),
        content: super::windows_settings::exe_config_path()
            .map_err(|e| e.to_string())
            .and_then(|p| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))),
    });
    let age_ms = SystemTime::now()
        .duration_since(since)
        .unwrap_or_default()
        .as_millis();
    for (channel, path) in EVENT_LOGS {
        out.push(DiagnosticPart {
            path: path.into(),
            content: event_log_xml(channel, age_ms),
        });
    }
    out
}

/// The trace folder's files, newest first, while they fit in `limit`.
fn trace_files(limit: u64) -> Vec<DiagnosticPart> {
    let dir = match crate::backends::windows_fs::program_data() {
        Ok(base) => base.join(TRACE_DIR),
        Err(reason) => {
            return vec![DiagnosticPart {
                path: "agent/trace".into(),
                content: Err(reason),
            }];
        }
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            return vec![DiagnosticPart {
                path: "agent/trace".into(),
                content: Err(format!("{}: {e}", dir.display())),
            }];
        }
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut left = limit;
    let mut out = Vec::new();
    for (_, len, path) in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content = if len > left {
            Err(format!("left out: {len} bytes, over the bundle's limit"))
        } else {
            left -= len;
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        out.push(DiagnosticPart {
            path: format!("agent/trace/{name}"),
            content,
        });
    }
    out
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The channel's events of the last `age_ms` milliseconds as one XML
/// document (`<Events>…</Events>`), newest last.
fn event_log_xml(channel: &str, age_ms: u128) -> Result<Vec<u8>, String> {
    use windows_sys::Win32::Foundation::{ERROR_NO_MORE_ITEMS, GetLastError};
    use windows_sys::Win32::System::EventLog::{
        EVT_HANDLE, EvtClose, EvtNext, EvtQuery, EvtQueryChannelPath,
    };

    let query = format!("*[System[TimeCreated[timediff(@SystemTime) <= {age_ms}]]]");
    let (channel_w, query_w) = (wide(channel), wide(&query));
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let results = unsafe { EvtQuery(0, channel_w.as_ptr(), query_w.as_ptr(), EvtQueryChannelPath) };
    if results == 0 {
        // SAFETY: reads this thread's last error.
        let code = unsafe { GetLastError() };
        return Err(if code == 0 {
            format!("EvtQuery({channel}) failed without an error code (no Event Log API here)")
        } else {
            format!("EvtQuery({channel}) failed: error {code}")
        });
    }
    let mut xml = String::from("<Events>\n");
    let mut events: [EVT_HANDLE; 64] = [0; 64];
    let mut outcome = Ok(());
    loop {
        let mut returned = 0u32;
        // SAFETY: `events` has room for 64 handles; each returned one is
        // closed below.
        let ok = unsafe { EvtNext(results, 64, events.as_mut_ptr(), 5_000, 0, &mut returned) };
        if ok == 0 {
            // SAFETY: as above.
            let code = unsafe { GetLastError() };
            if code != ERROR_NO_MORE_ITEMS {
                outcome = Err(format!("EvtNext({channel}) failed: error {code}"));
            }
            break;
        }
        for &event in &events[..returned as usize] {
            let rendered = render(event);
            // SAFETY: a handle EvtNext returned, closed once.
            unsafe { EvtClose(event) };
            match rendered {
                Ok(text) => {
                    xml.push_str(&text);
                    xml.push('\n');
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        if outcome.is_err() {
            break;
        }
    }
    // SAFETY: the query handle, closed once.
    unsafe { EvtClose(results) };
    outcome?;
    xml.push_str("</Events>\n");
    Ok(xml.into_bytes())
}

/// One event as XML: the first call asks for the size, the second renders.
fn render(event: windows_sys::Win32::System::EventLog::EVT_HANDLE) -> Result<String, String> {
    use windows_sys::Win32::System::EventLog::{EvtRender, EvtRenderEventXml};
    let (mut used, mut count) = (0u32, 0u32);
    // SAFETY: a size query with no buffer.
    unsafe {
        EvtRender(
            0,
            event,
            EvtRenderEventXml,
            0,
            std::ptr::null_mut(),
            &mut used,
            &mut count,
        )
    };
    let mut buffer = vec![0u16; (used as usize).div_ceil(2)];
    // SAFETY: `buffer` holds `used` bytes.
    let ok = unsafe {
        EvtRender(
            0,
            event,
            EvtRenderEventXml,
            used,
            buffer.as_mut_ptr().cast(),
            &mut used,
            &mut count,
        )
    };
    if ok == 0 {
        return Err("EvtRender failed".into());
    }
    let end = buffer.iter().position(|&c| c == 0).unwrap_or(buffer.len());
    Ok(String::from_utf16_lossy(&buffer[..end]))
}
