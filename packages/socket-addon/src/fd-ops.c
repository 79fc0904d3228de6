/*
 * fd-ops.c: the few calls the daemon needs on a received fd that Node's fs
 * lacks (status flags, kind with access mode, dup, close). Node can fstat, but cannot read or restore the file status flags:
 * net.Socket sets O_NONBLOCK on the open file description it shares with
 * the caller's stdin, and the daemon must put the caller's flags back before
 * closing, or the caller's shell inherits a non-blocking terminal or pipe.
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon.h"

static int arg_fd(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int32_t *fd)
{
    size_t argc = want;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < want || arg_int32(env, argv[0], fd) != 0 || *fd < 0) {
        throw_type(env, "expected a file descriptor");
        return -1;
    }
    return 0;
}

napi_value js_get_file_status_flags(napi_env env, napi_callback_info info)
{
    napi_value argv[1], result;
    int32_t fd;
    int flags;

    if (arg_fd(env, info, 1, argv, &fd) != 0)
        return NULL;
    if ((flags = fcntl(fd, F_GETFL)) < 0)
        return throw_errno(env, "fcntl", errno);
    napi_create_int32(env, flags, &result);
    return result;
}

napi_value js_set_file_status_flags(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    int32_t fd, flags;

    if (arg_fd(env, info, 2, argv, &fd) != 0)
        return NULL;
    if (arg_int32(env, argv[1], &flags) != 0)
        return throw_type(env, "setFileStatusFlags(fd, flags)");
    if (fcntl(fd, F_SETFL, flags) != 0)
        return throw_errno(env, "fcntl", errno);
    return js_undefined(env);
}

static const char *kind_of(mode_t mode, int fd)
{
    if (S_ISFIFO(mode))
        return "fifo";
    if (S_ISSOCK(mode))
        return "socket";
    if (S_ISREG(mode))
        return "file";
    if (S_ISDIR(mode))
        return "dir";
    if (S_ISBLK(mode))
        return "blockdev";
    if (S_ISCHR(mode))
        return isatty(fd) ? "tty" : "chardev";
    return "other";
}

static const char *socket_type_of(int fd)
{
    int type;
    socklen_t length = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0)
        return "other";
    switch (type) {
    case SOCK_STREAM:
        return "stream";
    case SOCK_DGRAM:
        return "dgram";
    case SOCK_SEQPACKET:
        return "seqpacket";
    case SOCK_RAW:
        return "raw";
    default:
        return "other";
    }
}

static int socket_listening(int fd)
{
    int value = 0;
    socklen_t length = sizeof(value);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == 0 && value != 0;
}

/*
 * fdKind(fd) -> {kind, access, socketType?, listening?}: what the caller
 * handed in, and which way it opens. Sockets also say their type (only a
 * stream can be read like a pipe) and whether they listen (an accept queue
 * is not a message).
 */
napi_value js_fd_kind(napi_env env, napi_callback_info info)
{
    napi_value argv[1], result, value;
    int32_t fd;
    struct stat st;
    int flags;
    const char *access;

    if (arg_fd(env, info, 1, argv, &fd) != 0)
        return NULL;
    if (fstat(fd, &st) != 0)
        return throw_errno(env, "fstat", errno);
    if ((flags = fcntl(fd, F_GETFL)) < 0)
        return throw_errno(env, "fcntl", errno);
    if (flags & O_PATH)
        flags = O_ACCMODE; /* opened for nothing but its name: reported as "none" */
    switch (flags & O_ACCMODE) {
    case O_RDONLY:
        access = "read-only";
        break;
    case O_WRONLY:
        access = "write-only";
        break;
    case O_RDWR:
        access = "read-write";
        break;
    default:
        access = "none";
        break;
    }
    napi_create_object(env, &result);
    napi_create_string_utf8(env, kind_of(st.st_mode, fd), NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, result, "kind", value);
    napi_create_string_utf8(env, access, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, result, "access", value);
    if (S_ISSOCK(st.st_mode)) {
        napi_create_string_utf8(env, socket_type_of(fd), NAPI_AUTO_LENGTH, &value);
        napi_set_named_property(env, result, "socketType", value);
        napi_get_boolean(env, socket_listening(fd), &value);
        napi_set_named_property(env, result, "listening", value);
    }
    return result;
}

/* closeFd(fd). On Linux the fd is gone even when close reports EINTR: never retry. */
napi_value js_close_fd(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    int32_t fd;

    if (arg_fd(env, info, 1, argv, &fd) != 0)
        return NULL;
    if (close(fd) != 0 && errno != EINTR)
        return throw_errno(env, "close", errno);
    return js_undefined(env);
}

/*
 * dupFd(fd) -> a new close-on-exec fd on the same open file description: a
 * stream can own and close the copy while the original stays open to have
 * the caller's status flags put back.
 */
napi_value js_dup_fd(napi_env env, napi_callback_info info)
{
    napi_value argv[1], result;
    int32_t fd;
    int copy;

    if (arg_fd(env, info, 1, argv, &fd) != 0)
        return NULL;
    if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return throw_errno(env, "fcntl", errno);
    napi_create_int32(env, copy, &result);
    return result;
}
