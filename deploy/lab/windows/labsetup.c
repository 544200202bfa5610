/*
 * labsetup.exe: a LAB STAND-IN for the uninstall side of Microsoft's package bundle
 * (AADConnectProvisioningAgentSetup.exe, a WiX Burn bundle) in provd's Wine lab. NOT
 * Microsoft's setup and NOT WiX Burn: no UI, no engine, no install; it only does, for
 * `/uninstall /quiet`, what a Burn bundle's cached exe does then (INFERRED from WiX Burn,
 * not from a Microsoft page): remove the MSIs it chained, then its own Add/Remove Programs
 * entry.
 *
 * `wine.sh package-entries install` caches it as
 *   C:\ProgramData\Package Cache\{bundle id}\AADConnectProvisioningAgentSetup.exe
 * and writes the bundle's uninstall key in the registry's 32-bit view (where a 32-bit Burn
 * registers a per-machine bundle), with BundleCachePath = that path, QuietUninstallString
 * `"<path>" /uninstall /quiet`, and ProvdLabChainedProductCodes: the ProductCodes it
 * "chained", separated by ';' (a lab value: Burn reads its chain from its own manifest).
 *
 * Command line (Burn's spelling, '/' or '-'):
 *   /uninstall /quiet [/norestart] [/log FILE]
 * It finds its own uninstall key by BundleCachePath = this exe's path, runs
 * `msiexec /x {code} /quiet /norestart` for each chained ProductCode (1605, not installed,
 * counts as removed), then deletes the key. Exit code: 0, or the first failing msiexec's, or
 * 87 (ERROR_INVALID_PARAMETER) for another command line, or 1605 when it has no key.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -Wall -municode -s -o labsetup.exe labsetup.c -ladvapi32
 */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

#define UNINSTALL L"SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
#define VIEW KEY_WOW64_32KEY

static FILE *logf;

static void say(const wchar_t *fmt, const wchar_t *a, DWORD n)
{
    if (!logf) return;
    fwprintf(logf, fmt, a, n);
    fputwc(L'\n', logf);
    fflush(logf);
}

static int flag(const wchar_t *arg, const wchar_t *name)
{
    return (arg[0] == L'/' || arg[0] == L'-') && _wcsicmp(arg + 1, name) == 0;
}

/* The uninstall subkey whose BundleCachePath is this exe; its name into key. */
static BOOL own_key(wchar_t *key, DWORD key_len)
{
    wchar_t self[MAX_PATH], cached[MAX_PATH], name[256];
    HKEY uninstall;
    BOOL found = FALSE;
    if (!GetModuleFileNameW(NULL, self, MAX_PATH)) return FALSE;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, UNINSTALL, 0, KEY_READ | VIEW, &uninstall) != ERROR_SUCCESS)
        return FALSE;
    for (DWORD i = 0; !found; i++) {
        DWORD len = 256, size = sizeof cached;
        if (RegEnumKeyExW(uninstall, i, name, &len, NULL, NULL, NULL, NULL) != ERROR_SUCCESS) break;
        if (RegGetValueW(uninstall, name, L"BundleCachePath", RRF_RT_REG_SZ, NULL, cached, &size) ==
                ERROR_SUCCESS &&
            _wcsicmp(cached, self) == 0) {
            wcsncpy(key, name, key_len - 1);
            key[key_len - 1] = 0;
            found = TRUE;
        }
    }
    RegCloseKey(uninstall);
    return found;
}

/* msiexec /x CODE /quiet /norestart; its exit code. */
static DWORD msiexec_remove(const wchar_t *code)
{
    wchar_t cmd[512];
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    DWORD exit_code = 1603;
    swprintf(cmd, 512, L"msiexec.exe /x %ls /quiet /norestart", code);
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi))
        return GetLastError();
    WaitForSingleObject(pi.hProcess, INFINITE);
    GetExitCodeProcess(pi.hProcess, &exit_code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return exit_code;
}

int wmain(int argc, wchar_t **argv)
{
    int uninstall = 0, quiet = 0;
    wchar_t key[256], path[320], chain[2048];
    DWORD size = sizeof chain;
    for (int i = 1; i < argc; i++) {
        if (flag(argv[i], L"uninstall")) uninstall = 1;
        else if (flag(argv[i], L"quiet")) quiet = 1;
        else if (flag(argv[i], L"norestart")) continue;
        else if ((flag(argv[i], L"log") || flag(argv[i], L"l")) && i + 1 < argc) logf = _wfopen(argv[++i], L"w");
        else {
            fwprintf(stderr, L"LAB STAND-IN setup: only /uninstall /quiet [/norestart] [/log FILE]\n");
            return ERROR_INVALID_PARAMETER;
        }
    }
    if (!uninstall || !quiet) {
        fwprintf(stderr, L"LAB STAND-IN setup: only /uninstall /quiet [/norestart] [/log FILE]\n");
        return ERROR_INVALID_PARAMETER;
    }
    say(L"LAB STAND-IN bundle uninstall (not Microsoft's, not WiX Burn)%ls%lu", L"", 0);
    if (!own_key(key, 256)) {
        say(L"no uninstall key names this exe as its BundleCachePath%ls (%lu)", L"", 1605);
        return 1605; /* ERROR_UNKNOWN_PRODUCT */
    }
    swprintf(path, 320, L"%ls\\%ls", UNINSTALL, key);
    if (RegGetValueW(HKEY_LOCAL_MACHINE, path, L"ProvdLabChainedProductCodes",
                     RRF_RT_REG_SZ | RRF_SUBKEY_WOW6432KEY, NULL, chain, &size) != ERROR_SUCCESS)
        chain[0] = 0;
    for (wchar_t *state = NULL, *code = wcstok_s(chain, L";", &state); code; code = wcstok_s(NULL, L";", &state)) {
        DWORD rc = msiexec_remove(code);
        say(L"msiexec /x %ls: %lu", code, rc);
        if (rc != 0 && rc != 1605 && rc != 3010) return rc;
    }
    if (RegDeleteKeyExW(HKEY_LOCAL_MACHINE, path, VIEW, 0) != ERROR_SUCCESS) {
        say(L"cannot delete %ls (%lu)", path, GetLastError());
        return 1603;
    }
    say(L"removed %ls%lu", key, 0);
    return 0;
}
