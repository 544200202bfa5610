//! `provd pki renew`: a leaf certificate issued again by the CA that issued
//! it, with the same subject, SANs (so the same roles), key usages and EKU,
//! a new serial and a new validity period; the same key pair unless a new
//! one is asked for. The certificate file (and the key file, for a new key)
//! is replaced atomically, so the daemon's file watch loads the new server
//! certificate without a restart.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use sha2::Digest;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::GeneralName;

use super::ca::{generate_key, validity_window};
use super::files::{load_ca, read_to_string, replace_atomic};
use super::inspect::{CertificateInfo, certificates_from_pem, parse_certificate, signed_by};
use super::{Ca, PkiError};

/// Options for `provd pki renew`.
#[derive(Debug, Clone)]
pub struct RenewOptions {
    /// Directory holding `ca.pem` and `ca.key` (the CA that issued the
    /// certificates).
    pub ca_dir: PathBuf,
    /// The certificate files (PEM) to renew; each is replaced in place.
    pub certs: Vec<PathBuf>,
    /// With `new_key`, each certificate's key file (`<stem>.key` beside it
    /// unless given here; only with a single certificate).
    pub key: Option<PathBuf>,
    /// Generate a new key pair (ECDSA P-256) instead of keeping the old one.
    pub new_key: bool,
    /// Renew only a certificate whose notAfter is at most this far away.
    pub if_expiring_within: Option<Duration>,
    /// The new validity; `None` keeps the old certificate's lifetime.
    pub validity: Option<Duration>,
}

/// What `renew` did with one certificate.
#[derive(Debug, Clone)]
pub enum RenewOutcome {
    /// Replaced with a new certificate.
    Renewed(Box<Renewed>),
    /// Left alone: further from expiry than `if_expiring_within`.
    Skipped {
        cert: PathBuf,
        not_after: OffsetDateTime,
    },
}

/// A certificate `renew` replaced.
#[derive(Debug, Clone)]
pub struct Renewed {
    pub cert: PathBuf,
    /// The new key's file, when a new key was made.
    pub new_key: Option<PathBuf>,
    pub old: CertificateInfo,
    pub new: CertificateInfo,
    /// The CA's notAfter, when it comes before the new certificate's.
    pub ca_expires_first: Option<OffsetDateTime>,
}

/// One certificate ready to be renewed: read and checked before anything
/// is written.
struct Planned {
    path: PathBuf,
    key_path: PathBuf,
    der: Vec<u8>,
    rest_of_chain: String,
    old: CertificateInfo,
}

/// `provd pki renew`: loads the CA from `opts.ca_dir`, reads and checks
/// every certificate (a leaf the CA issued, something provd can carry
/// over), then renews each one that is due, replacing its file atomically
/// (and its key file first, for a new key). Nothing is written when a
/// certificate fails the checks.
pub fn renew(opts: &RenewOptions) -> Result<Vec<RenewOutcome>, PkiError> {
    if opts.certs.is_empty() {
        return Err(PkiError::InvalidOptions(
            "give at least one certificate to renew",
        ));
    }
    if opts.key.is_some() && (opts.certs.len() != 1 || !opts.new_key) {
        return Err(PkiError::InvalidOptions(
            "--key goes with --new-key and a single certificate",
        ));
    }
    let ca = load_ca(&opts.ca_dir)?;
    let ca_x509 = parse_certificate(ca.cert_der(), "CA certificate")?;

    let mut planned = Vec::new();
    for path in &opts.certs {
        let what = format!("certificate {}", path.display());
        let pem = read_to_string(path)?;
        let der = certificates_from_pem(pem.as_bytes(), &what)?.remove(0);
        let x509 = parse_certificate(&der, &what)?;
        if x509.is_ca() {
            return Err(invalid(
                &what,
                "is a CA; renew replaces leaf certificates (a CA is rotated as deploy/pki/README.md says)",
            ));
        }
        if !signed_by(&x509, &ca_x509) {
            return Err(invalid(
                &what,
                &format!(
                    "was not issued by the CA in {} ({}); renew it with the PKI that issued it ({})",
                    opts.ca_dir.display(),
                    ca_x509.subject(),
                    x509.issuer()
                ),
            ));
        }
        // Checked now, so a certificate provd cannot carry over stops the
        // run before anything is written.
        renewal_params(&x509, &what)?;
        let rest_of_chain = after_first_certificate(&pem).to_owned();
        planned.push(Planned {
            key_path: opts
                .key
                .clone()
                .unwrap_or_else(|| path.with_extension("key")),
            path: path.clone(),
            old: CertificateInfo::of(&x509),
            der,
            rest_of_chain,
        });
    }

    let now = OffsetDateTime::now_utc();
    let mut outcomes = Vec::new();
    for p in planned {
        if let Some(within) = opts.if_expiring_within {
            let left = p.old.not_after - now;
            if left > time::Duration::try_from(within).unwrap_or(time::Duration::MAX) {
                outcomes.push(RenewOutcome::Skipped {
                    cert: p.path,
                    not_after: p.old.not_after,
                });
                continue;
            }
        }
        outcomes.push(renew_one(&ca, &p, opts)?);
    }
    Ok(outcomes)
}

