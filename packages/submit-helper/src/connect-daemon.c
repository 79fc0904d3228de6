/*
 * connect-daemon.c: the connection to mailsubmitd's socket (compiled-in
 * path), made while the helper still holds the socket's group. A full
 * backlog is waited out until the deadline; each errno maps to the status
 * mailsubmit(1) lists (not running 75, busy 75, permissions 78).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "build-settings.h"
#include "daemon-connection.h"
#include "deadline.h"
#include "failure.h"

int connect_daemon(void)
{
    struct sockaddr_un addr;
    int fd;

    if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        fail(FAIL_INTERNAL, "cannot create a socket: %s", strerror(errno));
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, MAILSUBMIT_SOCKET, sizeof(MAILSUBMIT_SOCKET));
    for (;;) {
        /* Bounds a connect to a full backlog, and the send, by the same deadline. */
        deadline_bound_send(fd);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        /*
         * A stop and continue while waiting for room in the backlog: an
         * AF_UNIX connect interrupted there has not connected, so it is
         * simply tried again, under the same deadline.
         */
        if (errno != EINTR || deadline_remaining_ms() == 0)
            break;
    }
    if (errno == EINTR)
        errno = ETIMEDOUT;
    switch (errno) {
    case ENOENT:
    case ECONNREFUSED:
        fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon is not running (cannot connect to %s: %s)",
             MAILSUBMIT_SOCKET, strerror(errno));
    case EAGAIN:
    case ETIMEDOUT:
        fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon is too busy to accept a connection");
    case EACCES:
    case EPERM:
        fail(FAIL_CONFIG, "permission denied connecting to %s (is mailsubmit installed set-gid to the socket's group?)",
             MAILSUBMIT_SOCKET);
    default:
        fail(FAIL_DAEMON_UNAVAILABLE, "cannot connect to %s: %s", MAILSUBMIT_SOCKET, strerror(errno));
    }
}

