/*
 * failure.h: how the helper reports what it decides by itself (mailsubmit.c,
 * DIAGNOSTICS): one line on stderr, "NAME: text", and the exit status of
 * the front door it was started as.
 */
#ifndef MAILSUBMIT_FAILURE_H
#define MAILSUBMIT_FAILURE_H

#include <stddef.h>

/* The failures the helper reports by itself; the daemon reports all others. */
enum failure { FAIL_USAGE, FAIL_NO_INPUT, FAIL_NOT_AUTHORIZED, FAIL_CONFIG, FAIL_DAEMON_UNAVAILABLE, FAIL_INTERNAL };

/* The front door (MSUB_MODE_*), chosen from argv[0] before anything can fail. */
extern int helper_mode;

/* What messages start with: the front door's own name, as its callers know it. */
const char *program_name(void);

/* The exit status of a failure at this front door. */
int failure_status(enum failure failure);

/* One write(2) to stderr: no stdio buffering, nothing interleaved. */
void say(const char *text, size_t length);

__attribute__((noreturn, format(printf, 2, 3))) void fail(enum failure failure, const char *format, ...);

#endif
