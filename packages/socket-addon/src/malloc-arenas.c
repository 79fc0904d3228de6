/*
 * malloc-arenas.c: caps the number of glibc malloc arenas.
 *
 * glibc gives threads that contend for the heap arenas of their own (up to
 * 8 per core), and memory freed in one is not reused by another. libuv's
 * thread pool reads callers' regular files, so under a mix of callers the
 * daemon's resident memory kept stepping up without any leak: 10,000 hostile
 * submissions took it from 113 to 122 MB after a full GC, the JavaScript heap
 * unchanged (8.5 MB). Measured after a full GC every 2,500 submissions: with
 * two arenas 117.8, 117.8, 116.7, 119.8 MB, still stepping; with one 111.6,
 * 112.6, 110.6, 112.6 MB. The threads allocate little (read buffers come from
 * JavaScript), so sharing one arena costs no measurable contention. glibc
 * reads MALLOC_ARENA_MAX only at start, so the daemon sets the cap with
 * mallopt before its thread pool starts, whatever starts it.
 */
#include <errno.h>
#include <malloc.h>

#include "addon.h"

napi_value js_limit_malloc_arenas(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    int32_t count = 0;

    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1
        || napi_get_value_int32(env, argv[0], &count) != napi_ok || count < 1)
        return throw_type(env, "limitMallocArenas: expected a count of at least 1");
    /* mallopt returns 0 on failure and sets no errno. */
    if (mallopt(M_ARENA_MAX, count) == 0)
        return throw_errno(env, "mallopt", EINVAL);
    return js_undefined(env);
}
