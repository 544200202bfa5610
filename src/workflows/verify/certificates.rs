//! `provd.certificate.expiry`: the certificates provd's own TLS listener
//! serves now — the server certificate, any CA certificates after it in
//! `tls.cert`, and each CA of `tls.client_ca` — PASS, WARN within 30 days
//! of notAfter (as `directory.dc.certificate`), FAIL once expired. The
//! remedy says how to renew: `provd pki renew` when provd's own CA (a
//! self-signed CA in `tls.client_ca`) issued the server certificate, the
//! operator's own PKI otherwise. Reads only what the listener loaded: no
//! credential, no file access, so the drift schedule runs it too.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::{Category, Check, Run, Status, check};
use crate::pki::{CertificateInfo, ServedCertificates, is_signed_by, rfc3339};

/// The check's id.
pub(super) const ID: &str = "provd.certificate.expiry";

/// What the TLS listener serves now, republished at each reload.
pub type Served = watch::Receiver<Arc<ServedCertificates>>;

/// A certificate this close to its notAfter is a WARN.
const WARN_WITHIN: time::Duration = time::Duration::days(30);

/// Which certificate of the listener's a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The server's own certificate (the chain's first).
    Server,
    /// A CA certificate after it in `tls.cert`.
    Chain,
    /// A CA of `tls.client_ca`.
    ClientCa,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Chain => "chain",
            Role::ClientCa => "client_ca",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Role::Server => "server certificate",
            Role::Chain => "CA certificate in tls.cert",
            Role::ClientCa => "client CA",
        }
    }
}

pub(super) fn checks(run: &Run, now: OffsetDateTime) -> Vec<Check> {
    judge_all(&run.served, now)
}

fn judge_all(served: &ServedCertificates, now: OffsetDateTime) -> Vec<Check> {
    let mut out = Vec::new();
    for (i, der) in served.chain.iter().enumerate() {
        let role = if i == 0 { Role::Server } else { Role::Chain };
        // provd's own CA: a self-signed CA of tls.client_ca signed the
        // server certificate (what `provd pki init` makes), so `provd pki
        // renew` can renew it with that CA's key.
        let by_own_ca = role == Role::Server
            && served.client_cas.iter().any(|ca| {
                is_signed_by(der, ca)
                    && CertificateInfo::from_der(ca, "client CA").is_ok_and(|c| c.self_signed)
            });
        out.push(judge(served, der, role, by_own_ca, now));
    }
    for der in &served.client_cas {
        out.push(judge(served, der, Role::ClientCa, false, now));
    }
    out
}

fn judge(
    served: &ServedCertificates,
    der: &[u8],
    role: Role,
    by_own_ca: bool,
    now: OffsetDateTime,
) -> Check {
    let file = match role {
        Role::Server | Role::Chain => &served.cert_file,
        Role::ClientCa => &served.client_ca_file,
    };
    let info = match CertificateInfo::from_der(der, role.noun()) {
        Ok(info) => info,
        Err(e) => {
            return check(ID, Category::Host, Status::Warn, e.to_string())
                .subject(role.noun())
                .attr("certificate", role.label())
                .attr("file", file.display().to_string())
                .remedy(format!(
                    "replace {} with a certificate provd can read",
                    file.display()
                ));
        }
    };
    let left = info.not_after - now;
    let days = left.whole_days();
    let until = rfc3339(info.not_after);
    let noun = role.noun();
    let (status, message) = if left <= time::Duration::ZERO {
        (
            Status::Fail,
            format!("{noun} {} expired at {until}", info.subject),
        )
    } else if left < WARN_WITHIN {
        (
            Status::Warn,
            format!("{noun} {} expires in {days} days, at {until}", info.subject),
        )
    } else {
        (
            Status::Pass,
            format!(
                "{noun} {} is valid until {until} ({days} days)",
                info.subject
            ),
        )
    };
    let mut c = check(ID, Category::Host, status, message)
        .subject(format!("{} {}", role.label(), info.subject))
        .attr("certificate", role.label())
        .attr("file", file.display().to_string())
        .attr("subject", info.subject.clone())
        .attr("issuer", info.issuer.clone())
        .attr("serial", info.serial.clone())
        .attr("not_after", until)
        .attr("days_left", days.to_string());
    if role == Role::Server {
        c = c.attr("issued_by_provd_ca", by_own_ca.to_string());
    }
    if status == Status::Pass {
        return c;
    }
    c.remedy(remedy(served, &info, role, by_own_ca))
}

