//! What `Connect-AADCloudSyncAzureAD` exchanges with the registration service, in the lab
//! with `provd-tenant-emulator`'s `POST /register/RegisterConnector` (its module doc has the
//! sources: the request and answer follow public third-party research, AADInternals, not
//! Microsoft documentation), and the PEM/DER handling around the certificate it issues.
//! Platform-neutral, tested on Linux.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const NAMESPACE: &str =
    "http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Registration";

/// The `RegistrationRequest` body: the bearer token travels in the body, the CSR as base64
/// DER, the machine name under `RegistrationRequestSettings/SystemSettings`.
pub fn registration_request(
    token: &str,
    tenant_id: &str,
    machine_name: &str,
    csr_der: &[u8],
) -> String {
    format!(
        concat!(
            r#"<RegistrationRequest xmlns="{ns}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<AuthenticationToken>{token}</AuthenticationToken>",
            "<Base64Csr>{csr}</Base64Csr>",
            "<Feature>ApplicationProxy</Feature>",
            "<FeatureString>SyncFabric</FeatureString>",
            "<RegistrationRequestSettings><SystemSettings>",
            "<MachineName>{machine}</MachineName>",
            "</SystemSettings></RegistrationRequestSettings>",
            "<TenantId>{tenant}</TenantId>",
            "<UserAgent>{agent}</UserAgent>",
            "</RegistrationRequest>"
        ),
        ns = NAMESPACE,
        token = escape(token),
        csr = STANDARD.encode(csr_der),
        machine = escape(machine_name),
        tenant = escape(tenant_id),
        agent = escape(concat!(
            "provd-lab-powershell/",
            env!("CARGO_PKG_VERSION"),
            " (LAB STAND-IN)"
        )),
    )
}

/// A `RegistrationResult`: the certificate (DER) when `IsSuccessful`, else the service's
/// `ErrorMessage`.
pub fn registration_result(xml: &str) -> Result<Vec<u8>, String> {
    let ok = element_text(xml, "IsSuccessful").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !ok {
        return Err(element_text(xml, "ErrorMessage")
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                "The registration service refused the request without a reason.".into()
            }));
    }
    let certificate = element_text(xml, "Certificate").unwrap_or_default();
    let certificate: String = certificate.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(certificate)
        .map_err(|e| format!("The registration service's certificate is not base64: {e}"))
}

/// The text of the first element named `local_name` in any namespace prefix, entities
/// decoded; `Some("")` for an empty or self-closing one.
pub fn element_text(xml: &str, local_name: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let tag = &rest[open + 1..];
        let close = tag.find('>')?;
        let inside = &tag[..close];
        rest = &tag[close + 1..];
        if inside.starts_with(['/', '?', '!']) {
            continue;
        }
        let name = inside
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if name.rsplit(':').next() != Some(local_name) {
            continue;
        }
        if inside.ends_with('/') {
            return Some(String::new());
        }
        let end = rest.find(&format!("</{name}>"))?;
        return Some(unescape(rest[..end].trim()));
    }
    None
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// DER as PEM with 64-column lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every `CERTIFICATE` block of `text`, leniently: white space of any kind (a PEM stored in
/// the registry with its line breaks turned into spaces, or as a multi-string) is ignored.
pub fn certificates(text: &str) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = body.find(END) else { break };
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &body[end + END.len()..];
    }
    out
}

/// The subject common name of an X.509 certificate (the emulator puts the agent id there).
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (certificate, _) = tlv(der, 0x30)?;
    let (mut tbs, _) = tlv(certificate, 0x30)?;
    // [0] version (optional), serialNumber, signature, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = tlv(tbs, tag)?.1;
    }
    let (mut subject, _) = tlv(tbs, 0x30)?;
    // Name ::= SEQUENCE OF SET OF AttributeTypeAndValue { OID, value }.
    while !subject.is_empty() {
        let (set, rest) = tlv(subject, 0x31)?;
        subject = rest;
        let (atv, _) = tlv(set, 0x30)?;
        let (oid, value) = tlv(atv, 0x06)?;
        if oid == [0x55, 0x04, 0x03] {
            let tag = *value.first()?;
            let (text, _) = tlv(value, tag)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

/// One DER element of tag `tag` at the start of `input`: (its content, what follows).
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let content = input.get(header..header.checked_add(len)?)?;
    Some((content, &input[header + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj
    /// /O=lab/CN=0f3c1d0e-7a55-4b8e-9a52-3b3f1f4e2c10 -days 1`: a CN that is not the first
    /// RDN, and long-form DER lengths.
    const CERT: &str = include_str!("../tests/fixtures/agent-cert.pem");

    #[test]
    fn the_agent_id_is_the_certificates_common_name() {
        let ders = certificates(CERT);
        assert_eq!(ders.len(), 1);
        assert_eq!(
            subject_common_name(&ders[0]).as_deref(),
            Some("0f3c1d0e-7a55-4b8e-9a52-3b3f1f4e2c10")
        );
        // Stored in the registry with spaces for line breaks: the same certificate.
        assert_eq!(certificates(&CERT.replace('\n', " ")), ders);
        assert_eq!(certificates(&pem("CERTIFICATE", &ders[0])), ders);
        assert_eq!(subject_common_name(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(subject_common_name(&ders[0][..40]), None);
    }

    #[test]
    fn request_escapes_everything_and_result_reads_both_answers() {
        let xml = registration_request("a<b>&'\"", "t&1", "host-1.lab", b"\x30\x00");
        assert!(
            xml.contains("<AuthenticationToken>a&lt;b&gt;&amp;&apos;&quot;</AuthenticationToken>"),
            "{xml}"
        );
        assert_eq!(
            element_text(&xml, "AuthenticationToken").as_deref(),
            Some("a<b>&'\"")
        );
        assert_eq!(element_text(&xml, "TenantId").as_deref(), Some("t&1"));
        assert_eq!(
            element_text(&xml, "MachineName").as_deref(),
            Some("host-1.lab")
        );
        assert_eq!(element_text(&xml, "Base64Csr").as_deref(), Some("MAA="));

        // The emulator's two answers (register.rs).
        let ok = r#"<RegistrationResult xmlns="x" xmlns:i="y"><Certificate>MAA=</Certificate><ErrorMessage i:nil="true"/><IsSuccessful>true</IsSuccessful></RegistrationResult>"#;
        assert_eq!(registration_result(ok), Ok(vec![0x30, 0x00]));
        let refused = r#"<RegistrationResult><Certificate i:nil="true"/><ErrorMessage>The authentication token is for audience 'https://graph.microsoft.com', not for the registration service.</ErrorMessage><IsSuccessful>false</IsSuccessful></RegistrationResult>"#;
        assert!(
            registration_result(refused)
                .unwrap_err()
                .contains("not for the registration service")
        );
        assert!(registration_result("<html>502</html>").is_err());
    }
}