fn renew_one(ca: &Ca, p: &Planned, opts: &RenewOptions) -> Result<RenewOutcome, PkiError> {
    let what = format!("certificate {}", p.path.display());
    let x509 = parse_certificate(&p.der, &what)?;
    let validity = opts
        .validity
        .unwrap_or_else(|| lifetime(p.old.not_before, p.old.not_after));
    let (not_before, not_after) = validity_window(validity)?;
    let mut params = renewal_params(&x509, &what)?;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());

    let (cert_pem, key_pem) = if opts.new_key {
        let key = generate_key(&format!("private key for {what}"))?;
        let cert = ca.sign(&params, &key, &what)?;
        (cert, Some(key.serialize_pem()))
    } else {
        let spki = SubjectPublicKeyInfo::from_der(x509.public_key().raw).map_err(|e| {
            invalid(
                &what,
                &format!("its public key cannot be carried over: {e}"),
            )
        })?;
        (ca.sign(&params, &spki, &what)?, None)
    };
    let new_der = certificates_from_pem(cert_pem.as_bytes(), &what)?.remove(0);
    let new = CertificateInfo::from_der(&new_der, &what)?;

    // Key before certificate, so a watcher that sees the new certificate
    // finds its key already in place.
    let new_key = match key_pem {
        Some(key_pem) => {
            replace_atomic(&p.key_path, &key_pem, true)?;
            Some(p.key_path.clone())
        }
        None => None,
    };
    replace_atomic(&p.path, &format!("{cert_pem}{}", p.rest_of_chain), false)?;
    Ok(RenewOutcome::Renewed(Box::new(Renewed {
        cert: p.path.clone(),
        new_key,
        old: p.old.clone(),
        ca_expires_first: (ca.not_after() < new.not_after).then(|| ca.not_after()),
        new,
    })))
}

