//! The report: one table of every read RPC's throughput through provd and
//! through the bare server per level, their ratio, and the directory's share
//! of the reads that bind; then the real binary's figures.

use std::path::PathBuf;
use std::time::Duration;

use crate::binary::{BinaryRun, IDLE, POLL};
use crate::load::Run;
use crate::reads::Bound;
use crate::{LEVELS, ROUNDS, TARGET_RATIO, TARGET_RSS_MIB, TARGET_START_MS};

/// One round at one level: provd's run, the bare server's, and the time
/// provd's calls spent in the directory during its run.
pub struct Round {
    pub provd: Run,
    pub bare: Run,
    pub backend: Duration,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.provd.rps() / self.bare.rps()
    }
    /// The directory's time per provd call, in µs.
    fn backend_us(&self) -> f64 {
        self.backend.as_secs_f64() * 1e6 / self.provd.ok.max(1) as f64
    }
    /// provd's throughput had its directory calls cost nothing: its CPU
    /// time per call (`workers / rps`; serial at c=1) less the directory's.
    /// With `workers` = all cores this is conservative on a shared machine.
    fn ratio_without_backend(&self, workers: f64) -> f64 {
        let per_call =
            workers / self.provd.rps() - self.backend.as_secs_f64() / self.provd.ok.max(1) as f64;
        (workers / per_call.max(f64::MIN_POSITIVE)) / self.bare.rps()
    }
}

