/*
 * request.c: the request frame (frame.h), built and sent one packet at a
 * time: the mode, argv and the qmail-queue environment values, with fd 0
 * (and fd 1 outside native mode) attached to the first packet as
 * SCM_RIGHTS. The fds are the caller's own: they grant the daemon nothing
 * the caller did not have.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon-connection.h"
#include "deadline.h"
#include "failure.h"
#include "frame.h"

/* One packet of the request. */
static unsigned char request[MSUB_MAX_PACKET_OCTETS];

/*
 * The request goes out in packets of at most MSUB_MAX_PACKET_OCTETS, in
 * order, each full but the last, the fds with the first (frame.h): a
 * SOCK_SEQPACKET message must fit the socket's send buffer whole, and a
 * command line may be as long as ARG_MAX. Nothing is held beyond one packet.
 */
static struct {
    int fd;
    int nfds; /* fds attached to the first packet */
    size_t used;
    int sent;      /* packets sent so far */
    int peer_gone; /* the daemon answered and closed early: its reply waits */
} out;

/* Octets of the request for this argv: the frame's own length field. */
static size_t measure_request(int argc, char **argv, const struct request_env *env, size_t envc)
{
    size_t length = MSUB_REQUEST_FIXED_OCTETS;

    for (int i = 0; i < argc; i++) {
        /* Each argument takes 4 + strlen octets here and strlen + 1 + a pointer in ARG_MAX. */
        length += 4 + strlen(argv[i]);
        if (length > MSUB_MAX_FRAME_OCTETS)
            fail(FAIL_USAGE, "the command line is too long (a request holds at most %d octets)", MSUB_MAX_FRAME_OCTETS);
    }
    for (size_t i = 0; i < envc; i++)
        length += 1 + strlen(env[i].name) + 2 + strlen(env[i].value);
    if (length > MSUB_MAX_FRAME_OCTETS)
        fail(FAIL_USAGE, "the command line is too long (a request holds at most %d octets)", MSUB_MAX_FRAME_OCTETS);
    return length;
}

static void send_packet(void)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * MSUB_MAX_REQUEST_FDS)];
    } control;
    int fds[MSUB_MAX_REQUEST_FDS] = {STDIN_FILENO, STDOUT_FILENO};
    int nfds = out.nfds;
    struct iovec iov = {request, out.used};
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;

    if (out.peer_gone || out.used == 0) {
        out.used = 0; /* the rest is not wanted: the reply is waiting */
        return;
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (out.sent == 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nfds);
    } else {
        /* Every packet waits for room at most until the one deadline. */
        deadline_bound_send(out.fd);
    }

    do
        n = sendmsg(out.fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon did not take the request in time");
    /*
     * The daemon decides admission at connect, and the size of the request
     * from its first packet, and may answer and close before the rest
     * arrives (not authorized, overload, too long): its reply is then
     * already queued here, so read it rather than report no reply.
     */
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        out.peer_gone = 1;
        out.used = 0;
        return;
    }
    if (n < 0)
        fail(FAIL_INTERNAL, "cannot send the request: %s", strerror(errno));
    if ((size_t)n != out.used)
        fail(FAIL_INTERNAL, "sent %zd of %zu octets of the request", n, out.used);
    out.sent++;
    out.used = 0;
}

static void put_bytes(const void *data, size_t length)
{
    const unsigned char *from = data;

    while (length > 0) {
        size_t room = sizeof(request) - out.used, n = length < room ? length : room;
        memcpy(request + out.used, from, n);
        out.used += n;
        from += n;
        length -= n;
        if (out.used == sizeof(request))
            send_packet();
    }
}

static void put_uint(uint32_t value, int octets)
{
    unsigned char bytes[4];

    for (int i = 0; i < octets; i++)
        bytes[i] = (unsigned char)(value >> (8 * i));
    put_bytes(bytes, (size_t)octets);
}

/* Builds the request and sends it, packet by packet. */
void send_request(int fd, int mode, int argc, char **argv, const struct request_env *env, size_t envc)
{
    size_t length = measure_request(argc, argv, env, envc);
    unsigned char fixed[4] = {MSUB_KIND_REQUEST, 0, (unsigned char)mode,
                              mode == MSUB_MODE_QMAIL_QUEUE ? MSUB_REQUEST_FLAG_ENVELOPE_FD : 0};

    out.fd = fd;
    /* fd 1 too in qmail-queue mode (the envelope) and sendmail mode (where -bs replies); the daemon decides. */
    out.nfds = mode == MSUB_MODE_NATIVE ? 1 : 2;
    put_bytes(MSUB_FRAME_MAGIC, 4);
    put_uint(MSUB_FRAME_VERSION, 2);
    put_bytes(fixed, 2); /* kind, reserved */
    put_uint((uint32_t)length, 4);
    put_bytes(fixed + 2, 2); /* mode, flags */
    put_uint((uint32_t)envc, 2);
    put_uint((uint32_t)argc, 4);
    for (int i = 0; i < argc; i++) {
        size_t arg_length = strlen(argv[i]);
        put_uint((uint32_t)arg_length, 4);
        put_bytes(argv[i], arg_length);
    }
    for (size_t i = 0; i < envc; i++) {
        put_uint((uint32_t)strlen(env[i].name), 1);
        put_bytes(env[i].name, strlen(env[i].name));
        put_uint((uint32_t)strlen(env[i].value), 2);
        put_bytes(env[i].value, strlen(env[i].value));
    }
    send_packet();
}
