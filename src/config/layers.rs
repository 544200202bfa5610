//! The layering machinery, driven by the declared [`Setting`] table: the
//! TOML file, then `PROVD_*` variables, then flags each put a setting's text
//! in [`Layers`], later layers replacing earlier ones; the generated
//! `from_layers` of each section then parses only the winning value, so an
//! error names exactly the place that value came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::declare::{Fallback, Lookup, Parse, Raw, Setting};

/// Where a setting's text came from: named in errors, and the base of
/// relative paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Env,
    Flag,
}

impl Source {
    /// "config file /etc/provd.toml, key tls.cert", "environment variable
    /// PROVD_TLS_CERT (tls.cert)", "flag --tls-cert (tls.cert)": the layer,
    /// the name there, and the setting it feeds.
    pub(crate) fn place(&self, setting: &Setting) -> String {
        match self {
            Source::File(path) => format!("config file {}, key {}", path.display(), setting.key),
            Source::Env => format!("environment variable {} ({})", setting.env, setting.key),
            Source::Flag => format!("flag {} ({})", setting.flag, setting.key),
        }
    }

    /// Relative paths in the file are relative to the file, so a config
    /// directory can be moved as a whole; elsewhere they are the caller's.
    pub(crate) fn resolve(&self, path: PathBuf) -> PathBuf {
        match self {
            Source::File(file) if path.is_relative() => {
                file.parent().unwrap_or(Path::new(".")).join(path)
            }
            _ => path,
        }
    }
}

#[derive(Debug)]
struct Given {
    raw: Raw,
    source: Source,
}

/// Each setting's text from the highest layer that gave it.
pub(crate) struct Layers<'a> {
    given: HashMap<&'static str, Given>,
    env: Lookup<'a>,
}

impl<'a> Layers<'a> {
    pub(crate) fn new(env: Lookup<'a>) -> Self {
        Self {
            given: HashMap::new(),
            env,
        }
    }

    /// For `from_env` defaults (`declare.rs`); no setting declares one
    /// since `host.agent_registration_file` went (issue 14).
    #[allow(dead_code)]
    pub(crate) fn env(&self) -> Lookup<'a> {
        self.env
    }

    pub(crate) fn set(&mut self, key: &'static str, raw: Raw, source: Source) {
        self.given.insert(key, Given { raw, source });
    }

    /// Where the value of `key` came from, if any layer gave one.
    #[cfg(test)]
    pub(crate) fn source_of(&self, key: &str) -> Option<&Source> {
        self.given.get(key).map(|g| &g.source)
    }

    /// The typed value of one setting: the winning text parsed, or the
    /// default, or a [`ConfigError::Missing`] naming all three ways to set it.
    pub(crate) fn value<T, P: Parse<T>>(
        &self,
        setting: &Setting,
        parse: &P,
        fallback: Fallback<T>,
    ) -> Result<T, ConfigError> {
        match (self.given.get(setting.key), fallback) {
            (Some(given), _) => {
                parse
                    .parse(&given.raw, &given.source)
                    .map_err(|reason| ConfigError::Invalid {
                        place: given.source.place(setting),
                        reason,
                    })
            }
            (None, Fallback::Value(value)) => Ok(value),
            (None, Fallback::Required) => Err(ConfigError::Missing {
                key: setting.key,
                env: setting.env,
                flag: setting.flag,
            }),
        }
    }

    /// The file layer. Every key must be a declared setting or a section
    /// holding some, so a typo fails naming it instead of passing silently.
    pub(crate) fn read_file(
        &mut self,
        path: &Path,
        settings: &[Setting],
    ) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.read_table(path, settings, "", table)
    }

    fn read_table(
        &mut self,
        path: &Path,
        settings: &[Setting],
        prefix: &str,
        table: toml::Table,
    ) -> Result<(), ConfigError> {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            let source = Source::File(path.to_owned());
            if let Some(setting) = settings.iter().find(|s| s.key == key) {
                let raw = file_raw(value, setting.list).map_err(|reason| ConfigError::Invalid {
                    place: source.place(setting),
                    reason,
                })?;
                self.set(setting.key, raw, source);
            } else if children(settings, &key).is_empty() {
                return Err(ConfigError::Parse {
                    path: path.display().to_string(),
                    reason: unknown_key(settings, prefix, &key),
                });
            } else if let toml::Value::Table(inner) = value {
                self.read_table(path, settings, &key, inner)?;
            } else {
                return Err(ConfigError::Parse {
                    path: path.display().to_string(),
                    reason: format!(
                        "`{key}` must be a table ([{key}]), not a {}",
                        value.type_str()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The environment layer: each setting's variable, lists split at their
    /// separators (comma or space; comma only for lists of names).
    pub(crate) fn read_env(&mut self, settings: &[Setting]) {
        for setting in settings {
            if let Some(value) = (self.env)(setting.env) {
                let raw = if setting.list {
                    Raw::Many(
                        value
                            .split(setting.separators)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                } else {
                    Raw::One(value)
                };
                self.set(setting.key, raw, Source::Env);
            }
        }
    }
}

/// A TOML value as a setting's text: scalars as written (numbers and
/// booleans in their decimal form), lists as arrays of them.
fn file_raw(value: toml::Value, list: bool) -> Result<Raw, String> {
    fn scalar(value: toml::Value) -> Result<String, String> {
        match value {
            toml::Value::String(s) => Ok(s),
            toml::Value::Integer(n) => Ok(n.to_string()),
            toml::Value::Float(n) => Ok(n.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(format!(
                "expected a string or number, not a {}",
                other.type_str()
            )),
        }
    }
    match (value, list) {
        (toml::Value::Array(items), true) => Ok(Raw::Many(
            items.into_iter().map(scalar).collect::<Result<_, _>>()?,
        )),
        (other, true) => Err(format!("expected an array, not a {}", other.type_str())),
        (other, false) => scalar(other).map(Raw::One),
    }
}

/// The names directly under `prefix` ("" is the top level): keys, and
/// sections as `[name]`, in declaration order.
fn children(settings: &[Setting], prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for setting in settings {
        let rest = if prefix.is_empty() {
            Some(setting.key)
        } else {
            setting
                .key
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
        };
        let Some(rest) = rest else { continue };
        let name = match rest.split_once('.') {
            Some((section, _)) => format!("[{section}]"),
            None => rest.to_owned(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn unknown_key(settings: &[Setting], prefix: &str, key: &str) -> String {
    let here = if prefix.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in [{prefix}]")
    };
    let known = children(settings, prefix).join(", ");
    format!("unknown key `{key}` (known {here}: {known})")
}