pub struct Row {
    pub name: &'static str,
    pub bound: Bound,
    /// provd's encoded response: bytes (all messages of a stream) and count.
    pub response_bytes: usize,
    pub messages: usize,
    /// Per level (as [`LEVELS`]), the rounds in the order run.
    pub levels: Vec<Vec<Round>>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub struct Report {
    pub cores: usize,
    pub measure: Duration,
    pub warmup: Duration,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub about: String,
    pub rows: Vec<Row>,
    pub binary: Option<(PathBuf, Vec<BinaryRun>)>,
    pub wall: Duration,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

impl Report {
    pub fn print(&self) {
        let line = "-".repeat(142);
        println!();
        println!("provd RPC benchmark: every read RPC, provd vs a bare tonic server");
        println!("{line}");
        println!(
            "cores: {}; load client, provd and the bare server share one tokio runtime in this process",
            self.cores
        );
        println!(
            "per RPC and level: {ROUNDS} rounds, each provd then bare tonic (alternating which goes \
             first), {:.2} s warm-up + {:.2} s measured, fresh channels; figures are medians",
            self.warmup.as_secs_f64(),
            self.measure.as_secs_f64()
        );
        println!(
            "provd: in-process on the testkit fakes, real store/audit/transport; {}",
            self.about
        );
        println!(
            "load average before / after: {} / {}",
            self.loadavg_before, self.loadavg_after
        );
        println!();
        print!("{:<46} {:<9} {:>6}", "RPC", "bound", "bytes");
        for &(c, ch) in LEVELS {
            print!(" | {:^26}", format!("c={c} ch={ch}"));
        }
        println!();
        print!("{:<46} {:<9} {:>6}", "", "", "");
        for _ in LEVELS {
            print!(" | {:>8} {:>8} {:>8}", "provd/s", "bare/s", "ratio");
        }
        println!();
        println!("{line}");
        let mut misses = Vec::new();
        for row in &self.rows {
            let size = if row.messages == 1 {
                row.response_bytes.to_string()
            } else {
                format!("{}/{}", row.response_bytes, row.messages)
            };
            print!("{:<46} {:<9} {:>6}", row.name, row.bound.label(), size);
            for (rounds, &(c, ch)) in row.levels.iter().zip(LEVELS) {
                let provd = median(rounds.iter().map(|r| r.provd.rps()).collect());
                let bare = median(rounds.iter().map(|r| r.bare.rps()).collect());
                let ratio = median(rounds.iter().map(Round::ratio).collect());
                let mark = if ratio < TARGET_RATIO { "*" } else { " " };
                if ratio < TARGET_RATIO {
                    misses.push(format!("{} c={c} ch={ch} {ratio:.2}x", row.name));
                }
                print!(" | {provd:>8.0} {bare:>8.0} {ratio:>7.2}x{mark}");
            }
            println!();
        }
        println!("{line}");
        println!(
            "ratio = provd req/s / bare req/s, median of the per-round ratios; target >= \
             {TARGET_RATIO}x (* below). bytes: provd's encoded response (stream: total/messages),"
        );
        println!(
            "which the bare server answers with. bound: what answers besides provd's transport; for \
             host/tenant/directory the ratio includes that fake backend's work,"
        );
        println!("which the bare server does not do; the directory's share is measured below.");
        println!(
            "{}",
            if misses.is_empty() {
                format!("every read RPC >= {TARGET_RATIO}x at every level: PASS")
            } else {
                format!("below {TARGET_RATIO}x: {}", misses.join(", "))
            }
        );

        println!();
        println!(
            "the directory's share (fake directory, every call timed): µs per provd call, and the \
             ratio had those calls cost nothing (est.: provd's CPU per call = workers / req/s, \
             workers 1 at c=1, {} at c=64)",
            self.cores
        );
        print!("{:<46}", "RPC");
        for &(c, ch) in LEVELS {
            print!(" | {:^22}", format!("c={c} ch={ch}"));
        }
        println!();
        println!("{line}");
        for row in self.rows.iter().filter(|r| r.bound == Bound::Directory) {
            print!("{:<46}", row.name);
            for (rounds, &(c, _)) in row.levels.iter().zip(LEVELS) {
                let workers = if c == 1 { 1.0 } else { self.cores as f64 };
                let us = median(rounds.iter().map(Round::backend_us).collect());
                let without = median(
                    rounds
                        .iter()
                        .map(|r| r.ratio_without_backend(workers))
                        .collect(),
                );
                print!(" | {us:>7.1} µs -> {without:>6.2}x");
            }
            println!();
        }

        println!();
        println!("latency p50 / p99 in µs (median over rounds), provd vs bare:");
        for row in &self.rows {
            print!("{:<46}", row.name);
            for rounds in &row.levels {
                let q = |f: &dyn Fn(&Round) -> &Run, q: f64| {
                    median(
                        rounds
                            .iter()
                            .map(|r| f(r).latency_ns.value_at_quantile(q) as f64 / 1e3)
                            .collect(),
                    )
                };
                print!(
                    " | {:>6.0}/{:<6.0} vs {:>6.0}/{:<6.0}",
                    q(&|r| &r.provd, 0.5),
                    q(&|r| &r.provd, 0.99),
                    q(&|r| &r.bare, 0.5),
                    q(&|r| &r.bare, 0.99)
                );
            }
            println!();
        }

        if let Some((binary, runs)) = &self.binary {
            print_binary(binary, runs, &line);
        }
        println!("{line}");
        println!("total bench time: {:.1} s", self.wall.as_secs_f64());
    }
}

fn print_binary(binary: &std::path::Path, runs: &[BinaryRun], line: &str) {
    println!();
    println!("real binary: {}", binary.display());
    println!("{line}");
    let mut starts: Vec<Duration> = runs.iter().map(|r| r.start).collect();
    starts.sort();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.rss_kib).collect();
    rss.sort_unstable();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (Some(&min_start), Some(&max_rss)) = (starts.first(), rss.last()) else {
        return;
    };
    let median_start = starts[starts.len() / 2];
    let median_rss = rss[rss.len() / 2];
    let max_hwm = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
    println!(
        "idle RSS (VmRSS {} s after first Check): median {:.1} MiB, max {:.1} MiB \
         (peak VmHWM {:.1} MiB); target < {TARGET_RSS_MIB} MiB: {}",
        IDLE.as_secs(),
        mib(median_rss),
        mib(max_rss),
        mib(max_hwm),
        verdict(mib(max_rss) < TARGET_RSS_MIB)
    );
    println!(
        "start-to-serving (spawn -> first OK mTLS Health/Check, retry every {} ms, fresh state \
         dir): median {:.1} ms, min {:.1} ms over {} runs; target < {TARGET_START_MS} ms: {}",
        POLL.as_millis(),
        ms(median_start),
        ms(min_start),
        starts.len(),
        verdict(ms(median_start) < TARGET_START_MS)
    );
    println!(
        "  each run (ms): {}",
        runs.iter()
            .map(|r| format!("{:.1}", ms(r.start)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
