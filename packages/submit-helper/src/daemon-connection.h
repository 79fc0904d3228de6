/*
 * daemon-connection.h: the helper's side of the socket to mailsubmitd:
 * connect, send the request (argv and fds), receive the reply. The frame
 * layout is frame.h's. Every wait ends at the run's deadline (deadline.h);
 * every failure exits through fail() with the status mailsubmit(1) lists.
 */
#ifndef MAILSUBMIT_DAEMON_CONNECTION_H
#define MAILSUBMIT_DAEMON_CONNECTION_H

#include <stddef.h>

/* A name and value copied from the environment, sent as data (qmail-queue mode). */
struct request_env {
    const char *name;
    const char *value;
};

struct reply {
    int status;
    const char *outcome; /* [a-z0-9-], outcome_length octets, not NUL-terminated */
    size_t outcome_length;
    const char *text; /* no control characters, text_length octets, not NUL-terminated */
    size_t text_length;
};

/* Connects to MAILSUBMIT_SOCKET; the socket's send timeout is set to the deadline. */
int connect_daemon(void);

/* Sends one request frame for this front door: mode, argv and env, with fd 0 (and fd 1 outside native mode). */
void send_request(int fd, int mode, int argc, char **argv, const struct request_env *env, size_t envc);

/* Waits for the reply frame and checks it as the daemon's codec would decode it. */
void receive_reply(int fd, struct reply *reply);

#endif
