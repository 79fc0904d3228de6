/*
 * NAME
 *	authorization-list.c 3
 * SUMMARY
 *	the helper's reading of the authorization list
 * DESCRIPTION
 *	The list is read one octet at a time, so a line of any length is read
 *	whole without a line buffer. The grammar is the daemon's
 *	(authorization-list.ts; mailsubmit.conf(5), THE AUTHORIZATION LIST):
 * .IP \(bu
 *	lines end at LF; a `#' starts a comment that runs to the end of the
 *	line; spaces, tabs and CRs before and after the words are ignored;
 *	words are separated by spaces and tabs, and anything else (a CR
 *	between words, a vertical tab, a NUL, a non-ASCII space) is part of a
 *	word, which no principal or capability may hold;
 * .IP \(bu
 *	the first word is the principal: a NAME ([A-Za-z_][A-Za-z0-9_.-]{0,31}
 *	with an optional final `$'), `uid:' and 1 to 10 digits below 2^32, or
 *	`@' NAME; each may be listed once (uid:007 is uid:7);
 * .IP \(bu
 *	then capabilities: client, sasl, tls, queue, and at most one sender= with
 *	comma-separated patterns of 1 to 256 printable characters, whose
 *	domain labels (after the last `@') are not empty.
 * .PP
 *	A NUL is read as octet 0x01, which no word may hold either, so a NUL
 *	cannot end a word early.
 * SEE ALSO
 *	authorization-list.h
 */
#define _GNU_SOURCE /* memrchr */
#include "authorization-list.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Longer than any principal or capability the daemon accepts; sender= values are read pattern by pattern. */
#define WORD_MAX 300
#define PATTERN_MAX 256
/* Principals remembered to find one listed twice; a longer list is left to the daemon. */
#define SEEN_MAX 4096
#define SEEN_SLOTS 8192
#define KEY_MAX 40

static struct {
    char keys[SEEN_MAX][KEY_MAX];
    uint16_t slots[SEEN_SLOTS]; /* index + 1 into keys; 0 is free */
    size_t count;
} seen;

struct line {
    char word[WORD_MAX + 1];
    size_t length;
    int too_long;
    int in_word, in_comment, in_sender;
    int words;       /* words ended so far */
    int cr_pending;  /* a CR since the last word: only trailing ones are blanks */
    int senders;     /* sender= words */
    int doubtful;    /* the daemon refuses this line, or only it can tell */
    int caller_named;
};

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int valid_name(const char *name)
{
    size_t length = strlen(name);

    if (length > 0 && name[length - 1] == '$')
        length--;
    if (length == 0 || length > 32 || !is_name_start(name[0]))
        return 0;
    for (size_t i = 1; i < length; i++)
        if (!is_name_char(name[i]))
            return 0;
    return 1;
}

/* 1 to 10 digits, below 2^32. */
static int parse_uid(const char *digits, uint64_t *uid)
{
    size_t length = strlen(digits);

    *uid = 0;
    if (length == 0 || length > 10)
        return 0;
    for (size_t i = 0; i < length; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
        *uid = *uid * 10 + (uint64_t)(digits[i] - '0');
    }
    return *uid <= UINT32_MAX;
}

