//! What the codec's test binaries share: the captured corpora
//! (`tests/data/sd/<corpus>/`, see its README), the lab's domain SID, and
//! what an SDDL trip keeps of a descriptor.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use provd_sd::*;

pub const DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

pub fn domain() -> Sid {
    DOMAIN.parse().unwrap()
}

/// A captured corpus: its folder and how its `.sddl` files compare with
/// provd's output.
pub struct Corpus {
    pub dir: &'static str,
    /// Whether Samba wrote the rights letters in provd's (Windows') order;
    /// if not, only the order of the letters may differ.
    pub windows_order: bool,
    /// The fewest samples the folder must hold (0: may be empty or absent).
    pub at_least: usize,
}

pub const CORPORA: &[Corpus] = &[
    Corpus {
        dir: "samba-4.17",
        windows_order: false,
        at_least: 15,
    },
    // Filled when the lab moves to Samba 4.22 (issue 18).
    Corpus {
        dir: "samba-4.22",
        windows_order: true,
        at_least: 0,
    },
];

pub struct Sample {
    /// `<corpus>/<file stem>`, e.g. `samba-4.17/domain_root`.
    pub name: String,
    pub corpus: &'static Corpus,
    pub bytes: Vec<u8>,
    /// Samba's `as_sddl` rendering with the lab's domain SID.
    pub samba_sddl: Option<String>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sd")
}

fn read_corpus(corpus: &'static Corpus) -> Vec<Sample> {
    let dir = data_dir().join(corpus.dir);
    let mut out: Vec<Sample> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .map(|p| read_sample(corpus, &p))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= corpus.at_least,
        "only {} samples in {}",
        out.len(),
        corpus.dir
    );
    out
}

fn read_sample(corpus: &'static Corpus, path: &Path) -> Sample {
    let stem = path.file_stem().unwrap().to_string_lossy();
    Sample {
        name: format!("{}/{stem}", corpus.dir),
        corpus,
        bytes: std::fs::read(path).unwrap(),
        samba_sddl: std::fs::read_to_string(path.with_extension("sddl"))
            .ok()
            .map(|s| s.trim_end().to_string()),
    }
}

/// Every sample of every corpus.
pub fn samples() -> &'static [Sample] {
    static SAMPLES: std::sync::OnceLock<Vec<Sample>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| CORPORA.iter().flat_map(read_corpus).collect())
}

/// A Samba 4.17 sample by file stem (the tests that name objects were
/// written against that lab).
pub fn sample(stem: &str) -> &'static Sample {
    let name = format!("samba-4.17/{stem}");
    samples().iter().find(|s| s.name == name).unwrap()
}

/// The parts `sd` holds, in the order `order` lays them out.
pub fn present_parts(sd: &SecurityDescriptor, order: Vec<Part>) -> Vec<Part> {
    order
        .into_iter()
        .filter(|p| match p {
            Part::Owner => sd.owner.is_some(),
            Part::Group => sd.group.is_some(),
            Part::Sacl => sd.sacl.is_some(),
            Part::Dacl => sd.dacl.is_some(),
        })
        .collect()
}

/// `cases` cases, and no regression files: a failure prints its input.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// What an SDDL round trip keeps of `sd` (see `provd_sd::sddl`):
/// only the SDDL control bits, no ACL (and no ACL flags) whose present flag
/// is clear, no `rm_control`, ACL revision 4, no padding, the default
/// layout.
pub fn canonical_for_sddl(sd: &SecurityDescriptor) -> SecurityDescriptor {
    let mut c = sd.clone();
    c.rm_control = 0;
    c.layout = Layout::default();
    c.control = (sd.control & SDDL_CONTROL_BITS) | SE_SELF_RELATIVE;
    if c.control & SE_DACL_PRESENT == 0 {
        c.dacl = None;
        c.control &= !(SE_DACL_PROTECTED | SE_DACL_AUTO_INHERIT_REQ | SE_DACL_AUTO_INHERITED);
    }
    if c.control & SE_SACL_PRESENT == 0 {
        c.sacl = None;
        c.control &= !(SE_SACL_PROTECTED | SE_SACL_AUTO_INHERIT_REQ | SE_SACL_AUTO_INHERITED);
    }
    for acl in [&mut c.dacl, &mut c.sacl].into_iter().flatten() {
        acl.revision = ACL_REVISION_DS;
        acl.padding.clear();
        for ace in &mut acl.aces {
            match &mut ace.body {
                AceBody::Basic { padding, .. } | AceBody::Object { padding, .. } => padding.clear(),
                AceBody::Opaque(_) => {}
            }
        }
    }
    c
}

/// `text` with the two-letter tokens of each ACE's rights field sorted, so
/// that renderings differing only in the order of those letters are equal.
/// Written without the codec's tables, so it cannot share their mistakes.
pub fn rights_letters_sorted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..=open]);
        let fields: Vec<String> = rest[open + 1..close]
            .split(';')
            .enumerate()
            .map(|(i, field)| {
                let letters = field.len() % 2 == 0 && field.bytes().all(|b| b.is_ascii_uppercase());
                if i != 2 || !letters {
                    return field.to_string();
                }
                let mut tokens: Vec<&str> = (0..field.len())
                    .step_by(2)
                    .map(|i| &field[i..i + 2])
                    .collect();
                tokens.sort_unstable();
                tokens.concat()
            })
            .collect();
        out.push_str(&fields.join(";"));
        out.push(')');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}
