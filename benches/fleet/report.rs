//! The fleet bench's samples and its printed tables: medians per size and
//! variant, the before/after of the DC work, the Ansible ratios, and the
//! per-wave timeline of the largest provctl run.

use std::collections::BTreeMap;

use super::procs::Usage;

pub struct Sample {
    pub usage: Usage,
    /// CPU seconds the Samba DCs used during the run.
    pub dc_cpu: f64,
    /// CPU seconds the N daemons used during the run.
    pub daemons_cpu: f64,
    /// `provd.directory.calls` by op, summed over the daemons.
    pub calls: BTreeMap<String, u64>,
    /// Daemons whose plan of the document was empty afterwards.
    pub in_place: usize,
    pub timeline: Timeline,
}

impl Sample {
    pub fn brief(&self, n: usize) -> String {
        format!(
            "wall {:.2}s, ok {}, in place {}/{n}, orchestrator CPU {:.2}s, DC CPU {:.2}s, binds {}",
            self.usage.wall.as_secs_f64(),
            self.usage.status.success(),
            self.in_place,
            self.usage.cpu,
            self.dc_cpu,
            self.op("bind"),
        )
    }

    fn op(&self, op: &str) -> u64 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    fn ldap_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// The hosts of `provctl fleet apply --report`'s JSON that did not
/// succeed: "name: STATE: error".
pub fn failures(json: &[u8]) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    report["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["state"] != "SUCCEEDED")
        .map(|h| format!("{}: {}: {}", h["host"], h["state"], h["error"]))
        .collect()
}

/// Per wave: (wave, hosts, first start, last end) in ms from the start.
#[derive(Default)]
pub struct Timeline(Vec<(u64, usize, u64, u64)>);

impl Timeline {
    /// From `provctl fleet apply --report`'s JSON.
    pub fn from_report(json: &[u8]) -> Timeline {
        let Ok(report) = serde_json::from_slice::<serde_json::Value>(json) else {
            return Timeline::default();
        };
        let mut waves: BTreeMap<u64, (usize, u64, u64)> = BTreeMap::new();
        for host in report["hosts"].as_array().into_iter().flatten() {
            let field = |k: &str| host[k].as_u64().unwrap_or(0);
            let (wave, start) = (field("wave"), field("start_ms"));
            let end = start + field("duration_ms");
            let entry = waves.entry(wave).or_insert((0, u64::MAX, 0));
            *entry = (entry.0 + 1, entry.1.min(start), entry.2.max(end));
        }
        Timeline(
            waves
                .into_iter()
                .map(|(w, (n, s, e))| (w, n, s, e))
                .collect(),
        )
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n => values[n / 2],
    }
}

/// The medians of one (size, variant).
struct Row {
    wall: f64,
    cpu: f64,
    pss_mib: f64,
    processes: f64,
    dc_ms_per_host: f64,
    provd_ms_per_host: f64,
    binds: f64,
    searches: f64,
    calls: f64,
    in_place: f64,
    ok: bool,
}

fn row(n: usize, samples: &[Sample]) -> Row {
    let m = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    let per = n as f64;
    Row {
        wall: m(&|s| s.usage.wall.as_secs_f64()),
        cpu: m(&|s| s.usage.cpu),
        pss_mib: m(&|s| s.usage.peak_pss_kib as f64 / 1024.0),
        processes: m(&|s| s.usage.peak_processes as f64),
        dc_ms_per_host: m(&|s| s.dc_cpu * 1000.0 / per),
        provd_ms_per_host: m(&|s| s.daemons_cpu * 1000.0 / per),
        binds: m(&|s| s.op("bind") as f64 / per),
        searches: m(&|s| s.op("search") as f64 / per),
        calls: m(&|s| s.ldap_calls() as f64 / per),
        in_place: m(&|s| s.in_place as f64),
        ok: samples.iter().all(|s| s.usage.status.success()),
    }
}

pub fn print(table: &[(usize, &str, Vec<Sample>)], cores: usize, canary: bool) {
    println!(
        "fleet apply of the full Linux document (domain + DC order, gMSA, 2 permission profiles), \
         medians; {cores} cores"
    );
    println!(
        "{:>5}  {:<14} {:>8} {:>9} {:>10} {:>19} {:>11} {:>14} {:>11} {:>12} {:>13}",
        "hosts",
        "variant",
        "wall",
        "in place",
        "orch. CPU",
        "orch. PSS (procs)",
        "DC CPU/host",
        "provd CPU/host",
        "binds/apply",
        "search/apply",
        "LDAP ops/apply"
    );
    let rows: Vec<(usize, &str, Row)> = table
        .iter()
        .filter(|(_, _, s)| !s.is_empty())
        .map(|(n, v, s)| (*n, *v, row(*n, s)))
        .collect();
    for (n, variant, r) in &rows {
        println!(
            "{n:>5}  {variant:<14} {:>7.2}s {:>5}/{n:<3} {:>9.2}s {:>7.1} MiB ({:>3}) {:>8.1} ms {:>10.1} ms {:>11.1} {:>12.1} {:>13.1}{}",
            r.wall,
            r.in_place,
            r.cpu,
            r.pss_mib,
            r.processes,
            r.dc_ms_per_host,
            r.provd_ms_per_host,
            r.binds,
            r.searches,
            r.calls,
            if r.ok { "" } else { "  FAILED" }
        );
    }
    let find = |n: usize, v: &str| {
        rows.iter()
            .find(|(m, w, _)| *m == n && *w == v)
            .map(|x| &x.2)
    };
    println!("\nbefore/after (baseline build → this build), per host:");
    for (n, _, new) in rows.iter().filter(|(_, v, _)| *v == "provctl") {
        if let Some(old) = find(*n, "baseline") {
            println!(
                "{n:>5} hosts: DC CPU {:.1} → {:.1} ms ({:.2}× less), binds {:.1} → {:.1}, LDAP ops {:.1} → {:.1}, wall {:.2}s → {:.2}s",
                old.dc_ms_per_host,
                new.dc_ms_per_host,
                old.dc_ms_per_host / new.dc_ms_per_host,
                old.binds,
                new.binds,
                old.calls,
                new.calls,
                old.wall,
                new.wall
            );
        }
    }
    println!(
        "\nAnsible (provd_apply, forks = N; `ansible`: no serial, `ansible+canary`: a canary play \
         first) against provctl fleet apply, same daemons and document:"
    );
    for (n, v, a) in rows.iter().filter(|(_, v, _)| v.starts_with("ansible")) {
        if let Some(p) = find(*n, "provctl") {
            println!(
                "{n:>5} hosts, {v}: wall {:.2}s vs {:.2}s ({:.1}× faster), CPU {:.2}s vs {:.2}s ({:.0}× less), \
                 PSS {:.0} MiB in {} processes vs {:.1} MiB ({:.0}× lighter)",
                a.wall,
                p.wall,
                a.wall / p.wall,
                a.cpu,
                p.cpu,
                a.cpu / p.cpu,
                a.pss_mib,
                a.processes,
                p.pss_mib,
                a.pss_mib / p.pss_mib
            );
        }
    }
    if let Some((n, _, samples)) = table
        .iter()
        .filter(|(_, v, s)| *v == "provctl" && !s.is_empty())
        .max_by_key(|(n, ..)| *n)
        && let Some(last) = samples.last()
    {
        println!("\ntimeline of the last {n}-host provctl run (from its --report):");
        for (wave, hosts, start, end) in &last.timeline.0 {
            let label = if canary && *wave == 0 {
                " (canary)"
            } else {
                ""
            };
            println!(
                "  wave {wave}{label}: {hosts} hosts, {:.2}s – {:.2}s",
                *start as f64 / 1000.0,
                *end as f64 / 1000.0
            );
        }
    }
    if let Some(single) = find(1, "provctl") {
        println!("\nscale (provctl): wall against N × the single-host wall");
        for (n, _, r) in rows.iter().filter(|(_, v, _)| *v == "provctl") {
            println!("{n:>5} hosts: {:.3}×", r.wall / (single.wall * *n as f64));
        }
    }
}