static uint32_t hash(const char *key)
{
    uint32_t h = 2166136261u;

    for (; *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

/* 1 when the key is new, 0 when listed before, -1 when too many to tell. */
static int remember(const char *key)
{
    uint32_t slot = hash(key) % SEEN_SLOTS;

    for (; seen.slots[slot] != 0; slot = (slot + 1) % SEEN_SLOTS)
        if (strcmp(seen.keys[seen.slots[slot] - 1], key) == 0)
            return 0;
    if (seen.count == SEEN_MAX)
        return -1;
    snprintf(seen.keys[seen.count], KEY_MAX, "%s", key);
    seen.slots[slot] = (uint16_t)++seen.count;
    return 1;
}

static void end_principal(struct line *line, const struct list_caller *caller)
{
    char key[KEY_MAX];
    uint64_t uid = 0;
    int is_uid = strncmp(line->word, "uid:", 4) == 0;
    int is_group = line->word[0] == '@';

    if (line->too_long || (is_uid ? !parse_uid(line->word + 4, &uid) : !valid_name(line->word + is_group))) {
        line->doubtful = 1;
        return;
    }
    if (is_uid)
        snprintf(key, sizeof(key), "uid:%llu", (unsigned long long)uid);
    else
        snprintf(key, sizeof(key), "%.*s", KEY_MAX - 1, line->word); /* a valid name has at most 34 */
    if (remember(key) != 1)
        line->doubtful = 1;
    if (is_uid)
        line->caller_named = uid == (uint64_t)caller->uid;
    else if (is_group)
        line->caller_named = caller->in_group(line->word + 1, caller->context);
    else
        line->caller_named = caller->name != NULL && strcmp(line->word, caller->name) == 0;
}

static int starts_with_a_label_prefix(const char *label, size_t length)
{
    return length >= 4 && (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' && label[2] == '-' && label[3] == '-';
}

/*
 * Whether the daemon might refuse this pattern, or only it can tell:
 * non-ASCII characters and A-labels are judged by IDNA, which only the
 * daemon has.
 */
static int pattern_doubtful(const char *pattern, size_t length, int too_long)
{
    const char *domain, *label, *end = pattern + length;

    if (too_long || length == 0)
        return 1;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)pattern[i] < 0x21 || (unsigned char)pattern[i] >= 0x7f)
            return 1;
    if ((domain = memrchr(pattern, '@', length)) == NULL)
        return 0;
    for (label = domain + 1;; label++) {
        const char *dot = memchr(label, '.', (size_t)(end - label));
        size_t label_length = (size_t)((dot != NULL ? dot : end) - label);
        if (memchr(label, '*', label_length) == NULL
            && (label_length == 0 || starts_with_a_label_prefix(label, label_length)))
            return 1;
        if (dot == NULL)
            return 0;
        label = dot;
    }
}

static void end_word(struct line *line, const struct list_caller *caller)
{
    if (!line->in_word)
        return;
    line->word[line->length] = '\0';
    if (line->in_sender)
        line->doubtful |= pattern_doubtful(line->word, line->length, line->too_long);
    else if (line->words == 0)
        end_principal(line, caller);
    else if (line->too_long
             || (strcmp(line->word, "client") != 0 && strcmp(line->word, "sasl") != 0 && strcmp(line->word, "tls") != 0
                 && strcmp(line->word, "queue") != 0))
        line->doubtful = 1;
    line->in_word = line->in_sender = line->too_long = 0;
    line->length = 0;
    line->words++;
}

static void add_to_word(struct line *line, char c)
{
    if (line->cr_pending && line->words > 0 && !line->in_word)
        line->doubtful = 1; /* a CR between words */
    line->cr_pending = 0;
    line->in_word = 1;
    if (line->in_sender && c == ',') {
        line->doubtful |= pattern_doubtful(line->word, line->length, line->too_long);
        line->length = 0;
        line->too_long = 0;
        return;
    }
    if (line->length == (line->in_sender ? PATTERN_MAX : WORD_MAX)) {
        line->too_long = 1;
        return;
    }
    line->word[line->length++] = c;
    if (line->words > 0 && !line->in_sender && line->length == 7 && memcmp(line->word, "sender=", 7) == 0) {
        line->in_sender = 1;
        line->length = 0;
        if (++line->senders > 1)
            line->doubtful = 1;
    }
}

/* One octet of the list; 1 when a line ended. */
static int read_octet(struct line *line, char c, const struct list_caller *caller)
{
    if (c == '\n') {
        end_word(line, caller);
        return 1;
    }
    if (line->in_comment)
        return 0;
    if (c == '#') {
        end_word(line, caller);
        line->in_comment = 1;
    } else if (c == ' ' || c == '\t') {
        end_word(line, caller);
    } else if (c == '\r') {
        end_word(line, caller);
        line->cr_pending = 1;
    } else {
        add_to_word(line, c == '\0' ? '\x01' : c);
    }
    return 0;
}

enum list_verdict list_check(int fd, const struct list_caller *caller)
{
    static struct line line;
    char chunk[4096];
    int doubtful = 0;
    ssize_t n;

    /* Only what an earlier call filled: in the helper's one call the table is
     * still as loaded, and clearing it would fault in 16 KiB of zero pages. */
    if (seen.count > 0) {
        memset(seen.slots, 0, sizeof(seen.slots));
        seen.count = 0;
    }
    memset(&line, 0, sizeof(line));
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return LIST_READ_ERROR;
        if (n == 0) {
            end_word(&line, caller); /* the last line may lack its newline */
            if (line.caller_named)
                return LIST_LISTED;
            return doubtful || line.doubtful ? LIST_UNSURE : LIST_NOT_LISTED;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!read_octet(&line, chunk[i], caller))
                continue;
            if (line.caller_named)
                return LIST_LISTED;
            doubtful |= line.doubtful;
            memset(&line, 0, sizeof(line));
        }
    }
}
