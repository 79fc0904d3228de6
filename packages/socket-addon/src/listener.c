/*
 * listener.c: creating the listening SOCK_SEQPACKET socket, and accepting.
 *
 * The socket file never exists with more permissions than asked for: the
 * socket inode is fchmod'ed before bind (Linux creates the file from the
 * socket inode's mode, masked by the umask) and the umask is tightened around
 * bind as well. The umask is process-wide, so it is only ever made stricter,
 * never looser: a file another thread creates meanwhile gets at most fewer
 * permissions. The wrapper then sets the exact mode and owner with fs.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addon.h"

/* Accepts per loop turn, so one busy listener cannot starve the loop. */
#define ACCEPT_BATCH 64

/*
 * A socket file already at the path is removed only if it is a socket that
 * nobody listens on. A live one means another daemon runs: EADDRINUSE.
 */
static int clear_stale(const struct sockaddr_un *addr)
{
    struct stat st;
    int probe, err;

    if (lstat(addr->sun_path, &st) != 0)
        return errno == ENOENT ? 0 : errno;
    if (!S_ISSOCK(st.st_mode))
        return EEXIST;
    if ((probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return errno;
    err = connect(probe, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : errno;
    close(probe);
    /* EAGAIN: alive with a full backlog. EPROTOTYPE: alive, another socket type. */
    if (err == 0 || err == EAGAIN || err == EPROTOTYPE)
        return EADDRINUSE;
    if (err != ECONNREFUSED && err != ENOENT)
        return err;
    if (unlink(addr->sun_path) != 0 && errno != ENOENT)
        return errno;
    return 0;
}

static int bind_restricted(int fd, const struct sockaddr_un *addr, mode_t mode)
{
    mode_t old;
    struct stat st;
    int err = 0;

    if (fchmod(fd, mode) != 0)
        return errno;
    old = umask(0777);
    umask(old | (~mode & 0777));
    if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
        err = errno;
    umask(old);
    if (err != 0)
        return err;
    /* Fail closed if this kernel gave the file more than was asked for. */
    if (lstat(addr->sun_path, &st) != 0 || (st.st_mode & 0777 & ~mode) != 0) {
        unlink(addr->sun_path);
        return EPERM;
    }
    return 0;
}

static int socket_address(napi_env env, napi_value value, struct sockaddr_un *addr)
{
    size_t length;

    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (napi_get_value_string_utf8(env, value, addr->sun_path, sizeof(addr->sun_path), &length) != napi_ok)
        return EINVAL;
    if (length == 0 || length >= sizeof(addr->sun_path) - 1 || strlen(addr->sun_path) != length)
        return ENAMETOOLONG;
    return 0;
}

/*
 * listen(path, mode, backlog, maxFrame, maxFds, bindPath) -> handle, not yet
 * polling. `path` is where clients will connect: refused while a live
 * listener answers there, a stale socket file is removed. The socket is
 * bound at `bindPath`, a name no client uses, so that the caller can set its
 * owner and mode before renaming it to `path`: a client never meets the
 * socket with the wrong owner (EACCES would read as a broken installation).
 */
napi_value js_listen(napi_env env, napi_callback_info info)
{
    size_t argc = 6;
    napi_value argv[6], external;
    struct sockaddr_un addr, public_addr;
    int32_t mode, backlog, max_frame, max_fds;
    sock_handle *h;
    int fd, err;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 6 || arg_int32(env, argv[1], &mode) != 0 || arg_int32(env, argv[2], &backlog) != 0
        || arg_int32(env, argv[3], &max_frame) != 0 || arg_int32(env, argv[4], &max_fds) != 0)
        return throw_type(env, "listen(path, mode, backlog, maxFrame, maxFds, bindPath)");
    if ((err = socket_address(env, argv[0], &public_addr)) != 0 || (err = socket_address(env, argv[5], &addr)) != 0)
        return err == EINVAL ? throw_type(env, "listen: path and bindPath must be strings") : throw_errno(env, "bind", err);
    if (mode < 0 || mode > 0777 || max_frame < 1 || max_frame > ADDON_MAX_FRAME_OCTETS || max_fds < 0
        || max_fds > ADDON_MAX_FDS_LIMIT)
        return throw_type(env, "listen: mode, maxFrame or maxFds out of range");

    if ((err = clear_stale(&public_addr)) != 0 || (err = clear_stale(&addr)) != 0)
        return throw_errno(env, "bind", err);
    if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return throw_errno(env, "socket", errno);
    if ((err = bind_restricted(fd, &addr, (mode_t)mode)) != 0) {
        close(fd);
        return throw_errno(env, "bind", err);
    }
    if (listen(fd, backlog) != 0) {
        err = errno;
        close(fd);
        unlink(addr.sun_path);
        return throw_errno(env, "listen", err);
    }
    if (handle_create(env, fd, 1, &h, &external) != napi_ok) {
        unlink(addr.sun_path);
        return throw_errno(env, "listen", ENOMEM);
    }
    h->max_frame = (size_t)max_frame;
    h->max_fds = max_fds;
    return external;
}

/*
 * adopt(fd, path, maxFrame, maxFds) -> handle, not yet polling: a listening
 * socket the daemon was given (systemd's socket activation, sd_listen_fds(3))
 * instead of one it made. Taken only if it is what `path` names: a
 * listening AF_UNIX SOCK_SEQPACKET socket bound there; otherwise EINVAL and
 * the fd is left as it was. Made non-blocking and close-on-exec, so that no
 * child (sendmail) inherits it.
 */
napi_value js_adopt(napi_env env, napi_callback_info info)
{
    size_t argc = 4;
    napi_value argv[4], external;
    struct sockaddr_un want, got;
    socklen_t length = sizeof(got), optlen;
    int32_t fd, max_frame, max_fds;
    int domain = 0, type = 0, accepting = 0, flags, err;
    sock_handle *h;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 4 || arg_int32(env, argv[0], &fd) != 0 || arg_int32(env, argv[2], &max_frame) != 0
        || arg_int32(env, argv[3], &max_fds) != 0 || fd < 0)
        return throw_type(env, "adopt(fd, path, maxFrame, maxFds)");
    if ((err = socket_address(env, argv[1], &want)) != 0)
        return err == EINVAL ? throw_type(env, "adopt: path must be a string") : throw_errno(env, "adopt", err);
    if (max_frame < 1 || max_frame > ADDON_MAX_FRAME_OCTETS || max_fds < 0 || max_fds > ADDON_MAX_FDS_LIMIT)
        return throw_type(env, "adopt: maxFrame or maxFds out of range");

    optlen = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) != 0)
        return throw_errno(env, "adopt", errno);
    optlen = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0)
        return throw_errno(env, "adopt", errno);
    optlen = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &optlen) != 0)
        return throw_errno(env, "adopt", errno);
    memset(&got, 0, sizeof(got));
    if (getsockname(fd, (struct sockaddr *)&got, &length) != 0)
        return throw_errno(env, "adopt", errno);
    if (domain != AF_UNIX || type != SOCK_SEQPACKET || !accepting
        || strncmp(got.sun_path, want.sun_path, sizeof(got.sun_path)) != 0)
        return throw_errno(env, "adopt", EINVAL);

    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0
        || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return throw_errno(env, "adopt", errno);
    if (handle_create(env, fd, 1, &h, &external) != napi_ok)
        return throw_errno(env, "adopt", ENOMEM);
    h->max_frame = (size_t)max_frame;
    h->max_fds = max_fds;
    return external;
}

