/*
 * NAME
 *	authorization-list.h 3
 * SUMMARY
 *	the helper's reading of the authorization list
 * SYNOPSIS
 *	#include "authorization-list.h"
 *
 *	enum list_verdict list_check(int fd, const struct list_caller *caller);
 * DESCRIPTION
 *	list_check() reads the list from fd to its end (or to the first line
 *	naming the caller) and says whether the caller is on it. It reads the
 *	same grammar as the daemon's parser
 *	(packages/shared/src/authorization/authorization-list.ts); the
 *	conformance suite in test/conformance/authorization-list/ runs both
 *	over one corpus and fails when they differ.
 *
 *	The helper may only refuse a caller (77) whom the daemon would refuse
 *	as not listed. So LIST_NOT_LISTED means: every line is one the daemon
 *	accepts, no principal is listed twice, and no line names the caller.
 *	A line the daemon would refuse, or one this reader cannot judge (a
 *	sender pattern with non-ASCII characters or an A-label, which only
 *	IDNA can check), makes the answer LIST_UNSURE unless a line names the
 *	caller: the helper then connects and the daemon answers.
 *
 *	Nothing here exits, prints or allocates; group membership is asked of
 *	the caller's in_group(), so a test can answer it without system
 *	accounts.
 * DIAGNOSTICS
 *	LIST_READ_ERROR with errno set when read(2) fails.
 */
#ifndef MAILSUBMIT_AUTHORIZATION_LIST_H
#define MAILSUBMIT_AUTHORIZATION_LIST_H

#include <sys/types.h>

struct list_caller {
    uid_t uid;
    const char *name; /* login name; NULL when the uid has no passwd entry */
    /* Whether the caller is in the group of this name, as the daemon counts members. */
    int (*in_group)(const char *group, void *context);
    void *context;
};

enum list_verdict { LIST_LISTED, LIST_NOT_LISTED, LIST_UNSURE, LIST_READ_ERROR };

enum list_verdict list_check(int fd, const struct list_caller *caller);

#endif
