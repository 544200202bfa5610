//! Tests that the single declaration drives everything: every declared
//! setting is reachable through the file, the environment and a flag, the
//! layers override each other in that order for every one, and the names
//! that existed before the declaration still work.

use std::collections::HashSet;

use clap::Args;

use super::declare::Setting;
use super::layers::Source;
use super::tests::{env, flags};
use super::*;

/// The settings that can't be left out, with values, for loads that test
/// something else: without the files a store setting stands in for.
fn required_except(skip: &Setting) -> Vec<(String, String)> {
    let replaced: &[&str] = match skip.key {
        "tls.cert_thumbprint" | "tls.cert_subject" => &["tls.cert", "tls.key"],
        "tls.client_ca_store" => &["tls.client_ca"],
        _ => &[],
    };
    // Set together or not at all.
    let partner: &[&str] = match skip.key {
        "directory.host_principal" => &["directory.host_keytab"],
        "directory.host_keytab" => &["directory.host_principal"],
        _ => &[],
    };
    Config::settings()
        .iter()
        .filter(|s| s.key != skip.key && !replaced.contains(&s.key))
        .filter(|s| {
            ["state_dir", "tls.cert", "tls.key", "tls.client_ca"].contains(&s.key)
                || partner.contains(&s.key)
        })
        .map(|s| (s.env.to_owned(), s.example.to_owned()))
        .collect()
}

/// The Windows certificate store's settings: refused on other platforms.
const WINDOWS_ONLY: &[&str] = &[
    "tls.cert_thumbprint",
    "tls.cert_subject",
    "tls.cert_store",
    "tls.client_ca_store",
];

/// The host's keytab identity: Windows binds as its service identity.
const UNIX_ONLY: &[&str] = &["directory.host_principal", "directory.host_keytab"];

/// A config file setting only `setting`, to `value`.
fn file_with(dir: &std::path::Path, setting: &Setting, value: &str) -> PathBuf {
    let value = toml::Value::String(value.into());
    let value = if setting.list {
        toml::Value::Array(vec![value])
    } else {
        value
    };
    let text = match setting.key.rsplit_once('.') {
        Some((section, name)) => format!("[{section}]\n{name} = {value}\n"),
        None => format!("{} = {value}\n", setting.key),
    };
    let path = dir.join(format!("{}.toml", setting.key));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_setting_has_its_own_key_variable_and_flag() {
    let settings = Config::settings();
    assert!(settings.len() >= 28, "{}", settings.len());
    let (mut keys, mut envs, mut flags) = (HashSet::new(), HashSet::new(), HashSet::new());
    for s in &settings {
        assert!(!s.key.is_empty() && !s.doc.is_empty(), "{s:?}");
        assert!(
            s.env.starts_with("PROVD_") && s.env != CONFIG_FILE_ENV,
            "{s:?}"
        );
        assert!(s.flag.starts_with("--") && s.flag != "--config", "{s:?}");
        assert!(keys.insert(s.key), "key declared twice: {s:?}");
        assert!(envs.insert(s.env), "variable declared twice: {s:?}");
        assert!(flags.insert(s.flag), "flag declared twice: {s:?}");
    }
    // Every name provd accepted before the settings were declared in one
    // place, so no deployment breaks.
    for env in [
        "PROVD_LISTEN",
        "PROVD_STATE_DIR",
        "PROVD_SHUTDOWN_GRACE",
        "PROVD_TLS_CERT",
        "PROVD_TLS_KEY",
        "PROVD_TLS_CLIENT_CA",
        "PROVD_TLS_RELOAD_INTERVAL",
        "PROVD_LOG_FORMAT",
        "PROVD_LOG_FILTER",
        "PROVD_LOG_FILE",
        "PROVD_DIRECTORY_CA_FILE",
        "PROVD_DIRECTORY_DNS_SERVERS",
        "PROVD_DIRECTORY_TRANSPORT",
        "PROVD_TENANT_CLOUD",
        "PROVD_TENANT_ID",
        "PROVD_TENANT_CLIENT_ID",
        "PROVD_TENANT_AUTHORITY",
        "PROVD_TENANT_GRAPH",
        "PROVD_TENANT_CA_FILE",
        "PROVD_OTLP_ENDPOINT",
        "PROVD_TELEMETRY_SERVICE_NAME",
        "PROVD_TELEMETRY_METRICS_INTERVAL",
    ] {
        assert!(envs.contains(env), "{env}");
    }
    // Removed on purpose with provd's own agent registration (issue 14):
    // the agent's module registers it now.
    for gone in [
        "PROVD_TENANT_AGENT_SERVICE",
        "PROVD_HOST_AGENT_REGISTRATION_FILE",
    ] {
        assert!(!envs.contains(gone), "{gone}");
    }
    for flag in [
        "--listen",
        "--state-dir",
        "--tls-cert",
        "--tls-key",
        "--tls-client-ca",
        "--log-format",
        "--log-filter",
        "--log-file",
        "--directory-ca-file",
        "--directory-dns-server",
        "--otlp-endpoint",
    ] {
        assert!(flags.contains(flag), "{flag}");
    }
    // The example file documents every key (it loads: see the other tests).
    let example = include_str!("../../deploy/config/provd.example.toml");
    for s in &settings {
        let name = s.key.rsplit('.').next().unwrap_or(s.key);
        assert!(
            example.contains(&format!("{name} =")),
            "{} not in the example",
            s.key
        );
    }
}

#[test]
fn every_setting_reaches_the_config_through_each_layer() {
    let dir = tempfile::tempdir().unwrap();
    for s in Config::settings() {
        let base = required_except(&s);
        let through_file = {
            let overrides = Overrides {
                config_file: Some(file_with(dir.path(), &s, s.example)),
                ..Overrides::default()
            };
            Config::load_from(&overrides, &base)
        };
        let through_env = {
            let mut env = base.clone();
            env.push((s.env.to_owned(), s.example.to_owned()));
            Config::load_from(&Overrides::default(), &env)
        };
        let through_flag = Config::load_from(&flags(&[s.flag, s.example]), &base);
        // Refused in every layer off their platform, naming the place, not
        // ignored.
        let refused = if cfg!(windows) {
            UNIX_ONLY.contains(&s.key).then_some("not on Windows")
        } else {
            WINDOWS_ONLY.contains(&s.key).then_some("only on Windows")
        };
        if let Some(said) = refused {
            for result in [through_file, through_env, through_flag] {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains(s.key) && err.contains(said),
                    "{}: {err}",
                    s.key
                );
            }
            continue;
        }
        let [file, env, flag] = [through_file, through_env, through_flag]
            .map(|r| format!("{:?}", r.unwrap_or_else(|e| panic!("{}: {e}", s.key))));
        assert_eq!(file, env, "{}: file and environment differ", s.key);
        assert_eq!(env, flag, "{}: environment and flag differ", s.key);
        // Unless it is required, leaving it out gives something else: the
        // example really changed the field the setting feeds.
        if let Ok(default) = Config::load_from(&Overrides::default(), &base) {
            assert_ne!(
                format!("{default:?}"),
                env,
                "{}: example is the default",
                s.key
            );
        }
    }
}

