//! The LocalMachine certificate stores, read through crypt32 (the Windows
//! certificate store API): each certificate's DER, for the caller to
//! parse. Read-only; the store is opened with `CERT_STORE_READONLY_FLAG`.

use windows_sys::Win32::Security::Cryptography::{
    CERT_CONTEXT, CERT_STORE_OPEN_EXISTING_FLAG, CERT_STORE_PROV_SYSTEM_W,
    CERT_STORE_READONLY_FLAG, CERT_SYSTEM_STORE_LOCAL_MACHINE, CertCloseStore,
    CertEnumCertificatesInStore, CertOpenStore,
};

use super::HostError;

/// Every certificate of `LocalMachine\<store>` (e.g. `My`), as DER.
pub(super) fn local_machine(store: &str) -> Result<Vec<Vec<u8>>, HostError> {
    let name: Vec<u16> = store.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the
    // call; the system provider takes the store name as its parameter.
    let handle = unsafe {
        CertOpenStore(
            CERT_STORE_PROV_SYSTEM_W,
            0,
            0,
            CERT_SYSTEM_STORE_LOCAL_MACHINE
                | CERT_STORE_READONLY_FLAG
                | CERT_STORE_OPEN_EXISTING_FLAG,
            name.as_ptr().cast(),
        )
    };
    if handle.is_null() {
        return Err(HostError::Io(format!(
            "cannot open the certificate store LocalMachine\\{store}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut out = Vec::new();
    let mut previous: *const CERT_CONTEXT = std::ptr::null();
    loop {
        // SAFETY: `handle` is an open store; `previous` is null or the
        // context the last call returned, which this call frees.
        let context = unsafe { CertEnumCertificatesInStore(handle, previous) };
        if context.is_null() {
            break;
        }
        // SAFETY: a non-null context points to a CERT_CONTEXT whose
        // encoded bytes stay valid until the context is freed (next call).
        let der = unsafe {
            let c = &*context;
            std::slice::from_raw_parts(c.pbCertEncoded, c.cbCertEncoded as usize).to_vec()
        };
        out.push(der);
        previous = context;
    }
    // SAFETY: `handle` is open and closed once; the enumeration ended with
    // a null context, so no context is left to free.
    unsafe { CertCloseStore(handle, 0) };
    Ok(out)
}
