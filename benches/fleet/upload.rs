//! The package pushed to every host through the API: `provctl fleet apply`
//! of a document whose agent source is `upload:` a local file of
//! `FLEET_UPLOAD_MB` (default 20) fresh random bytes — UploadPackage to every
//! daemon, `--concurrency` at a time — timed to the line provctl prints when
//! the package is staged everywhere. The install that follows cannot run on
//! Linux daemons (it fails on the canary), so provctl's exit status is not
//! the measure: the staged count and bytes are.

use std::path::Path;
use std::process::{Command, Stdio};

use super::procs::{Usage, watch};

pub struct Pushed {
    pub usage: Usage,
    pub hosts: usize,
    pub bytes: u64,
    pub seconds: f64,
}

pub fn run(provctl: &Path, dir: &Path, pki: &Path, ports: &[u16], megabytes: usize) -> Pushed {
    let package = dir.join("agent-upload.exe");
    // Fresh bytes every run: an already staged digest would be answered at once.
    let mut bytes = vec![0u8; megabytes * 1_000_000];
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for chunk in bytes.chunks_mut(8) {
        // xorshift64: fast, and incompressible enough for a transfer.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = chunk.len();
        chunk.copy_from_slice(&state.to_le_bytes()[..n]);
    }
    std::fs::write(&package, &bytes).unwrap();
    drop(bytes);
    let document = dir.join("upload.toml");
    std::fs::write(
        &document,
        format!(
            "[agent]\nsource = \"upload://{}\"\naccept_license = true\nskip_registration = true\n",
            package.display()
        ),
    )
    .unwrap();
    let inventory = super::write_inventory(dir, pki, ports);
    let stderr = dir.join("upload.stderr");
    let child = Command::new(provctl)
        .args(["--output", "json", "fleet", "apply", "--inventory"])
        .arg(&inventory)
        .arg(&document)
        .args(["--concurrency", &ports.len().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("run provctl");
    let usage = watch(child);
    let text = std::fs::read_to_string(&stderr).unwrap_or_default();
    // "package staged on N host(s) (B bytes sent) in S.SSs"
    let line = text
        .lines()
        .find(|l| l.starts_with("package staged on "))
        .unwrap_or_else(|| {
            eprintln!("provctl did not stage the package everywhere:\n{text}");
            ""
        });
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| words.get(i).map(|w| w.trim_matches(['(', 's']));
    Pushed {
        usage,
        hosts: number(3).and_then(|w| w.parse().ok()).unwrap_or(0),
        bytes: number(5).and_then(|w| w.parse().ok()).unwrap_or(0),
        seconds: number(9).and_then(|w| w.parse().ok()).unwrap_or(f64::NAN),
    }
}
