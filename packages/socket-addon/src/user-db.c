/*
 * user-db.c: user and group lookups through the C library, so the daemon
 * sees the same NSS sources (files, LDAP, sssd) as the set-gid helper does
 * when it reads the authorization list. Node has no getpwuid for other users
 * and no getgrouplist. These calls block while NSS answers, like the helper's.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon.h"

/* Initial buffer for the *_r calls; grown on ERANGE up to the cap. */
#define LOOKUP_BUFFER 4096
#define LOOKUP_BUFFER_CAP (1 << 20)
#define GROUPS_CAP 65536

/*
 * Descriptors a lookup may need (the passwd and group files, an NSS
 * module's socket). NSS does not report a file it could not open as an
 * error: nss_files says "unavailable", the next module says "not found",
 * and getpwuid_r returns 0 with no entry; getgrouplist returns the primary
 * group alone. At the fd limit a listed user would then look unknown (77,
 * not authorized). So a lookup runs only when this many descriptors are
 * free, and an answer of "nothing" is trusted only when one still is
 * afterwards; otherwise the lookup fails with EMFILE or ENFILE, which the
 * daemon answers with 75 (try again).
 */
#define LOOKUP_FD_HEADROOM 4

/* 0 when `wanted` descriptors could be opened just now, else the errno. */
static int fd_headroom(int wanted)
{
    int fds[LOOKUP_FD_HEADROOM], opened = 0, err = 0;

    while (opened < wanted) {
        int fd = open("/", O_PATH | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[opened++] = fd;
    }
    while (opened > 0)
        close(fds[--opened]);
    return err;
}

static int arg_id(napi_env env, napi_callback_info info, uint32_t *id)
{
    size_t argc = 1;
    napi_value argv[1];
    double value;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || napi_get_value_double(env, argv[0], &value) != napi_ok || value < 0 || value > 0xfffffffe
        || value != (double)(uint32_t)value) {
        throw_type(env, "expected a uid or gid");
        return -1;
    }
    *id = (uint32_t)value;
    return 0;
}

static napi_value null_value(napi_env env)
{
    napi_value value;
    napi_get_null(env, &value);
    return value;
}

/* lookupUserById(uid) -> {name, uid, gid, gecos, groupIds} or null. */
napi_value js_lookup_user_by_id(napi_env env, napi_callback_info info)
{
    struct passwd pw, *found = NULL;
    size_t size = LOOKUP_BUFFER;
    char *buffer = NULL;
    gid_t *groups = NULL;
    int ngroups = 64, err;
    uint32_t uid;
    napi_value result = NULL, value, list;

    if (arg_id(env, info, &uid) != 0)
        return NULL;
    if ((err = fd_headroom(LOOKUP_FD_HEADROOM)) != 0)
        return throw_errno(env, "getpwuid_r", err);
    for (;;) {
        char *grown = realloc(buffer, size);
        if (grown == NULL) {
            free(buffer);
            return throw_errno(env, "getpwuid_r", ENOMEM);
        }
        buffer = grown;
        err = getpwuid_r((uid_t)uid, &pw, buffer, size, &found);
        if (err != ERANGE || size >= LOOKUP_BUFFER_CAP)
            break;
        size *= 2;
    }
    if (err != 0) {
        free(buffer);
        return throw_errno(env, "getpwuid_r", err);
    }
    if (found == NULL) {
        free(buffer);
        if ((err = fd_headroom(1)) != 0)
            return throw_errno(env, "getpwuid_r", err);
        return null_value(env);
    }
    for (;;) {
        int wanted = ngroups;
        gid_t *grown = realloc(groups, sizeof(gid_t) * (size_t)wanted);
        if (grown == NULL) {
            free(groups);
            free(buffer);
            return throw_errno(env, "getgrouplist", ENOMEM);
        }
        groups = grown;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) >= 0)
            break;
        /* ngroups now holds the count needed. */
        if (ngroups <= wanted)
            ngroups = wanted * 2;
        if (ngroups > GROUPS_CAP) {
            free(groups);
            free(buffer);
            return throw_errno(env, "getgrouplist", ERANGE);
        }
    }
    /* A group file it could not open shortens the list without a word. */
    if ((err = fd_headroom(1)) != 0) {
        free(groups);
        free(buffer);
        return throw_errno(env, "getgrouplist", err);
    }
    if (napi_create_object(env, &result) == napi_ok) {
        napi_create_string_utf8(env, pw.pw_name, NAPI_AUTO_LENGTH, &value);
        napi_set_named_property(env, result, "name", value);
        napi_create_uint32(env, pw.pw_uid, &value);
        napi_set_named_property(env, result, "uid", value);
        napi_create_uint32(env, pw.pw_gid, &value);
        napi_set_named_property(env, result, "gid", value);
        napi_create_string_utf8(env, pw.pw_gecos != NULL ? pw.pw_gecos : "", NAPI_AUTO_LENGTH, &value);
        napi_set_named_property(env, result, "gecos", value);
        napi_create_array_with_length(env, (size_t)ngroups, &list);
        for (int i = 0; i < ngroups; i++) {
            napi_create_uint32(env, groups[i], &value);
            napi_set_element(env, list, (uint32_t)i, value);
        }
        napi_set_named_property(env, result, "groupIds", list);
    }
    free(groups);
    free(buffer);
    return result;
}

