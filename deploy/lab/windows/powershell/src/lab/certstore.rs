//! The agent's registration certificate in `LocalMachine\My` (crypt32), where provd's
//! Verify looks for it by default. LAB STAND-IN choice: Microsoft does not document where
//! the provisioning agent keeps its certificate; the connector framework it shares with the
//! private network connector keeps it in the machine's personal store, subject
//! `CN=<agent id>`, and so does the stand-in.

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::Security::Cryptography::{
    CERT_STORE_ADD_REPLACE_EXISTING, CERT_STORE_PROV_SYSTEM_W, CERT_SYSTEM_STORE_LOCAL_MACHINE,
    CertAddEncodedCertificateToStore, CertCloseStore, CertCreateCertificateContext,
    CertFreeCertificateContext, CertOpenStore, PKCS_7_ASN_ENCODING, X509_ASN_ENCODING,
};
use windows_sys::Win32::System::SystemInformation::GetSystemTimeAsFileTime;

/// Adds `der` to `LocalMachine\My` (replacing the same certificate).
pub fn add_to_my(der: &[u8]) -> Result<(), String> {
    let name: Vec<u16> = "My".encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `name` is NUL-terminated UTF-16 and outlives the call.
    let store = unsafe {
        CertOpenStore(
            CERT_STORE_PROV_SYSTEM_W,
            0,
            0,
            CERT_SYSTEM_STORE_LOCAL_MACHINE,
            name.as_ptr().cast(),
        )
    };
    if store.is_null() {
        return Err(format!(
            "cannot open LocalMachine\\My: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `store` is open; `der` outlives the call; no context is returned.
    let added = unsafe {
        CertAddEncodedCertificateToStore(
            store,
            X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
            der.as_ptr(),
            der.len() as u32,
            CERT_STORE_ADD_REPLACE_EXISTING,
            std::ptr::null_mut(),
        )
    };
    let error = std::io::Error::last_os_error();
    // SAFETY: closed once.
    unsafe { CertCloseStore(store, 0) };
    if added == 0 {
        return Err(format!("cannot add the certificate to LocalMachine\\My: {error}"));
    }
    Ok(())
}

/// Whether the certificate `der` is past its notAfter (`true` when unreadable).
pub fn expired(der: &[u8]) -> bool {
    // SAFETY: `der` outlives the call; the context is freed below.
    let context = unsafe {
        CertCreateCertificateContext(X509_ASN_ENCODING, der.as_ptr(), der.len() as u32)
    };
    if context.is_null() {
        return true;
    }
    // SAFETY: a non-null context has a valid pCertInfo until it is freed.
    let not_after = unsafe { (*(*context).pCertInfo).NotAfter };
    // SAFETY: freed once.
    unsafe { CertFreeCertificateContext(context) };
    let mut now = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    // SAFETY: writes one FILETIME.
    unsafe { GetSystemTimeAsFileTime(&mut now) };
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    ticks(not_after) <= ticks(now)
}
