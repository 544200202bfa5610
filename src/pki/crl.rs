//! `provd pki crl`: the client-certificate revocation list of provd's CA,
//! which `[tls] client_crl` points the daemon at. Each run reads the CRL
//! file (when there is one), keeps its entries, adds the certificates and
//! serials to revoke, and signs the next CRL (number + 1) with the CA.

use std::path::PathBuf;
use std::time::Duration;

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;

use super::PkiError;
use super::ca::{CLOCK_SKEW, validity_span};
use super::files::{load_ca, read_to_string, replace_atomic};
use super::inspect::{
    certificates_from_pem, crl_ders, crl_signed_by, parse_certificate, parse_crl, serial_hex,
    signed_by,
};

/// Serial numbers are at most 20 octets (RFC 5280 4.1.2.2).
const MAX_SERIAL_BYTES: usize = 20;

/// Options for `provd pki crl`.
#[derive(Debug, Clone)]
pub struct CrlOptions {
    /// Directory holding `ca.pem` and `ca.key`.
    pub ca_dir: PathBuf,
    /// The CRL file: its entries are kept when it exists; replaced
    /// atomically (PEM).
    pub out: PathBuf,
    /// Certificates (PEM) to revoke; each must be a leaf of this CA.
    pub revoke_certs: Vec<PathBuf>,
    /// Serial numbers (hex, `:` allowed) to revoke, for certificates whose
    /// file is gone.
    pub revoke_serials: Vec<String>,
    /// How far away the CRL's nextUpdate is.
    pub next_update: Duration,
}

/// What `crl` wrote.
#[derive(Debug, Clone)]
pub struct CrlOutcome {
    pub path: PathBuf,
    /// Every serial the new CRL revokes (hex), oldest entry first.
    pub revoked: Vec<String>,
    /// Those this run added.
    pub added: Vec<String>,
    pub next_update: OffsetDateTime,
}

