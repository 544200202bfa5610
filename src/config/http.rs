//! `[http]`: the HTTP/JSON face of the port.

use super::declare::{Each, section};
use super::layers::Source;

/// `https://host[:port]`, as a browser sends it in `Origin`.
fn origin(value: &str, _: &Source) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .ok_or_else(|| format!("{value:?} is not an https:// origin"))?;
    if rest.is_empty() || rest.contains('/') {
        return Err(format!(
            "{value:?} is not an origin (scheme://host[:port], no path)"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

section! {
    #[derive(Debug, Clone)]
    pub struct HttpConfig: Default {
        /// Web origins whose pages may call the HTTP/JSON API from a browser
        /// holding a client certificate. Any request that carries another
        /// `Origin` is refused (403): empty, the default, refuses them all, so
        /// a page cannot make a browser start an operation (cross-site
        /// request forgery).
        pub allowed_origins: Vec<String> {
            toml: "http.allowed_origins", env: "PROVD_HTTP_ALLOWED_ORIGINS",
            flag: "--http-allowed-origin",
            example: "https://admin.example.test", parse: Each(origin), default: Vec::new()
        }
    }
}
