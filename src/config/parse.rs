//! Parsers shared by several sections. Each takes the setting's text and
//! where it came from, and returns the value or the reason it is wrong (the
//! caller adds the place). Parsers for one section's own kinds of value sit
//! in that section's file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::layers::Source;

pub(crate) fn text(value: &str, _: &Source) -> Result<String, String> {
    Ok(value.to_owned())
}

/// A path; relative ones from the file are relative to the file.
pub(crate) fn path(value: &str, source: &Source) -> Result<PathBuf, String> {
    Ok(source.resolve(PathBuf::from(value)))
}

/// A path for a setting that is off unless given.
pub(crate) fn some_path(value: &str, source: &Source) -> Result<Option<PathBuf>, String> {
    path(value, source).map(Some)
}

pub(crate) fn duration(value: &str, _: &Source) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{value:?} is not a duration like \"5s\" ({e})"))
}

/// A duration something waits between rounds: zero would spin.
pub(crate) fn nonzero_duration(value: &str, source: &Source) -> Result<Duration, String> {
    match duration(value, source)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

pub(crate) fn socket_addr(value: &str, _: &Source) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|e| format!("{value:?} is not an address:port ({e})"))
}

/// `true` or `false`, as TOML writes them.
pub(crate) fn boolean(value: &str, _: &Source) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}