#[test]
fn later_layers_win_for_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    for s in Config::settings() {
        let file = file_with(dir.path(), &s, s.example);
        let file_only = Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        };
        let file_and_flag = flags(&["--config", file.to_str().unwrap(), s.flag, s.example]);
        let with_env = |name: &str| (name == s.env).then(|| s.example.to_owned());
        let without_env = |_: &str| None;

        let layers = Config::layers(&file_only, &without_env).unwrap();
        assert_eq!(
            layers.source_of(s.key),
            Some(&Source::File(file.clone())),
            "{}",
            s.key
        );
        let layers = Config::layers(&file_only, &with_env).unwrap();
        assert_eq!(layers.source_of(s.key), Some(&Source::Env), "{}", s.key);
        let layers = Config::layers(&file_and_flag, &with_env).unwrap();
        assert_eq!(layers.source_of(s.key), Some(&Source::Flag), "{}", s.key);
    }
}

#[test]
fn unknown_or_mistyped_file_keys_are_rejected_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (text, named) in [
        ("listn = \"x\"\n", "`listn`"),
        ("[tls]\ncert_file = \"x\"\n", "`tls.cert_file`"),
        ("[tsl]\ncert = \"x\"\n", "`tsl`"),
        ("tls = 1\n", "[tls]"),
        (
            "[directory]\ndns_servers = \"127.0.0.2\"\n",
            "directory.dns_servers",
        ),
        ("listen = [\"127.0.0.1:1\"]\n", "key listen"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let overrides = Overrides {
            config_file: Some(path.clone()),
            ..Overrides::default()
        };
        let err = Config::load_from(&overrides, &[]).unwrap_err().to_string();
        assert!(err.contains(named), "{text:?}: {err}");
        assert!(err.contains(&path.display().to_string()), "{text:?}: {err}");
    }
    // The known keys are offered, so the typo is easy to fix.
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[tls]\ncert_file = \"x\"\n").unwrap();
    let overrides = Overrides {
        config_file: Some(path),
        ..Overrides::default()
    };
    let err = Config::load_from(&overrides, &[]).unwrap_err().to_string();
    assert!(
        err.contains(
            "cert, key, client_ca, client_crl, cert_thumbprint, cert_subject, cert_store, \
             client_ca_store, reload_interval"
        ),
        "{err}"
    );
}

