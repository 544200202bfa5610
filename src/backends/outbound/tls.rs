//! The probe's TLS: a client that accepts whatever chain the server
//! presents, so the chain can be read afterwards as it was sent.
//!
//! Accepting everything is safe here and only here: the connection sends
//! no request and no secret, and is closed as soon as the handshake ends.
//! What matters is what was presented — a TLS-inspecting proxy presents its
//! own CA's chain, which a verifying client would refuse without showing.
//! The handshake signatures are still checked against the presented leaf
//! (rustls' own functions), so the peer holds the key of what it showed.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PresentedCert;

/// Accepts any chain; verifies the handshake's signatures.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config that records instead of trusting: TLS 1.2 and 1.3 (the
/// agent needs 1.2), ring, no ALPN, no client certificate.
pub(super) fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
            .with_no_client_auth(),
    )
}

/// The presented chain as names; a certificate x509-parser cannot read is
/// said to be so rather than dropped.
pub(super) fn describe(chain: &[CertificateDer<'_>]) -> Vec<PresentedCert> {
    chain
        .iter()
        .map(|der| match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => PresentedCert {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                issuer_cn: cert
                    .issuer()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_owned),
            },
            Err(e) => PresentedCert {
                subject: format!("(a certificate that cannot be read: {e})"),
                issuer: String::new(),
                issuer_cn: None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_described_by_its_names() {
        let ca = crate::pki::Ca::generate(
            "Contoso TLS Inspection CA",
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let leaf = ca
            .issue_server(
                &["login.microsoftonline.com".into()],
                &[],
                std::time::Duration::from_secs(3600),
            )
            .unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        let described = describe(&[der, CertificateDer::from(vec![1, 2, 3])]);
        assert_eq!(
            described[0].issuer_cn.as_deref(),
            Some("Contoso TLS Inspection CA")
        );
        assert!(described[0].issuer.contains("CN=Contoso TLS Inspection CA"));
        assert!(described[1].subject.contains("cannot be read"));
        assert_eq!(described[1].issuer_cn, None);
    }
}
