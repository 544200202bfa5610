//! The LocalMachine certificate stores through crypt32, and a store
//! certificate's private key through CNG (NCrypt) or, where the store hands
//! back a legacy CAPI key, CryptoAPI: what `store.rs` wraps for rustls.
//!
//! Keys never leave the store: provd asks it to sign hashes. Wine 8's
//! `CryptAcquireCertificatePrivateKey` returns a CAPI handle even when a
//! CNG key is allowed, so the key spec it reports decides which API the
//! handle belongs to (an NCrypt call on a CAPI handle crashes).

use std::sync::{Arc, Mutex};

use rustls::SignatureScheme;
use windows_sys::Win32::Security::Cryptography::{
    AT_KEYEXCHANGE, AT_SIGNATURE, BCRYPT_PAD_PKCS1, BCRYPT_PAD_PSS, BCRYPT_PKCS1_PADDING_INFO,
    BCRYPT_PSS_PADDING_INFO, BCRYPT_SHA256_ALGORITHM, BCRYPT_SHA384_ALGORITHM,
    BCRYPT_SHA512_ALGORITHM, CALG_SHA_256, CERT_CONTEXT, CERT_FIND_SHA1_HASH,
    CERT_KEY_PROV_INFO_PROP_ID, CERT_NCRYPT_KEY_SPEC, CERT_RENEWAL_PROP_ID,
    CERT_STORE_OPEN_EXISTING_FLAG, CERT_STORE_PROV_SYSTEM_W, CERT_STORE_READONLY_FLAG,
    CERT_SYSTEM_STORE_LOCAL_MACHINE, CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
    CRYPT_ACQUIRE_SILENT_FLAG, CRYPT_INTEGER_BLOB, CRYPT_KEY_PROV_INFO, CRYPT_MACHINE_KEYSET,
    CRYPT_SILENT, CertCloseStore, CertDuplicateCertificateContext, CertEnumCertificatesInStore,
    CertFindCertificateInStore, CertFreeCertificateContext, CertGetCertificateContextProperty,
    CertOpenStore, CryptAcquireCertificatePrivateKey, CryptAcquireContextW, CryptCreateHash,
    CryptDestroyHash, CryptReleaseContext, CryptSetHashParam, CryptSignHashW, HCERTSTORE,
    HP_HASHVAL, MS_ENH_RSA_AES_PROV, NCryptFreeObject, NCryptSignHash, PKCS_7_ASN_ENCODING,
    PROV_RSA_AES, X509_ASN_ENCODING,
};

use super::store::{CertQuery, StoreCertificate, StoreError, StoreIdentity, Thumbprint};
use super::store_key::{
    Candidate, KeyKind, RawSign, StoreKey, check_key, digest, select_by_subject, tls13_capable,
};

/// How many renewal links a thumbprint is followed through.
const MAX_RENEWALS: usize = 16;

/// An open store, closed on drop.
struct Store {
    handle: HCERTSTORE,
}

impl Store {
    /// `LocalMachine\<name>`, read-only; a store that does not exist is an
    /// error rather than an empty new one.
    fn open(name: &str) -> Result<Store, StoreError> {
        let wide = wide(name);
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives
        // the call; the system provider takes the store name as its parameter.
        let handle = unsafe {
            CertOpenStore(
                CERT_STORE_PROV_SYSTEM_W,
                0,
                0,
                CERT_SYSTEM_STORE_LOCAL_MACHINE
                    | CERT_STORE_READONLY_FLAG
                    | CERT_STORE_OPEN_EXISTING_FLAG,
                wide.as_ptr().cast(),
            )
        };
        if handle.is_null() {
            return Err(failed(
                name,
                format!("cannot open the store: {}", std::io::Error::last_os_error()),
            ));
        }
        Ok(Store { handle })
    }

    /// Every certificate, each as its own context.
    fn contexts(&self) -> Vec<Context> {
        let mut out = Vec::new();
        let mut previous: *const CERT_CONTEXT = std::ptr::null();
        loop {
            // SAFETY: the store is open; `previous` is null or the context
            // the last call returned, which this call frees.
            let context = unsafe { CertEnumCertificatesInStore(self.handle, previous) };
            if context.is_null() {
                return out;
            }
            // SAFETY: a live context from the enumeration; the duplicate
            // is ours, freed by `Context`'s drop.
            out.push(Context(unsafe { CertDuplicateCertificateContext(context) }));
            previous = context;
        }
    }

