//! The script's process tree in a Job Object: the child is created
//! suspended, put in a job that kills everything in it when its last handle
//! closes (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`), and only then resumed, so
//! nothing it starts can escape the job. Dropping [`Job`] (any error path,
//! a panic, an aborted task) or [`Job::terminate`] ends the whole tree.
//!
//! std spawns with `CREATE_SUSPENDED` but closes the main thread's handle,
//! so the thread is found again through a Toolhelp snapshot (the process
//! cannot exit while suspended, so its id cannot be reused meanwhile).
//! Every `unsafe` block below is one documented Win32 call.

use std::io;
use std::os::windows::io::{AsRawHandle, HandleOrInvalid, HandleOrNull, OwnedHandle};
use std::ptr;

use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{OpenThread, ResumeThread, THREAD_SUSPEND_RESUME};

/// The exit code the job's processes get when provd ends them.
const TERMINATED: u32 = 1;

/// A job whose processes die with its last handle.
pub(super) struct Job(OwnedHandle);

impl Job {
    pub(super) fn kill_on_close() -> io::Result<Job> {
        // SAFETY: both arguments may be null (default security, no name);
        // the call returns a new job handle, or NULL on failure.
        let raw = unsafe { CreateJobObjectW(ptr::null(), ptr::null()) };
        // SAFETY: `raw` was just returned and nothing else owns it;
        // HandleOrNull is the type for APIs that return NULL on failure.
        let job = OwnedHandle::try_from(unsafe { HandleOrNull::from_raw_handle(raw) })
            .map_err(|_| io::Error::last_os_error())?;
        let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = u32::try_from(size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>())
            .map_err(io::Error::other)?;
        // SAFETY: `job` is a live job handle; the pointer and size describe
        // `limits`, an initialized JOBOBJECT_EXTENDED_LIMIT_INFORMATION, which
        // is what JobObjectExtendedLimitInformation takes; it is only read.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                ptr::from_ref(&limits).cast(),
                size,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Job(job))
    }

    /// Puts `child` (still suspended) in the job.
    pub(super) fn assign(&self, child: &tokio::process::Child) -> io::Result<()> {
        let process = child
            .raw_handle()
            .ok_or_else(|| io::Error::other("the child process was already reaped"))?;
        // SAFETY: the job handle is ours and live; `child` owns the process
        // handle and keeps it open for at least the borrow.
        let ok = unsafe { AssignProcessToJobObject(self.0.as_raw_handle(), process) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ends every process in the job (none left is fine).
    pub(super) fn terminate(&self) -> io::Result<()> {
        // SAFETY: the job handle is ours and live; the call only ends the
        // processes the job holds.
        let ok = unsafe { TerminateJobObject(self.0.as_raw_handle(), TERMINATED) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Resumes the threads of the suspended process `pid` (a new process has
/// exactly one).
pub(super) fn resume(pid: u32) -> io::Result<()> {
    // SAFETY: plain flags (every thread of the system; the process id is
    // ignored for TH32CS_SNAPTHREAD); returns a new handle or
    // INVALID_HANDLE_VALUE.
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    // SAFETY: `raw` was just returned and nothing else owns it;
    // HandleOrInvalid is the type for APIs that fail with
    // INVALID_HANDLE_VALUE.
    let snapshot = OwnedHandle::try_from(unsafe { HandleOrInvalid::from_raw_handle(raw) })
        .map_err(|_| io::Error::last_os_error())?;
    let mut entry = THREADENTRY32 {
        dwSize: u32::try_from(size_of::<THREADENTRY32>()).map_err(io::Error::other)?,
        ..THREADENTRY32::default()
    };
    let mut resumed = 0;
    // SAFETY: the snapshot handle is live; `entry` is a THREADENTRY32 whose
    // dwSize is set, as the call requires; it is written, not kept.
    let mut more = unsafe { Thread32First(snapshot.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            resume_thread(entry.th32ThreadID)?;
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot.as_raw_handle(), &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "no thread of process {pid} to resume"
        )));
    }
    Ok(())
}

fn resume_thread(thread_id: u32) -> io::Result<()> {
    // SAFETY: plain arguments (no inheritance); returns a new handle or NULL.
    let raw = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, thread_id) };
    // SAFETY: `raw` was just returned and nothing else owns it; NULL means
    // failure.
    let thread = OwnedHandle::try_from(unsafe { HandleOrNull::from_raw_handle(raw) })
        .map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the thread handle is live and was opened with
    // THREAD_SUSPEND_RESUME, the right ResumeThread needs.
    if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
