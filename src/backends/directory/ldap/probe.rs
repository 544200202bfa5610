//! The probe of one DC: TCP, a TLS handshake that records the certificate
//! and whether it is trusted, a bind, and the RootDSE (for the DC's name,
//! naming context and clock).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::KeyValue;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tracing::Instrument;
use tracing::field::Empty;

use super::session::read_root_dse;
use super::time::signed_secs;
use super::{LdapDirectory, LdapTransport};
use crate::backends::directory::{BindCredential, ProbeReport};
use crate::model::parse_generalized_time;

impl LdapDirectory {
    /// Connects, handshakes (recording the certificate whatever its trust),
    /// binds and reads the RootDSE, all within `timeout`.
    pub(super) async fn run_probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport {
        let mut report = ProbeReport {
            started: Some(SystemTime::now()),
            ..ProbeReport::default()
        };
        let span = ldap_span!("ldap.probe", dc, ldap.anonymous = credential.is_none());
        let step = Mutex::new("connect");
        let run = self.probe_steps(dc, credential, &mut report, &step);
        match tokio::time::timeout(timeout, run)
            .instrument(span.clone())
            .await
        {
            Ok(Ok(())) => report.reachable = true,
            Ok(Err(err)) => report.error = Some(err),
            Err(_) => {
                let at = *step.lock().unwrap_or_else(|p| p.into_inner());
                report.error = Some(format!("timed out after {timeout:?} during {at}"));
            }
        }
        let label = match &report.error {
            None => "ok",
            Some(err) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", err.as_str());
                "unreachable"
            }
        };
        span.record("outcome", label);
        crate::telemetry::metrics().directory_calls.add(
            1,
            &[
                KeyValue::new("dc", dc.to_owned()),
                KeyValue::new("op", "probe"),
                KeyValue::new("outcome", label),
            ],
        );
        report
    }

    async fn probe_steps(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        report: &mut ProbeReport,
        step: &Mutex<&'static str>,
    ) -> Result<(), String> {
        let set = |s| *step.lock().unwrap_or_else(|p| p.into_inner()) = s;
        let roots = self.roots.clone().ok_or_else(|| match &self.tls {
            Err(e) => e.clone(),
            Ok(_) => "no CA bundle".to_owned(),
        })?;
        // 1. TCP + TLS handshake, recording the certificate whatever its trust.
        let started = Instant::now();
        let (tcp, ip) = self.tcp(dc).await.map_err(|e| e.to_string())?;
        report.address = Some(ip);
        set("TLS handshake");
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier {
            inner: WebPkiServerVerifier::builder(roots)
                .build()
                .map_err(|e| e.to_string())?,
            seen: seen.clone(),
        });
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
        let name = ServerName::try_from(dc.to_owned()).map_err(|e| format!("{dc}: {e}"))?;
        if self.settings.transport == LdapTransport::Ldaps {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {ip}: {e}"))?;
            report.handshake_latency = Some(started.elapsed());
            drop(tls);
        } else {
            drop(tcp);
        }
        if let Some((der, trusted)) = seen.lock().unwrap_or_else(|p| p.into_inner()).take() {
            report.certificate_trusted = trusted.is_ok();
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) {
                report.certificate_subject = Some(cert.subject().to_string());
                let secs = cert.validity().not_after.timestamp();
                report.certificate_not_after = u64::try_from(secs)
                    .ok()
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            }
            if let Err(e) = trusted {
                return Err(format!("certificate not trusted: {e}"));
            }
        }
        // 2. Bind over a real LDAP session, then read the RootDSE.
        set("bind");
        let mut ldap = self.open(dc).await.map_err(|e| e.to_string())?;
        let bind_started = Instant::now();
        let bound = self.bind(dc, &mut ldap, credential).await;
        if bound.is_ok() {
            report.bind_latency = Some(bind_started.elapsed());
        }
        set("RootDSE read");
        let before = SystemTime::now();
        let root = read_root_dse(dc, &mut ldap, self.settings.operation_timeout).await;
        let after = SystemTime::now();
        let _ = ldap.unbind().await;
        let root = root.map_err(|e| e.to_string())?;
        report.dns_host_name = root.first("dnsHostName").map(str::to_ascii_lowercase);
        report.default_naming_context = root.first("defaultNamingContext").map(str::to_owned);
        if let Some(dc_time) = root.first("currentTime").and_then(parse_generalized_time) {
            let midpoint = before + after.duration_since(before).unwrap_or_default() / 2;
            report.clock_skew_secs = Some(signed_secs(dc_time, midpoint));
        }
        bound.map_err(|e| e.to_string())
    }
}

/// The DC's certificate (DER) and whether it verified.
type SeenCertificate = Arc<Mutex<Option<(Vec<u8>, Result<(), String>)>>>;

/// Records the end-entity certificate and the real verification outcome,
/// then lets the probe's handshake complete either way (the probe sends no
/// credentials on that connection).
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: SeenCertificate,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((end_entity.as_ref().to_vec(), outcome));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
