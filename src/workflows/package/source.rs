//! Install's `source` as the contract spells it: `file:///path`,
//! `file://server/share/path` (UNC, Windows hosts only), `https://…` and
//! `staged:sha256:<hex>`. Pure: no I/O.

use std::path::{Path, PathBuf};

use super::super::{FieldViolation, validate};

/// Where Install reads a package from.
#[derive(Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A path on this host (or a UNC path on Windows).
    File(PathBuf),
    Https(HttpsSource),
    /// An upload, by its SHA-256.
    Staged([u8; 32]),
}

/// An https:// URL and the same without its query (what messages show).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpsSource {
    pub url: String,
    pub shown: String,
    /// The URL path's last segment, percent-decoded.
    pub file_name: String,
}

// The query may carry a token: Debug shows only what messages show.
impl std::fmt::Debug for PackageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl PackageSource {
    /// The source as messages, events and fingerprints name it: an https
    /// URL without its query.
    pub fn shown(&self) -> String {
        match self {
            Self::File(path) => format!("file://{}", path.display()),
            Self::Https(https) => https.shown.clone(),
            Self::Staged(digest) => staged_name(digest),
        }
    }

    /// The file name the installer kind is judged by; `None` for an
    /// upload (its staged file says).
    pub fn file_name(&self) -> Option<String> {
        match self {
            Self::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            Self::Https(https) => Some(https.file_name.clone()),
            Self::Staged(_) => None,
        }
    }
}

/// `staged:sha256:<hex>`.
pub fn staged_name(digest: &[u8; 32]) -> String {
    format!("staged:sha256:{}", hex::encode(digest))
}

/// `value` with any https URL's query and fragment cut off, for a message
/// about a source that may not have parsed.
pub fn shown_source(value: &str) -> String {
    if value
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        let end = value.find(['?', '#']).unwrap_or(value.len());
        return value[..end].to_owned();
    }
    value.to_owned()
}

/// Parses Install's `source`.
pub fn parse_source(value: &str) -> Result<PackageSource, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new("source", "is required"));
    }
    validate::max_len("source", value, validate::MAX_SOURCE_LEN)?;
    if let Some(hex) = value.strip_prefix("staged:sha256:") {
        return validate::sha256_hex("source", hex)
            .map(PackageSource::Staged)
            .map_err(|_| {
                FieldViolation::new(
                    "source",
                    "staged:sha256: must be followed by 64 hexadecimal digits (an uploaded \
                     package's SHA-256)",
                )
            });
    }
    if value
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return parse_https(value).map(PackageSource::Https);
    }
    parse_file_uri(value).map(PackageSource::File)
}

fn parse_https(value: &str) -> Result<HttpsSource, FieldViolation> {
    let shown = shown_source(value);
    let bad = |what: &str| FieldViolation::new("source", format!("{shown}: {what}"));
    let url = url::Url::parse(value).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Shown in messages and fingerprints: a credential has no place
        // there (a token belongs in the query, which never is).
        return Err(FieldViolation::new(
            "source",
            "an https:// source must not carry a user or password before the host",
        ));
    }
    let file_name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    if file_name.is_empty() {
        return Err(bad(
            "names no file (the path must end in the package's name)",
        ));
    }
    let mut without_query = url.clone();
    without_query.set_query(None);
    without_query.set_fragment(None);
    let mut full = url;
    full.set_fragment(None);
    Ok(HttpsSource {
        url: full.into(),
        shown: without_query.into(),
        file_name,
    })
}

/// `file:///abs/path` (or `file:///C:/path` on Windows) to a path, with
/// the URI's percent-escapes decoded (`My%20Agent.msi` is `My Agent.msi`);
/// `file://server/share/path` to a UNC path on Windows.
pub fn parse_file_uri(value: &str) -> Result<PathBuf, FieldViolation> {
    let Some(rest) = value.strip_prefix("file://") else {
        return Err(FieldViolation::new(
            "source",
            "must be a file://, https:// or staged:sha256: source \
             (e.g. file:///srv/AADConnectProvisioningAgentSetup.msi)",
        ));
    };
    let rest = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| FieldViolation::new("source", "decodes to a path that is not UTF-8"))?;
    if rest.contains('\0') {
        return Err(FieldViolation::new(
            "source",
            "must not contain NUL (nor %00)",
        ));
    }
    if !rest.starts_with('/') {
        let unc = unc_path(&rest)?;
        if cfg!(windows) {
            return Ok(PathBuf::from(unc));
        }
        return Err(FieldViolation::new(
            "source",
            format!(
                "names the UNC path {unc}: UNC paths need a Windows host (this provd runs on \
                 {}); use a file:/// path on this host, an https:// source or an upload",
                std::env::consts::OS
            ),
        ));
    }
    let path = if cfg!(windows) {
        rest.trim_start_matches('/').to_owned()
    } else {
        rest.into_owned()
    };
    let path = PathBuf::from(path);
    if !Path::new(&path).is_absolute() {
        return Err(FieldViolation::new(
            "source",
            "must be an absolute file:// URI (file:///...) or name a UNC share \
             (file://server/share/...)",
        ));
    }
    Ok(path)
}