    fn find_sha1(&self, thumbprint: &Thumbprint) -> Option<Context> {
        let blob = CRYPT_INTEGER_BLOB {
            cbData: 20,
            pbData: thumbprint.0.as_ptr().cast_mut(),
        };
        // SAFETY: the store is open; `blob` points to 20 bytes that outlive
        // the call, which only reads them; a non-null result is ours.
        let context = unsafe {
            CertFindCertificateInStore(
                self.handle,
                X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
                0,
                CERT_FIND_SHA1_HASH,
                (&raw const blob).cast(),
                std::ptr::null(),
            )
        };
        (!context.is_null()).then_some(Context(context))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once; contexts keep their own
        // reference to the store.
        unsafe { CertCloseStore(self.handle, 0) };
    }
}

/// A certificate context we hold a reference to.
struct Context(*const CERT_CONTEXT);

impl Context {
    fn der(&self) -> Vec<u8> {
        // SAFETY: a live context's encoded bytes stay valid while it is.
        unsafe {
            let c = &*self.0;
            std::slice::from_raw_parts(c.pbCertEncoded, c.cbCertEncoded as usize).to_vec()
        }
    }

    /// A property's bytes, `None` when the certificate has none.
    fn property(&self, id: u32) -> Option<Vec<u8>> {
        let mut len = 0u32;
        // SAFETY: a size query (null buffer) on a live context.
        let sized = unsafe {
            CertGetCertificateContextProperty(self.0, id, std::ptr::null_mut(), &mut len)
        };
        if sized == 0 || len == 0 {
            return None;
        }
        // usize-aligned: CRYPT_KEY_PROV_INFO is read in place.
        let mut buffer = vec![0usize; (len as usize).div_ceil(size_of::<usize>())];
        // SAFETY: `buffer` holds at least `len` bytes, as the call asked.
        let read = unsafe {
            CertGetCertificateContextProperty(self.0, id, buffer.as_mut_ptr().cast(), &mut len)
        };
        if read == 0 {
            return None;
        }
        // SAFETY: `len` bytes of `buffer` were written and are initialised.
        let bytes =
            unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), len as usize) };
        Some(bytes.to_vec())
    }

    /// Where the key is (`CERT_KEY_PROV_INFO_PROP_ID`), `None` without one.
    fn key_location(&self) -> Option<KeyLocation> {
        let mut len = 0u32;
        // SAFETY: a size query (null buffer) on a live context.
        let sized = unsafe {
            CertGetCertificateContextProperty(
                self.0,
                CERT_KEY_PROV_INFO_PROP_ID,
                std::ptr::null_mut(),
                &mut len,
            )
        };
        if sized == 0 || (len as usize) < size_of::<CRYPT_KEY_PROV_INFO>() {
            return None;
        }
        let mut buffer = vec![0usize; (len as usize).div_ceil(size_of::<usize>())];
        // SAFETY: `buffer` holds at least `len` bytes, aligned for the
        // structure the property is.
        let read = unsafe {
            CertGetCertificateContextProperty(
                self.0,
                CERT_KEY_PROV_INFO_PROP_ID,
                buffer.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if read == 0 {
            return None;
        }
        // SAFETY: the property is a CRYPT_KEY_PROV_INFO whose strings
        // point into `buffer`, alive for this block; null-checked.
        unsafe {
            let info = &*buffer.as_ptr().cast::<CRYPT_KEY_PROV_INFO>();
            Some(KeyLocation {
                container: from_wide(info.pwszContainerName),
                provider: from_wide(info.pwszProvName),
                provider_type: info.dwProvType,
                machine: info.dwFlags & CRYPT_MACHINE_KEYSET != 0,
                key_spec: info.dwKeySpec,
            })
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: a context we own a reference to, freed once.
        unsafe { CertFreeCertificateContext(self.0) };
    }
}

/// A certificate's key as the store records it.
#[derive(Debug, Clone)]
struct KeyLocation {
    container: String,
    provider: String,
    provider_type: u32,
    machine: bool,
    key_spec: u32,
}

impl KeyLocation {
    fn describe(&self) -> String {
        format!(
            "provider {:?} type {} container {:?} spec {}{}",
            self.provider,
            self.provider_type,
            self.container,
            self.key_spec,
            if self.machine { " (machine)" } else { "" }
        )
    }
}

pub(super) fn certificates(store: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let store = Store::open(store)?;
    Ok(store.contexts().iter().map(Context::der).collect())
}

pub(super) fn find(store_name: &str, query: &CertQuery) -> Result<StoreCertificate, StoreError> {
    let store = Store::open(store_name)?;
    let not_found = || StoreError::NotFound {
        store: store_name.to_owned(),
        query: query.to_string(),
    };
    let context = match query {
        CertQuery::Thumbprint(thumbprint) => {
            let mut context = store.find_sha1(thumbprint).ok_or_else(not_found)?;
            // Renewed (certificate enrollment, or `certreq -accept` of a
            // renewal): the old certificate names the new one; follow it
            // while the new one is there.
            for _ in 0..MAX_RENEWALS {
                let Some(next) = context
                    .property(CERT_RENEWAL_PROP_ID)
                    .and_then(|hash| <[u8; 20]>::try_from(hash).ok())
                    .and_then(|hash| store.find_sha1(&Thumbprint(hash)))
                else {
                    break;
                };
                context = next;
            }
            context
        }
        CertQuery::Subject(subject) => {
            let mut contexts = store.contexts();
            let candidates: Vec<Candidate> = contexts
                .iter()
                .map(|c| Candidate {
                    der: c.der(),
                    has_key: c.key_location().is_some(),
                })
                .collect();
            let index = select_by_subject(&candidates, subject, time::OffsetDateTime::now_utc())
                .ok_or_else(not_found)?;
            contexts.swap_remove(index)
        }
    };
    let der = context.der();
    let key_location = context
        .key_location()
        .ok_or_else(|| {
            failed(
                store_name,
                format!(
                    "the certificate {} has no private key in the store",
                    Thumbprint::of(&der)
                ),
            )
        })?
        .describe();
    Ok(StoreCertificate {
        store: store_name.to_owned(),
        thumbprint: Thumbprint::of(&der),
        der,
        key_location,
    })
}

pub(super) fn signing_key(cert: &StoreCertificate) -> Result<StoreIdentity, StoreError> {
    let key_failed = |reason: String| {
        failed(
            &cert.store,
            format!("certificate {}: {reason}", cert.thumbprint),
        )
    };
    let kind = KeyKind::of_certificate(&cert.der).map_err(key_failed)?;
    let store = Store::open(&cert.store)?;
    let context = store
        .find_sha1(&cert.thumbprint)
        .ok_or_else(|| StoreError::NotFound {
            store: cert.store.clone(),
            query: CertQuery::Thumbprint(cert.thumbprint).to_string(),
        })?;
    let mut handle = 0usize;
    let mut key_spec = 0u32;
    let mut must_free = 0;
    // SAFETY: a live context; the out-pointers are ours. Silent: a service
    // has no desktop to prompt on.
    let acquired = unsafe {
        CryptAcquireCertificatePrivateKey(
            context.0,
            CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
            std::ptr::null(),
            &mut handle,
            &mut key_spec,
            &mut must_free,
        )
    };
    let location = context.key_location();
    let (raw, cng): (Arc<dyn RawSign>, bool) = if acquired != 0 && key_spec == CERT_NCRYPT_KEY_SPEC
    {
        (
            Arc::new(NcryptKey {
                handle,
                owned: must_free != 0,
            }),
            true,
        )
    } else {
        let reason = std::io::Error::last_os_error();
        // A CAPI key: its provider may be one without SHA-256 (the base
        // RSA CSP), so the container is opened again with the AES provider
        // and an acquired handle is let go. Wine's acquire also fails
        // outright for a machine key (it drops the record's
        // CRYPT_MACHINE_KEYSET): the record, from a CAPI provider (a
        // provider type; a CNG key has none), is opened as it says.
        if acquired != 0 && must_free != 0 {
            // SAFETY: a CAPI provider handle the call said is ours.
            unsafe { CryptReleaseContext(handle, 0) };
        }
        let location = match location {
            Some(location) if acquired != 0 || location.provider_type != 0 => location,
            _ => return Err(key_failed(format!("cannot open its private key: {reason}"))),
        };
        let spec = if acquired != 0 {
            key_spec
        } else {
            location.key_spec
        };
        (
            Arc::new(CapiKey::open(&location, spec).map_err(key_failed)?),
            false,
        )
    };
    let key = StoreKey::new(raw, kind, cng);
    check_key(&cert.der, &key).map_err(key_failed)?;
    Ok(StoreIdentity {
        tls12_only: !tls13_capable(key.schemes()),
        key: Arc::new(key),
    })
}

/// A CNG key handle, freed on drop when the store said it is ours.
#[derive(Debug)]
struct NcryptKey {
    handle: usize,
    owned: bool,
}

impl RawSign for NcryptKey {
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, String> {
        use SignatureScheme as S;
        let hash = digest(scheme, message)?;
        let algorithm = match scheme {
            S::RSA_PKCS1_SHA384 | S::RSA_PSS_SHA384 => BCRYPT_SHA384_ALGORITHM,
            S::RSA_PKCS1_SHA512 | S::RSA_PSS_SHA512 => BCRYPT_SHA512_ALGORITHM,
            _ => BCRYPT_SHA256_ALGORITHM,
        };
        let pkcs1 = BCRYPT_PKCS1_PADDING_INFO {
            pszAlgId: algorithm,
        };
        let pss = BCRYPT_PSS_PADDING_INFO {
            pszAlgId: algorithm,
            cbSalt: hash.len() as u32,
        };
        let (padding, flags): (*const core::ffi::c_void, u32) = match scheme {
            S::RSA_PKCS1_SHA256 | S::RSA_PKCS1_SHA384 | S::RSA_PKCS1_SHA512 => {
                ((&raw const pkcs1).cast(), BCRYPT_PAD_PKCS1)
            }
            S::RSA_PSS_SHA256 | S::RSA_PSS_SHA384 | S::RSA_PSS_SHA512 => {
                ((&raw const pss).cast(), BCRYPT_PAD_PSS)
            }
            // ECDSA: no padding; the answer is r‖s.
            _ => (std::ptr::null(), 0),
        };
        let sign = |out: &mut [u8], len: &mut u32| {
            let buffer = if out.is_empty() {
                std::ptr::null_mut()
            } else {
                out.as_mut_ptr()
            };
            // SAFETY: a live NCrypt key; `padding` is null or points to a
            // padding structure alive for the call; `buffer` is null (a
            // size query) or `out`, of the size the query asked for.
            let status = unsafe {
                NCryptSignHash(
                    self.handle,
                    padding,
                    hash.as_ptr(),
                    hash.len() as u32,
                    buffer,
                    out.len() as u32,
                    len,
                    flags,
                )
            };
            match status {
                0 => Ok(()),
                _ => Err(format!("NCryptSignHash: 0x{status:08x}")),
            }
        };
        let mut len = 0u32;
        sign(&mut [], &mut len)?;
        let mut signature = vec![0u8; len as usize];
        sign(&mut signature, &mut len)?;
        signature.truncate(len as usize);
        Ok(signature)
    }
}

impl Drop for NcryptKey {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an NCrypt key handle we own, freed once.
            unsafe { NCryptFreeObject(self.handle) };
        }
    }
}

