//! The agent-settings side of `FakeHost`: the exe.config held as bytes and
//! edited with the same XML editor the Windows host uses, the registry
//! options as REG_SZ values, and what an auto-upgrade of an old agent did
//! to them (the installer's exe.config back in place).

use super::host::{FakeHost, State};
use crate::backends::host::{
    AGENT_KEY, AGENT_SERVICES, AgentSettings, AgentSettingsRead, EXE_CONFIG, HostError,
    LDAP_TIMEOUT_VALUE, REFERRAL_CHASING_VALUE, RegReading, RegValue, USER_PASSWORD_LENGTH_VALUE,
    exe_config, registry_options,
};

const INSTALL_DIR: &str = r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent";

fn installed(s: &State) -> Result<(), HostError> {
    if s.services_has(AGENT_SERVICES[0].0) {
        Ok(())
    } else {
        Err(HostError::Io(format!(
            "the agent service {} is not installed: no {EXE_CONFIG} to read",
            AGENT_SERVICES[0].0
        )))
    }
}

pub(super) fn read(s: &State) -> Result<AgentSettingsRead, HostError> {
    installed(s)?;
    let parsed = exe_config::read(&s.exe_config)
        .map_err(|e| HostError::Io(format!(r"{INSTALL_DIR}\{EXE_CONFIG}: {e}")))?;
    let reg = |name: &str| {
        RegReading::new(
            format!(r"HKLM\{AGENT_KEY}\{name}"),
            s.agent_registry
                .get(name)
                .cloned()
                .unwrap_or(RegValue::Absent),
        )
    };
    Ok(AgentSettingsRead {
        exe_config: format!(r"{INSTALL_DIR}\{EXE_CONFIG}"),
        proxy: parsed.proxy,
        enforce_fips_policy: parsed.enforce_fips_policy,
        ldap_connection_timeout_ms: reg(LDAP_TIMEOUT_VALUE),
        referral_chasing_options: reg(REFERRAL_CHASING_VALUE),
        user_password_length: reg(USER_PASSWORD_LENGTH_VALUE),
    })
}

pub(super) fn write(s: &mut State, settings: &AgentSettings) -> Result<(), HostError> {
    installed(s)?;
    s.settings_writes += 1;
    s.exe_config = exe_config::edit(
        &s.exe_config,
        exe_config::Wanted {
            proxy: settings.proxy.as_ref(),
            enforce_fips_policy: settings.enforce_fips_policy,
        },
    )
    .map_err(|e| HostError::Io(format!(r"{INSTALL_DIR}\{EXE_CONFIG}: {e}")))?;
    for (name, wanted) in registry_options(settings) {
        if let Some(v) = wanted {
            s.agent_registry.insert(name, RegValue::Text(v.to_string()));
        }
    }
    Ok(())
}

impl FakeHost {
    /// The agent's exe.config as it is now.
    pub fn exe_config(&self) -> Vec<u8> {
        self.lock().exe_config.clone()
    }

    /// Replaces the exe.config (a hand edit, or an old agent's auto-upgrade
    /// putting the installer's file back).
    pub fn set_exe_config(&self, bytes: &[u8]) {
        self.lock().exe_config = bytes.to_vec();
    }

    /// Sets (or with `None` deletes) one registry option by hand.
    pub fn set_agent_registry(&self, name: &'static str, value: Option<RegValue>) {
        let mut s = self.lock();
        match value {
            Some(v) => s.agent_registry.insert(name, v),
            None => s.agent_registry.remove(name),
        };
    }

    /// The settings as `agent_settings` reads them (the agent installed).
    pub fn agent_settings_now(&self) -> AgentSettingsRead {
        read(&self.lock()).expect("the agent is installed")
    }

    /// `set_agent_settings` calls so far.
    pub fn settings_writes(&self) -> u64 {
        self.lock().settings_writes
    }
}
