/*
 * certimport.exe: a LAB STAND-IN for what an administrator does with certlm.msc, `certutil
 * -importpfx` or `Import-PfxCertificate` on a real server (and what certificate enrollment
 * does at a renewal), in provd's Wine lab, where none of those exist. NOT part of provd: the
 * Wine test puts provd's server certificate and its client CA into the LocalMachine stores
 * with it, and provd.exe reads them back as it does on Windows.
 *
 * Commands (exit 0, or 1 with the reason on stderr; nothing secret is ever printed):
 *   certimport pfx FILE STORE [/fresh-key] [/renews THUMBPRINT]
 *       PFXImportCertStore(CRYPT_MACHINE_KEYSET; the only flags Wine 8 takes), then every
 *       certificate of the PFX that has a key is added to LocalMachine\STORE (replacing an
 *       existing copy) and its thumbprint printed. The PFX password is read from the
 *       environment variable PROVD_LAB_PFX_PASSWORD, never from the command line.
 *       /fresh-key: Wine keeps every PFX key in one container per user and keeps the FIRST
 *       key put there, so a new key is dropped; this deletes that container first (found
 *       by a first import) so the PFX's own key lands in it. /renews: sets the old
 *       certificate's renewal property (CERT_RENEWAL_PROP_ID) to the new one's SHA-1 hash,
 *       as certificate enrollment does when it renews.
 *   certimport ca FILE STORE
 *       adds a DER certificate to LocalMachine\STORE (created if it does not exist).
 *   certimport remove STORE THUMBPRINT
 *       deletes that certificate from LocalMachine\STORE (absent: not an error).
 *   certimport clear STORE
 *       deletes every certificate of LocalMachine\STORE.
 *
 * Build (deploy/lab/wine.sh): x86_64-w64-mingw32-gcc -O2 -Wall -municode -s
 *   -o certimport.exe certimport.c -lcrypt32 -ladvapi32
 */
#include <windows.h>
#include <wincrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static int fail(const wchar_t *what, DWORD error)
{
    fwprintf(stderr, L"certimport: %ls (error 0x%08lx)\n", what, (unsigned long)error);
    return 1;
}

static BYTE *read_file(const wchar_t *path, DWORD *len)
{
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (f == INVALID_HANDLE_VALUE) return NULL;
    DWORD size = GetFileSize(f, NULL), got = 0;
    BYTE *data = malloc(size ? size : 1);
    if (data && !ReadFile(f, data, size, &got, NULL)) got = 0;
    CloseHandle(f);
    if (!data || got != size) {
        free(data);
        return NULL;
    }
    *len = size;
    return data;
}

static HCERTSTORE open_store(const wchar_t *name)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE, name);
}

static BOOL parse_thumbprint(const wchar_t *text, BYTE out[20])
{
    int n = 0;
    for (const wchar_t *p = text; *p; p++) {
        if (*p == L' ' || *p == L':') continue;
        if (!iswxdigit(p[0]) || !iswxdigit(p[1]) || n == 20) return FALSE;
        wchar_t pair[3] = {p[0], p[1], 0};
        out[n++] = (BYTE)wcstoul(pair, NULL, 16);
        p++;
    }
    return n == 20;
}

static void print_thumbprint(PCCERT_CONTEXT cert)
{
    BYTE hash[20];
    DWORD len = sizeof hash;
    if (!CertGetCertificateContextProperty(cert, CERT_SHA1_HASH_PROP_ID, hash, &len)) return;
    for (DWORD i = 0; i < len; i++) wprintf(L"%02X", hash[i]);
    wprintf(L"\n");
}

static PCCERT_CONTEXT find(HCERTSTORE store, const BYTE hash[20])
{
    CRYPT_HASH_BLOB blob = {20, (BYTE *)hash};
    return CertFindCertificateInStore(store, X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, 0,
                                      CERT_FIND_SHA1_HASH, &blob, NULL);
}

static HCERTSTORE import_pfx(BYTE *data, DWORD len)
{
    CRYPT_DATA_BLOB blob = {len, data};
    wchar_t password[256] = L"";
    DWORD n = GetEnvironmentVariableW(L"PROVD_LAB_PFX_PASSWORD", password, 256);
    if (n >= 256) return NULL;
    HCERTSTORE pfx = PFXImportCertStore(&blob, password, CRYPT_MACHINE_KEYSET);
    SecureZeroMemory(password, sizeof password);
    return pfx;
}

/* The key container the PFX's keyed certificate points at, deleted. */
static BOOL delete_container(HCERTSTORE pfx)
{
    PCCERT_CONTEXT cert = NULL;
    while ((cert = CertEnumCertificatesInStore(pfx, cert))) {
        DWORD len = 0;
        if (!CertGetCertificateContextProperty(cert, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len))
            continue;
        CRYPT_KEY_PROV_INFO *info = malloc(len);
        BOOL ok = info && CertGetCertificateContextProperty(cert, CERT_KEY_PROV_INFO_PROP_ID, info, &len);
        HCRYPTPROV gone = 0;
        if (ok)
            ok = CryptAcquireContextW(&gone, info->pwszContainerName, info->pwszProvName,
                                      info->dwProvType, CRYPT_DELETEKEYSET | CRYPT_MACHINE_KEYSET);
        free(info);
        CertFreeCertificateContext(cert);
        return ok;
    }
    return FALSE;
}