/// A CryptoAPI key container opened with the AES provider, which has
/// SHA-256; one hash at a time on its handle.
#[derive(Debug)]
struct CapiKey {
    provider: Mutex<usize>,
    key_spec: u32,
}

impl CapiKey {
    fn open(location: &KeyLocation, key_spec: u32) -> Result<CapiKey, String> {
        let container = wide(&location.container);
        // The key set the record names first, then the other: Wine
        // records a LocalMachine store's PFX key without
        // CRYPT_MACHINE_KEYSET though it keeps it in the machine's.
        let machine_first = [location.machine, !location.machine];
        let mut provider = 0usize;
        let mut last_error = None;
        for machine in machine_first {
            let flags = CRYPT_SILENT | if machine { CRYPT_MACHINE_KEYSET } else { 0 };
            // SAFETY: NUL-terminated strings alive for the call; the
            // provider handle is ours, released on drop.
            let opened = unsafe {
                CryptAcquireContextW(
                    &mut provider,
                    container.as_ptr(),
                    MS_ENH_RSA_AES_PROV,
                    PROV_RSA_AES,
                    flags,
                )
            };
            if opened != 0 {
                last_error = None;
                break;
            }
            last_error = Some(std::io::Error::last_os_error());
        }
        if let Some(error) = last_error {
            return Err(format!(
                "cannot open its key container {:?} with the AES provider: {error}",
                location.container
            ));
        }
        Ok(CapiKey {
            provider: Mutex::new(provider),
            // A CAPI container holds a signature key (AT_SIGNATURE) or
            // an exchange key, which signs too; Wine reports 3 (neither
            // value) for the exchange key a PFX brings.
            key_spec: if key_spec == AT_SIGNATURE {
                AT_SIGNATURE
            } else {
                AT_KEYEXCHANGE
            },
        })
    }
}