/// The old certificate's lifetime: whole days when it is at least one
/// (provd backdates by a minute, which must not add up over renewals).
fn lifetime(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Duration {
    let secs = u64::try_from((not_after - not_before).whole_seconds()).unwrap_or(0);
    let days = (secs + 43_200) / 86_400;
    if days >= 1 {
        Duration::from_secs(days * 86_400)
    } else {
        Duration::from_secs(secs.max(60))
    }
}

/// A random 20-byte serial (positive, top byte never zero). Needed: with
/// the same key rcgen's default serial (a hash of the public key) would
/// repeat the old certificate's, and a CRL revokes by serial.
fn random_serial() -> SerialNumber {
    let mut seed = uuid::Uuid::new_v4().as_bytes().to_vec();
    seed.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut serial = sha2::Sha256::digest(&seed)[..20].to_vec();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    SerialNumber::from(serial)
}

/// The old certificate's subject, SANs, key usages and EKU as rcgen
/// parameters (validity and serial are set by the caller).
fn renewal_params(x509: &X509Certificate<'_>, what: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(x509, what)?;
    params.subject_alt_names = sans(x509, what)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = key_usages(x509, what)?;
    params.extended_key_usages = extended_key_usages(x509, what)?;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn distinguished_name(
    x509: &X509Certificate<'_>,
    what: &str,
) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in x509.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(invalid(what, "its subject has a multi-valued RDN"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .map(Iterator::collect)
            .ok_or_else(|| invalid(what, "its subject has an attribute type out of range"))?;
        let ty = DnType::from_oid(&oid);
        if seen.contains(&ty) {
            return Err(invalid(
                what,
                "its subject repeats an attribute type, which provd cannot carry over",
            ));
        }
        let text = attr.as_str().map_err(|_| {
            invalid(
                what,
                "its subject has a value that is not a string provd can carry over",
            )
        })?;
        let bad = |_| invalid(what, "its subject has a value that does not fit its type");
        let value = match attr.attr_value().tag() {
            Tag::PrintableString => DnValue::PrintableString(text.try_into().map_err(bad)?),
            Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(bad)?),
            _ => DnValue::Utf8String(text.to_owned()),
        };
        seen.push(ty.clone());
        dn.push(ty, value);
    }
    Ok(dn)
}

fn sans(x509: &X509Certificate<'_>, what: &str) -> Result<Vec<SanType>, PkiError> {
    let ext = x509
        .subject_alternative_name()
        .map_err(|e| invalid(what, &format!("invalid subjectAltName: {e}")))?;
    let Some(ext) = ext else {
        return Ok(Vec::new());
    };
    let ia5 = |s: &str| {
        s.try_into()
            .map_err(|_| invalid(what, &format!("SAN {s:?} is not ASCII")))
    };
    ext.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(s) => Ok(SanType::DnsName(ia5(s)?)),
            GeneralName::URI(s) => Ok(SanType::URI(ia5(s)?)),
            GeneralName::RFC822Name(s) => Ok(SanType::Rfc822Name(ia5(s)?)),
            GeneralName::IPAddress(bytes) => ip(bytes)
                .map(SanType::IpAddress)
                .ok_or_else(|| invalid(what, "has an IP SAN of neither 4 nor 16 bytes")),
            other => Err(invalid(
                what,
                &format!("has a SAN provd cannot carry over ({other})"),
            )),
        })
        .collect()
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn key_usages(x509: &X509Certificate<'_>, what: &str) -> Result<Vec<KeyUsagePurpose>, PkiError> {
    let ku = x509
        .key_usage()
        .map_err(|e| invalid(what, &format!("invalid keyUsage: {e}")))?;
    let Some(ku) = ku else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    if ku.key_cert_sign() || ku.crl_sign() {
        return Err(invalid(
            what,
            "may sign certificates or CRLs; it is no leaf",
        ));
    }
    Ok(those_set([
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ]))
}

/// The usages whose flag is set, in order.
fn those_set<T>(flags: impl IntoIterator<Item = (bool, T)>) -> Vec<T> {
    flags
        .into_iter()
        .filter_map(|(set, usage)| set.then_some(usage))
        .collect()
}

fn extended_key_usages(
    x509: &X509Certificate<'_>,
    what: &str,
) -> Result<Vec<ExtendedKeyUsagePurpose>, PkiError> {
    let eku = x509
        .extended_key_usage()
        .map_err(|e| invalid(what, &format!("invalid extendedKeyUsage: {e}")))?;
    let Some(eku) = eku else {
        return Ok(Vec::new());
    };
    let eku = eku.value;
    let mut out = those_set([
        (eku.any, ExtendedKeyUsagePurpose::Any),
        (eku.server_auth, ExtendedKeyUsagePurpose::ServerAuth),
        (eku.client_auth, ExtendedKeyUsagePurpose::ClientAuth),
        (eku.code_signing, ExtendedKeyUsagePurpose::CodeSigning),
        (
            eku.email_protection,
            ExtendedKeyUsagePurpose::EmailProtection,
        ),
        (eku.time_stamping, ExtendedKeyUsagePurpose::TimeStamping),
        (eku.ocsp_signing, ExtendedKeyUsagePurpose::OcspSigning),
    ]);
    for oid in &eku.other {
        let arcs = oid
            .iter()
            .map(Iterator::collect)
            .ok_or_else(|| invalid(what, "has an extended key usage out of range"))?;
        out.push(ExtendedKeyUsagePurpose::Other(arcs));
    }
    Ok(out)
}

