//! The `agent-settings` section: the agent's proxy and FIPS flag (its
//! exe.config) and its registry options, validated with field paths under
//! `desired.agent.settings`, compared with the host one change per setting,
//! written in one go, and the agent service restarted once — only when
//! something differed.
//!
//! Sources: the proxy element and its attributes as Microsoft's cloud sync
//! troubleshooting page writes them; `enforceFIPSPolicy` as the agent's
//! prerequisites page names it; `LdapConnectionTimeoutInMilliseconds` and
//! `ReferralChasingOptions` from how-to-manage-registry-options (String
//! values). `UserPasswordLength` (127–256) comes from issue 16's research
//! notes: provd found no Microsoft page for it, so its range is UNVERIFIED.

use std::sync::Arc;
use std::time::Duration;

use super::sections::Change;
use super::stored::Stored;
use crate::backends::host::{
    AGENT_SERVICES, AgentProxy, AgentSettings, AgentSettingsRead, Host, LDAP_TIMEOUT_VALUE,
    REFERRAL_CHASING_VALUE, RegReading, ServiceAction, USER_PASSWORD_LENGTH_VALUE,
};
use crate::backends::store::Store;
use crate::workflows::operations::{Job, Outcome, job};
use crate::workflows::{Error, FieldViolation};

/// The step's name.
pub(super) const STEP: &str = "agent-settings";

/// How long the agent service may take to stop and start again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);

/// `ProxySpec` as the transport passes it.
#[derive(Debug, Clone, Default)]
pub struct ProxyInput {
    pub address: String,
    pub bypass_on_local: bool,
    pub bypass_list: Vec<String>,
    pub none: bool,
}

/// `AgentSettingsSpec` as the transport passes it.
#[derive(Debug, Clone, Default)]
pub struct AgentSettingsInput {
    pub proxy: Option<ProxyInput>,
    pub enforce_fips_policy: Option<bool>,
    pub ldap_connection_timeout_ms: Option<u32>,
    pub referral_chasing_options: Option<u32>,
    pub user_password_length: Option<u32>,
}

const MAX_ADDRESS: usize = 2048;
const MAX_BYPASS: usize = 64;
const MAX_BYPASS_ENTRY: usize = 512;
pub(super) const LDAP_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 1_000..=3_600_000;
pub(super) const REFERRAL_CHASING: [u32; 4] = [0, 32, 64, 96];
pub(super) const USER_PASSWORD_LENGTH: std::ops::RangeInclusive<u32> = 127..=256;

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn proxy_address(path: &str, address: &str, v: &mut Vec<FieldViolation>) {
    let field = format!("{path}.address");
    let rest = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', ':']).next().unwrap_or_default());
    if address.is_empty() {
        v.push(FieldViolation::new(
            field,
            "is required unless `none` is true",
        ));
    } else if address.len() > MAX_ADDRESS {
        v.push(FieldViolation::new(
            field,
            format!("is longer than {MAX_ADDRESS} bytes"),
        ));
    } else if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        v.push(FieldViolation::new(
            field,
            "has whitespace or a control character",
        ));
    } else if rest.is_some_and(|r| r.split('/').next().unwrap_or_default().contains('@')) {
        // It would reach events, logs and the store; the agent
        // authenticates to the proxy as its service account
        // (useDefaultCredentials="true").
        v.push(FieldViolation::new(
            field,
            "must not carry credentials (user@): the agent authenticates as its service account",
        ));
    } else if host.is_none_or(str::is_empty) {
        v.push(FieldViolation::new(
            field,
            format!("{address:?} is not an http:// or https:// URL with a host"),
        ));
    }
}

