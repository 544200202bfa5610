//! The scripts this stand-in was built with, and how a file is recognised as one of them:
//! its first line `# provd-script: <name> v<N>` names it, and its SHA-256 must be the one
//! the script had at build time. Anything else is refused: real PowerShell would run any
//! script; this stand-in runs only provd's, exactly as they were when it was built.

use sha2::{Digest, Sha256};

use crate::plan::{BuiltScript, Plan};

/// provd's shipped scripts, as `build.rs` found and planned them.
pub fn shipped() -> Vec<BuiltScript> {
    load(include_str!(concat!(env!("OUT_DIR"), "/scripts.json")))
}

/// The unit tests' fixtures (`tests/fixtures/*.ps1`), planned the same way.
#[cfg(test)]
pub fn fixtures() -> Vec<BuiltScript> {
    load(include_str!(concat!(env!("OUT_DIR"), "/fixtures.json")))
}

fn load(json: &str) -> Vec<BuiltScript> {
    // Written by build.rs from the same types: it cannot fail to read back.
    serde_json::from_str(json).unwrap_or_default()
}

/// Why a file is not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoHeader,
    Unknown { name: String },
    Changed { name: String },
    Rules { name: String, why: String },
}

impl Refusal {
    /// The line printed on stderr (the process then exits 1).
    pub fn message(&self, path: &str, built: &[BuiltScript]) -> String {
        match self {
            Refusal::NoHeader => format!(
                "LAB STAND-IN: '{path}' is not one of provd's scripts (its first line is not \
                 '# provd-script: <name> v<N>'). This powershell.exe is provd's Wine-lab \
                 stand-in: it runs only provd's shipped scripts, where real PowerShell would run \
                 any script."
            ),
            Refusal::Unknown { name } => format!(
                "LAB STAND-IN: '{name}' is not one of the scripts this stand-in was built with \
                 ({}); rebuild (deploy/lab/wine.sh up)",
                built
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::Changed { name } => format!(
                "LAB STAND-IN: {name} changed since this stand-in was built; rebuild \
                 (deploy/lab/wine.sh up)"
            ),
            Refusal::Rules { name, why } => format!(
                "LAB STAND-IN: {name} breaks provd's script rules, so this stand-in cannot run \
                 it: {why}"
            ),
        }
    }
}

/// The built script `bytes` are, with its plan.
pub fn recognise<'a>(
    built: &'a [BuiltScript],
    bytes: &[u8],
) -> Result<(&'a BuiltScript, &'a Plan), Refusal> {
    let name = header(bytes).ok_or(Refusal::NoHeader)?;
    let script = built
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| Refusal::Unknown { name: name.clone() })?;
    if sha256_hex(bytes) != script.sha256 {
        return Err(Refusal::Changed { name });
    }
    match &script.plan {
        Ok(plan) => Ok((script, plan)),
        Err(why) => Err(Refusal::Rules {
            name,
            why: why.clone(),
        }),
    }
}

/// The name in line 1's `# provd-script: <name> v<N>` (name: lower-case letters, digits,
/// `-`; as provd-psscript reads it).
pub fn header(bytes: &[u8]) -> Option<String> {
    let first = bytes.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?.trim_end_matches('\r');
    let (name, version) = first.strip_prefix("# provd-script: ")?.split_once(" v")?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    (name_ok && version_ok).then(|| name.to_owned())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../../src/backends/agent_config/scripts"
    );

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{SHIPPED}/{name}.ps1")).unwrap()
    }

    #[test]
    fn every_shipped_script_is_built_planned_and_bound() {
        let built = shipped();
        let mut names: Vec<&str> = built.iter().map(|b| b.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "add-domain",
                "connect-tenant",
                "list-domains",
                "module-info",
                "set-writeback",
                "use-gmsa",
                "verbose-trace-start",
                "verbose-trace-stop"
            ]
        );
        for script in &built {
            let (found, plan) = recognise(&built, &read(&script.name)).unwrap();
            assert_eq!(found, script);
            for step in &plan.steps {
                if let crate::plan::Step::Call(call) = step {
                    assert!(call.binding.is_ok(), "{}: {call:?}", script.name);
                }
            }
        }
    }

    #[test]
    fn a_changed_script_is_refused_with_the_rebuild_hint() {
        let built = shipped();
        let mut bytes = read("use-gmsa");
        bytes.extend_from_slice(b"\n# one more line\n");
        let refusal = recognise(&built, &bytes).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Changed {
                name: "use-gmsa".into()
            }
        );
        assert_eq!(
            refusal.message("x", &built),
            "LAB STAND-IN: use-gmsa changed since this stand-in was built; rebuild (deploy/lab/wine.sh up)"
        );
        // CRLF line ends are other bytes too (provd writes the scripts byte for byte).
        let crlf: Vec<u8> = String::from_utf8(read("use-gmsa"))
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        assert_eq!(
            recognise(&built, &crlf).unwrap_err(),
            Refusal::Changed {
                name: "use-gmsa".into()
            }
        );
    }

    #[test]
    fn scripts_without_the_header_or_unknown_ones_are_refused() {
        let built = shipped();
        for text in [
            "Get-Date\n",
            "",
            "# provd-script add-domain v1\n",
            "# provd-script: Add v1\n",
            "\n# provd-script: add-domain v1\n",
        ] {
            assert_eq!(
                recognise(&built, text.as_bytes()).unwrap_err(),
                Refusal::NoHeader,
                "{text:?}"
            );
        }
        let refusal = recognise(&built, b"# provd-script: format-disk v1\nexit 0\n").unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Unknown {
                name: "format-disk".into()
            }
        );
        let text = refusal.message("x", &built);
        assert!(
            text.contains("add-domain") && text.contains("rebuild"),
            "{text}"
        );
        assert!(
            Refusal::NoHeader
                .message(r"C:\t\x.ps1", &built)
                .starts_with("LAB STAND-IN: 'C:\\t\\x.ps1' is not one of provd's scripts")
        );
    }

    #[test]
    fn a_script_breaking_the_rules_is_refused_with_the_reason() {
        let fixtures = fixtures();
        let bad = fixtures.iter().find(|b| b.name == "splat-fixture").unwrap();
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/splat-fixture.ps1"
        ))
        .unwrap();
        assert_eq!(bad.sha256, sha256_hex(&bytes));
        let Refusal::Rules { name, why } = recognise(&fixtures, &bytes).unwrap_err() else {
            panic!()
        };
        assert_eq!(name, "splat-fixture");
        assert!(why.contains("script rules"), "{why}");
    }
}
