//! What the fleet bench reads from /proc: CPU seconds of chosen processes,
//! the CPU of waited-for children, and the proportional memory (PSS) of a
//! process tree sampled while it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// USER_HZ on Linux.
const TICKS: f64 = 100.0;

/// (pid, parent pid, command name, CPU seconds) of every process.
fn processes() -> Vec<(u32, u32, String, f64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        // After comm: state, ppid (1), ..., utime (11), stime (12).
        let ppid = field(1).unwrap_or(0.0) as u32;
        let cpu = (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / TICKS;
        out.push((pid, ppid, stat[open + 1..close].to_owned(), cpu));
    }
    out
}

/// CPU seconds (user + system) used so far by the processes `pick`
/// selects by pid and command name.
pub fn cpu_seconds(pick: impl Fn(u32, &str) -> bool) -> f64 {
    processes()
        .into_iter()
        .filter(|(pid, _, comm, _)| pick(*pid, comm))
        .map(|p| p.3)
        .sum()
}

/// The Samba DC processes (samba, and its ldap/kdc workers).
pub fn samba_cpu() -> f64 {
    cpu_seconds(|_, comm| comm.starts_with("samba") || comm.starts_with("ldap"))
}

/// CPU seconds of every child this process has waited for (and of their
/// waited-for descendants): taken around one wait, the orchestrator's
/// whole tree.
pub fn children_cpu() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

/// Sum of `Pss:` over `root` and its descendants, in KiB, and how many
/// processes that is.
fn tree_pss_kib(root: u32) -> (u64, usize) {
    let all = processes();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (pid, ppid, ..) in &all {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut tree = BTreeSet::from([root]);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if tree.insert(*child) {
                todo.push(*child);
            }
        }
    }
    let kib = tree
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|text| {
            let line = text.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum();
    (kib, tree.len())
}

/// What one orchestrator run cost.
pub struct Usage {
    pub status: ExitStatus,
    pub wall: Duration,
    /// CPU seconds of the process and every descendant.
    pub cpu: f64,
    /// Peak of the tree's summed PSS, KiB (sampled every 100 ms).
    pub peak_pss_kib: u64,
    /// Most processes seen in the tree at once.
    pub peak_processes: usize,
}

/// Waits for `child`, sampling its tree's memory every 100 ms (each sample
/// reads /proc, so not more often: it would take CPU from what it measures).
pub fn watch(mut child: Child) -> Usage {
    let started = std::time::Instant::now();
    let cpu_before = children_cpu();
    let (mut peak, mut most) = (0, 0);
    let status = loop {
        let (kib, count) = tree_pss_kib(child.id());
        (peak, most) = (peak.max(kib), most.max(count));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Usage {
        status,
        wall: started.elapsed(),
        cpu: children_cpu() - cpu_before,
        peak_pss_kib: peak,
        peak_processes: most,
    }
}