/* Shared by both group lookups: by gid when name is NULL. */
static int lookup_group(const char *name, gid_t gid, struct group *gr, char **buffer, struct group **found)
{
    size_t size = LOOKUP_BUFFER;
    int err;

    *buffer = NULL;
    if ((err = fd_headroom(LOOKUP_FD_HEADROOM)) != 0)
        return err;
    for (;;) {
        char *grown = realloc(*buffer, size);
        if (grown == NULL)
            return ENOMEM;
        *buffer = grown;
        err = name != NULL ? getgrnam_r(name, gr, *buffer, size, found) : getgrgid_r(gid, gr, *buffer, size, found);
        if (err == 0 && *found == NULL)
            return fd_headroom(1);
        if (err != ERANGE || size >= LOOKUP_BUFFER_CAP)
            return err;
        size *= 2;
    }
}

/* lookupGroupById(gid) -> name or null. */
napi_value js_lookup_group_by_id(napi_env env, napi_callback_info info)
{
    struct group gr, *found = NULL;
    char *buffer;
    uint32_t gid;
    int err;
    napi_value result;

    if (arg_id(env, info, &gid) != 0)
        return NULL;
    err = lookup_group(NULL, (gid_t)gid, &gr, &buffer, &found);
    if (err != 0) {
        free(buffer);
        return throw_errno(env, "getgrgid_r", err);
    }
    if (found == NULL)
        result = null_value(env);
    else
        napi_create_string_utf8(env, gr.gr_name, NAPI_AUTO_LENGTH, &result);
    free(buffer);
    return result;
}

/* lookupGroupByName(name) -> gid or null. */
napi_value js_lookup_group_by_name(napi_env env, napi_callback_info info)
{
    size_t argc = 1, length;
    napi_value argv[1], result;
    struct group gr, *found = NULL;
    char name[256], *buffer;
    int err;

    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &length) != napi_ok
        || length == 0 || length >= sizeof(name) - 1 || strlen(name) != length)
        return throw_type(env, "expected a group name of 1 to 254 octets without NUL");
    err = lookup_group(name, 0, &gr, &buffer, &found);
    if (err != 0) {
        free(buffer);
        return throw_errno(env, "getgrnam_r", err);
    }
    if (found == NULL)
        result = null_value(env);
    else
        napi_create_uint32(env, gr.gr_gid, &result);
    free(buffer);
    return result;
}
