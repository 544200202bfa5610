//! The desired-state document `provctl apply` / `plan` read: TOML, YAML or
//! JSON by file extension, in the operator's words (short enum names), turned
//! into the `provd.v1.DesiredState` the daemon takes. Example:
//! `deploy/examples/agent-host.toml`.

use std::path::Path;

use anyhow::{Context, bail};
use provd_proto::v1;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    host: Option<Host>,
    agent: Option<Agent>,
    #[serde(default)]
    domains: Vec<Domain>,
    service_account: Option<ServiceAccount>,
    writeback: Option<Writeback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Agent {
    /// "present" (the default) or "absent" (decommission the agent).
    state: Option<String>,
    /// With `state = "absent"`: leave the gMSA's principals and
    /// permissions alone.
    #[serde(default)]
    keep_gmsa: bool,
    /// Install's `source`, or `upload:PATH` (a file on this machine,
    /// relative to the document): `apply` and `fleet apply` upload it to
    /// each host first and send `staged:sha256:<hex>` (`upload.rs`).
    #[serde(default)]
    source: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    accept_license: bool,
    cloud: Option<String>,
    #[serde(default)]
    skip_registration: bool,
    settings: Option<AgentSettings>,
}

/// `[agent.settings]`: provd.v1.AgentSettingsSpec. Each key left out leaves
/// that setting as it is on the host; the ranges are the daemon's to check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentSettings {
    proxy: Option<Proxy>,
    enforce_fips_policy: Option<bool>,
    ldap_connection_timeout_ms: Option<u32>,
    referral_chasing_options: Option<u32>,
    user_password_length: Option<u32>,
}

/// `[agent.settings.proxy]`: `address` (and bypasses), or `none = true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Proxy {
    #[serde(default)]
    address: String,
    #[serde(default)]
    bypass_on_local: bool,
    #[serde(default)]
    bypass_list: Vec<String>,
    #[serde(default)]
    none: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Domain {
    domain: String,
    #[serde(default)]
    preferred_domain_controllers: Vec<String>,
    cloud_sync: Option<CloudSync>,
}

/// `[domains.cloud_sync]`: provd.v1.CloudSyncSpec. Whether the values make
/// sense (one scope list at most, DNs inside the domain, the email) is the
/// daemon's to say: it names the field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudSync {
    enabled: bool,
    #[serde(default)]
    password_hash_sync: bool,
    #[serde(default)]
    organizational_units: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    accidental_deletes: Option<AccidentalDeletes>,
    #[serde(default)]
    notification_email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccidentalDeletes {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    threshold: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceAccount {
    domain: String,
    create: Option<Create>,
    custom: Option<Custom>,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    name: String,
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default)]
    container_dn: String,
    #[serde(default)]
    encryption_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Custom {
    name: String,
    host_account: String,
}

/// `[host]`: provd.v1.HostSpec; `remediate` lists fixes by their short
/// names (`tls12`, `vault-service-manual`, `service-account-managed`,
/// `execution-policy-remote-signed`) or the proto's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    #[serde(default)]
    remediate: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Writeback {
    enabled: bool,
}

/// `basic_read`, `BASIC_READ` or `PERMISSION_PROFILE_BASIC_READ`.
fn enum_value<E>(
    text: &str,
    prefix: &str,
    from_name: impl Fn(&str) -> Option<E>,
    what: &str,
) -> anyhow::Result<E> {
    let upper = text.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    from_name(&full).with_context(|| format!("{text:?} is not a {what}"))
}

fn cloud(text: &str) -> anyhow::Result<v1::CloudEnvironment> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "public" | "azurepublic" | "azure_public" => v1::CloudEnvironment::AzurePublic,
        "usgov" | "azureusgovernment" | "azure_us_government" => {
            v1::CloudEnvironment::AzureUsGovernment
        }
        _ => bail!("cloud {text:?} is not \"public\" or \"usgov\""),
    })
}

/// Reads and converts the document at `path`.
pub fn load(path: &Path) -> anyhow::Result<v1::DesiredState> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let document: Document = match extension.as_str() {
        "toml" => toml::from_str(&text).with_context(|| format!("{}", path.display()))?,
        "yaml" | "yml" => {
            serde_norway::from_str(&text).with_context(|| format!("{}", path.display()))?
        }
        "json" => serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?,
        _ => bail!(
            "{}: name the document .toml, .yaml or .json so its format is known",
            path.display()
        ),
    };
    convert(document).with_context(|| format!("{}", path.display()))
}

