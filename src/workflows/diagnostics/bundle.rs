//! The zip: each collected part redacted (UTF-16 files read as text first),
//! MANIFEST.txt (every file, its size, its redaction count) and MISSING.txt
//! (every part that is not there, and why).

use std::io::Write;

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use super::redact::{redact, utf16le_to_utf8};
use crate::backends::host::DiagnosticPart;
use crate::workflows::Error;

/// DiagnosticsSummary, before the transport converts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: u32,
    pub missing: u32,
    pub redactions: u32,
    pub size_bytes: u64,
    pub sha256: String,
    pub created: std::time::SystemTime,
}

pub(super) fn zip(parts: Vec<DiagnosticPart>) -> Result<(Vec<u8>, Summary), Error> {
    let fail = |e: zip::result::ZipError| Error::internal("writing the support bundle", e);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let (mut manifest, mut missing) = (String::new(), String::new());
    let (mut files, mut missing_count, mut redactions) = (0u32, 0u32, 0u32);
    for part in parts {
        let name = safe_name(&part.path);
        match part.content {
            Err(reason) => {
                missing_count += 1;
                missing.push_str(&format!("{name}\t{}\n", one_line(&reason)));
            }
            Ok(bytes) => {
                let text = utf16le_to_utf8(&bytes).unwrap_or(bytes);
                let (clean, count) = redact(&text);
                out.start_file(name.as_str(), options).map_err(fail)?;
                out.write_all(&clean)
                    .map_err(|e| Error::internal("writing the support bundle", e))?;
                manifest.push_str(&format!(
                    "{name}\t{} bytes\t{count} redacted\n",
                    clean.len()
                ));
                files += 1;
                redactions += count as u32;
            }
        }
    }
    for (name, text) in [("MANIFEST.txt", &manifest), ("MISSING.txt", &missing)] {
        out.start_file(name, options).map_err(fail)?;
        out.write_all(text.as_bytes())
            .map_err(|e| Error::internal("writing the support bundle", e))?;
        files += 1;
    }
    let bytes = out.finish().map_err(fail)?.into_inner();
    let summary = Summary {
        files,
        missing: missing_count,
        redactions,
        size_bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        created: std::time::SystemTime::now(),
    };
    Ok((bytes, summary))
}

/// A path inside the zip: forward slashes, no `..`, no leading slash, no
/// drive (a trace file's name comes from the host's disk).
fn safe_name(path: &str) -> String {
    path.replace('\\', "/")
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != ".." && !s.ends_with(':'))
        .collect::<Vec<_>>()
        .join("/")
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn parts_are_redacted_and_the_missing_listed() {
        let parts = vec![
            DiagnosticPart {
                path: "agent/trace/a.log".into(),
                content: Ok(b"password=hunter2 ok".to_vec()),
            },
            DiagnosticPart {
                path: "eventlog/System.xml".into(),
                content: Err("EvtQuery(System) failed: error 120".into()),
            },
            DiagnosticPart {
                path: "../../etc/C:/x.txt".into(),
                content: Ok(b"plain".to_vec()),
            },
        ];
        let (bytes, summary) = zip(parts).unwrap();
        assert_eq!(
            (summary.files, summary.missing, summary.redactions),
            (4, 1, 1)
        );
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let read = |archive: &mut zip::ZipArchive<_>, name: &str| {
            let mut text = String::new();
            archive
                .by_name(name)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(
            read(&mut archive, "agent/trace/a.log"),
            "password=[REDACTED] ok"
        );
        assert_eq!(read(&mut archive, "etc/x.txt"), "plain");
        assert!(read(&mut archive, "MISSING.txt").contains("eventlog/System.xml\tEvtQuery"));
        assert!(
            read(&mut archive, "MANIFEST.txt").contains("agent/trace/a.log\t22 bytes\t1 redacted")
        );
    }
}