#[test]
fn flag_values_are_parsed_like_the_others_and_named_in_errors() {
    let base = env(&[
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ]);
    let err = Config::load_from(&flags(&["--listen", "nope"]), &base).unwrap_err();
    assert!(
        err.to_string().starts_with("flag --listen (listen): "),
        "{err}"
    );
    let err = Config::load_from(&Overrides::default(), &env(&[("PROVD_LISTEN", "nope")]));
    let err = err.unwrap_err().to_string();
    assert!(
        err.starts_with("environment variable PROVD_LISTEN (listen): "),
        "{err}"
    );

    let repeated = flags(&[
        "--directory-dns-server",
        "127.0.0.2:53",
        "--directory-dns-server",
        "127.0.0.3",
    ]);
    let cfg = Config::load_from(&repeated, &base).unwrap();
    assert_eq!(
        cfg.directory.dns_servers,
        [
            "127.0.0.2:53".parse::<SocketAddr>().unwrap(),
            "127.0.0.3:53".parse().unwrap()
        ]
    );
    let cfg = Config::load_from(&flags(&["--directory-page-size", "7"]), &base).unwrap();
    assert_eq!(cfg.directory.page_size, 7);
    let err = Config::load_from(&flags(&["--directory-page-size", "0"]), &base).unwrap_err();
    assert!(err.to_string().contains("--directory-page-size"), "{err}");
}

#[test]
fn a_list_of_names_splits_its_variable_at_commas_only() {
    let base = env(&[
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
        (
            "PROVD_REACHABILITY_EXPECTED_ISSUERS",
            "Contoso Lab Root CA, Fabrikam Issuing CA 01",
        ),
        (
            "PROVD_REACHABILITY_ENDPOINTS",
            "https://127.0.0.1:9443 http://127.0.0.1:9080/crl",
        ),
    ]);
    let cfg = Config::load_from(&Overrides::default(), &base).unwrap();
    assert_eq!(
        cfg.reachability.expected_issuers,
        ["Contoso Lab Root CA", "Fabrikam Issuing CA 01"]
    );
    let endpoints: Vec<String> = cfg
        .reachability
        .endpoints
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        endpoints,
        ["https://127.0.0.1:9443", "http://127.0.0.1:9080/crl"]
    );
}

#[test]
fn help_lists_every_setting_with_its_variable_and_key() {
    let help = Overrides::augment_args(clap::Command::new("provd"))
        .render_long_help()
        .to_string();
    for s in Config::settings() {
        assert!(help.contains(s.flag), "{}", s.flag);
        assert!(help.contains(s.env), "{}", s.env);
        assert!(help.contains(&format!("[file: {}]", s.key)), "{}", s.key);
    }
    assert!(help.contains("--config"));
}

#[test]
fn defaults_are_the_declared_ones() {
    let base = env(&[
        ("PROVD_STATE_DIR", "/s"),
        ("PROVD_TLS_CERT", "/c"),
        ("PROVD_TLS_KEY", "/k"),
        ("PROVD_TLS_CLIENT_CA", "/a"),
    ]);
    let cfg = Config::load_from(&Overrides::default(), &base).unwrap();
    assert_eq!(cfg.listen, DEFAULT_LISTEN.parse::<SocketAddr>().unwrap());
    assert_eq!(cfg.tls.reload_interval, DEFAULT_RELOAD_INTERVAL);
    assert_eq!(cfg.shutdown_grace, Duration::from_secs(10));
    // The sections' `Default` (used by embedders and tests) comes from the
    // same declaration as the loader's defaults.
    assert_eq!(
        format!("{:?}", cfg.directory),
        format!("{:?}", DirectoryConfig::default())
    );
    assert_eq!(
        format!("{:?}", cfg.tenant),
        format!("{:?}", TenantConfig::default())
    );
    assert_eq!(
        format!("{:?}", cfg.host),
        format!("{:?}", HostConfig::default())
    );
    assert_eq!(
        format!("{:?}", cfg.telemetry),
        format!("{:?}", TelemetryConfig::default())
    );
    assert_eq!(
        format!("{:?}", cfg.agent_module),
        format!("{:?}", AgentModuleConfig::default())
    );
    assert_eq!(
        format!("{:?}", cfg.drift),
        format!("{:?}", DriftConfig::default())
    );
    assert_eq!(cfg.drift.verify_interval, None);
    assert_eq!(
        format!("{:?}", cfg.reachability),
        format!("{:?}", ReachabilityConfig::default())
    );
    assert!(cfg.reachability.endpoints.is_empty());
    assert_eq!(cfg.reachability.expected_issuers, AZURE_CA_NAMES);
    assert_eq!(
        format!("{:?}", cfg.audit),
        format!("{:?}", AuditConfig::default())
    );
    assert_eq!(cfg.audit.max_records, Some(500_000));
    assert_eq!(cfg.agent_module.script_timeout, Duration::from_secs(600));
    assert_eq!(cfg.log.format, LogFormat::Text);
    assert_eq!(cfg.log.filter, "info");
}