static int cmd_pfx(int argc, wchar_t **argv)
{
    BOOL fresh = FALSE;
    BYTE renews[20];
    BOOL renewal = FALSE;
    for (int i = 4; i < argc; i++) {
        if (!wcscmp(argv[i], L"/fresh-key")) fresh = TRUE;
        else if (!wcscmp(argv[i], L"/renews") && i + 1 < argc && parse_thumbprint(argv[i + 1], renews)) {
            renewal = TRUE;
            i++;
        } else return fail(L"unknown option", ERROR_INVALID_PARAMETER);
    }
    DWORD len = 0;
    BYTE *data = read_file(argv[2], &len);
    if (!data) return fail(L"cannot read the PFX file", GetLastError());
    HCERTSTORE pfx = import_pfx(data, len);
    if (!pfx) return fail(L"PFXImportCertStore failed", GetLastError());
    if (fresh) {
        if (!delete_container(pfx)) return fail(L"cannot delete the old key container", GetLastError());
        CertCloseStore(pfx, 0);
        pfx = import_pfx(data, len);
        if (!pfx) return fail(L"PFXImportCertStore failed after deleting the container", GetLastError());
    }
    free(data);
    HCERTSTORE store = open_store(argv[3]);
    if (!store) return fail(L"cannot open the LocalMachine store", GetLastError());
    int added = 0;
    PCCERT_CONTEXT cert = NULL;
    while ((cert = CertEnumCertificatesInStore(pfx, cert))) {
        DWORD n = 0;
        if (!CertGetCertificateContextProperty(cert, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n)) continue;
        PCCERT_CONTEXT stored = NULL;
        if (!CertAddCertificateContextToStore(store, cert, CERT_STORE_ADD_REPLACE_EXISTING, &stored))
            return fail(L"CertAddCertificateContextToStore failed", GetLastError());
        print_thumbprint(stored);
        if (renewal) {
            BYTE hash[20];
            DWORD hlen = sizeof hash;
            PCCERT_CONTEXT old = find(store, renews);
            if (!old) return fail(L"the renewed certificate is not in the store", CRYPT_E_NOT_FOUND);
            CRYPT_HASH_BLOB blob = {hlen, hash};
            if (!CertGetCertificateContextProperty(stored, CERT_SHA1_HASH_PROP_ID, hash, &hlen) ||
                !CertSetCertificateContextProperty(old, CERT_RENEWAL_PROP_ID, 0, &blob))
                return fail(L"cannot set the renewal property", GetLastError());
            CertFreeCertificateContext(old);
        }
        CertFreeCertificateContext(stored);
        added++;
    }
    CertCloseStore(store, 0);
    CertCloseStore(pfx, 0);
    return added ? 0 : fail(L"the PFX holds no certificate with a private key", CRYPT_E_NOT_FOUND);
}

static int cmd_ca(wchar_t **argv)
{
    DWORD len = 0;
    BYTE *data = read_file(argv[2], &len);
    if (!data) return fail(L"cannot read the certificate file", GetLastError());
    HCERTSTORE store = open_store(argv[3]);
    if (!store) return fail(L"cannot open the LocalMachine store", GetLastError());
    PCCERT_CONTEXT stored = NULL;
    if (!CertAddEncodedCertificateToStore(store, X509_ASN_ENCODING, data, len,
                                          CERT_STORE_ADD_REPLACE_EXISTING, &stored))
        return fail(L"CertAddEncodedCertificateToStore failed (a DER certificate?)", GetLastError());
    print_thumbprint(stored);
    CertFreeCertificateContext(stored);
    CertCloseStore(store, 0);
    free(data);
    return 0;
}

static int cmd_remove(wchar_t **argv)
{
    BYTE hash[20];
    if (!parse_thumbprint(argv[3], hash)) return fail(L"not a thumbprint", ERROR_INVALID_PARAMETER);
    HCERTSTORE store = open_store(argv[2]);
    if (!store) return fail(L"cannot open the LocalMachine store", GetLastError());
    PCCERT_CONTEXT cert = find(store, hash);
    /* CertDeleteCertificateFromStore frees the context, also on failure. */
    if (cert && !CertDeleteCertificateFromStore(cert)) return fail(L"cannot delete it", GetLastError());
    CertCloseStore(store, 0);
    return 0;
}

static int cmd_clear(wchar_t **argv)
{
    HCERTSTORE store = open_store(argv[2]);
    if (!store) return fail(L"cannot open the LocalMachine store", GetLastError());
    PCCERT_CONTEXT cert;
    while ((cert = CertEnumCertificatesInStore(store, NULL)))
        if (!CertDeleteCertificateFromStore(cert)) return fail(L"cannot delete a certificate", GetLastError());
    CertCloseStore(store, 0);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 4 && !wcscmp(argv[1], L"pfx")) return cmd_pfx(argc, argv);
    if (argc == 4 && !wcscmp(argv[1], L"ca")) return cmd_ca(argv);
    if (argc == 4 && !wcscmp(argv[1], L"remove")) return cmd_remove(argv);
    if (argc == 3 && !wcscmp(argv[1], L"clear")) return cmd_clear(argv);
    fwprintf(stderr, L"usage: certimport pfx FILE STORE [/fresh-key] [/renews THUMBPRINT]\n"
                     L"       certimport ca FILE STORE | remove STORE THUMBPRINT | clear STORE\n");
    return 1;
}
