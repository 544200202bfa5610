/*
 * failaction.dll: the custom action of the provd Wine lab's broken package (bad.wxs).
 *
 * FailOnPurpose returns ERROR_INSTALL_FAILURE, so Windows Installer aborts the install, rolls
 * it back and msiexec exits 1603, on Windows and on Wine 8 alike. (A service that fails to
 * start makes Wine's msiexec exit 1627 where Windows exits 1603; an exe custom action that
 * exits non-zero also gives 1627 on Wine. A DLL action's own return code is passed through.)
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -s -o failaction.dll failaction.c
 */
#include <windows.h>
#include <msi.h>

__declspec(dllexport) UINT __stdcall FailOnPurpose(MSIHANDLE install)
{
    (void)install;
    return ERROR_INSTALL_FAILURE; /* 1603 */
}
