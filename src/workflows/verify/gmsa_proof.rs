//! Verify's `host.gmsa.retrievable`: may this host retrieve the gMSA's
//! password (msDS-GroupMSAMembership), did this session retrieve it, and
//! does the account authenticate with it — the three `proof` levels.

use super::{Category, Check, Run, Status, check};
use crate::backends::directory::{Directory, DirectoryError, DirectorySession};
use crate::model::{ManagedPassword, ManagedPasswordError, computer_account};
use crate::workflows::domain_controllers::{Connect, DcSession, Reader};
use crate::workflows::service_account::{self, AccountRecord};

pub(super) async fn retrievable_check(
    run: &Run,
    domain: &str,
    account: &AccountRecord,
    reader: &Reader,
) -> Check {
    let credential = reader.credential();
    let host_account = computer_account(&run.host.machine_name());
    let c = check(
        "host.gmsa.retrievable",
        Category::Host,
        Status::Pass,
        String::new(),
    )
    .subject(domain)
    .attr("host_account", host_account.clone());
    let result = async {
        let mut session = DcSession::open(&run.dcs, domain, credential, Connect::Quiet).await?;
        async {
            let root = session.root_dse().await?;
            let domain_dn = root
                .first("defaultNamingContext")
                .unwrap_or_default()
                .to_owned();
            let Some(entry) =
                service_account::read_account_entry(session.as_mut(), &domain_dn, account).await?
            else {
                return Ok(Err(format!(
                    "{} does not exist",
                    account.distinguished_name
                )));
            };
            if let Err(why) = service_account::host_may_retrieve(
                session.as_mut(),
                &domain_dn,
                &entry,
                &host_account,
            )
            .await?
            {
                return Ok(Err(why));
            }
            let principal = format!(
                "{}@{}",
                account.sam_account_name,
                domain.to_ascii_uppercase()
            );
            Ok::<_, crate::workflows::Error>(Ok(proof(
                session.as_mut(),
                run.dcs.directory().as_ref(),
                &entry.dn,
                reader,
                &host_account,
                &principal,
            )
            .await))
        }
        .await
    }
    .await;
    let may = format!(
        "{host_account} may retrieve the password of {}",
        account.sam_account_name
    );
    match result {
        Ok(Ok(Proof::Authenticated(facts))) => Check {
            message: format!(
                "{may}: this session retrieved and decoded it ({facts}), and the account \
                 authenticated with it (Kerberos)"
            ),
            ..c
        }
        .attr("proof", "authenticated"),
        Ok(Ok(Proof::Retrieved(facts, why_not))) => Check {
            message: format!(
                "{may}: this session retrieved and decoded it ({facts}); not authenticated with \
                 it: {why_not}"
            ),
            ..c
        }
        .attr("proof", "retrieved"),
        Ok(Ok(Proof::Refused(facts, why))) => Check {
            status: Status::Fail,
            message: format!(
                "{may}: this session retrieved and decoded it ({facts}), but the KDC refuses the \
                 account with it: {why}"
            ),
            ..c
        }
        .attr("proof", "retrieved")
        .remedy(format!(
            "check that {} is enabled (userAccountControl 4096, as New-ADServiceAccount makes it) \
             and not locked out",
            account.sam_account_name
        )),
        Ok(Ok(Proof::Permitted(why))) => Check {
            message: format!("{may} (msDS-GroupMSAMembership); the password was not read: {why}"),
            ..c
        }
        .attr("proof", "permitted"),
        Ok(Ok(Proof::Undecodable(e))) => Check {
            status: Status::Fail,
            message: format!(
                "{may}, but the msDS-ManagedPassword the DC handed out is invalid: {e}"
            ),
            ..c
        },
        Ok(Err(why)) => Check {
            status: Status::Fail,
            message: why,
            ..c
        }
        .remedy(format!(
            "allow {host_account} to retrieve the password: CreateGmsa with it among the principals"
        )),
        Err(e) => Check {
            status: Status::Fail,
            message: format!("cannot check: {e}"),
            ..c
        },
    }
}

/// How far `host.gmsa.retrievable` got past "may retrieve". Carries no
/// secret: only the decoded blob's shape.
enum Proof {
    /// Read, decoded, and a Kerberos bind as the gMSA with it succeeded.
    Authenticated(String),
    /// Read and decoded; what it holds, and why it was not proven (e.g. no
    /// Kerberos configuration on this host).
    Retrieved(String, String),
    /// Read and decoded, and the KDC refused the account with it.
    Refused(String, String),
    /// The principals allow it, this session did not read it; why.
    Permitted(String),
    /// The DC handed out a blob that does not decode.
    Undecodable(ManagedPasswordError),
}

/// Reads the gMSA's password through the check's own session. Bound with
/// the request's credential, usually the operator's, which is no principal,
/// the DC withholds the attribute and the proof stays at "permitted"; bound
/// as this host (a request's credential for it, or the host's own identity
/// when the request has none), on a DC that hands gMSA passwords out, it
/// reaches "retrieved". The blob and the decoded passwords are zeroized
/// when they drop here; nothing of them leaves but lengths and intervals.
async fn proof(
    session: &mut dyn DirectorySession,
    directory: &dyn Directory,
    dn: &str,
    reader: &Reader,
    host_account: &str,
    principal: &str,
) -> Proof {
    let bound = reader.who();
    let blob = match session.read_managed_password(dn).await {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            let not_host = if reader.is_host() {
                String::new()
            } else {
                format!(", not as {host_account}")
            };
            return Proof::Permitted(format!(
                "the DC withheld msDS-ManagedPassword from this session, which binds as \
                 {bound}{not_host} (a DC that cannot hand out gMSA passwords, such as Samba \
                 before 4.20, withholds it from everyone)"
            ));
        }
        Err(e) => {
            return Proof::Permitted(format!(
                "reading msDS-ManagedPassword as {bound} failed: {e}"
            ));
        }
    };
    let password = match ManagedPassword::decode(&blob) {
        Ok(password) => password,
        Err(e) => return Proof::Undecodable(e),
    };
    let facts = format!(
        "current password of {} UTF-16 units, {} previous password, read again within {} s",
        password.current.len_units(),
        if password.previous.is_some() {
            "a"
        } else {
            "no"
        },
        password.query_interval.as_secs()
    );
    // The proof is an AS exchange and a sealed bind as the gMSA on the DC
    // that handed the password out: the password never leaves provd.
    let kerberos = password.current.kerberos_password();
    match directory
        .authenticate(session.server(), principal, &kerberos)
        .await
    {
        Ok(()) => Proof::Authenticated(facts),
        Err(e @ DirectoryError::KerberosRejected { .. }) => Proof::Refused(facts, e.to_string()),
        Err(e) => Proof::Retrieved(facts, e.to_string()),
    }
}
