//! Connection settings (flags over a TOML file) and the mTLS channel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{ConnArgs, Role, usage};

const DEFAULT_ENDPOINT: &str = "https://127.0.0.1:8443";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `--config` file. Relative paths are relative to the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    endpoint: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

/// Everything needed to open the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub endpoint: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server_name: Option<String>,
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut config: FileConfig =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    for file in [&mut config.ca, &mut config.cert, &mut config.key]
        .into_iter()
        .flatten()
    {
        if file.is_relative() {
            *file = base.join(&*file);
        }
    }
    Ok(config)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Viewer => "viewer",
    }
}

/// Merges the flags and the config file: explicit --ca/--cert/--key first,
/// then what --pki-dir/--role imply, then the file.
pub fn resolve(args: &ConnArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let pki = match (&args.pki_dir, args.role) {
        (Some(dir), Some(role)) => {
            let name = role_name(role);
            Some((
                dir.join("ca.pem"),
                dir.join(format!("client-{name}.pem")),
                dir.join(format!("client-{name}.key")),
            ))
        }
        _ => None,
    };
    let pick = |flag: &Option<PathBuf>,
                from_pki: Option<&PathBuf>,
                from_file: &Option<PathBuf>,
                what: &str|
     -> anyhow::Result<PathBuf> {
        flag.clone()
            .or_else(|| from_pki.cloned())
            .or_else(|| from_file.clone())
            .ok_or_else(|| {
                usage(format!(
                    "no {what} given: pass --{what} FILE, --pki-dir DIR --role ROLE, or --config FILE"
                ))
            })
    };
    let ca = pick(&args.ca, pki.as_ref().map(|p| &p.0), &file.ca, "ca")?;
    let cert = pick(&args.cert, pki.as_ref().map(|p| &p.1), &file.cert, "cert")?;
    let key = pick(&args.key, pki.as_ref().map(|p| &p.2), &file.key, "key")?;
    let endpoint = args
        .endpoint
        .clone()
        .or(file.endpoint)
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    Ok(Settings {
        endpoint: normalize_endpoint(&endpoint)?,
        ca,
        cert,
        key,
        server_name: args.server_name.clone().or(file.server_name),
    })
}

/// Adds `https://` to a bare `host:port`; refuses plain HTTP (provd serves
/// TLS only).
fn normalize_endpoint(endpoint: &str) -> anyhow::Result<String> {
    match endpoint.split_once("://") {
        None => Ok(format!("https://{endpoint}")),
        Some(("https", _)) => Ok(endpoint.to_string()),
        Some((scheme, _)) => Err(usage(format!(
            "endpoint {endpoint}: scheme {scheme} is not supported; provd serves https only"
        ))),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Opens the mutual-TLS channel, failing within the connect timeout if the
/// daemon cannot be reached or the handshake fails.
pub async fn connect(settings: &Settings) -> anyhow::Result<Channel> {
    let ca = read(&settings.ca, "CA certificate")?;
    let cert = read(&settings.cert, "client certificate")?;
    let key = read(&settings.key, "client key")?;
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key));
    if let Some(name) = &settings.server_name {
        tls = tls.domain_name(name.clone());
    }
    let endpoint = Endpoint::from_shared(settings.endpoint.clone())
        .map_err(|e| usage(format!("endpoint {}: {e}", settings.endpoint)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_config(tls)
        .with_context(|| format!("TLS settings for {}", settings.endpoint))?;
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", settings.endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_normalization() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:1").unwrap(),
            "https://127.0.0.1:1"
        );
        assert_eq!(normalize_endpoint("https://h:1").unwrap(), "https://h:1");
        assert!(normalize_endpoint("http://h:1").is_err());
    }

    #[test]
    fn flags_beat_pki_dir_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("provctl.toml");
        std::fs::write(
            &config,
            "endpoint = \"https://file:1\"\nca = \"f/ca.pem\"\ncert = \"f/c.pem\"\nkey = \"/abs/k.key\"\nserver_name = \"fromfile\"\n",
        )
        .unwrap();
        let args = ConnArgs {
            config: Some(config.clone()),
            ..ConnArgs::default()
        };
        let s = resolve(&args).unwrap();
        assert_eq!(s.endpoint, "https://file:1");
        assert_eq!(s.ca, dir.path().join("f/ca.pem"));
        assert_eq!(s.key, PathBuf::from("/abs/k.key"));
        assert_eq!(s.server_name.as_deref(), Some("fromfile"));

        let args = ConnArgs {
            config: Some(config),
            endpoint: Some("flag:2".into()),
            ca: Some("flag-ca.pem".into()),
            pki_dir: Some("/pki".into()),
            role: Some(Role::Viewer),
            ..ConnArgs::default()
        };
        let s = resolve(&args).unwrap();
        assert_eq!(s.endpoint, "https://flag:2");
        assert_eq!(s.ca, PathBuf::from("flag-ca.pem"));
        assert_eq!(s.cert, PathBuf::from("/pki/client-viewer.pem"));
        assert_eq!(s.key, PathBuf::from("/pki/client-viewer.key"));
    }

    #[test]
    fn missing_files_and_unknown_keys_are_usage_errors() {
        let err = resolve(&ConnArgs::default()).unwrap_err();
        assert!(err.downcast_ref::<crate::UsageError>().is_some());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "endpoit = \"x\"\n").unwrap();
        let args = ConnArgs {
            config: Some(config),
            ..ConnArgs::default()
        };
        assert!(
            resolve(&args)
                .unwrap_err()
                .downcast_ref::<crate::UsageError>()
                .is_some()
        );
    }
}
