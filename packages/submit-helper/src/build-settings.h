/*
 * build-settings.h: the values compiled into the helper (make SOCKET=...
 * AUTH_LIST=... TIMEOUT=...). Nothing in argv or the environment can change
 * them; these are the defaults when make passes none.
 */
#ifndef MAILSUBMIT_BUILD_SETTINGS_H
#define MAILSUBMIT_BUILD_SETTINGS_H

#include <sys/un.h>

#ifndef MAILSUBMIT_SOCKET
#define MAILSUBMIT_SOCKET "/run/mailsubmit/mailsubmit.sock"
#endif
#ifndef MAILSUBMIT_AUTH_LIST
#define MAILSUBMIT_AUTH_LIST "/etc/mailsubmit/authorized"
#endif
#ifndef MAILSUBMIT_TIMEOUT
#define MAILSUBMIT_TIMEOUT 600
#endif

_Static_assert(sizeof(MAILSUBMIT_SOCKET) <= sizeof(((struct sockaddr_un *)0)->sun_path),
               "MAILSUBMIT_SOCKET is too long for sun_path");
_Static_assert(MAILSUBMIT_TIMEOUT > 0 && MAILSUBMIT_TIMEOUT <= 86400, "MAILSUBMIT_TIMEOUT out of range");

#endif