/// The settings, or every violation under `path` (`desired.agent.settings`).
pub(super) fn validate(
    path: &str,
    input: &AgentSettingsInput,
) -> Result<AgentSettings, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let proxy = input.proxy.as_ref().map(|p| {
        let path = format!("{path}.proxy");
        if p.none {
            if !p.address.is_empty() || !p.bypass_list.is_empty() || p.bypass_on_local {
                v.push(FieldViolation::new(
                    format!("{path}.none"),
                    "is true: address, bypass_list and bypass_on_local must be unset",
                ));
            }
            return AgentProxy::None;
        }
        proxy_address(&path, &p.address, &mut v);
        if p.bypass_list.len() > MAX_BYPASS {
            v.push(FieldViolation::new(
                format!("{path}.bypass_list"),
                format!("has more than {MAX_BYPASS} entries"),
            ));
        } else {
            for (i, b) in p.bypass_list.iter().enumerate() {
                if b.is_empty() || b.len() > MAX_BYPASS_ENTRY || !printable(b) {
                    v.push(FieldViolation::new(
                        format!("{path}.bypass_list[{i}]"),
                        format!("must be 1 to {MAX_BYPASS_ENTRY} bytes without control characters"),
                    ));
                }
            }
        }
        AgentProxy::Address {
            address: p.address.clone(),
            bypass_on_local: p.bypass_on_local,
            bypass_list: p.bypass_list.clone(),
        }
    });
    if let Some(ms) = input.ldap_connection_timeout_ms
        && !LDAP_TIMEOUT_MS.contains(&ms)
    {
        v.push(FieldViolation::new(
            format!("{path}.ldap_connection_timeout_ms"),
            format!(
                "{ms} is outside {} to {} milliseconds",
                LDAP_TIMEOUT_MS.start(),
                LDAP_TIMEOUT_MS.end()
            ),
        ));
    }
    if let Some(r) = input.referral_chasing_options
        && !REFERRAL_CHASING.contains(&r)
    {
        v.push(FieldViolation::new(
            format!("{path}.referral_chasing_options"),
            format!("{r} is not one of 0 (none), 32 (subordinate), 64 (external), 96 (all)"),
        ));
    }
    if let Some(n) = input.user_password_length
        && !USER_PASSWORD_LENGTH.contains(&n)
    {
        v.push(FieldViolation::new(
            format!("{path}.user_password_length"),
            format!(
                "{n} is outside {} to {}",
                USER_PASSWORD_LENGTH.start(),
                USER_PASSWORD_LENGTH.end()
            ),
        ));
    }
    if !v.is_empty() {
        return Err(v);
    }
    Ok(AgentSettings {
        proxy,
        enforce_fips_policy: input.enforce_fips_policy,
        ldap_connection_timeout_ms: input.ldap_connection_timeout_ms,
        referral_chasing_options: input.referral_chasing_options,
        user_password_length: input.user_password_length,
    })
}

fn change(action: &'static str, detail: String) -> Change {
    Change {
        step: STEP.into(),
        action,
        detail,
    }
}

fn shown_proxy(p: &AgentProxy) -> String {
    match p {
        AgentProxy::None => "none".into(),
        AgentProxy::Address {
            address,
            bypass_on_local,
            bypass_list,
        } => {
            let mut s = if address.is_empty() {
                "a <defaultProxy> without an address".to_owned()
            } else {
                address.clone()
            };
            if *bypass_on_local {
                s.push_str(" bypassing local addresses");
            }
            if !bypass_list.is_empty() {
                s.push_str(&format!(" bypassing {}", bypass_list.join(", ")));
            }
            s
        }
    }
}

/// A registry option: its value name, the wanted value, the host's
/// reading, and where the value to write goes.
type RegistryOption<'a> = (
    &'static str,
    Option<u32>,
    Option<&'a RegReading>,
    &'a mut Option<u32>,
);

fn shown_fips(f: Option<bool>) -> String {
    f.map_or_else(|| "absent".into(), |f| format!("enabled=\"{f}\""))
}

/// The settings of `wanted` the host lacks (only those: what to write),
/// and one change per setting, plus the restart when any differs.
/// `have: None`: the agent is not installed yet (apply installs it first):
/// every wanted setting is listed.
pub(super) fn diff(
    wanted: &AgentSettings,
    have: Option<&AgentSettingsRead>,
    why_unread: &str,
) -> (AgentSettings, Vec<Change>) {
    let mut write = AgentSettings::default();
    let mut out = Vec::new();
    let now = |s: String| match have {
        Some(_) => format!("(now: {s})"),
        None => format!("({why_unread})"),
    };
    if let Some(p) = &wanted.proxy
        && have.is_none_or(|h| &h.proxy != p)
    {
        let was = have.map(|h| shown_proxy(&h.proxy)).unwrap_or_default();
        let action = if *p == AgentProxy::None {
            "remove-proxy"
        } else {
            "set-proxy"
        };
        out.push(change(action, format!("{} {}", shown_proxy(p), now(was))));
        write.proxy = Some(p.clone());
    }
    if let Some(f) = wanted.enforce_fips_policy
        && have.is_none_or(|h| h.enforce_fips_policy != Some(f))
    {
        let was = have
            .map(|h| shown_fips(h.enforce_fips_policy))
            .unwrap_or_default();
        out.push(change(
            "set-fips-policy",
            format!("enforceFIPSPolicy {} {}", shown_fips(Some(f)), now(was)),
        ));
        write.enforce_fips_policy = Some(f);
    }
    let registry: [RegistryOption<'_>; 3] = [
        (
            LDAP_TIMEOUT_VALUE,
            wanted.ldap_connection_timeout_ms,
            have.map(|h| &h.ldap_connection_timeout_ms),
            &mut write.ldap_connection_timeout_ms,
        ),
        (
            REFERRAL_CHASING_VALUE,
            wanted.referral_chasing_options,
            have.map(|h| &h.referral_chasing_options),
            &mut write.referral_chasing_options,
        ),
        (
            USER_PASSWORD_LENGTH_VALUE,
            wanted.user_password_length,
            have.map(|h| &h.user_password_length),
            &mut write.user_password_length,
        ),
    ];
    for (name, want, reading, slot) in registry {
        let Some(want) = want else { continue };
        // The agent reads a String value; a DWORD is rewritten as one.
        let same = reading.is_some_and(|r| r.text().map(str::trim) == Some(&want.to_string()));
        if !same {
            let was = reading.map(RegReading::shown).unwrap_or_default();
            out.push(change(
                "set-registry",
                format!("{name} = \"{want}\" (REG_SZ) {}", now(was)),
            ));
            *slot = Some(want);
        }
    }
    if !out.is_empty() {
        out.push(change(
            "restart",
            format!("{} (it reads its settings at start)", AGENT_SERVICES[0].0),
        ));
    }
    (write, out)
}

