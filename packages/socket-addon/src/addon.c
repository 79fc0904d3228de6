/*
 * addon.c: module registration, per-environment state, and the small helpers
 * every exported function uses (argument unwrapping, errno exceptions).
 *
 * Errors are thrown as plain Error objects carrying `errno` (a positive
 * number) and `syscall`; the TypeScript wrapper turns them into SocketError
 * with a code such as 'EADDRINUSE', so error naming lives in one place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

/* Distinguishes our externals from any other external a caller might pass. */
static const napi_type_tag HANDLE_TAG = {0x6d7375626d697430ULL, 0x736f636b65743031ULL};

addon_state *addon_state_of(napi_env env)
{
    void *data = NULL;
    if (napi_get_instance_data(env, &data) != napi_ok)
        return NULL;
    return data;
}

napi_value js_undefined(napi_env env)
{
    napi_value value;
    napi_get_undefined(env, &value);
    return value;
}

napi_value throw_errno(napi_env env, const char *syscall, int err)
{
    char text[256];
    napi_value message, error, number, name;

    snprintf(text, sizeof(text), "%s: %s", syscall, strerror(err));
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok
        || napi_create_error(env, NULL, message, &error) != napi_ok)
        return NULL;
    napi_create_int32(env, err, &number);
    napi_set_named_property(env, error, "errno", number);
    napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name);
    napi_set_named_property(env, error, "syscall", name);
    napi_throw(env, error);
    return NULL;
}

napi_value throw_type(napi_env env, const char *message)
{
    napi_throw_type_error(env, NULL, message);
    return NULL;
}

int arg_int32(napi_env env, napi_value value, int32_t *out)
{
    napi_valuetype type;
    if (napi_typeof(env, value, &type) != napi_ok || type != napi_number)
        return -1;
    return napi_get_value_int32(env, value, out) == napi_ok ? 0 : -1;
}

/* The handle behind an external made by handle_create, or NULL (a TypeError is pending). */
sock_handle *arg_handle(napi_env env, napi_value value)
{
    napi_valuetype type;
    bool tagged = false;
    void *data = NULL;

    if (napi_typeof(env, value, &type) != napi_ok || type != napi_external
        || napi_check_object_type_tag(env, value, &HANDLE_TAG, &tagged) != napi_ok || !tagged
        || napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
        throw_type(env, "expected a socket handle");
        return NULL;
    }
    return data;
}

napi_status tag_handle(napi_env env, napi_value external)
{
    return napi_type_tag_object(env, external, &HANDLE_TAG);
}

/* start(handle, callback): begin polling; events go to callback. */
static napi_value js_start(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    sock_handle *h;
    int err;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 2 || (h = arg_handle(env, argv[0])) == NULL)
        return throw_type(env, "start(handle, callback)");
    if ((err = handle_start(h, argv[1])) != 0)
        return throw_errno(env, "uv_poll_start", err);
    return js_undefined(env);
}

/* stop(handle): stop polling (the listener pauses on EMFILE); the fd stays open. */
static napi_value js_stop(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    sock_handle *h;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || (h = arg_handle(env, argv[0])) == NULL)
        return NULL;
    handle_stop(h);
    handle_settle(h);
    return js_undefined(env);
}

/* close(handle): idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    sock_handle *h;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || (h = arg_handle(env, argv[0])) == NULL)
        return NULL;
    handle_close(h);
    return js_undefined(env);
}

/*
 * Runs when the environment is torn down (process exit, worker exit). Handles
 * still alive must not call into N-API afterwards; their memory is left to the
 * process exit rather than risk touching a dead environment.
 */
static void state_cleanup(void *arg)
{
    addon_state *state = arg;
    handles_env_gone(state);
    free(state);
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct {
        const char *name;
        napi_callback fn;
    } functions[] = {
        {"listen", js_listen},
        {"adopt", js_adopt},
        {"start", js_start},
        {"stop", js_stop},
        {"close", js_close},
        {"send", js_send},
        {"peerCredentials", js_peer_credentials},
        {"getFileStatusFlags", js_get_file_status_flags},
        {"setFileStatusFlags", js_set_file_status_flags},
        {"fdKind", js_fd_kind},
        {"closeFd", js_close_fd},
        {"dupFd", js_dup_fd},
        {"lookupUserById", js_lookup_user_by_id},
        {"lookupGroupById", js_lookup_group_by_id},
        {"lookupGroupByName", js_lookup_group_by_name},
        {"limitMallocArenas", js_limit_malloc_arenas},
    };
    addon_state *state = calloc(1, sizeof(*state));

    if (state == NULL) {
        napi_throw_error(env, NULL, "socket addon: out of memory");
        return NULL;
    }
    /* Freed by the cleanup hook, not an instance-data finalizer, so the hook
     * that walks the handle list can never run after the list is gone. */
    if (napi_set_instance_data(env, state, NULL, NULL) != napi_ok
        || napi_add_env_cleanup_hook(env, state_cleanup, state) != napi_ok) {
        free(state);
        napi_throw_error(env, NULL, "socket addon: cannot register its state");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
        napi_value fn;
        if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn) != napi_ok
            || napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok)
            return NULL;
    }
    return exports;
}

NAPI_MODULE_INIT()
{
    return init(env, exports);
}
