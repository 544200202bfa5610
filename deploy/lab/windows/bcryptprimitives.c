/*
 * bcryptprimitives.dll for the provd Wine lab (deploy/lab/wine.sh copies it into the
 * prefix's system32).
 *
 * Why: Rust's std (1.78 and later) imports bcryptprimitives!ProcessPrng on Windows for its
 * random numbers (HashMap seeds and more). Debian 12's Wine 8.0 has no bcryptprimitives.dll,
 * so every Rust exe, provd's and the lab agent's alike, dies at load time with c0000135
 * (STATUS_DLL_NOT_FOUND; `wine` exits 53). Wine 9 ships the DLL; this shim is only for Wine 8.
 *
 * ProcessPrng is documented to always succeed and return TRUE. This one fills the buffer from
 * RtlGenRandom (advapi32!SystemFunction036), which Wine implements with the host's CSPRNG.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed it at most 1 GiB at a time. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