/// `provd pki crl`; see the module doc. Refuses a CRL file of another CA,
/// a certificate this CA did not issue, and a malformed serial, before
/// anything is written.
pub fn crl(opts: &CrlOptions) -> Result<CrlOutcome, PkiError> {
    let ca = load_ca(&opts.ca_dir)?;
    let ca_x509 = parse_certificate(ca.cert_der(), "CA certificate")?;
    let what = format!("CRL {}", opts.out.display());
    let invalid = |reason: String| PkiError::InvalidCrl {
        what: what.clone(),
        reason,
    };
    let now = OffsetDateTime::now_utc();

    let mut revoked: Vec<RevokedCertParams> = Vec::new();
    let mut number = BigUint::from(1u32);
    match std::fs::read(&opts.out) {
        Ok(bytes) => {
            let ders = crl_ders(&bytes).map_err(&invalid)?;
            let [der] = ders.as_slice() else {
                return Err(invalid(format!(
                    "holds {} CRLs; provd pki crl keeps one CRL per file",
                    ders.len()
                )));
            };
            let old = parse_crl(der).map_err(&invalid)?;
            if !crl_signed_by(&old, &ca_x509) {
                return Err(invalid(format!(
                    "is a CRL of {}, not of this CA ({}); give another --out",
                    old.issuer(),
                    ca_x509.subject()
                )));
            }
            if let Some(n) = old.crl_number() {
                number = n + 1u32;
            }
            for entry in old.iter_revoked_certificates() {
                revoked.push(RevokedCertParams {
                    serial_number: SerialNumber::from(entry.serial().to_bytes_be()),
                    revocation_time: entry.revocation_date.to_datetime(),
                    reason_code: entry.reason_code().and_then(|(_, code)| reason(code.0)),
                    invalidity_date: None,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(PkiError::Io {
                action: "read",
                path: opts.out.clone(),
                error,
            });
        }
    }

    let mut to_add = Vec::new();
    for path in &opts.revoke_certs {
        let what = format!("certificate {}", path.display());
        let pem = read_to_string(path)?;
        let der = certificates_from_pem(pem.as_bytes(), &what)?.remove(0);
        let x509 = parse_certificate(&der, &what)?;
        if x509.is_ca() || !signed_by(&x509, &ca_x509) {
            return Err(PkiError::InvalidCertificate {
                what,
                reason: format!(
                    "is not a leaf certificate issued by the CA in {} ({})",
                    opts.ca_dir.display(),
                    ca_x509.subject()
                ),
            });
        }
        to_add.push(x509.serial.to_bytes_be());
    }
    for serial in &opts.revoke_serials {
        to_add.push(parse_serial(serial)?);
    }

    let mut added = Vec::new();
    for serial in to_add {
        if revoked
            .iter()
            .any(|r| r.serial_number.as_ref() == serial.as_slice())
        {
            continue;
        }
        added.push(serial_hex(&serial));
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: now,
            reason_code: None,
            invalidity_date: None,
        });
    }

    let span = validity_span(opts.next_update)?;
    let next_update = now
        .checked_add(span)
        .ok_or_else(|| PkiError::InvalidValidity("nextUpdate is too far away".to_owned()))?;
    let params = CertificateRevocationListParams {
        this_update: now.saturating_sub(CLOCK_SKEW),
        next_update,
        crl_number: SerialNumber::from(number.to_bytes_be()),
        issuing_distribution_point: None,
        key_identifier_method: KeyIdMethod::Sha256,
        revoked_certs: revoked,
    };
    let pem = ca.sign_crl(&params)?;
    replace_atomic(&opts.out, &pem, false)?;
    Ok(CrlOutcome {
        path: opts.out.clone(),
        revoked: params
            .revoked_certs
            .iter()
            .map(|r| serial_hex(r.serial_number.as_ref()))
            .collect(),
        added,
        next_update,
    })
}

/// A serial number as `openssl x509 -serial` or provd prints it: hex,
/// optionally `0x`-prefixed or `:`-separated. Leading zero octets dropped.
pub(super) fn parse_serial(text: &str) -> Result<Vec<u8>, PkiError> {
    let reject = |reason| PkiError::InvalidName {
        what: "serial number",
        value: text.to_owned(),
        reason,
    };
    let digits: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(reject("must be hexadecimal digits"));
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = hex::decode(padded).map_err(|_| reject("must be hexadecimal digits"))?;
    let first = bytes.iter().position(|b| *b != 0);
    let Some(first) = first else {
        return Err(reject("must not be zero"));
    };
    let bytes = bytes[first..].to_vec();
    if bytes.len() > MAX_SERIAL_BYTES {
        return Err(reject("is longer than 20 octets"));
    }
    Ok(bytes)
}

/// RFC 5280's CRLReason codes that rcgen can write back.
fn reason(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::super::tests::{DAY, pem_to_der};
    use super::super::{Ca, Role, crl_signed_by_any};
    use super::*;

    fn setup(dir: &Path) -> Ca {
        let ca = Ca::generate("crl CA", DAY).unwrap();
        fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
        fs::write(dir.join("ca.key"), ca.key_pem()).unwrap();
        ca
    }

    fn opts(dir: &Path) -> CrlOptions {
        CrlOptions {
            ca_dir: dir.to_owned(),
            out: dir.join("crl.pem"),
            revoke_certs: vec![],
            revoke_serials: vec![],
            next_update: 30 * DAY,
        }
    }

    fn read_crl(path: &Path, cas: &[Vec<u8>]) -> (super::super::CrlInfo, Vec<u8>) {
        let ders = crl_ders(&fs::read(path).unwrap()).unwrap();
        assert_eq!(ders.len(), 1);
        (crl_signed_by_any(&ders[0], cas).unwrap(), ders[0].clone())
    }

    fn crl_number(der: &[u8]) -> BigUint {
        parse_crl(der).unwrap().crl_number().unwrap().clone()
    }

    #[test]
    fn revocations_accumulate_in_numbered_crls_signed_by_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = setup(tmp.path());
        let cas = vec![pem_to_der(&ca.cert_pem())];
        let alice = ca.issue_client("alice", &[Role::Viewer], DAY).unwrap();
        fs::write(tmp.path().join("alice.pem"), &alice.cert_pem).unwrap();
        let alice_serial = serial_hex(
            parse_certificate(&pem_to_der(&alice.cert_pem), "a")
                .unwrap()
                .raw_serial(),
        );

        // No revocation yet: an empty CRL, number 1.
        let out = crl(&opts(tmp.path())).unwrap();
        assert!(out.revoked.is_empty() && out.added.is_empty());
        let (info, der) = read_crl(&out.path, &cas);
        assert_eq!(info.issuer, "CN=crl CA");
        assert_eq!(crl_number(&der), BigUint::from(1u32));
        assert!(info.next_update.unwrap() > OffsetDateTime::now_utc() + time::Duration::days(29));

        let out = crl(&CrlOptions {
            revoke_certs: vec![tmp.path().join("alice.pem")],
            revoke_serials: vec!["0A:0b".to_owned()],
            ..opts(tmp.path())
        })
        .unwrap();
        assert_eq!(out.added, vec![alice_serial.clone(), "0a0b".to_owned()]);
        let (info, der) = read_crl(&out.path, &cas);
        assert_eq!(info.revoked, vec![alice_serial.clone(), "0a0b".to_owned()]);
        assert_eq!(crl_number(&der), BigUint::from(2u32));

        // Again: kept, nothing added twice; a DER file is read as well.
        fs::write(&out.path, &der).unwrap();
        let out = crl(&CrlOptions {
            revoke_serials: vec!["0x0a0b".to_owned(), "ff".to_owned()],
            ..opts(tmp.path())
        })
        .unwrap();
        assert_eq!(out.added, vec!["ff".to_owned()]);
        let (info, der) = read_crl(&out.path, &cas);
        assert_eq!(info.revoked.len(), 3);
        assert_eq!(crl_number(&der), BigUint::from(3u32));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&out.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }

        // Signed by this CA only.
        let other = Ca::generate("other CA", DAY).unwrap();
        let err = crl_signed_by_any(&der, &[pem_to_der(&other.cert_pem())]).unwrap_err();
        assert!(err.contains("CN=crl CA"), "{err}");
    }

    #[test]
    fn foreign_certificates_crls_and_bad_serials_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = setup(tmp.path());
        let other = Ca::generate("other CA", DAY).unwrap();
        let theirs = other.issue_client("mallory", &[Role::Admin], DAY).unwrap();
        fs::write(tmp.path().join("theirs.pem"), &theirs.cert_pem).unwrap();
        let err = crl(&CrlOptions {
            revoke_certs: vec![tmp.path().join("theirs.pem")],
            ..opts(tmp.path())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("not a leaf certificate issued by"),
            "{err}"
        );
        assert!(!tmp.path().join("crl.pem").exists(), "nothing written");
        let err = crl(&CrlOptions {
            revoke_certs: vec![tmp.path().join("ca.pem")],
            ..opts(tmp.path())
        })
        .unwrap_err();
        assert!(err.to_string().contains("not a leaf"), "{err}");

        // A CRL file of another CA is not overwritten.
        let other_dir = tmp.path().join("other");
        fs::create_dir(&other_dir).unwrap();
        setup(&other_dir);
        let foreign = crl(&opts(&other_dir)).unwrap();
        fs::copy(&foreign.path, tmp.path().join("crl.pem")).unwrap();
        let err = crl(&opts(tmp.path())).unwrap_err();
        assert!(err.to_string().contains("not of this CA"), "{err}");
        fs::write(tmp.path().join("crl.pem"), "junk").unwrap();
        let err = crl(&opts(tmp.path())).unwrap_err();
        assert!(err.to_string().contains("crl.pem"), "{err}");
        let _ = ca;

        for bad in ["", "xyz", "00", "0x", &"ab".repeat(21)] {
            assert!(parse_serial(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_serial("00:01").unwrap(), vec![1]);
        assert_eq!(parse_serial("abc").unwrap(), vec![0x0a, 0xbc]);
    }
}
