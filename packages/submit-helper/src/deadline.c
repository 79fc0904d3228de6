/*
 * deadline.c: the run's one deadline, on the monotonic clock so that a
 * change of the system time cannot stretch or cut it.
 */
#define _GNU_SOURCE /* clock_gettime under -std=c11 */
#include "deadline.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "build-settings.h"

static struct timespec deadline;

void deadline_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += MAILSUBMIT_TIMEOUT;
}

int deadline_remaining_ms(void)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

void deadline_bound_send(int fd)
{
    int ms = deadline_remaining_ms() > 0 ? deadline_remaining_ms() : 1; /* 0 would mean no timeout at all */
    struct timeval timeout = {ms / 1000, (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}
