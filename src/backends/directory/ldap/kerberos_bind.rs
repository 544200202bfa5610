//! The GSSAPI bind of [`LdapDirectory`]: plain 389, then SASL GSSAPI (ldap3
//! asks for the confidentiality layer on a connection without TLS, so every
//! later message is sealed); or, with `kerberos_over_tls`, the TLS
//! connection of `transport` and no layer, ldap3 sending the
//! `tls-server-end-point` channel binding.
//!
//! Whose credentials: on Unix, a keytab's or a cache's, acquired by provd
//! (`kerberos`) and handed to ldap3; on Windows, the service's own identity,
//! SSPI's default credentials (`sasl_gssapi_bind`). Never a named principal
//! through SSPI: cross-krb5 0.4.2 frees the name before SSPI reads it.

use std::time::{Duration, SystemTime};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, StdStream};
use tracing::field::Empty;

#[cfg(unix)]
use super::kerberos;
use super::kerberos_errors::{self, Failure};
use super::session::read_root_dse;
use super::time::signed_secs;
use super::{LdapDirectory, ldap_error, observed};
use crate::backends::directory::{BindCredential, BindSecret, DirectoryError, KerberosSource};
use crate::model::parse_generalized_time;

fn failure(dc: &str, failure: Failure) -> DirectoryError {
    match failure {
        Failure::Rejected(reason) => DirectoryError::KerberosRejected {
            dc: dc.into(),
            reason,
        },
        Failure::Setup(reason) => DirectoryError::Kerberos {
            dc: dc.into(),
            reason,
        },
    }
}

/// Where a bind's credentials come from.
enum Credentials {
    /// Acquired on the blocking pool (file reads, an AS exchange).
    #[cfg(unix)]
    Acquire(Box<dyn FnOnce() -> Result<libgssapi::credential::Cred, Failure> + Send>),
    /// SSPI's default credentials: the service's logon identity.
    #[cfg(not(unix))]
    ServiceIdentity,
}

/// What ldap3 binds with, once acquired.
enum Ready {
    #[cfg(unix)]
    Supplied(cross_krb5::Cred),
    #[cfg(not(unix))]
    Default,
}

impl Credentials {
    /// The credentials, or the security provider's refusal (which the
    /// caller may explain further).
    async fn ready(
        self,
        dc: &str,
        timeout: Duration,
    ) -> Result<Result<Ready, Failure>, DirectoryError> {
        match self {
            #[cfg(unix)]
            Credentials::Acquire(acquire) => {
                let acquired = tokio::time::timeout(timeout, tokio::task::spawn_blocking(acquire))
                    .await
                    .map_err(|_| DirectoryError::Kerberos {
                        dc: dc.into(),
                        reason: format!("no answer from the KDC within {timeout:?}"),
                    })?
                    .map_err(|e| DirectoryError::Kerberos {
                        dc: dc.into(),
                        reason: e.to_string(),
                    })?;
                Ok(acquired.map(|cred| Ready::Supplied(cross_krb5::Cred::from(cred))))
            }
            #[cfg(not(unix))]
            Credentials::ServiceIdentity => {
                let _ = (dc, timeout);
                Ok(Ok(Ready::Default))
            }
        }
    }
}

/// The credentials `source` names on this platform, or why there are none.
fn credentials(principal: &str, source: &KerberosSource) -> Result<Credentials, DirectoryError> {
    match source {
        #[cfg(unix)]
        KerberosSource::Keytab(_) | KerberosSource::Ccache(_) => {
            let (principal, source) = (principal.to_owned(), source.clone());
            Ok(Credentials::Acquire(Box::new(move || {
                kerberos::acquire(&principal, &source)
            })))
        }
        #[cfg(unix)]
        KerberosSource::ServiceIdentity => Err(DirectoryError::Config(
            super::SERVICE_IDENTITY_OFF_WINDOWS.into(),
        )),
        #[cfg(not(unix))]
        KerberosSource::ServiceIdentity => {
            let _ = principal;
            Ok(Credentials::ServiceIdentity)
        }
        #[cfg(not(unix))]
        KerberosSource::Keytab(_) | KerberosSource::Ccache(_) => {
            Err(DirectoryError::Config(super::WINDOWS_KERBEROS.into()))
        }
    }
}

