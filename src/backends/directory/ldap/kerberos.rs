//! Kerberos credentials for a GSSAPI bind, acquired by provd itself so that
//! each bind names its own keytab or cache (MIT krb5's credential store,
//! `gss_acquire_cred_from`, since krb5 1.11) instead of the process-wide
//! `KRB5CCNAME`/`KRB5_CLIENT_KTNAME`, which would race between binds. The KDCs
//! come from the host's krb5 configuration (`KRB5_CONFIG` or /etc/krb5.conf).
//!
//! Every call here blocks (file reads, a KDC exchange): callers run them on
//! the blocking pool. Errors are classified into what a person can act on.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::GSS_NT_KRB5_PRINCIPAL;
use libgssapi_sys::{
    GSS_C_INITIATE, GSS_C_NT_USER_NAME, OM_uint32, gss_acquire_cred_from, gss_buffer_desc,
    gss_cred_id_t, gss_import_name, gss_key_value_element_desc, gss_key_value_set_desc, gss_name_t,
    gss_release_name,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::model::KerberosSource;

/// Why a Kerberos step failed, as MIT's message says it, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The KDC refused who we claim to be: wrong or stale key, unknown or
    /// disabled principal, expired password or ticket.
    Rejected(String),
    /// Something on this host or in the domain's setup: clock skew, an SPN
    /// the KDC does not know, no KDC for the realm, nothing usable in the
    /// keytab or cache.
    Setup(String),
}

impl Failure {
    /// True for a clock skew, which the caller can measure and say.
    pub(super) fn is_skew(&self) -> bool {
        matches!(self, Failure::Setup(m) if m.contains("KRB_AP_ERR_SKEW"))
    }

    /// The same failure with `note` added to its message.
    pub(super) fn with_note(self, note: &str) -> Self {
        match self {
            Failure::Rejected(m) => Failure::Rejected(format!("{m}; {note}")),
            Failure::Setup(m) => Failure::Setup(format!("{m}; {note}")),
        }
    }
}

/// How far the DC's clock is from ours, in words (`dc_minus_ours` seconds).
pub(super) fn describe_skew(dc_minus_ours: i64) -> String {
    let direction = if dc_minus_ours >= 0 {
        "ahead of"
    } else {
        "behind"
    };
    format!(
        "the DC's clock is {} s {direction} this host's (its RootDSE currentTime)",
        dc_minus_ours.unsigned_abs()
    )
}

/// The credential of `principal` from a keytab or a cache on this host.
/// A keytab's tickets go to an in-memory cache named after the principal
/// and keytab, so later binds reuse the TGT and nothing is written to disk.
pub(super) fn acquire(principal: &str, source: &KerberosSource) -> Result<Cred, Failure> {
    let (store, what) = match source {
        KerberosSource::Keytab(path) => (
            vec![
                ("client_keytab", path.display().to_string()),
                ("ccache", memory_cache(principal, path)),
            ],
            format!("keytab {}", path.display()),
        ),
        KerberosSource::Ccache(name) => (
            vec![("ccache", name.clone())],
            format!("credential cache {name}"),
        ),
    };
    acquire_from(principal, &store).map_err(|e| classify(&e.to_string(), principal, &what, None))
}

/// The credential of `principal` from its password (an AS exchange with the
/// KDC, MIT deriving the keys with the salt the KDC names).
pub(super) fn acquire_with_password(
    principal: &str,
    password: &SecretString,
) -> Result<Cred, Failure> {
    let name = Name::new(principal.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| Failure::Setup(format!("principal {principal}: {e}")))?;
    Cred::acquire_with_password(
        Some(&name),
        password.expose_secret(),
        None,
        CredUsage::Initiate,
        None,
    )
    .map_err(|e| classify(&e.to_string(), principal, "its password", None))
}

/// One in-memory cache per (principal, keytab): its name carries no secret.
fn memory_cache(principal: &str, keytab: &Path) -> String {
    let digest = Sha256::digest(format!("{principal}\0{}", keytab.display()).as_bytes());
    format!("MEMORY:provd-{}", hex::encode(&digest[..8]))
}

/// Frees the imported name on every path.
struct ImportedName(gss_name_t);

impl Drop for ImportedName {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let mut minor: OM_uint32 = 0;
        // SAFETY: `self.0` came from a successful gss_import_name and is
        // released once, here.
        unsafe { gss_release_name(&mut minor, &mut self.0) };
    }
}

