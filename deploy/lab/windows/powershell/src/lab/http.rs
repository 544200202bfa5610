//! HTTPS to the tenant emulator: a blocking ureq client (rustls, ring), trusting the lab's
//! CA when one is configured, presenting the agent's certificate when asked to.

use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::emulator;

/// Upper bound for one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client trusting `ca_pem` (the webpki roots without one), with `client` = (certificate
/// PEM, key PEM) as its TLS client certificate.
pub fn agent(ca_pem: Option<&str>, client: Option<(&str, &str)>) -> Result<ureq::Agent, String> {
    let roots = match ca_pem.map(str::trim).filter(|p| !p.is_empty()) {
        None => RootCerts::WebPki,
        Some(pem) => {
            let cas: Vec<Certificate<'static>> = emulator::certificates(pem)
                .iter()
                .map(|der| Certificate::from_der(der).to_owned())
                .collect();
            if cas.is_empty() {
                return Err("the lab CA (CaPem) holds no certificate".into());
            }
            RootCerts::new_with_certs(&cas)
        }
    };
    let mut tls = TlsConfig::builder().root_certs(roots);
    if let Some((cert, key)) = client {
        let chain: Vec<Certificate<'static>> = emulator::certificates(cert)
            .iter()
            .map(|der| Certificate::from_der(der).to_owned())
            .collect();
        let key =
            PrivateKey::from_pem(key.as_bytes()).map_err(|e| format!("the agent's key: {e}"))?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(TIMEOUT))
        .proxy(None)
        .http_status_as_error(false)
        .user_agent(concat!(
            "provd-lab-powershell/",
            env!("CARGO_PKG_VERSION"),
            " (LAB STAND-IN)"
        ))
        .build()
        .into())
}

/// (status, body) of an answered request, or why there was no answer.
pub fn answer(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), String> {
    let mut response = result.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    Ok((status, body))
}

/// The `error.message` of a Graph-style error body, else the body's start.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}