static void emit_connection(sock_handle *listener, int fd)
{
    napi_handle_scope scope;
    napi_value argv[2];
    sock_handle *conn;

    if (napi_open_handle_scope(listener->env, &scope) != napi_ok) {
        close(fd);
        return;
    }
    /* On failure handle_create has closed fd: the peer sees EOF and reports 75. */
    if (handle_create(listener->env, fd, 0, &conn, &argv[1]) == napi_ok) {
        conn->max_frame = listener->max_frame;
        conn->max_fds = listener->max_fds;
        napi_create_int32(listener->env, EVENT_CONNECTION, &argv[0]);
        handle_emit(listener, 2, argv);
    }
    napi_close_handle_scope(listener->env, scope);
}

void listener_on_poll(uv_poll_t *poll, int status, int events)
{
    sock_handle *h = poll->data;
    (void)events;

    if (status < 0) {
        handle_stop(h);
        handle_emit_error(h, -status, "uv_poll");
        handle_settle(h);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && h->polling && !h->closing && h->state != NULL; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            emit_connection(h, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays
         * readable, so polling on would spin. Pause; the wrapper resumes. */
        {
            int err = errno;
            handle_stop(h);
            handle_emit_error(h, err, "accept");
            handle_settle(h);
        }
        return;
    }
}
