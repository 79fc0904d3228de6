/*
 * reply.c: the daemon's reply frame, waited for until the deadline and
 * refused unless it is well formed: a garbled or over-long reply is an
 * internal failure, never a status passed on, and its text can hold
 * nothing that steers a terminal.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "build-settings.h"
#include "daemon-connection.h"
#include "deadline.h"
#include "failure.h"
#include "frame.h"

/* Room for a reply over the maximum, to tell "too long" from "just fits". */
static unsigned char reply[MSUB_MAX_REPLY_OCTETS + 64];

static size_t receive_frame(int fd)
{
    struct pollfd pfd;
    ssize_t n;
    int ms, reset_seen = 0;

    for (;;) {
        if ((ms = deadline_remaining_ms()) == 0)
            fail(FAIL_DAEMON_UNAVAILABLE, "no reply from the mailsubmit daemon within %d seconds; the message was not"
                 " accepted", MAILSUBMIT_TIMEOUT);
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, ms) < 0) {
            if (errno == EINTR)
                continue;
            fail(FAIL_INTERNAL, "poll: %s", strerror(errno));
        }
        if (pfd.revents == 0)
            continue;
        /* MSG_TRUNC: the real length of a longer frame, so it is refused, not cut. */
        n = recv(fd, reply, sizeof(reply), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        /*
         * A daemon that answers at connect and closes with our request
         * unread makes the kernel report ECONNRESET once, ahead of the reply
         * still queued here; the next recv returns the reply (or 0).
         */
        if (n < 0 && errno == ECONNRESET && !reset_seen) {
            reset_seen = 1;
            continue;
        }
        if (n < 0 && errno != ECONNRESET)
            fail(FAIL_INTERNAL, "cannot receive the reply: %s", strerror(errno));
        if (n <= 0)
            fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon closed the connection without a reply; the message"
                 " may or may not have been accepted: submit it again later");
        if ((size_t)n > MSUB_MAX_REPLY_OCTETS)
            fail(FAIL_INTERNAL, "garbled reply from the mailsubmit daemon (%zd octets, at most %d expected)", n,
                 MSUB_MAX_REPLY_OCTETS);
        return (size_t)n;
    }
}

/* The same rules as decodeReply in the daemon's frame codec. */
static int check_reply(size_t length, const char **problem)
{
    size_t outcome_length, text_length;
    const unsigned char *text;

    *problem = NULL;
    if (length < MSUB_REPLY_FIXED_OCTETS || memcmp(reply, MSUB_FRAME_MAGIC, 4) != 0)
        *problem = "not a mailsubmit reply";
    else if ((reply[4] | reply[5] << 8) != MSUB_FRAME_VERSION)
        *problem = "another protocol version: install the helper and the daemon from one release";
    else if (reply[6] != MSUB_KIND_REPLY || reply[7] != 0)
        *problem = "not a reply frame";
    if (*problem != NULL)
        return -1;
    outcome_length = reply[9];
    text_length = (size_t)(reply[10] | reply[11] << 8);
    if (outcome_length == 0 || outcome_length > MSUB_MAX_OUTCOME_OCTETS || text_length > MSUB_MAX_REPLY_TEXT_OCTETS
        || MSUB_REPLY_FIXED_OCTETS + outcome_length + text_length != length) {
        *problem = "bad field lengths";
        return -1;
    }
    for (size_t i = 0; i < outcome_length; i++) {
        unsigned char c = reply[MSUB_REPLY_FIXED_OCTETS + i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            *problem = "bad outcome";
            return -1;
        }
    }
    text = reply + MSUB_REPLY_FIXED_OCTETS + outcome_length;
    for (size_t i = 0; i < text_length; i++) {
        /* C0, DEL, and C1 encoded in UTF-8 (0xC2 0x80..0x9F): nothing that steers a terminal. */
        if (text[i] < 0x20 || text[i] == 0x7f
            || (text[i] == 0xc2 && i + 1 < text_length && text[i + 1] >= 0x80 && text[i + 1] <= 0x9f)) {
            *problem = "control characters in the text";
            return -1;
        }
    }
    return 0;
}

void receive_reply(int fd, struct reply *out)
{
    size_t length = receive_frame(fd);
    const char *problem;

    if (check_reply(length, &problem) != 0)
        fail(FAIL_INTERNAL, "garbled reply from the mailsubmit daemon (%s)", problem);
    out->status = reply[8];
    out->outcome_length = reply[9];
    out->text_length = (size_t)(reply[10] | reply[11] << 8);
    out->outcome = (const char *)reply + MSUB_REPLY_FIXED_OCTETS;
    out->text = out->outcome + out->outcome_length;
}
