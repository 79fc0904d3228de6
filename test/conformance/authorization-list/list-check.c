/*
 * NAME
 *	list-check 1
 * SUMMARY
 *	the helper's authorization-list reader, for the conformance suite
 * SYNOPSIS
 *	list-check LIST < queries
 * DESCRIPTION
 *	Runs list_check() (packages/submit-helper/src/authorization-list.c,
 *	the file the helper is built from) once per query line, "UID USER
 *	GROUPS" (USER `-' for a uid without a passwd entry, GROUPS `-' or
 *	comma-separated group names), and prints one verdict a line: listed,
 *	not-listed or unsure. Group membership comes from the query, never
 *	from the system's databases.
 * DIAGNOSTICS
 *	Exit 2 on a usage error, an unreadable list or a malformed query.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authorization-list.h"

static int in_group(const char *group, void *context)
{
    const char *groups = context;
    size_t length = strlen(group);

    for (const char *at = groups; *at != '\0';) {
        size_t item = strcspn(at, ",");
        if (item == length && strncmp(at, group, length) == 0)
            return 1;
        at += item + (at[item] == ',');
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const words[] = {[LIST_LISTED] = "listed", [LIST_NOT_LISTED] = "not-listed", [LIST_UNSURE] = "unsure"};
    char query[4096], user[256], groups[2048];
    unsigned long uid;

    if (argc != 2) {
        fprintf(stderr, "usage: list-check LIST < queries\n");
        return 2;
    }
    while (fgets(query, sizeof(query), stdin) != NULL) {
        struct list_caller caller;
        enum list_verdict verdict;
        int fd;

        if (sscanf(query, "%lu %255s %2047s", &uid, user, groups) != 3) {
            fprintf(stderr, "list-check: malformed query: %s", query);
            return 2;
        }
        caller.uid = (uid_t)uid;
        caller.name = strcmp(user, "-") == 0 ? NULL : user;
        caller.in_group = in_group;
        caller.context = strcmp(groups, "-") == 0 ? "" : groups;
        if ((fd = open(argv[1], O_RDONLY)) < 0 || (verdict = list_check(fd, &caller)) == LIST_READ_ERROR) {
            perror(argv[1]);
            return 2;
        }
        close(fd);
        printf("%s\n", words[verdict]);
    }
    return 0;
}
