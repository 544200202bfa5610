//! Connection settings (flags over a TOML file) and the mTLS channel; with
//! `--trace`, every call carries one W3C `traceparent` so the daemon's spans
//! join a trace the operator can look up by the printed id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

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
    /// Start a trace (`--trace`).
    pub trace: bool,
}

/// The channel every client is built on: mTLS, plus the trace header.
pub type Channel = InterceptedService<tonic::transport::Channel, TraceHeader>;

/// A new sampled W3C trace context with this process as the caller:
/// (trace id, `traceparent` value). The parent span id is random too: no
/// span is exported for it, so the daemon's RPC spans are the trace's tops.
pub fn new_trace() -> (String, String) {
    let trace_id = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let span_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, traceparent)
}

/// Adds `traceparent` to every call when a trace was started.
#[derive(Clone, Debug, Default)]
pub struct TraceHeader(Option<AsciiMetadataValue>);

impl Interceptor for TraceHeader {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("traceparent", value.clone());
        }
        Ok(request)
    }
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
        trace: args.trace,
    })
}

/// Adds `https://` to a bare `host:port`; refuses plain HTTP (provd serves
/// TLS only).
pub fn normalize_endpoint(endpoint: &str) -> anyhow::Result<String> {
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
    let header = if settings.trace {
        let (trace_id, traceparent) = new_trace();
        eprintln!("trace id: {trace_id}");
        Some(MetadataValue::try_from(traceparent).context("traceparent")?)
    } else {
        None
    };
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", settings.endpoint))?;
    Ok(InterceptedService::new(channel, TraceHeader(header)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_w3c_and_random() {
        let (id, header) = new_trace();
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], id);
        assert_eq!(id.len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01", "sampled");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(new_trace().0, id);

        let mut with = TraceHeader(Some(header.parse().unwrap()));
        let request = with.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request
                .metadata()
                .get("traceparent")
                .unwrap()
                .to_str()
                .unwrap(),
            header
        );
        let request = TraceHeader::default()
            .call(tonic::Request::new(()))
            .unwrap();
        assert!(request.metadata().get("traceparent").is_none());
    }

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
