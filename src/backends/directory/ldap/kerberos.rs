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

use super::kerberos_errors::{Failure, classify};
use crate::model::KerberosSource;

/// The credential of `principal` from a keytab or a cache on this host.
/// A keytab's tickets go to an in-memory cache named after the principal
/// and keytab, so later binds reuse the TGT and nothing is written to disk.
pub(super) fn acquire(principal: &str, source: &KerberosSource) -> Result<Cred, Failure> {
    let store = match source {
        KerberosSource::Keytab(path) => vec![
            ("client_keytab", path.display().to_string()),
            ("ccache", memory_cache(principal, path)),
        ],
        KerberosSource::Ccache(name) => vec![("ccache", name.clone())],
        // SSPI's default credentials (Windows): MIT has no such thing.
        KerberosSource::ServiceIdentity => {
            return Err(Failure::Setup(super::SERVICE_IDENTITY_OFF_WINDOWS.into()));
        }
    };
    acquire_from(principal, &store)
        .map_err(|e| classify(&e.to_string(), principal, &source.describe(), None))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cache_is_per_principal_and_keytab_and_names_no_secret() {
        let a = memory_cache("VM$@LAB", Path::new("/k1"));
        assert_eq!(a, memory_cache("VM$@LAB", Path::new("/k1")));
        assert_ne!(a, memory_cache("VM$@LAB", Path::new("/k2")));
        assert_ne!(a, memory_cache("OTHER$@LAB", Path::new("/k1")));
        assert!(a.starts_with("MEMORY:provd-"));
    }
}
