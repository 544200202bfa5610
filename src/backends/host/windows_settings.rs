//! The agent's settings on Windows: its exe.config, found beside the exe
//! the agent service runs (the service's `ImagePath`), edited as XML
//! (`exe_config`), and its registry options as REG_SZ values under
//! Microsoft's key (how-to-manage-registry-options: "New -> String
//! Value"). Reads go through the same winreg helpers as the prerequisite
//! facts.

use std::path::PathBuf;

use super::windows_prereq::{View, agent_service_key, read, write};
use super::{
    AGENT_KEY, AGENT_SERVICES, AgentSettings, AgentSettingsRead, EXE_CONFIG, HostError,
    LDAP_TIMEOUT_VALUE, REFERRAL_CHASING_VALUE, RegValue, USER_PASSWORD_LENGTH_VALUE, exe_config,
    registry_options,
};

/// The exe.config beside the agent service's exe.
pub(super) fn exe_config_path() -> Result<PathBuf, HostError> {
    let image = match read(&agent_service_key(), "ImagePath").value {
        RegValue::Text(t) => t,
        RegValue::Absent => {
            return Err(HostError::Io(format!(
                "the agent service {} is not installed: no {EXE_CONFIG} to read",
                AGENT_SERVICES[0].0
            )));
        }
        other => {
            return Err(HostError::Io(format!(
                "the agent service's ImagePath is not a path: {other:?}"
            )));
        }
    };
    // `"C:\...\x.exe" --args` or `C:\...\x.exe --args`.
    let exe = match image.strip_prefix('"') {
        Some(rest) => rest.split('"').next().unwrap_or_default().to_owned(),
        None => {
            let lower = image.to_ascii_lowercase();
            match lower.find(".exe") {
                Some(i) => image[..i + 4].to_owned(),
                None => image.clone(),
            }
        }
    };
    let dir = PathBuf::from(&exe)
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| {
            HostError::Io(format!(
                "the agent service's ImagePath {image:?} has no folder"
            ))
        })?;
    Ok(dir.join(EXE_CONFIG))
}

pub(super) fn agent_settings() -> Result<AgentSettingsRead, HostError> {
    let path = exe_config_path()?;
    let bytes = std::fs::read(&path)
        .map_err(|e| HostError::Io(format!("cannot read {}: {e}", path.display())))?;
    let parsed =
        exe_config::read(&bytes).map_err(|e| HostError::Io(format!("{}: {e}", path.display())))?;
    Ok(AgentSettingsRead {
        exe_config: path.display().to_string(),
        proxy: parsed.proxy,
        enforce_fips_policy: parsed.enforce_fips_policy,
        ldap_connection_timeout_ms: read(AGENT_KEY, LDAP_TIMEOUT_VALUE),
        referral_chasing_options: read(AGENT_KEY, REFERRAL_CHASING_VALUE),
        user_password_length: read(AGENT_KEY, USER_PASSWORD_LENGTH_VALUE),
    })
}

pub(super) fn set_agent_settings(settings: &AgentSettings) -> Result<(), HostError> {
    if settings.proxy.is_some() || settings.enforce_fips_policy.is_some() {
        let path = exe_config_path()?;
        let bytes = std::fs::read(&path)
            .map_err(|e| HostError::Io(format!("cannot read {}: {e}", path.display())))?;
        let edited = exe_config::edit(
            &bytes,
            exe_config::Wanted {
                proxy: settings.proxy.as_ref(),
                enforce_fips_policy: settings.enforce_fips_policy,
            },
        )
        .map_err(|e| HostError::Io(format!("{}: {e}", path.display())))?;
        if edited != bytes {
            // A new file renamed over the old one: the agent never reads
            // half a file. It takes the folder's inherited ACL, as the
            // installer's own file does.
            let tmp = path.with_extension("config.provd-tmp");
            std::fs::write(&tmp, &edited)
                .map_err(|e| HostError::Io(format!("cannot write {}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                HostError::Io(format!("cannot replace {}: {e}", path.display()))
            })?;
        }
    }
    for (name, wanted) in registry_options(settings) {
        if let Some(v) = wanted {
            write(View::Native, AGENT_KEY, name, RegValue::Text(v.to_string()))?;
        }
    }
    Ok(())
}
