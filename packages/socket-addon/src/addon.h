/*
 * addon.h: shared declarations of the socket addon's C files.
 *
 * The addon is a thin layer of system calls: it owns Unix SOCK_SEQPACKET
 * sockets entirely (libuv poll handles, never Node streams, which would read
 * the bytes first and make the kernel drop the passed fds) and reports what
 * happens to one JavaScript callback per handle. Argument checking and error
 * types live in the TypeScript wrapper (src/index.ts).
 */
#ifndef SOCKET_ADDON_H
#define SOCKET_ADDON_H

#include <stddef.h>
#include <node_api.h>
#include <uv.h>

/* Receive buffer shared by every connection of one Node environment: the
 * loop runs one callback at a time, and each frame is copied out at once. */
#define ADDON_MAX_FRAME_OCTETS 65536
/* Upper bound for a listener's maxFds option; sizes the control buffer. */
#define ADDON_MAX_FDS_LIMIT 16

/* What the JavaScript callback receives as its first argument. */
enum addon_event {
    EVENT_CONNECTION = 1, /* (kind, connection handle) */
    EVENT_FRAME = 2,      /* (kind, Buffer, fds[], flag bits) */
    EVENT_END = 3,        /* (kind) */
    EVENT_ERROR = 4       /* (kind, errno, syscall) */
};
#define FRAME_FLAG_TRUNCATED 1  /* MSG_TRUNC: the frame was longer than maxFrame */
#define FRAME_FLAG_CTRUNCATED 2 /* MSG_CTRUNC or more fds than maxFds: all closed */
#define FRAME_FLAG_FDS_LOST 4   /* MSG_CTRUNC below capacity: fds not installed (EMFILE) */

struct addon_state;

/*
 * One listening or accepted socket. Its memory is freed exactly once, when
 * both the libuv close callback and the N-API finalizer of its external have
 * run: freeing after only one of them was the prototype's use-after-free.
 */
typedef struct sock_handle {
    uv_poll_t poll;
    napi_env env;
    struct addon_state *state;   /* NULL once the environment is torn down */
    struct sock_handle *prev, *next;
    int fd;
    int is_listener;
    int polling;                 /* uv_poll_start is in effect */
    int strong;                  /* refs below hold their values strongly */
    int closing;                 /* uv_close was called (fd closed) */
    int uv_closed;               /* the close callback ran */
    int finalized;               /* the external's finalizer ran */
    napi_ref self;               /* the external: strong while polling, so an
                                    active handle is never garbage-collected */
    napi_ref callback;           /* event function: strong while polling */
    napi_async_context async;
    size_t max_frame;            /* connections: receive limit */
    int max_fds;                 /* connections: SCM_RIGHTS limit */
} sock_handle;

typedef struct addon_state {
    unsigned char recv_buf[ADDON_MAX_FRAME_OCTETS];
    sock_handle *handles;        /* every live handle, for teardown */
} addon_state;

/* addon.c */
addon_state *addon_state_of(napi_env env);
napi_value throw_errno(napi_env env, const char *syscall, int err);
napi_value throw_type(napi_env env, const char *message);
int arg_int32(napi_env env, napi_value value, int32_t *out);
sock_handle *arg_handle(napi_env env, napi_value value);
napi_status tag_handle(napi_env env, napi_value external);
napi_value js_undefined(napi_env env);

/* handle.c */
napi_status handle_create(napi_env env, int fd, int is_listener, sock_handle **out, napi_value *external);
int handle_start(sock_handle *h, napi_value callback);
void handle_stop(sock_handle *h);
void handle_settle(sock_handle *h);
void handle_close(sock_handle *h);
void handle_emit(sock_handle *h, size_t argc, napi_value *argv);
void handle_emit_error(sock_handle *h, int err, const char *syscall);
void handles_env_gone(addon_state *state);

/* listener.c, connection.c, fd-ops.c, user-db.c: the exported functions */
napi_value js_listen(napi_env env, napi_callback_info info);
napi_value js_adopt(napi_env env, napi_callback_info info);
void listener_on_poll(uv_poll_t *poll, int status, int events);
void connection_on_poll(uv_poll_t *poll, int status, int events);
napi_value js_send(napi_env env, napi_callback_info info);
napi_value js_peer_credentials(napi_env env, napi_callback_info info);
napi_value js_get_file_status_flags(napi_env env, napi_callback_info info);
napi_value js_set_file_status_flags(napi_env env, napi_callback_info info);
napi_value js_fd_kind(napi_env env, napi_callback_info info);
napi_value js_close_fd(napi_env env, napi_callback_info info);
napi_value js_dup_fd(napi_env env, napi_callback_info info);
napi_value js_limit_malloc_arenas(napi_env env, napi_callback_info info);
napi_value js_lookup_user_by_id(napi_env env, napi_callback_info info);
napi_value js_lookup_group_by_id(napi_env env, napi_callback_info info);
napi_value js_lookup_group_by_name(napi_env env, napi_callback_info info);

#endif