impl RawSign for CapiKey {
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, String> {
        if scheme != SignatureScheme::RSA_PKCS1_SHA256 {
            return Err(format!(
                "a CryptoAPI key signs RSA_PKCS1_SHA256 only, not {scheme:?}"
            ));
        }
        let hash = digest(scheme, message)?;
        let provider = self.provider.lock().map_err(|_| "key lock poisoned")?;
        let mut hash_handle = 0usize;
        // SAFETY: a live provider handle; the hash handle is destroyed below.
        if unsafe { CryptCreateHash(*provider, CALG_SHA_256, 0, 0, &mut hash_handle) } == 0 {
            return Err(format!(
                "CryptCreateHash: {}",
                std::io::Error::last_os_error()
            ));
        }
        let signed = sign_hash(hash_handle, &hash, self.key_spec);
        // SAFETY: created above, destroyed once.
        unsafe { CryptDestroyHash(hash_handle) };
        // CryptoAPI writes the signature little-endian; TLS wants it
        // big-endian.
        signed.map(|mut signature| {
            signature.reverse();
            signature
        })
    }
}

/// The value of the hash object set to `hash`, then signed with the key.
fn sign_hash(hash_handle: usize, hash: &[u8], key_spec: u32) -> Result<Vec<u8>, String> {
    // SAFETY: a live hash object; `hash` is the SHA-256 value (32 bytes)
    // the object's algorithm expects, read during the call.
    if unsafe { CryptSetHashParam(hash_handle, HP_HASHVAL, hash.as_ptr(), 0) } == 0 {
        return Err(format!(
            "CryptSetHashParam: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut len = 0u32;
    // SAFETY: a size query (null buffer) on a live hash object.
    let sized = unsafe {
        CryptSignHashW(
            hash_handle,
            key_spec,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            &mut len,
        )
    };
    if sized == 0 {
        return Err(format!(
            "CryptSignHashW: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut signature = vec![0u8; len as usize];
    // SAFETY: as above, into a buffer of the size the call asked for.
    let signed = unsafe {
        CryptSignHashW(
            hash_handle,
            key_spec,
            std::ptr::null(),
            0,
            signature.as_mut_ptr(),
            &mut len,
        )
    };
    if signed == 0 {
        return Err(format!(
            "CryptSignHashW: {}",
            std::io::Error::last_os_error()
        ));
    }
    signature.truncate(len as usize);
    Ok(signature)
}

impl Drop for CapiKey {
    fn drop(&mut self) {
        let provider = match self.provider.get_mut() {
            Ok(provider) => *provider,
            Err(poisoned) => *poisoned.into_inner(),
        };
        // SAFETY: acquired in `open`, released once.
        unsafe { CryptReleaseContext(provider, 0) };
    }
}

fn failed(store: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Failed {
        store: store.to_owned(),
        reason: reason.to_string(),
    }
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A NUL-terminated UTF-16 string; empty for null.
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string.
unsafe fn from_wide(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller's promise: readable up to and including the NUL.
    unsafe {
        while *p.add(len) != 0 {
            len += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
    }
}
