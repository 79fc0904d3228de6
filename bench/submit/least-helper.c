/*
 * least-helper: the least any helper must do to hand its standard input to
 * a daemon and wait for the verdict: connect to the socket named by
 * argv[1], send one frame with fd 0 (SCM_RIGHTS), read the reply, exit with
 * the reply's status octet. No authorization list, no user lookup, no
 * deadline, no frame worth the name: the bench (submit.bench.ts) runs it,
 * installed set-gid like the helper, against the I/O floor (io-floor.mjs,
 * which answers whatever it is sent), beside /bin/true and the helper, so
 * that the helper's CPU can be read against what talking to a daemon costs
 * on the machine.
 *
 *   least-helper SOCKET < FILE
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The reply frame's status octet: after the 8-octet header (shared/src/frame/header.ts, reply.ts). */
#define REPLY_STATUS_AT 8

int main(int argc, char **argv)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    char frame[32] = "MSUB";
    struct iovec data = { frame, sizeof(frame) };
    char control[CMSG_SPACE(sizeof(int))] = { 0 };
    struct msghdr message = { .msg_iov = &data, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
    struct cmsghdr *rights = CMSG_FIRSTHDR(&message);
    int input = 0;
    unsigned char reply[512];
    int sock;

    if (argc != 2 || strlen(argv[1]) >= sizeof(address.sun_path))
        return 64;
    strcpy(address.sun_path, argv[1]);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(rights), &input, sizeof(int));
    if ((sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0
        || connect(sock, (struct sockaddr *)&address, sizeof(address)) < 0
        || sendmsg(sock, &message, 0) < 0
        || recv(sock, reply, sizeof(reply), 0) <= REPLY_STATUS_AT)
        return 75;
    return reply[REPLY_STATUS_AT];
}
