/*
 * deadline.h: one deadline for the whole run (MAILSUBMIT_TIMEOUT seconds
 * from the start), shared by the connect, every send and the reply wait.
 */
#ifndef MAILSUBMIT_DEADLINE_H
#define MAILSUBMIT_DEADLINE_H

void deadline_start(void);

/* Milliseconds left, 0 when the deadline has passed. */
int deadline_remaining_ms(void);

/* Bounds the next connect or send on fd by the deadline (SO_SNDTIMEO). */
void deadline_bound_send(int fd);

#endif
