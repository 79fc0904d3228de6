/*
 * failure.c: the helper's own failures, as one line on stderr and the exit
 * status of its front door (the codes come from the status table through
 * frame.h).
 */
#include "failure.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "frame.h"

int helper_mode = MSUB_MODE_NATIVE;

static const struct {
    int exit_code;
    int qmail_code;
} failure_codes[] = {
    [FAIL_USAGE] = {MSUB_OUTCOME_USAGE_EXIT, MSUB_OUTCOME_USAGE_QMAIL},
    [FAIL_NO_INPUT] = {MSUB_OUTCOME_NO_INPUT_EXIT, MSUB_OUTCOME_NO_INPUT_QMAIL},
    [FAIL_NOT_AUTHORIZED] = {MSUB_OUTCOME_NOT_AUTHORIZED_EXIT, MSUB_OUTCOME_NOT_AUTHORIZED_QMAIL},
    [FAIL_CONFIG] = {MSUB_OUTCOME_CONFIG_EXIT, MSUB_OUTCOME_CONFIG_QMAIL},
    [FAIL_DAEMON_UNAVAILABLE] = {MSUB_OUTCOME_DAEMON_UNAVAILABLE_EXIT, MSUB_OUTCOME_DAEMON_UNAVAILABLE_QMAIL},
    [FAIL_INTERNAL] = {MSUB_OUTCOME_INTERNAL_EXIT, MSUB_OUTCOME_INTERNAL_QMAIL},
};

const char *program_name(void)
{
    switch (helper_mode) {
    case MSUB_MODE_SENDMAIL:
        return "mailsubmit-sendmail";
    case MSUB_MODE_QMAIL_QUEUE:
        return "mailsubmit-qmail-queue";
    default:
        return "mailsubmit";
    }
}

int failure_status(enum failure failure)
{
    return helper_mode == MSUB_MODE_QMAIL_QUEUE ? failure_codes[failure].qmail_code : failure_codes[failure].exit_code;
}

void say(const char *text, size_t length)
{
    while (length > 0) {
        ssize_t n = write(STDERR_FILENO, text, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        length -= (size_t)n;
    }
}

void fail(enum failure failure, const char *format, ...)
{
    char line[MSUB_MAX_REPLY_TEXT_OCTETS + 64];
    va_list ap;
    int length;

    length = snprintf(line, sizeof(line), "%s: ", program_name());
    va_start(ap, format);
    length += vsnprintf(line + length, sizeof(line) - (size_t)length - 1, format, ap);
    va_end(ap);
    if (length > (int)sizeof(line) - 2)
        length = (int)sizeof(line) - 2;
    line[length++] = '\n';
    say(line, (size_t)length);
    _exit(failure_status(failure));
}
