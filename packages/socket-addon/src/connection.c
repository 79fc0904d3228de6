/*
 * connection.c: one accepted SOCK_SEQPACKET connection. Each recvmsg is one
 * whole frame with its fds (no framing needed); a zero-length read is the
 * peer going away, which is why frames are never empty.
 *
 * Received fds arrive close-on-exec (MSG_CMSG_CLOEXEC), so no child process
 * of the daemon ever inherits a caller's stdin. When the frame or the control
 * data was cut (MSG_TRUNC, MSG_CTRUNC), or more fds came than maxFds, every
 * fd that did arrive is closed here: the daemon refuses such a frame anyway,
 * and JavaScript never sees an fd it might forget to close.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"

/* Frames per loop turn; the peer normally sends exactly one. */
#define RECV_BATCH 16
/* Alignment slack: CMSG_SPACE rounds up, so the kernel may fit one more fd. */
#define FDS_CAPACITY (ADDON_MAX_FDS_LIMIT + 2)

static void close_all(const int *fds, int count)
{
    for (int i = 0; i < count; i++)
        close(fds[i]);
}

static void emit_simple(sock_handle *h, int kind)
{
    napi_handle_scope scope;
    napi_value argv[1];

    if (h->state == NULL || napi_open_handle_scope(h->env, &scope) != napi_ok)
        return;
    napi_create_int32(h->env, kind, &argv[0]);
    handle_emit(h, 1, argv);
    napi_close_handle_scope(h->env, scope);
}

/* Hands the frame and its fds to JavaScript, which owns the fds from here on. */
static void emit_frame(sock_handle *h, const unsigned char *data, size_t length, const int *fds, int count,
                       int flags)
{
    napi_env env = h->env;
    napi_handle_scope scope;
    napi_value argv[4], fd;
    void *copy;

    if (h->state == NULL || napi_open_handle_scope(env, &scope) != napi_ok) {
        close_all(fds, count);
        return;
    }
    if (napi_create_int32(env, EVENT_FRAME, &argv[0]) != napi_ok
        || napi_create_buffer_copy(env, length, data, &copy, &argv[1]) != napi_ok
        || napi_create_array_with_length(env, (size_t)count, &argv[2]) != napi_ok
        || napi_create_int32(env, flags, &argv[3]) != napi_ok) {
        close_all(fds, count);
        napi_close_handle_scope(env, scope);
        return;
    }
    for (int i = 0; i < count; i++) {
        napi_create_int32(env, fds[i], &fd);
        napi_set_element(env, argv[2], (uint32_t)i, fd);
    }
    handle_emit(h, 4, argv);
    napi_close_handle_scope(env, scope);
}

/* One recvmsg. Returns 1 to go on reading, 0 to wait for the next poll event. */
static int receive_one(sock_handle *h)
{
    union {
        struct cmsghdr align;
        unsigned char buf[CMSG_SPACE(sizeof(int) * ADDON_MAX_FDS_LIMIT)];
    } control;
    int fds[FDS_CAPACITY];
    int count = 0, flags = 0;
    struct iovec iov = {h->state->recv_buf, h->max_frame};
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)h->max_fds);
    if (h->max_fds == 0)
        msg.msg_controllen = 0;

    do
        n = recvmsg(h->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return 0;
        handle_stop(h);
        handle_emit_error(h, err, "recvmsg");
        handle_settle(h);
        return 0;
    }
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        size_t arrived = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < arrived; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            if (count < FDS_CAPACITY)
                fds[count++] = fd;
            else
                close(fd);
        }
    }
    if (msg.msg_flags & MSG_TRUNC)
        flags |= FRAME_FLAG_TRUNCATED;
    if ((msg.msg_flags & MSG_CTRUNC) || count > h->max_fds)
        flags |= FRAME_FLAG_CTRUNCATED;
    /*
     * MSG_CTRUNC with room left in the control buffer: the kernel could not
     * install the fds (EMFILE, ENFILE), which is the daemon's shortage, not
     * a caller passing too many.
     */
    if ((msg.msg_flags & MSG_CTRUNC) && h->max_fds > 0
        && (size_t)count < (CMSG_SPACE(sizeof(int) * (size_t)h->max_fds) - CMSG_LEN(0)) / sizeof(int))
        flags |= FRAME_FLAG_FDS_LOST;
    if (flags != 0 || n == 0) {
        close_all(fds, count);
        count = 0;
    }
    if (n == 0) {
        handle_stop(h);
        emit_simple(h, EVENT_END);
        handle_settle(h);
        return 0;
    }
    emit_frame(h, h->state->recv_buf, (size_t)n, fds, count, flags);
    return 1;
}

void connection_on_poll(uv_poll_t *poll, int status, int events)
{
    sock_handle *h = poll->data;
    (void)events;

    if (status < 0) {
        handle_stop(h);
        handle_emit_error(h, -status, "uv_poll");
        handle_settle(h);
        return;
    }
    for (int i = 0; i < RECV_BATCH && h->polling && !h->closing && h->state != NULL; i++)
        if (!receive_one(h))
            return;
}

/* send(handle, Uint8Array) -> octets sent. Never blocks: EAGAIN is an error. */
napi_value js_send(napi_env env, napi_callback_info info)
{
    size_t argc = 2, length;
    napi_value argv[2], result;
    napi_typedarray_type type;
    sock_handle *h;
    void *data;
    bool is_typedarray = false;
    ssize_t n;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 2 || (h = arg_handle(env, argv[0])) == NULL)
        return throw_type(env, "send(handle, data)");
    if (napi_is_typedarray(env, argv[1], &is_typedarray) != napi_ok || !is_typedarray
        || napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok
        || type != napi_uint8_array)
        return throw_type(env, "send: data must be a Uint8Array");
    if (h->closing || h->is_listener)
        return throw_errno(env, "send", EBADF);
    do
        n = send(h->fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return throw_errno(env, "send", errno);
    napi_create_int64(env, (int64_t)n, &result);
    return result;
}

/* peerCredentials(handle) -> {pid, uid, gid}: the kernel's record from connect(). */
napi_value js_peer_credentials(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], result, value;
    struct ucred cred;
    socklen_t length = sizeof(cred);
    sock_handle *h;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || (h = arg_handle(env, argv[0])) == NULL)
        return NULL;
    if (h->closing)
        return throw_errno(env, "getsockopt", EBADF);
    if (getsockopt(h->fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0)
        return throw_errno(env, "getsockopt", errno);
    napi_create_object(env, &result);
    napi_create_int64(env, cred.pid, &value);
    napi_set_named_property(env, result, "pid", value);
    napi_create_uint32(env, cred.uid, &value);
    napi_set_named_property(env, result, "uid", value);
    napi_create_uint32(env, cred.gid, &value);
    napi_set_named_property(env, result, "gid", value);
    return result;
}