impl LdapDirectory {
    /// A sealed session bound as a Kerberos credential.
    pub(super) async fn connect_kerberos(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Ldap, DirectoryError> {
        let BindSecret::Kerberos(source) = &credential.secret else {
            return Err(DirectoryError::Config(
                "a password credential cannot make a Kerberos bind".into(),
            ));
        };
        let principal = credential.username.as_str();
        let credentials = credentials(principal, source)?;
        self.gssapi_bind(dc, principal, &source.describe(), credentials)
            .await
    }

    /// Binds as `principal` with `password` (Kerberos, sealed) and hangs up.
    #[cfg(unix)]
    pub(super) async fn authenticate_kerberos(
        &self,
        dc: &str,
        principal: &str,
        password: &secrecy::SecretString,
    ) -> Result<(), DirectoryError> {
        let owned = principal.to_owned();
        let password = password.clone();
        let acquire = move || kerberos::acquire_with_password(&owned, &password);
        let mut ldap = self
            .gssapi_bind(
                dc,
                principal,
                "its password",
                Credentials::Acquire(Box::new(acquire)),
            )
            .await?;
        let _ = ldap.unbind().await;
        Ok(())
    }

    async fn gssapi_bind(
        &self,
        dc: &str,
        principal: &str,
        what: &str,
        credentials: Credentials,
    ) -> Result<Ldap, DirectoryError> {
        let span = ldap_span!(
            "ldap.bind",
            dc,
            ldap.mechanism = "GSSAPI",
            ldap.kerberos_over_tls = self.settings.kerberos_over_tls
        );
        let timeout = self.settings.operation_timeout;
        observed(span, dc, "bind", async move {
            let ready = match credentials.ready(dc, timeout).await? {
                Ok(ready) => ready,
                Err(f) => return Err(failure(dc, self.explained(dc, f).await)),
            };
            let mut ldap = if self.settings.kerberos_over_tls {
                self.open(dc).await?
            } else {
                self.open_plain(dc).await?
            };
            let spn = format!("ldap/{dc}");
            let call = ldap.with_timeout(timeout);
            let bound = match ready {
                #[cfg(unix)]
                Ready::Supplied(cred) => call.sasl_gssapi_cred_bind(cred, dc).await,
                #[cfg(not(unix))]
                Ready::Default => call.sasl_gssapi_bind(dc).await,
            }
            .and_then(|r| r.success());
            match bound {
                Ok(_) => Ok(ldap),
                Err(e) => {
                    let _ = ldap.unbind().await;
                    Err(match e {
                        LdapError::GssapiOperationError(text) => {
                            let f = kerberos_errors::classify(&text, principal, what, Some(&spn));
                            failure(dc, self.explained(dc, f).await)
                        }
                        // 8: the DC wants a layer we did not get; 49: the DC
                        // refused the ticket's principal.
                        other => ldap_error(dc, other),
                    })
                }
            }
        })
        .await
    }

    /// A clock skew with its size: the DC's RootDSE `currentTime`, read
    /// anonymously on a connection of its own (a failed SASL bind leaves its
    /// connection in no state to ask).
    async fn explained(&self, dc: &str, f: Failure) -> Failure {
        if !f.is_skew() {
            return f;
        }
        let Ok(mut ldap) = self.open_plain(dc).await else {
            return f;
        };
        let asked = SystemTime::now();
        let root = read_root_dse(dc, &mut ldap, self.settings.operation_timeout).await;
        let _ = ldap.unbind().await;
        match root
            .ok()
            .and_then(|r| r.first("currentTime").and_then(parse_generalized_time))
        {
            Some(dc_time) => {
                f.with_note(&kerberos_errors::describe_skew(signed_secs(dc_time, asked)))
            }
            None => f,
        }
    }

    /// Plain LDAP on 389 for a bind that seals: nothing is sent on it before
    /// the SASL exchange installs the layer.
    async fn open_plain(&self, dc: &str) -> Result<Ldap, DirectoryError> {
        let (stream, _) = self.tcp_to(dc, 389).await?;
        let stream = stream.into_std().map_err(|e| DirectoryError::Unreachable {
            dc: dc.into(),
            reason: e.to_string(),
        })?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.connect_timeout)
            .set_std_stream(StdStream::Tcp(stream));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &format!("ldap://{dc}:389"))
            .await
            .map_err(|e| ldap_error(dc, e))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }
}
