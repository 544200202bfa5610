//! The lab fault `HKLM\SOFTWARE\ProvdLab\PowerShell\Hang` = 1: after reading its request the
//! stand-in starts a child that outlives nothing on its own (`cmd /c ping -n 600
//! 127.0.0.1`, ten minutes), prints both process ids, and sleeps until it is killed. For
//! provd's runner tests: the timeout, the cancellation and that killing the job object
//! takes the whole process tree (the child's pid is the one to look for afterwards).

use std::io::Write as _;
use std::time::Duration;

use super::{LAB_KEY, sys};

pub fn if_asked() {
    if !sys::reg_get(LAB_KEY, "Hang").is_some_and(|v| v.is_set()) {
        return;
    }
    let child = std::process::Command::new("cmd")
        .args(["/c", "ping", "-n", "600", "127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match &child {
        Ok(c) => c.id().to_string(),
        Err(e) => format!("none ({e})"),
    };
    super::say(&format!(
        "Hang=1 ({LAB_KEY}): pid {} started cmd.exe pid {child} (ping -n 600) and sleeps until killed",
        std::process::id()
    ));
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