fn convert(document: Document) -> anyhow::Result<v1::DesiredState> {
    let agent = match document.agent {
        None => None,
        Some(a) => Some(v1::AgentSpec {
            absent: match a.state.as_deref() {
                None | Some("present") => false,
                Some("absent") => true,
                Some(other) => {
                    anyhow::bail!("agent.state: {other:?} is neither \"present\" nor \"absent\"")
                }
            },
            keep_gmsa: a.keep_gmsa,
            source: a.source,
            sha256: a.sha256,
            accept_license: a.accept_license,
            cloud: a
                .cloud
                .as_deref()
                .map(cloud)
                .transpose()?
                .map_or(0, |c| c as i32),
            skip_registration: a.skip_registration,
            settings: a.settings.map(|s| v1::AgentSettingsSpec {
                proxy: s.proxy.map(|p| v1::ProxySpec {
                    address: p.address,
                    bypass_on_local: p.bypass_on_local,
                    bypass_list: p.bypass_list,
                    none: p.none,
                }),
                enforce_fips_policy: s.enforce_fips_policy,
                ldap_connection_timeout_ms: s.ldap_connection_timeout_ms,
                referral_chasing_options: s.referral_chasing_options,
                user_password_length: s.user_password_length,
            }),
        }),
    };
    let service_account = match document.service_account {
        None => None,
        Some(s) => {
            let account = match (s.create, s.custom) {
                (Some(_), Some(_)) => {
                    bail!("service_account: name either `create` or `custom`, not both")
                }
                (None, None) => bail!("service_account: name `create` or `custom`"),
                (Some(c), None) => {
                    let encryption_types = c
                        .encryption_types
                        .iter()
                        .map(|e| {
                            enum_value(
                                e,
                                "ENCRYPTION_TYPE_",
                                v1::EncryptionType::from_str_name,
                                "encryption type (rc4, aes128, aes256)",
                            )
                            .map(|e| e as i32)
                        })
                        .collect::<anyhow::Result<_>>()?;
                    v1::service_account_spec::Account::Create(v1::CreateGmsaSpec {
                        name: c.name,
                        principals_allowed_to_retrieve_password: c.principals,
                        container_dn: c.container_dn,
                        encryption_types,
                    })
                }
                (None, Some(c)) => v1::service_account_spec::Account::Custom(v1::CustomGmsaSpec {
                    name: c.name,
                    host_account: c.host_account,
                }),
            };
            let permissions = s
                .permissions
                .iter()
                .map(|p| {
                    enum_value(
                        p,
                        "PERMISSION_PROFILE_",
                        v1::PermissionProfile::from_str_name,
                        "permission profile (e.g. basic_read, password_write_back, all)",
                    )
                    .map(|p| p as i32)
                })
                .collect::<anyhow::Result<_>>()?;
            Some(v1::ServiceAccountSpec {
                domain: s.domain,
                account: Some(account),
                permissions,
            })
        }
    };
    let host = match document.host {
        None => None,
        Some(h) => Some(v1::HostSpec {
            remediate: h
                .remediate
                .iter()
                .map(|f| {
                    enum_value(
                        f,
                        "HOST_FIX_",
                        v1::HostFix::from_str_name,
                        "host fix (tls12, vault-service-manual, service-account-managed, \
                         execution-policy-remote-signed)",
                    )
                    .map(|f| f as i32)
                })
                .collect::<anyhow::Result<_>>()?,
        }),
    };
    Ok(v1::DesiredState {
        host,
        agent,
        domains: document
            .domains
            .into_iter()
            .map(|d| v1::DomainSpec {
                domain: d.domain,
                preferred_domain_controllers: d.preferred_domain_controllers,
                cloud_sync: d.cloud_sync.map(|c| v1::CloudSyncSpec {
                    enabled: c.enabled,
                    password_hash_sync: c.password_hash_sync,
                    organizational_units: c.organizational_units,
                    security_groups: c.security_groups,
                    accidental_deletes: c.accidental_deletes.map(|a| {
                        v1::AccidentalDeletePrevention {
                            disabled: a.disabled,
                            threshold: a.threshold,
                        }
                    }),
                    notification_email: c.notification_email,
                }),
            })
            .collect(),
        service_account,
        writeback: document
            .writeback
            .map(|w| v1::WritebackSpec { enabled: w.enabled }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn toml_and_yaml_say_the_same() {
        let (_d1, toml_path) = write(
            "a.toml",
            r#"
[agent]
source = "file:///srv/agent.msi"
sha256 = "00"
accept_license = true
cloud = "usgov"

[[domains]]
domain = "lab.example.test"
preferred_domain_controllers = ["dc1.lab.example.test"]

[service_account]
domain = "lab.example.test"
permissions = ["basic_read", "PASSWORD_WRITE_BACK"]
[service_account.create]
name = "provAgentgMSA"
principals = ["AGENT1$"]
encryption_types = ["aes256"]

[writeback]
enabled = true
"#,
        );
        let (_d2, yaml_path) = write(
            "a.yaml",
            r#"
agent:
  source: file:///srv/agent.msi
  sha256: "00"
  accept_license: true
  cloud: usgov
domains:
  - domain: lab.example.test
    preferred_domain_controllers: [dc1.lab.example.test]
service_account:
  domain: lab.example.test
  permissions: [basic_read, PASSWORD_WRITE_BACK]
  create:
    name: provAgentgMSA
    principals: [AGENT1$]
    encryption_types: [aes256]
writeback:
  enabled: true
"#,
        );
        let a = load(&toml_path).unwrap();
        let b = load(&yaml_path).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.agent.unwrap().cloud,
            v1::CloudEnvironment::AzureUsGovernment as i32
        );
        let account = a.service_account.unwrap();
        assert_eq!(
            account.permissions,
            [
                v1::PermissionProfile::BasicRead as i32,
                v1::PermissionProfile::PasswordWriteBack as i32
            ]
        );
    }

    #[test]
    fn a_cloud_sync_table_reads_the_same_in_toml_and_yaml() {
        let (_d1, toml_path) = write(
            "s.toml",
            r#"
[[domains]]
domain = "lab.example.test"
[domains.cloud_sync]
enabled = true
password_hash_sync = true
organizational_units = ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
notification_email = "ops@example.test"
[domains.cloud_sync.accidental_deletes]
threshold = 250

[[domains]]
domain = "other.example.test"
"#,
        );
        let (_d2, yaml_path) = write(
            "s.yaml",
            r#"
domains:
  - domain: lab.example.test
    cloud_sync:
      enabled: true
      password_hash_sync: true
      organizational_units: ["OU=SyncPilot,DC=lab,DC=example,DC=test"]
      notification_email: ops@example.test
      accidental_deletes:
        threshold: 250
  - domain: other.example.test
"#,
        );
        let a = load(&toml_path).unwrap();
        assert_eq!(a, load(&yaml_path).unwrap());
        assert_eq!(
            a.domains[0].cloud_sync,
            Some(v1::CloudSyncSpec {
                enabled: true,
                password_hash_sync: true,
                organizational_units: vec!["OU=SyncPilot,DC=lab,DC=example,DC=test".into()],
                security_groups: vec![],
                accidental_deletes: Some(v1::AccidentalDeletePrevention {
                    disabled: false,
                    threshold: 250,
                }),
                notification_email: "ops@example.test".into(),
            })
        );
        // A domain without the table leaves cloud sync out of the request.
        assert_eq!(a.domains[1].cloud_sync, None);
        // Only `enabled` is required; the rest take the proto's defaults.
        let (_d, path) = write(
            "min.toml",
            "[[domains]]\ndomain = \"d.test\"\n[domains.cloud_sync]\nenabled = false\n",
        );
        let spec = load(&path).unwrap().domains[0].cloud_sync.clone().unwrap();
        assert_eq!(spec, v1::CloudSyncSpec::default());
        // Both scope lists pass here: the daemon refuses them, naming the field.
        let (_d, path) = write(
            "both.toml",
            "[[domains]]\ndomain = \"d.test\"\n[domains.cloud_sync]\nenabled = true\n\
             organizational_units = [\"OU=A,DC=d,DC=test\"]\nsecurity_groups = [\"CN=G,DC=d,DC=test\"]\n",
        );
        let spec = load(&path).unwrap().domains[0].cloud_sync.clone().unwrap();
        assert_eq!(spec.security_groups, ["CN=G,DC=d,DC=test"]);
    }

    #[test]
    fn cloud_sync_mistakes_are_named() {
        for (name, text, needle) in [
            (
                "k.toml",
                "[[domains]]\ndomain = \"d.test\"\n[domains.cloud_sync]\nenabled = true\nou = [\"OU=A\"]\n",
                "unknown field `ou`",
            ),
            (
                "k.yaml",
                "domains:\n  - domain: d.test\n    cloud_sync:\n      enabled: true\n      accidental_deletes:\n        threshhold: 5\n",
                "unknown field `threshhold`",
            ),
            (
                "m.toml",
                "[[domains]]\ndomain = \"d.test\"\n[domains.cloud_sync]\npassword_hash_sync = true\n",
                "missing field `enabled`",
            ),
            (
                "n.toml",
                "[[domains]]\ndomain = \"d.test\"\n[domains.cloud_sync]\nenabled = true\n\
                 [domains.cloud_sync.accidental_deletes]\nthreshold = -1\n",
                "threshold",
            ),
        ] {
            let (_d, path) = write(name, text);
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains(needle), "{name}: {err}");
        }
    }

    /// deploy/examples: the TOML and the YAML say the same, cloud sync included.
    #[test]
    fn the_examples_say_the_same() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
        let a = load(&examples.join("agent-host.toml")).unwrap();
        let b = load(&examples.join("agent-host.yaml")).unwrap();
        assert_eq!(a, b);
        let sync = a.domains[0].cloud_sync.as_ref().unwrap();
        assert!(sync.enabled && sync.password_hash_sync);
        assert_eq!(sync.organizational_units.len(), 1);
        assert_eq!(sync.accidental_deletes.as_ref().unwrap().threshold, 500);
        assert_eq!(a.host.unwrap().remediate.len(), 4);
    }

    #[test]
    fn host_fixes_take_short_or_proto_names_and_bad_ones_are_named() {
        let (_d, path) = write(
            "h.toml",
            "[host]\nremediate = [\"tls12\", \"HOST_FIX_VAULT_SERVICE_MANUAL\", \"Execution-Policy-Remote-Signed\"]\n",
        );
        assert_eq!(
            load(&path).unwrap().host.unwrap().remediate,
            [
                v1::HostFix::Tls12 as i32,
                v1::HostFix::VaultServiceManual as i32,
                v1::HostFix::ExecutionPolicyRemoteSigned as i32
            ]
        );
        let (_d, path) = write("b.yaml", "host:\n  remediate: [tls13]\n");
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("\"tls13\" is not a host fix"), "{err}");
        let (_d, path) = write("c.toml", "[host]\nfix = [\"tls12\"]\n");
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("unknown field `fix`"), "{err}");
    }

    #[test]
    fn an_absent_agent_needs_no_package() {
        let (_d, path) = write("a.toml", "[agent]\nstate = \"absent\"\nkeep_gmsa = true\n");
        let a = load(&path).unwrap().agent.unwrap();
        assert!(a.absent && a.keep_gmsa);
        assert!(a.source.is_empty());
        let (_d, path) = write("p.toml", "[agent]\nstate = \"gone\"\n");
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("agent.state"), "{err}");
    }

    #[test]
    fn agent_settings_are_read_and_unknown_keys_refused() {
        let (_d1, toml_path) = write(
            "s.toml",
            "[agent]\nsource = \"file:///a.msi\"\nsha256 = \"00\"\n\
             [agent.settings]\nenforce_fips_policy = false\nuser_password_length = 200\n\
             [agent.settings.proxy]\naddress = \"http://p:8080\"\nbypass_list = ['c\\.com$']\n",
        );
        let (_d2, yaml_path) = write(
            "s.yaml",
            "agent:\n  source: file:///a.msi\n  sha256: \"00\"\n  settings:\n    enforce_fips_policy: false\n    user_password_length: 200\n    proxy:\n      address: http://p:8080\n      bypass_list: ['c\\.com$']\n",
        );
        let a = load(&toml_path).unwrap();
        assert_eq!(a, load(&yaml_path).unwrap());
        let s = a.agent.unwrap().settings.unwrap();
        assert_eq!(s.enforce_fips_policy, Some(false));
        assert_eq!(s.user_password_length, Some(200));
        assert_eq!(s.ldap_connection_timeout_ms, None, "left out: left alone");
        let p = s.proxy.unwrap();
        assert_eq!(
            (p.address.as_str(), p.bypass_list[0].as_str()),
            ("http://p:8080", r"c\.com$")
        );
        let (_d3, none) = write(
            "n.toml",
            "[agent]\nsource = \"x\"\nsha256 = \"00\"\n[agent.settings.proxy]\nnone = true\n",
        );
        assert!(
            load(&none)
                .unwrap()
                .agent
                .unwrap()
                .settings
                .unwrap()
                .proxy
                .unwrap()
                .none
        );
        for (name, text, needle) in [
            (
                "u.toml",
                "[agent]\nsource = \"x\"\nsha256 = \"00\"\n[agent.settings]\nfips = false\n",
                "unknown field `fips`",
            ),
            (
                "v.yaml",
                "agent:\n  source: x\n  sha256: \"00\"\n  settings:\n    proxy:\n      adress: http://p:1\n",
                "unknown field `adress`",
            ),
        ] {
            let (_d, path) = write(name, text);
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains(needle), "{name}: {err}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let (_d, path) = write("b.toml", "[agnet]\nsource = \"x\"\n");
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("agnet"), "{err}");
        let (_d, path) = write(
            "c.toml",
            "[service_account]\ndomain = \"d.test\"\npermissions = [\"everything\"]\n[service_account.custom]\nname = \"g\"\nhost_account = \"H$\"\n",
        );
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.contains("\"everything\" is not a permission profile"),
            "{err}"
        );
        let (_d, path) = write("d.ini", "");
        assert!(format!("{:#}", load(&path).unwrap_err()).contains(".toml, .yaml"));
    }
}