/// `server/share/dir/agent.msi` (a file URI's host and path, decoded) as
/// the UNC path `\\server\share\dir\agent.msi`. Pure, so Linux tests it.
pub fn unc_path(rest: &str) -> Result<String, FieldViolation> {
    let bad = |what: &str| {
        FieldViolation::new(
            "source",
            format!("file://{rest}: {what} (a UNC source is file://server/share/path)"),
        )
    };
    if rest.contains('\\') {
        return Err(bad("must use / between its parts, not \\"));
    }
    let mut parts = rest.split('/');
    let server = parts.next().unwrap_or_default();
    let valid_host = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    if !valid_host(server) {
        return Err(bad("names no valid server"));
    }
    let rest: Vec<&str> = parts.collect();
    if rest.len() < 2 {
        return Err(bad("names no share and file"));
    }
    if rest.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(bad("has an empty, . or .. part"));
    }
    Ok(format!("\\\\{server}\\{}", rest.join("\\")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_are_percent_decoded_and_bounded() {
        let path = parse_file_uri("file:///srv/My%20Agent%2Bx.msi").unwrap();
        assert_eq!(path, PathBuf::from("/srv/My Agent+x.msi"));
        for bad in [
            "file:///srv/a%00.msi",
            "file:///srv/a\0.msi",
            "file:///srv/%FF.msi",
            "file://srv/a.msi",
        ] {
            let v = parse_source(bad).unwrap_err();
            assert_eq!(v.field, "source", "{bad}");
        }
        assert!(
            parse_file_uri("file:///srv/a%FF.msi")
                .unwrap_err()
                .description
                .contains("UTF-8")
        );
        let longest = format!("file:///{}.msi", "a".repeat(4096 - 12));
        assert_eq!(longest.len(), 4096);
        assert!(parse_source(&longest).is_ok());
        let v = parse_source(&format!("file:///{}.msi", "a".repeat(4096 - 11))).unwrap_err();
        assert!(v.description.contains("4096"), "{}", v.description);
    }

    #[test]
    fn unc_uris_map_to_unc_paths() {
        assert_eq!(
            unc_path("fs01.corp.example/pkgs/agent/Agent Setup.exe").unwrap(),
            r"\\fs01.corp.example\pkgs\agent\Agent Setup.exe"
        );
        assert_eq!(unc_path("fs01/share/a.msi").unwrap(), r"\\fs01\share\a.msi");
        for bad in [
            "fs01/share",
            "fs01/a.msi",
            "/share/a.msi",
            "fs01//a.msi",
            "fs01/share/../a.msi",
            r"fs01\share\a.msi",
            "fs 01/share/a.msi",
            "user@fs01/share/a.msi",
        ] {
            assert_eq!(unc_path(bad).unwrap_err().field, "source", "{bad}");
        }
    }

    #[cfg(not(windows))]
    #[test]
    fn unc_sources_need_a_windows_host() {
        let v = parse_source("file://fs01/share/a%20b.msi").unwrap_err();
        assert_eq!(v.field, "source");
        for part in [r"\\fs01\share\a b.msi", "UNC paths need a Windows host"] {
            assert!(v.description.contains(part), "{}", v.description);
        }
    }

    #[cfg(windows)]
    #[test]
    fn unc_sources_open_as_unc_paths_on_windows() {
        assert_eq!(
            parse_source("file://fs01/share/a%20b.msi").unwrap(),
            PackageSource::File(PathBuf::from(r"\\fs01\share\a b.msi"))
        );
    }

    #[test]
    fn https_sources_hide_their_query() {
        let PackageSource::Https(s) =
            parse_source("https://files.example:8443/agent/My%20Agent.MSI?sig=SECRET&se=1#x")
                .unwrap()
        else {
            panic!("not https");
        };
        assert_eq!(s.shown, "https://files.example:8443/agent/My%20Agent.MSI");
        assert_eq!(s.file_name, "My Agent.MSI");
        assert!(s.url.contains("sig=SECRET"));
        let source = PackageSource::Https(s);
        assert!(!format!("{source:?}").contains("SECRET"));
        assert!(!source.shown().contains("SECRET"));
        for bad in [
            "https://",
            "https://files.example/",
            "https://user:pw@files.example/a.msi",
        ] {
            let v = parse_source(bad).unwrap_err();
            assert_eq!(v.field, "source", "{bad}");
            assert!(!v.description.contains("pw"), "{}", v.description);
        }
        let v = parse_source("https://files.example/?sig=SECRET").unwrap_err();
        assert!(!v.description.contains("SECRET"), "{}", v.description);
        assert_eq!(
            shown_source("HTTPS://h/a.msi?token=x"),
            "HTTPS://h/a.msi".to_owned()
        );
    }

    #[test]
    fn staged_sources_name_a_digest() {
        let hex = "Ab".repeat(32);
        assert_eq!(
            parse_source(&format!("staged:sha256:{hex}")).unwrap(),
            PackageSource::Staged([0xab; 32])
        );
        assert_eq!(
            PackageSource::Staged([0xab; 32]).shown(),
            format!("staged:sha256:{}", "ab".repeat(32))
        );
        for bad in ["staged:sha256:", "staged:sha256:abc", "staged:md5:00"] {
            assert_eq!(parse_source(bad).unwrap_err().field, "source", "{bad}");
        }
        assert!(parse_source("http://x/a.msi").is_err());
    }
}
