//! (Windows) provd's events in the Application event log, source `provd`:
//! the service's start and stop, every operation's outcome and every audit
//! record. Their ids, types and texts are [`super::events`], documented in
//! `deploy/windows/README.md`; this file only reports them, through one
//! source handle per process part (the daemon's, shared by the audit writer
//! and the operations engine; the service glue's).
//!
//! `provd service install` registers the source ([`register_source`]) with
//! .NET's `EventLogMessages.dll` as its message file (each id's message is
//! the string itself; .NET Framework is an agent prerequisite, so the file
//! is there); `provd service uninstall` removes it. provd's MSI writes the
//! same values ([`events::SOURCE_KEY`]) and removes them on uninstall.
//! Without the registration Windows still logs the events, and Event Viewer
//! says it lacks their description.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;

use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    RegisterEventSourceW, ReportEventW,
};
use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, REG_EXPAND_SZ};

use super::events::{self, Event, Level, MESSAGE_FILE, SOURCE_KEY, ServiceEvent, TYPES_SUPPORTED};
use super::{AuditMirror, OperationMirror, Sealed};
use crate::model::OperationRecord;

/// The event source name, also the registry key under
/// `SYSTEM\CurrentControlSet\Services\EventLog\Application`.
pub const SOURCE: &str = "provd";

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
    key.set_value("TypesSupported", &TYPES_SUPPORTED)
}

/// Removes the `provd` source (none registered is fine).
pub fn unregister_source() -> std::io::Result<()> {
    match RegKey::predef(HKEY_LOCAL_MACHINE).delete_subkey_all(SOURCE_KEY) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
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

    /// Reports one event; a WARN line when Windows refuses it.
    fn report(&self, event: &Event) {
        let kind = match event.id.level() {
            Level::Information => EVENTLOG_INFORMATION_TYPE,
            Level::Warning => EVENTLOG_WARNING_TYPE,
            Level::Error => EVENTLOG_ERROR_TYPE,
        };
        let message = wide(&event.text);
        let strings = [message.as_ptr()];
        // SAFETY: the handle is live while `self` is; one string, a
        // NUL-terminated UTF-16 buffer that outlives the call; no SID and no
        // raw data (null with size 0).
        let ok = unsafe {
            ReportEventW(
                self.handle as *mut core::ffi::c_void,
                kind,
                0,
                event.id.id(),
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
                event_id = event.id.id(),
                "cannot write an event to the event log"
            );
        }
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
        self.report(&events::audit(record));
    }
}

impl OperationMirror for EventLogMirror {
    fn finished(&self, op: &OperationRecord) {
        if let Some(event) = events::operation(op) {
            self.report(&event);
        }
    }
}

/// Reports the service's start, stop or failure (the service glue's own
/// handle: it reports before the daemon opens its mirror and after it
/// closed it). Best effort, like every event.
pub fn report_service(event: &ServiceEvent) {
    match EventLogMirror::open() {
        Ok(source) => source.report(&events::service(event)),
        Err(err) => tracing::warn!(error = %err, "cannot open the provd event log source"),
    }
}
