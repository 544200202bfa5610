//! One script run: `powershell.exe -NoLogo -NoProfile -NonInteractive
//! -File <script>`, started suspended inside a kill-on-close job, the
//! request on stdin, both output pipes read at once, and a time limit and
//! the operation's cancellation that end the whole process tree.

use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use windows_sys::Win32::System::Threading::{CREATE_NO_WINDOW, CREATE_SUSPENDED};

use super::dir::Installed;
use super::job::{self, Job};
use crate::backends::agent_config::protocol::{self, Request};
use crate::backends::agent_config::transcript::{Collector, Stream, pump};
use crate::backends::agent_config::{AgentConfigError, RunContext};

/// Why a run was stopped before it ended.
enum Stop {
    Timeout,
    Cancelled,
}

/// Runs `script` with `request`; `script` stays pinned until PowerShell
/// has exited.
pub(super) async fn run(
    powershell: &Path,
    script: &Installed,
    request: &Request,
    limit: Duration,
    cx: &RunContext<'_>,
) -> Result<Map<String, Value>, AgentConfigError> {
    // Only the script's path is on the command line: its arguments and
    // secrets go through stdin.
    let mut child = Command::new(powershell)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&script.path)
        .current_dir(&script.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .creation_flags(CREATE_SUSPENDED | CREATE_NO_WINDOW)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| AgentConfigError::Io(format!("cannot start {}: {e}", powershell.display())))?;
    let job = match start_in_job(&child) {
        Ok(job) => job,
        Err(e) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(AgentConfigError::Io(format!(
                "cannot start {} inside a job object: {e}",
                powershell.display()
            )));
        }
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let collector = Mutex::new(Collector::new(request.redactor(), cx.transcript));
    let io = async {
        let feed = async {
            if let Some(mut stdin) = stdin {
                // A script that never reads (PowerShell refusing it) closes
                // the pipe; its outcome says why, not this write.
                let _ = stdin
                    .write_all(request.stdin().expose_secret().as_bytes())
                    .await;
            }
        };
        let out = async {
            if let Some(stdout) = stdout {
                pump(stdout, Stream::Stdout, &collector).await;
            }
        };
        let err = async {
            if let Some(stderr) = stderr {
                pump(stderr, Stream::Stderr, &collector).await;
            }
        };
        // Whatever the script started and left running ends with it, which
        // also closes the pipes those processes inherited.
        let exited = async {
            let status = child.wait().await;
            let _ = job.terminate();
            status
        };
        tokio::join!(feed, out, err, exited).3
    };
    let ended = tokio::select! {
        status = io => Ok(status),
        () = tokio::time::sleep(limit) => Err(Stop::Timeout),
        () = cx.cancel.cancelled() => Err(Stop::Cancelled),
    };
    let status = match ended {
        Ok(status) => {
            status.map_err(|e| AgentConfigError::Io(format!("cannot wait for PowerShell: {e}")))?
        }
        Err(stop) => {
            end_tree(&job, &mut child).await;
            // What was shown stays shown; say what was not.
            let _ = collector
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .finish();
            return Err(match stop {
                Stop::Timeout => AgentConfigError::Timeout {
                    script: request.script.into(),
                    after: limit,
                },
                Stop::Cancelled => AgentConfigError::Cancelled,
            });
        }
    };
    let exit_code = status.code();
    if let Some(code) = exit_code {
        tracing::Span::current().record("process.exit_code", code);
    }
    let (results, stderr_tail) = collector
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .finish();
    protocol::outcome(request, exit_code, &results, &stderr_tail)
}

/// Puts the suspended child in a new job, then lets it run.
fn start_in_job(child: &Child) -> std::io::Result<Job> {
    let job = Job::kill_on_close()?;
    job.assign(child)?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the child process has no id"))?;
    job::resume(pid)?;
    Ok(job)
}

/// Ends the process tree and reaps PowerShell.
async fn end_tree(job: &Job, child: &mut Child) {
    if job.terminate().is_err() {
        let _ = child.start_kill();
    }
    let _ = child.wait().await;
}
