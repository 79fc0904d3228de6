/*
 * handle.c: the lifetime of a poll-backed socket handle, the part the
 * prototype got wrong three times. The rules:
 *
 * - Memory is freed only when both the libuv close callback and the N-API
 *   finalizer of the handle's external have run, whichever comes last.
 * - While polling, the external and the event callback are held by strong
 *   references, so a listener (or a connection) that JavaScript no longer
 *   references keeps working instead of being collected (the daemon once
 *   exited 0 that way). When polling stops the references turn weak, so a
 *   handle nobody closes is closed by its finalizer instead of leaking its fd.
 * - Callbacks go through napi_make_callback with the global object as
 *   receiver (an undefined receiver throws), inside a handle scope, so
 *   microtasks queued by the callback run at once, as for any Node I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "addon.h"

static void list_remove(sock_handle *h)
{
    if (h->state == NULL)
        return;
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        h->state->handles = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
}

static void maybe_free(sock_handle *h)
{
    if (h->uv_closed && h->finalized) {
        list_remove(h);
        free(h);
    }
}

/* Drops every N-API resource; only with a live environment. */
static void release_js(sock_handle *h)
{
    if (h->state == NULL)
        return;
    if (h->self != NULL) {
        napi_delete_reference(h->env, h->self);
        h->self = NULL;
    }
    if (h->callback != NULL) {
        napi_delete_reference(h->env, h->callback);
        h->callback = NULL;
    }
    if (h->async != NULL) {
        napi_async_destroy(h->env, h->async);
        h->async = NULL;
    }
    h->strong = 0;
}

static void set_strong(sock_handle *h, int strong)
{
    uint32_t count;
    if (h->state == NULL || h->strong == strong)
        return;
    if (strong) {
        if (h->self != NULL)
            napi_reference_ref(h->env, h->self, &count);
        if (h->callback != NULL)
            napi_reference_ref(h->env, h->callback, &count);
    } else {
        if (h->self != NULL)
            napi_reference_unref(h->env, h->self, &count);
        if (h->callback != NULL)
            napi_reference_unref(h->env, h->callback, &count);
    }
    h->strong = strong;
}

static void on_uv_close(uv_handle_t *handle)
{
    sock_handle *h = handle->data;
    h->uv_closed = 1;
    if (!h->finalized)
        release_js(h);
    maybe_free(h);
}

static void on_finalize(napi_env env, void *data, void *hint)
{
    sock_handle *h = data;
    (void)env;
    (void)hint;
    h->finalized = 1;
    handle_close(h);
    release_js(h);
    maybe_free(h);
}

/* Takes ownership of fd: on failure it is closed. */
napi_status handle_create(napi_env env, int fd, int is_listener, sock_handle **out, napi_value *external)
{
    addon_state *state = addon_state_of(env);
    uv_loop_t *loop;
    sock_handle *h;
    napi_value name;
    napi_status status;

    if (state == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok) {
        close(fd);
        return napi_generic_failure;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        close(fd);
        return napi_generic_failure;
    }
    h->env = env;
    h->fd = fd;
    h->is_listener = is_listener;
    h->poll.data = h;
    if (uv_poll_init(loop, &h->poll, fd) != 0) {
        close(fd);
        free(h);
        return napi_generic_failure;
    }
    /* From here on the handle is freed only through uv_close and the finalizer. */
    h->state = state;
    h->next = state->handles;
    if (h->next != NULL)
        h->next->prev = h;
    state->handles = h;

    status = napi_create_external(env, h, on_finalize, NULL, external);
    if (status != napi_ok)
        h->finalized = 1; /* no external, so no finalizer will ever run */
    if (status == napi_ok)
        status = tag_handle(env, *external);
    if (status == napi_ok)
        status = napi_create_reference(env, *external, 0, &h->self);
    if (status == napi_ok)
        status = napi_create_string_utf8(env, is_listener ? "SeqpacketListener" : "SeqpacketConnection",
                                         NAPI_AUTO_LENGTH, &name);
    /* No resource object: Node makes one. Passing the external would let the
     * async context keep it alive forever. */
    if (status == napi_ok)
        status = napi_async_init(env, NULL, name, &h->async);
    if (status != napi_ok) {
        handle_close(h);
        return status;
    }
    *out = h;
    return napi_ok;
}

int handle_start(sock_handle *h, napi_value callback)
{
    napi_valuetype type;
    int err;

    if (h->closing)
        return EBADF;
    if (napi_typeof(h->env, callback, &type) != napi_ok || type != napi_function)
        return EINVAL;
    if (h->callback != NULL) {
        set_strong(h, 0);
        napi_delete_reference(h->env, h->callback);
        h->callback = NULL;
    }
    if (napi_create_reference(h->env, callback, 0, &h->callback) != napi_ok)
        return ENOMEM;
    err = uv_poll_start(&h->poll, UV_READABLE | UV_DISCONNECT,
                        h->is_listener ? listener_on_poll : connection_on_poll);
    if (err != 0)
        return -err;
    h->polling = 1;
    set_strong(h, 1);
    return 0;
}

/*
 * Stops polling but keeps the references as they are, so the handle can
 * still report why it stopped; handle_settle then weakens them unless the
 * callback started polling again.
 */
void handle_stop(sock_handle *h)
{
    if (!h->polling)
        return;
    uv_poll_stop(&h->poll);
    h->polling = 0;
}

void handle_settle(sock_handle *h)
{
    set_strong(h, h->polling);
}

void handle_close(sock_handle *h)
{
    if (h->closing)
        return;
    handle_stop(h);
    set_strong(h, 0);
    h->closing = 1;
    uv_close((uv_handle_t *)&h->poll, on_uv_close);
    /* uv_close has taken the fd out of epoll; closing it now is safe. */
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
}

/*
 * Calls the handle's callback. The caller holds a handle scope. An exception
 * thrown by the callback is reported like any uncaught exception of an I/O
 * callback. The handle cannot be freed during the call: its uv_close callback
 * runs on a later loop turn at the earliest.
 */
void handle_emit(sock_handle *h, size_t argc, napi_value *argv)
{
    napi_env env = h->env;
    napi_value callback = NULL, global, result, exception;
    bool pending = false;

    if (h->state == NULL || h->callback == NULL)
        return;
    if (napi_get_reference_value(env, h->callback, &callback) != napi_ok || callback == NULL)
        return;
    napi_get_global(env, &global);
    napi_make_callback(env, h->async, global, callback, argc, argv, &result);
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending
        && napi_get_and_clear_last_exception(env, &exception) == napi_ok)
        napi_fatal_exception(env, exception);
}

void handle_emit_error(sock_handle *h, int err, const char *syscall)
{
    napi_handle_scope scope;
    napi_value argv[3];

    if (h->state == NULL || napi_open_handle_scope(h->env, &scope) != napi_ok)
        return;
    napi_create_int32(h->env, EVENT_ERROR, &argv[0]);
    napi_create_int32(h->env, err, &argv[1]);
    napi_create_string_utf8(h->env, syscall, NAPI_AUTO_LENGTH, &argv[2]);
    handle_emit(h, 3, argv);
    napi_close_handle_scope(h->env, scope);
}

void handles_env_gone(addon_state *state)
{
    sock_handle *h = state->handles, *next;
    for (; h != NULL; h = next) {
        next = h->next;
        h->state = NULL;
        h->prev = h->next = NULL;
    }
    state->handles = NULL;
}
