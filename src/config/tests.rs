//! The tests that came with the single-file config: layering, error
//! messages, the example file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use super::*;

pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// Overrides as `provd serve` builds them from its command line.
pub(super) fn flags(args: &[&str]) -> Overrides {
    let command = Overrides::augment_args(clap::Command::new("provd"));
    let matches = command
        .try_get_matches_from(std::iter::once("provd").chain(args.iter().copied()))
        .unwrap();
    Overrides::from_arg_matches(&matches).unwrap()
}

#[test]
fn layers_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provd.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1000\"\nstate_dir = \"state\"\n[tls]\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"/etc/ca.pem\"\nreload_interval = \"2s\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let overrides = flags(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:3000",
    ]);
    let cfg = Config::load_from(
        &overrides,
        &env(&[
            ("PROVD_LISTEN", "127.0.0.1:2000"),
            ("PROVD_TLS_KEY", "/k.pem"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.listen, "127.0.0.1:3000".parse().unwrap());
    assert_eq!(cfg.state_dir, dir.path().join("state"));
    assert_eq!(cfg.tls.cert, Some(dir.path().join("s.pem")));
    assert_eq!(cfg.tls.key, Some(PathBuf::from("/k.pem")));
    assert_eq!(cfg.tls.client_ca, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(cfg.tls.reload_interval, Duration::from_secs(2));
    assert_eq!(cfg.log.format, LogFormat::Json);
}

#[test]
fn errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provd.toml");
    std::fs::write(&file, "listn = \"x\"\n").unwrap();
    let err = Config::load_from(
        &Overrides {
            config_file: Some(file),
            ..Overrides::default()
        },
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");

    let err =
        Config::load_from(&Overrides::default(), &env(&[("PROVD_LISTEN", "nope")])).unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");

    let err = Config::load_from(&Overrides::default(), &[]).unwrap_err();
    assert!(err.to_string().contains("PROVD_STATE_DIR"), "{err}");

    let base = [
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ];
    let mut plain = base.to_vec();
    plain.push(("PROVD_DIRECTORY_TRANSPORT", "plain"));
    let err = Config::load_from(&Overrides::default(), &env(&plain)).unwrap_err();
    assert!(err.to_string().contains("plaintext"), "{err}");
    let mut dns = base.to_vec();
    dns.push(("PROVD_DIRECTORY_DNS_SERVERS", "127.0.0.2:53,127.0.0.3"));
    let cfg = Config::load_from(&Overrides::default(), &env(&dns)).unwrap();
    assert_eq!(
        cfg.directory.dns_servers,
        [
            "127.0.0.2:53".parse::<SocketAddr>().unwrap(),
            "127.0.0.3:53".parse().unwrap()
        ]
    );
}

#[test]
fn the_example_config_loads_and_tenant_settings_layer() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/config/provd.example.toml"
    );
    let cfg = Config::load_from(
        &Overrides {
            config_file: Some(example.into()),
            ..Overrides::default()
        },
        &env(&[
            ("PROVD_TENANT_CLOUD", "usgov"),
            ("PROVD_TENANT_AUTHORITY", "https://127.0.0.1:9443/"),
            ("PROVD_LOG_FILE", "/var/log/provd.log"),
            ("ProgramData", r"D:\Data"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.tenant.cloud, TenantCloud::UsGovernment);
    assert_eq!(cfg.log.file, Some(PathBuf::from("/var/log/provd.log")));
    assert_eq!(
        cfg.tenant.authority.as_deref(),
        Some("https://127.0.0.1:9443")
    );
    assert_eq!(cfg.tenant.tenant, "organizations");
    assert_eq!(cfg.tenant.client_id, DEFAULT_TENANT_CLIENT_ID);

    let err = Config::load_from(
        &Overrides {
            config_file: Some(example.into()),
            ..Overrides::default()
        },
        &env(&[("PROVD_TENANT_GRAPH", "http://graph.example")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tenant.graph"), "{err}");
    assert!(err.to_string().contains("https://"), "{err}");
}

#[test]
fn sign_in_defaults_are_the_connector_facts_and_a_scope_is_one_scope() {
    let cfg = Config::load_from(
        &flags(&["--state-dir", "/s", "--tls-cert", "c", "--tls-key", "k"]),
        &env(&[("PROVD_TLS_CLIENT_CA", "ca")]),
    )
    .unwrap();
    assert_eq!(
        cfg.tenant.registration_client_id,
        "55747057-9b5d-4bd4-b387-abf52a8bd489"
    );
    assert_eq!(
        cfg.tenant.registration_scope,
        "https://proxy.cloudwebappproxy.net/registerapp/user_impersonation"
    );
    // Unset: the cloud's Graph (resolved where the cloud is known).
    assert_eq!(cfg.tenant.graph_scope, None);
    for bad in [
        "https://graph.microsoft.com/.default offline_access",
        "https://graph.microsoft.com/.default https://example.test/user_impersonation",
        "User.Read",
        "",
    ] {
        let err = Config::load_from(
            &flags(&["--state-dir", "/s", "--tls-cert", "c", "--tls-key", "k"]),
            &env(&[
                ("PROVD_TLS_CLIENT_CA", "ca"),
                ("PROVD_TENANT_GRAPH_SCOPE", bad),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("tenant.graph_scope"),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains("scope"), "{bad}: {err}");
    }
}

#[test]
fn telemetry_layers_file_then_env_then_flag() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/config/provd.example.toml"
    );
    let from_file = |env_pairs: &[(&str, &str)], flag: Option<&str>| {
        let mut args = vec!["--config", example];
        args.extend(flag.map(|f| ["--otlp-endpoint", f]).into_iter().flatten());
        Config::load_from(&flags(&args), &env(env_pairs))
    };
    let cfg = from_file(&[], None).unwrap();
    assert_eq!(
        cfg.telemetry.otlp_endpoint, None,
        "nothing exported by default"
    );
    assert_eq!(cfg.telemetry.service_name, "provd");
    assert_eq!(cfg.telemetry.metrics_interval, Duration::from_secs(10));

    let cfg = from_file(
        &[
            ("PROVD_OTLP_ENDPOINT", "http://127.0.0.1:4317/"),
            ("PROVD_TELEMETRY_SERVICE_NAME", "provd-east"),
            ("PROVD_TELEMETRY_METRICS_INTERVAL", "30s"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        cfg.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4317")
    );
    assert_eq!(cfg.telemetry.service_name, "provd-east");
    assert_eq!(cfg.telemetry.metrics_interval, Duration::from_secs(30));

    let cfg = from_file(
        &[("PROVD_OTLP_ENDPOINT", "http://127.0.0.1:4317")],
        Some("https://otel.example:4317"),
    )
    .unwrap();
    assert_eq!(
        cfg.telemetry.otlp_endpoint.as_deref(),
        Some("https://otel.example:4317")
    );
    // An empty value switches export off again.
    let cfg = from_file(&[("PROVD_OTLP_ENDPOINT", "")], None).unwrap();
    assert_eq!(cfg.telemetry.otlp_endpoint, None);

    for (key, value, named) in [
        (
            "PROVD_OTLP_ENDPOINT",
            "127.0.0.1:4317",
            "telemetry.otlp_endpoint",
        ),
        ("PROVD_OTLP_ENDPOINT", "grpc://x", "telemetry.otlp_endpoint"),
        (
            "PROVD_TELEMETRY_METRICS_INTERVAL",
            "0s",
            "telemetry.metrics_interval",
        ),
        (
            "PROVD_TELEMETRY_METRICS_INTERVAL",
            "soon",
            "telemetry.metrics_interval",
        ),
        (
            "PROVD_TELEMETRY_SERVICE_NAME",
            " ",
            "telemetry.service_name",
        ),
    ] {
        let err = from_file(&[(key, value)], None).unwrap_err();
        assert!(err.to_string().contains(named), "{key}={value}: {err}");
        assert!(err.to_string().contains("environment"), "{err}");
    }
}

#[test]
fn the_store_settings_stand_in_for_the_files_and_never_beside_them() {
    let base = [
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ];
    let without = |gone: &[&str]| -> Vec<(String, String)> {
        env(&base
            .iter()
            .copied()
            .filter(|(k, _)| !gone.contains(k))
            .collect::<Vec<_>>())
    };
    // No certificate at all: the error names the file setting and the
    // store settings that could replace it.
    let err = Config::load_from(&Overrides::default(), &without(&["PROVD_TLS_CERT"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing required setting tls.cert")
            && err.contains("--tls-cert")
            && err.contains("tls.cert_thumbprint"),
        "{err}"
    );
    let err = Config::load_from(&Overrides::default(), &without(&["PROVD_TLS_KEY"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing required setting tls.key"), "{err}");
    let err = Config::load_from(&Overrides::default(), &without(&["PROVD_TLS_CLIENT_CA"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing required setting tls.client_ca")
            && err.contains("tls.client_ca_store"),
        "{err}"
    );
    let cfg = Config::load_from(&Overrides::default(), &without(&[])).unwrap();
    assert_eq!(
        cfg.tls.server_source().unwrap(),
        ServerCertSource::Files {
            cert: "/c".into(),
            key: "/k".into()
        }
    );
    assert_eq!(
        cfg.tls.client_ca_source().unwrap(),
        ClientCaSource::File("/a".into())
    );

    // Sources judged on the typed section (the store settings parse only
    // on Windows).
    use crate::pki::store::{CertQuery, Thumbprint};
    let thumbprint = Thumbprint::parse("3B7E0829A1C4D5E6F708192A3B4C5D6E7F809102").unwrap();
    let mut store = cfg.tls.clone();
    store.cert = None;
    store.key = None;
    store.client_ca = None;
    store.cert_thumbprint = Some(thumbprint);
    store.client_ca_store = Some("provd-clients".into());
    assert_eq!(
        store.server_source().unwrap(),
        ServerCertSource::Store {
            store: "My".into(),
            query: CertQuery::Thumbprint(thumbprint)
        }
    );
    assert_eq!(
        store.client_ca_source().unwrap(),
        ClientCaSource::Store("provd-clients".into())
    );
    let mut both = store.clone();
    both.cert = Some("/c".into());
    let err = both.server_source().unwrap_err().to_string();
    assert!(
        err.contains("tls.cert") && err.contains("not both"),
        "{err}"
    );
    let mut both = store.clone();
    both.cert_subject = Some("provd.contoso.com".into());
    assert!(both.server_source().is_err());
    let mut both = store.clone();
    both.client_ca = Some("/a".into());
    assert!(both.client_ca_source().is_err());
}

#[cfg(not(windows))]
#[test]
fn the_store_settings_are_refused_off_windows_naming_the_flag() {
    let err = Config::load_from(
        &flags(&[
            "--tls-cert-thumbprint",
            "3B7E0829A1C4D5E6F708192A3B4C5D6E7F809102",
        ]),
        &env(&[("PROVD_STATE_DIR", "/s"), ("PROVD_TLS_CLIENT_CA", "/a")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("flag --tls-cert-thumbprint (tls.cert_thumbprint): ")
            && err.contains("only on Windows"),
        "{err}"
    );
}

#[cfg(not(windows))]
#[test]
fn the_host_identity_is_a_principal_and_a_keytab_together() {
    let base = [
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        Config::load_from(&Overrides::default(), &env(&pairs))
    };
    let cfg = with(&[]).unwrap();
    assert_eq!(cfg.directory.host_keytab_identity(), None);
    let cfg = with(&[
        ("PROVD_DIRECTORY_HOST_PRINCIPAL", "VM$@LAB.EXAMPLE.TEST"),
        ("PROVD_DIRECTORY_HOST_KEYTAB", "/etc/krb5.keytab"),
    ])
    .unwrap();
    assert_eq!(
        cfg.directory.host_keytab_identity(),
        Some(("VM$@LAB.EXAMPLE.TEST".into(), "/etc/krb5.keytab".into()))
    );
    for one in [
        ("PROVD_DIRECTORY_HOST_PRINCIPAL", "VM$@LAB.EXAMPLE.TEST"),
        ("PROVD_DIRECTORY_HOST_KEYTAB", "/etc/krb5.keytab"),
    ] {
        let err = with(&[one]).unwrap_err().to_string();
        assert!(
            err.contains("directory.host_principal")
                && err.contains("directory.host_keytab")
                && err.contains("both or neither"),
            "{err}"
        );
    }
    let err = with(&[
        ("PROVD_DIRECTORY_HOST_PRINCIPAL", "VM$"),
        ("PROVD_DIRECTORY_HOST_KEYTAB", "/etc/krb5.keytab"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("environment variable PROVD_DIRECTORY_HOST_PRINCIPAL")
            && err.contains("realm"),
        "{err}"
    );
}