/// Writes `settings` and restarts the agent once.
pub(super) fn job_of(host: Arc<dyn Host>, settings: AgentSettings) -> Job {
    job(move |progress| async move {
        host.set_agent_settings(&settings).await?;
        progress
            .progress(STEP, "settings written".to_owned(), 0)
            .await?;
        host.control_service(AGENT_SERVICES[0].0, ServiceAction::Restart, RESTART_TIMEOUT)
            .await?;
        Ok(Outcome::from([("restarted".into(), "true".into())]))
    })
}

/// What apply last applied, kept for the drift watch's re-apply
/// (`[drift] reapply`): the document's validated settings, no secret.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    proxy: Option<StoredProxy>,
    enforce_fips_policy: Option<bool>,
    ldap_connection_timeout_ms: Option<u32>,
    referral_chasing_options: Option<u32>,
    user_password_length: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum StoredProxy {
    None,
    Address {
        address: String,
        bypass_on_local: bool,
        bypass_list: Vec<String>,
    },
}

const KEPT: Stored = Stored {
    key: "agent_settings",
    what: "the agent settings",
};

pub(super) async fn save(store: &Arc<dyn Store>, s: &AgentSettings) -> Result<(), Error> {
    let record = Record {
        proxy: s.proxy.clone().map(|p| match p {
            AgentProxy::None => StoredProxy::None,
            AgentProxy::Address {
                address,
                bypass_on_local,
                bypass_list,
            } => StoredProxy::Address {
                address,
                bypass_on_local,
                bypass_list,
            },
        }),
        enforce_fips_policy: s.enforce_fips_policy,
        ldap_connection_timeout_ms: s.ldap_connection_timeout_ms,
        referral_chasing_options: s.referral_chasing_options,
        user_password_length: s.user_password_length,
    };
    KEPT.save(store, &record).await
}

/// Whether apply keeps a record; cleared unless `dry` (DecommissionAgent's
/// `forget`).
pub(super) async fn forget(store: &Arc<dyn Store>, dry: bool) -> Result<bool, Error> {
    KEPT.forget(store, dry).await
}

pub(super) async fn load(store: &Arc<dyn Store>) -> Result<Option<AgentSettings>, Error> {
    let Some(r) = KEPT.load::<Record>(store).await? else {
        return Ok(None);
    };
    Ok(Some(AgentSettings {
        proxy: r.proxy.map(|p| match p {
            StoredProxy::None => AgentProxy::None,
            StoredProxy::Address {
                address,
                bypass_on_local,
                bypass_list,
            } => AgentProxy::Address {
                address,
                bypass_on_local,
                bypass_list,
            },
        }),
        enforce_fips_policy: r.enforce_fips_policy,
        ldap_connection_timeout_ms: r.ldap_connection_timeout_ms,
        referral_chasing_options: r.referral_chasing_options,
        user_password_length: r.user_password_length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_name_each_field() {
        let bad = AgentSettingsInput {
            proxy: Some(ProxyInput {
                address: "proxy:8080".into(),
                bypass_list: vec![String::new()],
                ..Default::default()
            }),
            ldap_connection_timeout_ms: Some(5),
            referral_chasing_options: Some(7),
            user_password_length: Some(126),
            ..Default::default()
        };
        let fields: Vec<String> = validate("desired.agent.settings", &bad)
            .unwrap_err()
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(
            fields,
            [
                "desired.agent.settings.proxy.address",
                "desired.agent.settings.proxy.bypass_list[0]",
                "desired.agent.settings.ldap_connection_timeout_ms",
                "desired.agent.settings.referral_chasing_options",
                "desired.agent.settings.user_password_length",
            ]
        );
        let with_credentials = AgentSettingsInput {
            proxy: Some(ProxyInput {
                address: "http://user:secret@proxy:8080".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = validate("s", &with_credentials).unwrap_err();
        assert_eq!(v[0].field, "s.proxy.address");
        assert!(!v[0].description.contains("secret"));
        let none_and_address = AgentSettingsInput {
            proxy: Some(ProxyInput {
                address: "http://p:1".into(),
                none: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            validate("s", &none_and_address).unwrap_err()[0].field,
            "s.proxy.none"
        );
        for n in [127, 256] {
            let ok = AgentSettingsInput {
                user_password_length: Some(n),
                ..Default::default()
            };
            assert!(validate("s", &ok).is_ok());
        }
    }
}