fn remedy(
    served: &ServedCertificates,
    info: &CertificateInfo,
    role: Role,
    by_own_ca: bool,
) -> String {
    let cert = served.cert_file.display();
    // A store certificate's path is PowerShell's: `cert:\LocalMachine\…`.
    let in_store = served.cert_file.to_string_lossy().starts_with(r"cert:\");
    match role {
        Role::Server if in_store => format!(
            "renew it in the certificate store ({cert}, issued by {}): by certificate \
             enrollment, or import the renewal and link it from this certificate (its renewal \
             property), or set tls.cert_thumbprint to the new one; the daemon serves it within \
             tls.reload_interval, without a restart",
            info.issuer
        ),
        Role::Server if by_own_ca => format!(
            "renew it with provd's CA: `provd pki renew --ca-dir {} {cert}`, run where that \
             directory holds the CA's ca.pem and ca.key (the same key is kept; the daemon \
             loads the new certificate without a restart; --if-expiring-within 30d makes it \
             a scheduled task's job)",
            dir_of(&served.client_ca_file)
        ),
        Role::Server => format!(
            "it was not issued by provd's own CA (no self-signed CA in tls.client_ca {} signed \
             it) but by {}: renew it with that PKI and replace {cert} and its key in place \
             (key first, each by rename); the daemon loads them without a restart",
            served.client_ca_file.display(),
            info.issuer
        ),
        Role::Chain => format!(
            "renew this CA certificate with the PKI that issued it ({}) and replace it in {cert}",
            info.issuer
        ),
        Role::ClientCa if info.self_signed => format!(
            "rotate the CA before it expires: make a new one (`provd pki init NEWDIR`), put old \
             and new together in {}, reissue the server and client certificates from the new \
             CA, then drop the old one (deploy/pki/README.md, Rotation)",
            served.client_ca_file.display()
        ),
        Role::ClientCa => format!(
            "replace this CA certificate in {} from the PKI that issued it ({})",
            served.client_ca_file.display(),
            info.issuer
        ),
    }
}

fn dir_of(path: &Path) -> String {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::pki::{Ca, certificates_from_pem};

    const DAY: Duration = Duration::from_secs(86_400);

    fn der(pem: &str) -> Vec<u8> {
        certificates_from_pem(pem.as_bytes(), "test")
            .unwrap()
            .remove(0)
    }

    fn served(chain: Vec<Vec<u8>>, cas: Vec<Vec<u8>>) -> ServedCertificates {
        ServedCertificates {
            cert_file: PathBuf::from("/etc/provd/pki/server.pem"),
            client_ca_file: PathBuf::from("/etc/provd/pki/ca.pem"),
            chain,
            client_cas: cas,
        }
    }

    #[test]
    fn pass_warn_and_fail_by_days_left_with_the_renew_command() {
        let ca = Ca::generate("provd CA", 400 * DAY).unwrap();
        let server = ca
            .issue_server(&["localhost".into()], &[], 365 * DAY)
            .unwrap();
        let s = served(vec![der(&server.cert_pem)], vec![der(&ca.cert_pem())]);
        let now = OffsetDateTime::now_utc();

        let checks = judge_all(&s, now);
        assert_eq!(checks.len(), 2);
        let [srv, client_ca] = checks.as_slice() else {
            unreachable!()
        };
        assert_eq!(srv.id, ID);
        assert_eq!(srv.category, Category::Host);
        assert_eq!(srv.status, Status::Pass, "{srv:?}");
        assert_eq!(srv.subject, "server CN=localhost");
        assert_eq!(srv.attributes["days_left"], "364");
        assert_eq!(srv.attributes["issued_by_provd_ca"], "true");
        assert!(srv.attributes["not_after"].ends_with('Z'));
        assert!(srv.remedy.is_empty());
        assert_eq!(client_ca.subject, "client_ca CN=provd CA");
        assert_eq!(client_ca.status, Status::Pass);

        let soon = judge_all(&s, now + time::Duration::days(340));
        assert_eq!(soon[0].status, Status::Warn, "{:?}", soon[0]);
        assert!(
            soon[0].message.contains("expires in 24 days"),
            "{}",
            soon[0].message
        );
        assert!(
            soon[0]
                .remedy
                .contains("provd pki renew --ca-dir /etc/provd/pki /etc/provd/pki/server.pem"),
            "{}",
            soon[0].remedy
        );
        assert_eq!(soon[1].status, Status::Pass);
        // From the Windows store: renewed there, not with `provd pki`.
        let mut store = s.clone();
        store.cert_file =
            PathBuf::from(r"cert:\LocalMachine\My\3B7E0829A1C4D5E6F708192A3B4C5D6E7F809102");
        let soon = judge_all(&store, now + time::Duration::days(340));
        assert!(
            soon[0].remedy.contains("renew it in the certificate store")
                && soon[0].remedy.contains(r"cert:\LocalMachine\My\3B7E")
                && !soon[0].remedy.contains("provd pki renew"),
            "{}",
            soon[0].remedy
        );

        let late = judge_all(&s, now + time::Duration::days(366));
        assert_eq!(late[0].status, Status::Fail);
        assert!(
            late[0].message.contains("expired at"),
            "{}",
            late[0].message
        );
        assert!(late[0].attributes["days_left"].starts_with('-'));
        let later = judge_all(&s, now + time::Duration::days(401));
        assert_eq!(later[1].status, Status::Fail);
        assert!(
            later[1].remedy.contains("provd pki init"),
            "{}",
            later[1].remedy
        );
    }

    #[test]
    fn a_server_certificate_from_another_pki_is_named_as_such() {
        let theirs = Ca::generate("Corp Issuing CA", 400 * DAY).unwrap();
        let ours = Ca::generate("provd CA", 400 * DAY).unwrap();
        let server = theirs
            .issue_server(&["sync.corp.test".into()], &[], 10 * DAY)
            .unwrap();
        let s = served(vec![der(&server.cert_pem)], vec![der(&ours.cert_pem())]);
        let checks = judge_all(&s, OffsetDateTime::now_utc());
        assert_eq!(checks[0].status, Status::Warn);
        assert_eq!(checks[0].attributes["issued_by_provd_ca"], "false");
        let remedy = &checks[0].remedy;
        assert!(
            remedy.contains("not issued by provd's own CA") && remedy.contains("Corp Issuing CA"),
            "{remedy}"
        );
        assert!(!remedy.contains("provd pki renew"), "{remedy}");
    }
}