fn invalid(what: &str, reason: &str) -> PkiError {
    PkiError::InvalidCertificate {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

/// What follows the first PEM certificate of a file (the chain's CA
/// certificates, as they were written), from the line after its END.
fn after_first_certificate(pem: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    match pem.find(END) {
        Some(at) => {
            let rest = &pem[at + END.len()..];
            rest.strip_prefix("\r\n")
                .or_else(|| rest.strip_prefix('\n'))
                .unwrap_or(rest)
        }
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::super::tests::{DAY, assert_chains, parse, pem_to_der};
    use super::super::{Role, identity_from_der};
    use super::*;

    /// A CA in `dir` (ca.pem, ca.key), returned for issuing.
    fn ca_dir(dir: &Path) -> Ca {
        let ca = Ca::generate("renew CA", 400 * DAY).unwrap();
        fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
        fs::write(dir.join("ca.key"), ca.key_pem()).unwrap();
        ca
    }

    fn write_pair(dir: &Path, name: &str, pair: &super::super::PemPair) -> PathBuf {
        fs::write(dir.join(format!("{name}.key")), &pair.key_pem).unwrap();
        fs::write(dir.join(format!("{name}.pem")), &pair.cert_pem).unwrap();
        dir.join(format!("{name}.pem"))
    }

    fn opts(dir: &Path, certs: Vec<PathBuf>) -> RenewOptions {
        RenewOptions {
            ca_dir: dir.to_owned(),
            certs,
            key: None,
            new_key: false,
            if_expiring_within: None,
            validity: None,
        }
    }

    fn der_of(path: &Path) -> Vec<u8> {
        pem_to_der(&fs::read_to_string(path).unwrap())
    }

    fn spki(der: &[u8]) -> Vec<u8> {
        parse(der).public_key().raw.to_vec()
    }

    #[test]
    fn a_near_expiry_client_is_renewed_with_its_key_roles_and_a_new_serial() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = ca_dir(tmp.path());
        let now = OffsetDateTime::now_utc();
        let pair = ca
            .issue_client_with_validity(
                "alice",
                &[Role::Operator, Role::Viewer],
                now - time::Duration::days(89),
                now + time::Duration::days(1),
            )
            .unwrap();
        let cert = write_pair(tmp.path(), "alice", &pair);
        let old = der_of(&cert);

        let outcomes = renew(&RenewOptions {
            if_expiring_within: Some(30 * DAY),
            ..opts(tmp.path(), vec![cert.clone()])
        })
        .unwrap();
        let [RenewOutcome::Renewed(r)] = outcomes.as_slice() else {
            panic!("{outcomes:?}");
        };
        let (new_key, o, n) = (&r.new_key, &r.old, &r.new);
        assert!(new_key.is_none());
        let new = der_of(&cert);
        assert_chains(&new, &ca.cert_pem());
        assert_eq!(spki(&new), spki(&old), "same key pair");
        assert_ne!(n.serial, o.serial);
        assert_ne!(parse(&new).raw_serial(), parse(&old).raw_serial());
        assert!(n.not_after > o.not_after + time::Duration::days(80));
        assert_eq!(
            identity_from_der(&new).unwrap(),
            ("alice".to_owned(), vec![Role::Viewer, Role::Operator])
        );
        let x509 = parse(&new);
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        // The key file is not touched; nothing else is left behind.
        assert_eq!(
            fs::read_to_string(tmp.path().join("alice.key")).unwrap(),
            pair.key_pem
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_server_keeps_its_names_and_a_new_key_replaces_the_key_file_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = ca_dir(tmp.path());
        let pair = ca
            .issue_server(
                &["provd.example.test".to_owned(), "provd".to_owned()],
                &["10.0.0.5".parse().unwrap()],
                2 * DAY,
            )
            .unwrap();
        let cert = write_pair(tmp.path(), "server", &pair);
        // The chain's CA after the leaf, as a server file may carry it.
        fs::write(&cert, format!("{}{}", pair.cert_pem, ca.cert_pem())).unwrap();
        let key = tmp.path().join("server.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        }
        let old = der_of(&cert);

        renew(&RenewOptions {
            new_key: true,
            validity: Some(90 * DAY),
            ..opts(tmp.path(), vec![cert.clone()])
        })
        .unwrap();
        let new = der_of(&cert);
        assert_chains(&new, &ca.cert_pem());
        assert_ne!(spki(&new), spki(&old));
        let chain = certificates_from_pem(&fs::read(&cert).unwrap(), "chain").unwrap();
        assert_eq!(chain, vec![new.clone(), pem_to_der(&ca.cert_pem())]);
        let new_key = fs::read_to_string(&key).unwrap();
        assert_ne!(new_key, pair.key_pem);
        let key_pair = rcgen::KeyPair::from_pem(&new_key).unwrap();
        assert_eq!(
            parse(&new).public_key().subject_public_key.data.as_ref(),
            key_pair.public_key_raw()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640, "the key keeps its (private) mode");
        }
        let x509 = parse(&new);
        assert_eq!(x509.subject().to_string(), "CN=provd.example.test");
        let san = x509.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
        let old_x509 = parse(&old);
        let old_san = old_x509.subject_alternative_name().unwrap().unwrap().value;
        let old_names: Vec<String> = old_san
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, old_names);
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let left = x509.validity().not_after.to_datetime() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::days(89), "{left}");
    }

    #[test]
    fn a_fresh_certificate_is_skipped_and_the_lifetime_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = ca_dir(tmp.path());
        let fresh = write_pair(
            tmp.path(),
            "fresh",
            &ca.issue_client("fresh", &[Role::Viewer], 365 * DAY)
                .unwrap(),
        );
        let due = write_pair(
            tmp.path(),
            "due",
            &ca.issue_client("due", &[Role::Viewer], 10 * DAY).unwrap(),
        );
        let before = fs::read(&fresh).unwrap();
        let outcomes = renew(&RenewOptions {
            if_expiring_within: Some(30 * DAY),
            ..opts(tmp.path(), vec![fresh.clone(), due.clone()])
        })
        .unwrap();
        assert!(matches!(&outcomes[0], RenewOutcome::Skipped { cert, .. } if *cert == fresh));
        assert_eq!(fs::read(&fresh).unwrap(), before);
        let RenewOutcome::Renewed(r) = &outcomes[1] else {
            panic!("{outcomes:?}");
        };
        let new = &r.new;
        // The old lifetime (10 days), not the default of `issue`.
        let days = (new.not_after - new.not_before).whole_days();
        assert_eq!(days, 10, "{new:?}");
        assert_eq!(lifetime(new.not_before, new.not_after), 10 * DAY);
    }

    #[test]
    fn foreign_certificates_and_cas_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = ca_dir(tmp.path());
        let other = Ca::generate("other CA", DAY).unwrap();
        let ours = write_pair(
            tmp.path(),
            "ours",
            &ca.issue_client("ours", &[Role::Viewer], DAY).unwrap(),
        );
        let theirs = write_pair(
            tmp.path(),
            "theirs",
            &other.issue_client("theirs", &[Role::Viewer], DAY).unwrap(),
        );
        let before = fs::read(&ours).unwrap();
        let err = renew(&opts(tmp.path(), vec![ours.clone(), theirs.clone()])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("theirs.pem") && msg.contains("not issued by"),
            "{msg}"
        );
        assert_eq!(fs::read(&ours).unwrap(), before, "nothing written");

        let err = renew(&opts(tmp.path(), vec![tmp.path().join("ca.pem")])).unwrap_err();
        assert!(err.to_string().contains("is a CA"), "{err}");
        let err = renew(&opts(tmp.path(), vec![])).unwrap_err();
        assert!(matches!(err, PkiError::InvalidOptions(_)), "{err}");
        let err = renew(&RenewOptions {
            key: Some(tmp.path().join("x.key")),
            ..opts(tmp.path(), vec![ours.clone()])
        })
        .unwrap_err();
        assert!(err.to_string().contains("--key"), "{err}");
        // A secret never reaches an error.
        for e in [err, renew(&opts(tmp.path(), vec![theirs])).unwrap_err()] {
            assert!(!e.to_string().contains("PRIVATE KEY"));
        }
    }
}