#[allow(unsafe_code)]
fn acquire_from(principal: &str, store: &[(&str, String)]) -> Result<Cred, GssError> {
    let invalid = || GssError {
        major: MajorFlags::GSS_S_FAILURE,
        minor: 0,
    };
    let pairs: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| Ok((CString::new(*k)?, CString::new(v.as_str())?)))
        .collect::<Result<_, std::ffi::NulError>>()
        .map_err(|_| invalid())?;
    let mut elements: Vec<gss_key_value_element_desc> = pairs
        .iter()
        .map(|(k, v)| gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = gss_key_value_set_desc {
        count: u32::try_from(elements.len()).map_err(|_| invalid())?,
        elements: elements.as_mut_ptr(),
    };
    let mut principal_bytes = principal.as_bytes().to_vec();
    let mut buffer = gss_buffer_desc {
        length: principal_bytes.len(),
        value: principal_bytes.as_mut_ptr().cast(),
    };
    let mut minor: OM_uint32 = 0;
    let mut name: gss_name_t = ptr::null_mut();
    // SAFETY: `buffer` points at `principal_bytes`, alive for the call;
    // GSS_C_NT_USER_NAME is MIT's static OID (krb5 parses it as a principal
    // name); `name` receives a new name that ImportedName releases.
    let major = unsafe { gss_import_name(&mut minor, &mut buffer, GSS_C_NT_USER_NAME, &mut name) };
    if major != 0 {
        return Err(GssError {
            major: MajorFlags::from_bits_retain(major),
            minor,
        });
    }
    let name = ImportedName(name);
    let mut cred: gss_cred_id_t = ptr::null_mut();
    // SAFETY: `name` is a valid imported name; `set` and its elements point at
    // `elements` and `pairs`, alive for the call (MIT copies what it keeps);
    // no mechanism set and no outputs besides `cred`, which on success is a
    // new credential that libgssapi's Cred owns and releases.
    let major = unsafe {
        gss_acquire_cred_from(
            &mut minor,
            name.0,
            0,
            ptr::null_mut(),
            GSS_C_INITIATE as _,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if major != 0 {
        return Err(GssError {
            major: MajorFlags::from_bits_retain(major),
            minor,
        });
    }
    Ok(Cred::from(cred))
}

/// Turns MIT's text into a message that says what to fix. `spn` is the
/// service the bind asked a ticket for, when the failure is about it.
pub(super) fn classify(text: &str, principal: &str, what: &str, spn: Option<&str>) -> Failure {
    let lower = text.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("clock skew") {
        return Failure::Setup(format!(
            "the clocks of this host and the KDC differ by more than the allowed skew \
             (KRB_AP_ERR_SKEW, usually 5 minutes): {text}"
        ));
    }
    if has("server not found in kerberos database") {
        let spn = spn.unwrap_or("ldap/<the DC's host name>");
        return Failure::Setup(format!(
            "the KDC knows no service principal {spn}: bind to the DC by its host name as \
             registered in the directory, not by an address or alias ({text})"
        ));
    }
    if has("cannot find kdc") || has("cannot contact any kdc") || has("cannot resolve network") {
        let realm = principal.rsplit_once('@').map_or("", |(_, r)| r);
        let config = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".to_owned());
        return Failure::Setup(format!(
            "no KDC answers for realm {realm} ({config} names the KDCs): {text}"
        ));
    }
    if has("preauthentication failed")
        || has("password incorrect")
        || has("client not found")
        || has("revoked")
        || has("expired")
    {
        return Failure::Rejected(format!("the KDC refused {principal} with {what}: {text}"));
    }
    if has("no key table entry")
        || has("no credentials")
        || has("no such file")
        || has("not found in keytab")
        || has("key table file")
        || has("credentials cache")
    {
        return Failure::Setup(format!(
            "no usable credentials for {principal} in {what}: {text}"
        ));
    }
    Failure::Setup(format!("Kerberos for {principal} with {what}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_fix() {
        let f = classify(
            "Miscellaneous failure: Clock skew too great",
            "VM$@LAB.EXAMPLE.TEST",
            "keytab /k",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("KRB_AP_ERR_SKEW")),
            "{f:?}"
        );
        let f = classify(
            "Server not found in Kerberos database",
            "VM$@LAB.EXAMPLE.TEST",
            "keytab /k",
            Some("ldap/127.0.0.2"),
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("ldap/127.0.0.2")),
            "{f:?}"
        );
        let f = classify(
            "Cannot find KDC for realm \"NOPE.TEST\"",
            "VM$@NOPE.TEST",
            "keytab /k",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("realm NOPE.TEST")),
            "{f:?}"
        );
        let f = classify(
            "Preauthentication failed",
            "provAgentgMSA$@LAB.EXAMPLE.TEST",
            "its password",
            None,
        );
        assert!(
            matches!(&f, Failure::Rejected(m) if m.contains("provAgentgMSA$")),
            "{f:?}"
        );
        let f = classify(
            "No key table entry found for OTHER$@LAB.EXAMPLE.TEST",
            "OTHER$@LAB.EXAMPLE.TEST",
            "keytab /var/tmp/provd-lab/vm.keytab",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("keytab /var/tmp/provd-lab/vm.keytab")),
            "{f:?}"
        );
    }

    #[test]
    fn a_skew_is_said_with_its_size_and_direction() {
        let f = classify("Clock skew too great", "VM$@LAB", "keytab /k", None);
        assert!(f.is_skew());
        let f = f.with_note(&describe_skew(-421));
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("421 s behind this host's")),
            "{f:?}"
        );
        assert!(describe_skew(30).contains("30 s ahead of"));
        assert!(!classify("Preauthentication failed", "p", "w", None).is_skew());
    }

    #[test]
    fn the_memory_cache_is_per_principal_and_keytab_and_names_no_secret() {
        let a = memory_cache("VM$@LAB", Path::new("/k1"));
        assert_eq!(a, memory_cache("VM$@LAB", Path::new("/k1")));
        assert_ne!(a, memory_cache("VM$@LAB", Path::new("/k2")));
        assert_ne!(a, memory_cache("OTHER$@LAB", Path::new("/k1")));
        assert!(a.starts_with("MEMORY:provd-"));
    }
}
