//! The fake's Kerberos: which principal's keys sit in which keytab or cache
//! ([`FakeDirectory::set_kerberos`]), and the gMSA proof (`authenticate`),
//! failing the way MIT and the lab's KDC fail, classified as the real
//! backend classifies them.

use secrecy::{ExposeSecret, SecretString};

use super::{FakeDirectory, State};
use crate::backends::directory::{DirectoryError, KerberosSource};
use crate::model::ManagedPassword;

impl FakeDirectory {
    /// `principal` (`name$@REALM`) has its keys in `source` on this host.
    pub fn set_kerberos(&self, principal: &str, source: KerberosSource) {
        self.lock()
            .kerberos
            .insert(principal.to_ascii_lowercase(), source);
    }
}

impl State {
    /// A Kerberos bind as `principal` from `source`: the keys must be there
    /// and the account must exist.
    pub(super) fn check_kerberos(
        &self,
        dc: &str,
        principal: &str,
        source: &KerberosSource,
    ) -> Result<(), DirectoryError> {
        let known = self.kerberos.get(&principal.to_ascii_lowercase()) == Some(source);
        if known && self.bind_account(principal).is_some() {
            return Ok(());
        }
        let what = source.describe();
        Err(DirectoryError::Kerberos {
            dc: dc.into(),
            reason: format!(
                "no usable credentials for {principal} in {what}: No key table entry found for \
                 {principal}"
            ),
        })
    }

    /// The proof of a password: the account's own password, or the current
    /// password of a gMSA whose blob is seeded (in its Kerberos form).
    pub(super) fn check_password_proof(
        &self,
        dc: &str,
        principal: &str,
        password: &SecretString,
    ) -> Result<(), DirectoryError> {
        let rejected = || DirectoryError::KerberosRejected {
            dc: dc.into(),
            reason: format!(
                "the KDC refused {principal} with its password: Preauthentication failed"
            ),
        };
        let sam = self.bind_account(principal).ok_or_else(rejected)?;
        let account = self.tree.objects.values().find(|o| {
            o.text("sAMAccountName")
                .is_some_and(|s| s.eq_ignore_ascii_case(&sam))
        });
        // ACCOUNTDISABLE (0x2): what samba-tool's gMSA (4130) gets, and
        // every logon fails however right the password.
        let disabled = account
            .and_then(|o| o.text("userAccountControl"))
            .and_then(|uac| uac.parse::<u32>().ok())
            .is_some_and(|uac| uac & 0x2 != 0);
        if disabled {
            return Err(DirectoryError::KerberosRejected {
                dc: dc.into(),
                reason: format!(
                    "the KDC refused {principal} with its password: Client's credentials have \
                     been revoked"
                ),
            });
        }
        if self
            .passwords
            .get(&sam)
            .is_some_and(|p| p == password.expose_secret())
        {
            return Ok(());
        }
        let gmsa_password = account
            .and_then(|o| self.managed_passwords.get(&super::tree::norm(&o.dn)))
            .and_then(|blob| ManagedPassword::decode(blob).ok());
        match gmsa_password {
            Some(p)
                if p.current.kerberos_password().expose_secret() == password.expose_secret() =>
            {
                Ok(())
            }
            _ => Err(rejected()),
        }
    }
}
