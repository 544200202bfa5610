//! (Windows) Each audit record in the Application event log, source
//! `provd`, one event id per kind (`deploy/windows/audit.md`):
//!
//! | id   | type        | record |
//! |------|-------------|--------|
//! | 1000 | Information | a mutating call that ended OK |
//! | 1001 | Information | a mutating call that ended with an error code |
//! | 1002 | Warning     | a denied call |
//! | 1003 | Warning     | denied calls over the rate, counted |
//! | 1004 | Information | the log was pruned (checkpoint) |
//! | 1005 | Warning     | a torn last line was removed at start |
//!
//! The event's one string is a summary line, then the record's JSON line as
//! the file holds it (hash included). `provd service install` registers the
//! source ([`register_source`]) with .NET's `EventLogMessages.dll` as its
//! message file (each id's message is the string itself; .NET Framework is
//! an agent prerequisite, so the file is there); `provd service uninstall`
//! removes it. Without the registration Windows still logs the events,
//! and Event Viewer says it lacks their description.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;

use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE, RegisterEventSourceW,
    ReportEventW,
};
use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, REG_EXPAND_SZ};

use super::line::{self, Line};
use super::{AuditMirror, Entry, Sealed};

/// The event source name, also the registry key under
/// `SYSTEM\CurrentControlSet\Services\EventLog\Application`.
pub const SOURCE: &str = "provd";

const SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\provd";
/// .NET Framework 4's message file: message `%1` for every event id.
const MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

pub const EVENT_CALL_OK: u32 = 1000;
pub const EVENT_CALL_ERROR: u32 = 1001;
pub const EVENT_DENIED: u32 = 1002;
pub const EVENT_SUPPRESSED: u32 = 1003;
pub const EVENT_PRUNED: u32 = 1004;
pub const EVENT_RECOVERED: u32 = 1005;

fn wide(text: &str) -> Vec<u16> {
    OsStr::new(text).encode_wide().chain(Some(0)).collect()
}

/// Registers the `provd` source (idempotent). Needs administrator rights.
pub fn register_source() -> std::io::Result<()> {
    let (key, _) = RegKey::predef(HKEY_LOCAL_MACHINE).create_subkey(SOURCE_KEY)?;
    let file: Vec<u8> = wide(MESSAGE_FILE)
        .into_iter()
        .flat_map(u16::to_le_bytes)
        .collect();
    key.set_raw_value(
        "EventMessageFile",
        &winreg::RegValue {
            bytes: file.into(),
            vtype: REG_EXPAND_SZ,
        },
    )?;
    // Error, warning and information events.
    key.set_value("TypesSupported", &7u32)
}

/// Removes the `provd` source (none registered is fine).
pub fn unregister_source() -> std::io::Result<()> {
    match RegKey::predef(HKEY_LOCAL_MACHINE).delete_subkey_all(SOURCE_KEY) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The event id, type and summary of a record.
fn event(record: &Sealed) -> (u32, u16, String) {
    match &record.entry {
        Entry::Call(call) if call.code == "OK" => (
            EVENT_CALL_OK,
            EVENTLOG_INFORMATION_TYPE,
            format!("{} called {}: OK", call.caller.cn, call.method),
        ),
        Entry::Call(call) => (
            EVENT_CALL_ERROR,
            EVENTLOG_INFORMATION_TYPE,
            format!("{} called {}: {}", call.caller.cn, call.method, call.code),
        ),
        Entry::Denied(call) => (
            EVENT_DENIED,
            EVENTLOG_WARNING_TYPE,
            format!(
                "{} was denied {} ({}) from {}",
                call.caller.cn, call.method, call.code, call.peer
            ),
        ),
        Entry::Suppressed(s) => (
            EVENT_SUPPRESSED,
            EVENTLOG_WARNING_TYPE,
            format!("{} denied calls suppressed (over the audit rate)", s.count),
        ),
        Entry::Checkpoint(c) => (
            EVENT_PRUNED,
            EVENTLOG_INFORMATION_TYPE,
            format!(
                "audit log pruned through record {} ({} in all)",
                c.last_seq, c.pruned
            ),
        ),
        Entry::Recovered(r) => (
            EVENT_RECOVERED,
            EVENTLOG_WARNING_TYPE,
            format!(
                "audit log: a torn last line of {} bytes was removed at start",
                r.torn_bytes
            ),
        ),
    }
}

/// Reports to the Application log through the `provd` source.
pub struct EventLogMirror {
    /// The event source handle (thread-safe for ReportEventW), as an
    /// integer so the mirror is Send and Sync.
    handle: usize,
}

impl EventLogMirror {
    /// Opens the `provd` source on this machine.
    pub fn open() -> std::io::Result<EventLogMirror> {
        let source = wide(SOURCE);
        // SAFETY: a null server name is the local machine; `source` is a
        // NUL-terminated UTF-16 string that outlives the call.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
        if handle.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EventLogMirror {
            handle: handle as usize,
        })
    }
}

impl Drop for EventLogMirror {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is
        // deregistered once, here.
        unsafe {
            DeregisterEventSource(self.handle as *mut core::ffi::c_void);
        }
    }
}

impl AuditMirror for EventLogMirror {
    fn mirror(&self, record: &Sealed) {
        let (id, kind, summary) = event(record);
        let json = serde_json::to_string(&Line {
            seq: record.seq,
            time: line::format_time(record.time_ms),
            entry: record.entry.clone(),
            prev_hash: record.prev_hash.clone(),
            hash: record.hash.clone(),
        })
        .unwrap_or_default();
        let message = wide(&format!("{summary}\r\n\r\n{json}"));
        let strings = [message.as_ptr()];
        // SAFETY: the handle is live while `self` is; one string, a
        // NUL-terminated UTF-16 buffer that outlives the call; no SID and no
        // raw data (null with size 0).
        let ok = unsafe {
            ReportEventW(
                self.handle as *mut core::ffi::c_void,
                kind,
                0,
                id,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                seq = record.seq,
                "audit: cannot write the record to the event log"
            );
        }
    }
}
