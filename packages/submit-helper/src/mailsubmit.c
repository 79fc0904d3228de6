/*
 * NAME
 *	mailsubmit 1
 * SUMMARY
 *	hand a message to the mailsubmit daemon
 * SYNOPSIS
 *	mailsubmit [argument ...] < submission
 *	mailsubmit-sendmail [sendmail option ...] [recipient ...] < message
 *	mailsubmit-qmail-queue < message 1< envelope
 * DESCRIPTION
 *	mailsubmit passes its standard input, unread, to the mailsubmit
 *	daemon over a Unix SOCK_SEQPACKET socket, waits for the verdict,
 *	prints it and exits with the status the daemon chose. It never
 *	looks at the mail: the envelope block, the message and the command
 *	line are all checked by the daemon.
 *
 *	The front door is chosen by the basename of argv[0]:
 *	\fBmailsubmit\fR (native: envelope block, empty line, message),
 *	\fBmailsubmit-sendmail\fR or \fBsendmail\fR (sendmail options and
 *	recipients on the command line), \fBmailsubmit-qmail-queue\fR or
 *	\fBqmail-queue\fR (message on fd 0, envelope on fd 1; fd 1 is passed
 *	as well, and TCPREMOTEIP, TCPREMOTEHOST and TCPREMOTEPORT are copied
 *	as data). Anything else is the native door.
 *
 *	In order, the helper:
 * .IP \(bu
 *	makes sure fds 0, 1 and 2 are open, clears the environment, sets
 *	umask 077 and changes to "/";
 * .IP \(bu
 *	checks the real uid against the authorization list (compiled-in
 *	path, default /etc/mailsubmit/authorized): lines of principals
 *	\fBuser\fR, \fBuid:\fIN\fR or \fB@\fIgroup\fR, each optionally
 *	followed by capability words that only the daemon reads; \fB#\fR
 *	starts a comment. A group matches when the real gid or any group of
 *	the real user (getgrouplist) is that group. This early check is a
 *	courtesy to the caller; the daemon checks again from SO_PEERCRED;
 * .IP \(bu
 *	connects to the daemon's socket (compiled-in path, default
 *	/run/mailsubmit/mailsubmit.sock), then at once gives up the set-gid
 *	group for good (setresgid) and verifies that it cannot be regained;
 * .IP \(bu
 *	sends one request frame (see frame.h) carrying its mode and argv,
 *	with fd 0 (and fd 1 in the sendmail and qmail-queue modes) attached
 *	as SCM_RIGHTS; a frame longer than one packet (64 KiB) goes as
 *	several packets, the fds with the first;
 * .IP \(bu
 *	waits for the reply frame, with one deadline for the whole run
 *	(compiled in, default 600 seconds: the daemon bounds its own work),
 *	prints the daemon's text as "NAME: TEXT" when there is any (on
 *	success only when asked with -v), and exits with the status.
 * .PP
 *	Paths and the deadline are compile-time constants (MAILSUBMIT_SOCKET,
 *	MAILSUBMIT_AUTH_LIST, MAILSUBMIT_TIMEOUT); nothing in argv or the
 *	environment can change them.
 * SECURITY
 *	The helper is set-gid to the group that may connect to the daemon's
 *	socket. A hostile parent controls the following, neutralized as
 *	shown:
 * .IP "file descriptors"
 *	Closed fds 0-2 are opened on /dev/null, so no file the helper opens
 *	can become someone's stdout. A closed fd 0 (or fd 1 in qmail-queue
 *	mode) is then refused: there is nothing to submit. The fds passed to
 *	the daemon are the caller's own; they grant the daemon nothing the
 *	caller did not have. Other inherited fds are never read or written,
 *	and nothing is executed that could inherit them.
 * .IP environment
 *	Cleared before any library call that might consult it (name service
 *	lookups included); paths never come from it. In qmail-queue mode
 *	three TCPREMOTE* values are copied first, capped in length, and
 *	sent as data, which the daemon validates like any caller input.
 *	No locale is set: messages are plain ASCII.
 * .IP umask
 *	Set to 077. The helper creates no files, but no library it calls
 *	can create one more open than that either.
 * .IP "current directory"
 *	Changed to "/", so no relative path can reach the caller's tree.
 * .IP signals
 *	SIGPIPE is ignored, so a closed stderr cannot change the exit
 *	status, and sends use MSG_NOSIGNAL. No handlers are installed, but a
 *	stop and continue (SIGSTOP or SIGTSTP, then SIGCONT) still makes a
 *	connect or send with a socket timeout fail with EINTR (signal(7)), so
 *	connect, send and poll are all retried on EINTR. A caller
 *	who kills or stops the helper only stops its own submission: the
 *	daemon sees the connection close and abandons the message. ptrace
 *	and core dumps are refused by the kernel for set-gid processes.
 * .IP "resource limits"
 *	Not raised. A low limit can only make a step fail, and every
 *	failure exits with a status and a message; the reply wait has its
 *	own deadline, and the connect and send share it (SO_SNDTIMEO).
 * .IP "argv"
 *	Only copied into the frame, bounded by its size (8 MiB, more than
 *	the 6 MiB Linux allows argv and the environment together at any
 *	stack limit); argc == 0 (an empty argv, where argv[1] would be the
 *	environment) is refused.
 * .PP
 *	The group is held only while reading the authorization list and
 *	connecting. For root, regaining a group cannot be prevented, so that
 *	check is skipped. Memory use is fixed: static buffers, no malloc;
 *	the request is built one 64 KiB packet at a time.
 * DIAGNOSTICS
 *	One line on stderr, "NAME: ...", unless the exit status is 0, where
 *	NAME is the front door's: mailsubmit, mailsubmit-sendmail or
 *	mailsubmit-qmail-queue (also when started as sendmail or qmail-queue).
 *	Exit status, native and sendmail modes (qmail-queue mode in brackets,
 *	as qmail-queue(8) defines them; the codes come from the status table
 *	through frame.h):
 * .IP "0"
 *	the daemon accepted the message (its status, passed through).
 * .IP "64 [81]"
 *	usage: the command line does not fit in one frame, or argc is 0.
 * .IP "66 [54]"
 *	fd 0 (or fd 1 in qmail-queue mode) was closed.
 * .IP "75 [73]"
 *	the daemon is not running (ENOENT, ECONNREFUSED), is too busy to
 *	accept, closed the connection without a reply, or did not reply in
 *	time.
 * .IP "75 [81]"
 *	internal: a garbled or over-long reply, or a system call failing in
 *	an unexpected way.
 * .IP "77 [81]"
 *	the real user is not on the authorization list. When a line of the
 *	list has a principal the daemon's parser would refuse, or is too
 *	long to read here, the helper does not answer for the list: it
 *	connects, and the daemon answers (75 while it cannot parse the list).
 * .IP "78 [55]"
 *	installed wrongly: the authorization list is missing, unreadable,
 *	not a regular file, not owned by root, or writable by group or
 *	others; connecting to the socket was refused by its permissions;
 *	the group could not be given up, or could be regained.
 * .IP "other"
 *	whatever status the daemon's reply carries.
 * SEE ALSO
 *	mailsubmitd(8), mailsubmitctl(8), frame.h
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#ifndef MAILSUBMIT_SOCKET
#define MAILSUBMIT_SOCKET "/run/mailsubmit/mailsubmit.sock"
#endif
#ifndef MAILSUBMIT_AUTH_LIST
#define MAILSUBMIT_AUTH_LIST "/etc/mailsubmit/authorized"
#endif
#ifndef MAILSUBMIT_TIMEOUT
#define MAILSUBMIT_TIMEOUT 600
#endif

_Static_assert(sizeof(MAILSUBMIT_SOCKET) <= sizeof(((struct sockaddr_un *)0)->sun_path),
               "MAILSUBMIT_SOCKET is too long for sun_path");
_Static_assert(MAILSUBMIT_TIMEOUT > 0 && MAILSUBMIT_TIMEOUT <= 86400, "MAILSUBMIT_TIMEOUT out of range");

/*
 * The compiled-in paths, recorded in the binary for `mailsubmitctl config
 * check` to read from the file and compare with the daemon's configuration.
 * Never printed: every argument belongs to the front door (mailsubmit-sendmail
 * has its own -V), so no option could be spared to show them.
 */
__attribute__((used)) static const char compiled_paths[] =
    "mailsubmit-compiled-paths\0socket\0" MAILSUBMIT_SOCKET "\0authorization_list\0" MAILSUBMIT_AUTH_LIST "\0";

/* The failures the helper reports by itself; the daemon reports all others. */
enum failure { FAIL_USAGE, FAIL_NO_INPUT, FAIL_NOT_AUTHORIZED, FAIL_CONFIG, FAIL_DAEMON_UNAVAILABLE, FAIL_INTERNAL };

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

/* qmail-queue mode: the TCP facts tcpserver leaves in the environment. */
static const char *const qmail_env_names[] = {"TCPREMOTEIP", "TCPREMOTEHOST", "TCPREMOTEPORT"};
#define QMAIL_ENV_COUNT (sizeof(qmail_env_names) / sizeof(qmail_env_names[0]))
_Static_assert(QMAIL_ENV_COUNT <= MSUB_MAX_ENV_ENTRIES, "more qmail environment names than a frame carries");

static int mode = MSUB_MODE_NATIVE;
static char qmail_env_values[QMAIL_ENV_COUNT][MSUB_MAX_ENV_VALUE_OCTETS + 1];
static int qmail_env_present[QMAIL_ENV_COUNT];
/* One packet of the request (send_request). */
static unsigned char request[MSUB_MAX_PACKET_OCTETS];
/* Room for a reply over the maximum, to tell "too long" from "just fits". */
static unsigned char reply[MSUB_MAX_REPLY_OCTETS + 64];
/* NGROUPS_MAX is 65536 on Linux; static, so no allocation can fail. */
static gid_t groups[65536 + 1];
static struct timespec deadline;

/* What messages start with: the front door's own name, as its callers know it. */
static const char *program_name(void)
{
    switch (mode) {
    case MSUB_MODE_SENDMAIL:
        return "mailsubmit-sendmail";
    case MSUB_MODE_QMAIL_QUEUE:
        return "mailsubmit-qmail-queue";
    default:
        return "mailsubmit";
    }
}

/* One write(2) per message: no stdio buffering, nothing interleaved. */
static void say(const char *text, size_t length)
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

__attribute__((noreturn, format(printf, 2, 3))) static void fail(enum failure failure, const char *format, ...)
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
    _exit(mode == MSUB_MODE_QMAIL_QUEUE ? failure_codes[failure].qmail_code : failure_codes[failure].exit_code);
}

static int mode_from_name(const char *argv0)
{
    const char *base;

    if (argv0 == NULL)
        return MSUB_MODE_NATIVE;
    base = strrchr(argv0, '/');
    base = base != NULL ? base + 1 : argv0;
    if (strcmp(base, "mailsubmit-sendmail") == 0 || strcmp(base, "sendmail") == 0)
        return MSUB_MODE_SENDMAIL;
    if (strcmp(base, "mailsubmit-qmail-queue") == 0 || strcmp(base, "qmail-queue") == 0)
        return MSUB_MODE_QMAIL_QUEUE;
    return MSUB_MODE_NATIVE;
}

/* Opens /dev/null on each closed fd of 0-2; bit n of the result says fd n was closed. */
static int open_standard_fds(void)
{
    int closed = 0;

    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        closed |= 1 << fd;
        /* open returns the lowest free fd, which is this one. */
        if (open("/dev/null", O_RDWR) != fd)
            _exit(mode == MSUB_MODE_QMAIL_QUEUE ? failure_codes[FAIL_INTERNAL].qmail_code
                                                : failure_codes[FAIL_INTERNAL].exit_code);
    }
    return closed;
}

static void sanitize_process(void)
{
    struct sigaction ignore;

    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, NULL);

    if (mode == MSUB_MODE_QMAIL_QUEUE) {
        for (size_t i = 0; i < QMAIL_ENV_COUNT; i++) {
            const char *value = getenv(qmail_env_names[i]);
            /* An over-long value is dropped, not cut: half a host name is wrong data. */
            if (value != NULL && strlen(value) <= MSUB_MAX_ENV_VALUE_OCTETS) {
                strcpy(qmail_env_values[i], value);
                qmail_env_present[i] = 1;
            }
        }
    }
    if (clearenv() != 0)
        fail(FAIL_INTERNAL, "cannot clear the environment");
    umask(077);
    if (chdir("/") != 0)
        fail(FAIL_INTERNAL, "cannot change to /: %s", strerror(errno));
}

static void start_deadline(void)
{
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += MAILSUBMIT_TIMEOUT;
}

/* Milliseconds left before the deadline, 0 when it has passed. */
static int remaining_ms(void)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* "uid:N" with N plain decimal digits. */
static int parse_uid(const char *text, uid_t *uid)
{
    unsigned long long value = 0;

    if (*text == '\0')
        return -1;
    for (; *text != '\0'; text++) {
        if (*text < '0' || *text > '9')
            return -1;
        value = value * 10 + (unsigned long long)(*text - '0');
        if (value > 0xfffffffeULL) /* (uid_t)-1 is never a user */
            return -1;
    }
    *uid = (uid_t)value;
    return 0;
}

struct caller {
    uid_t uid;
    gid_t primary_gid; /* from the passwd entry, for getgrouplist */
    const char *name;  /* NULL when the uid has no passwd entry */
    int ngroups;       /* -1 until an @group line needs them */
};

/*
 * The caller's groups, looked up only when an @group line is reached: with
 * NSS modules such as systemd's, getgrouplist is most of the helper's system
 * calls, and most lists name users.
 */
static void load_groups(struct caller *caller)
{
    if (caller->ngroups >= 0)
        return;
    caller->ngroups = 0;
    if (caller->name != NULL) {
        caller->ngroups = (int)(sizeof(groups) / sizeof(groups[0])) - 1;
        if (getgrouplist(caller->name, caller->primary_gid, groups, &caller->ngroups) < 0)
            caller->ngroups = 0;
    }
    groups[caller->ngroups++] = getgid();
}

static int principal_matches(const char *principal, struct caller *caller)
{
    if (strncmp(principal, "uid:", 4) == 0) {
        uid_t uid;
        return parse_uid(principal + 4, &uid) == 0 && uid == caller->uid;
    }
    if (principal[0] == '@') {
        struct group *group = getgrnam(principal + 1);
        if (principal[1] == '\0' || group == NULL)
            return 0;
        load_groups(caller);
        for (int i = 0; i < caller->ngroups; i++)
            if (groups[i] == group->gr_gid)
                return 1;
        return 0;
    }
    return caller->name != NULL && strcmp(principal, caller->name) == 0;
}

/*
 * The principal grammar of the daemon's parser (authorization-list.ts):
 * NAME is [A-Za-z_][A-Za-z0-9_.-]{0,31} with an optional final '$'.
 */
static int valid_name(const char *name)
{
    size_t more = 0;

    if (!((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || *name == '_'))
        return 0;
    for (name++; *name != '\0'; name++, more++) {
        if (*name == '$' && name[1] == '\0')
            break;
        if (!((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9')
              || *name == '_' || *name == '.' || *name == '-'))
            return 0;
    }
    return more <= 31;
}

static int valid_principal(const char *principal)
{
    uid_t uid;

    if (strncmp(principal, "uid:", 4) == 0)
        return parse_uid(principal + 4, &uid) == 0;
    return valid_name(principal[0] == '@' ? principal + 1 : principal);
}

/* The first word of a line, comments stripped; NULL for blank lines. */
static const char *principal_of(char *line)
{
    char *start, *end;

    if ((end = strchr(line, '#')) != NULL)
        *end = '\0';
    start = line + strspn(line, " \t\r");
    if (*start == '\0')
        return NULL;
    start[strcspn(start, " \t\r")] = '\0';
    return start;
}

/*
 * Reads the list line by line; over-long lines never match. *unsure is set
 * when a line is over-long or its principal is not one the daemon's parser
 * accepts: that line may have been meant for the caller, and the daemon,
 * which cannot use such a list, is the one to answer.
 */
static int list_allows(int fd, struct caller *caller, int *unsure)
{
    char chunk[4096], line[1024];
    const char *principal;
    size_t used = 0;
    int overflow = 0;
    ssize_t n;

    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(FAIL_CONFIG, "cannot read the authorization list %s: %s", MAILSUBMIT_AUTH_LIST, strerror(errno));
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (used < sizeof(line) - 1)
                    line[used++] = chunk[i] == '\0' ? ' ' : chunk[i];
                else
                    overflow = 1;
                continue;
            }
            line[used] = '\0';
            principal = principal_of(line);
            if (overflow || (principal != NULL && !valid_principal(principal)))
                *unsure = 1;
            else if (principal != NULL && principal_matches(principal, caller))
                return 1;
            used = 0;
            overflow = 0;
        }
        if (n == 0) {
            /* The last line may lack its newline. */
            line[used] = '\0';
            principal = principal_of(line);
            if (overflow || (principal != NULL && !valid_principal(principal))) {
                *unsure = 1;
                return 0;
            }
            return principal != NULL && principal_matches(principal, caller);
        }
    }
}

static void authorize(void)
{
    struct caller caller;
    struct passwd *pw;
    struct stat st;
    static char name[256];
    int fd, unsure = 0;

    caller.uid = getuid();
    caller.primary_gid = getgid();
    caller.name = NULL;
    caller.ngroups = -1;
    if ((pw = getpwuid(caller.uid)) != NULL && strlen(pw->pw_name) < sizeof(name)) {
        strcpy(name, pw->pw_name);
        caller.name = name;
        caller.primary_gid = pw->pw_gid;
    }

    /* O_NONBLOCK: a FIFO planted at the path must not hang the open. */
    fd = open(MAILSUBMIT_AUTH_LIST, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        if (err == EACCES)
            fail(FAIL_CONFIG, "cannot read the authorization list %s: %s (is mailsubmit installed set-gid?)",
                 MAILSUBMIT_AUTH_LIST, strerror(err));
        fail(FAIL_CONFIG, "cannot open the authorization list %s: %s", MAILSUBMIT_AUTH_LIST, strerror(err));
    }
    if (fstat(fd, &st) != 0)
        fail(FAIL_CONFIG, "cannot stat the authorization list %s: %s", MAILSUBMIT_AUTH_LIST, strerror(errno));
    if (!S_ISREG(st.st_mode))
        fail(FAIL_CONFIG, "the authorization list %s is not a regular file", MAILSUBMIT_AUTH_LIST);
    if (st.st_uid != 0)
        fail(FAIL_CONFIG, "the authorization list %s must be owned by root", MAILSUBMIT_AUTH_LIST);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        fail(FAIL_CONFIG, "the authorization list %s must not be writable by group or others", MAILSUBMIT_AUTH_LIST);

    /* A list the helper cannot read for sure is the daemon's to judge (75 while it cannot parse it), never a 77 here. */
    if (!list_allows(fd, &caller, &unsure) && !unsure) {
        char label[32];
        if (caller.name == NULL)
            snprintf(label, sizeof(label), "uid:%u", (unsigned)caller.uid);
        fail(FAIL_NOT_AUTHORIZED,
             "user %s (uid %u) is not authorized to submit mail; ask the administrator to run: mailsubmitctl allow %s",
             caller.name != NULL ? caller.name : label, (unsigned)caller.uid, caller.name != NULL ? caller.name : label);
    }
    close(fd);
}

static int connect_daemon(void)
{
    struct sockaddr_un addr;
    struct timeval timeout;
    int fd, ms;

    if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        fail(FAIL_INTERNAL, "cannot create a socket: %s", strerror(errno));
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, MAILSUBMIT_SOCKET, sizeof(MAILSUBMIT_SOCKET));
    for (;;) {
        ms = remaining_ms() > 0 ? remaining_ms() : 1; /* 0 would mean no timeout at all */
        /* Bounds a connect to a full backlog, and the send, by the same deadline. */
        timeout.tv_sec = ms / 1000;
        timeout.tv_usec = (ms % 1000) * 1000;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        /*
         * A stop and continue while waiting for room in the backlog: an
         * AF_UNIX connect interrupted there has not connected, so it is
         * simply tried again, under the same deadline.
         */
        if (errno != EINTR || remaining_ms() == 0)
            break;
    }
    if (errno == EINTR)
        errno = ETIMEDOUT;
    switch (errno) {
    case ENOENT:
    case ECONNREFUSED:
        fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon is not running (cannot connect to %s: %s)",
             MAILSUBMIT_SOCKET, strerror(errno));
    case EAGAIN:
    case ETIMEDOUT:
        fail(FAIL_DAEMON_UNAVAILABLE, "the mailsubmit daemon is too busy to accept a connection");
    case EACCES:
    case EPERM:
        fail(FAIL_CONFIG, "permission denied connecting to %s (is mailsubmit installed set-gid to the socket's group?)",
             MAILSUBMIT_SOCKET);
    default:
        fail(FAIL_DAEMON_UNAVAILABLE, "cannot connect to %s: %s", MAILSUBMIT_SOCKET, strerror(errno));
    }
}

/* After this, the process holds nothing its caller does not hold. */
static void drop_group(void)
{
    gid_t rgid = getgid(), egid = getegid(), r, e, s;

    if (setresgid(rgid, rgid, rgid) != 0)
        fail(FAIL_CONFIG, "cannot give up group privileges: %s", strerror(errno));
    if (getresgid(&r, &e, &s) != 0 || r != rgid || e != rgid || s != rgid)
        fail(FAIL_CONFIG, "group privileges were not given up");
    if (egid != rgid && geteuid() != 0 && setegid(egid) == 0)
        fail(FAIL_CONFIG, "group privileges could be regained after giving them up");
}

/*
 * The request goes out in packets of at most MSUB_MAX_PACKET_OCTETS, in
 * order, each full but the last, the fds with the first (frame.h): a
 * SOCK_SEQPACKET message must fit the socket's send buffer whole, and a
 * command line may be as long as ARG_MAX. Nothing is held beyond one packet.
 */
static struct {
    int fd;
    size_t used;
    int sent;      /* packets sent so far */
    int peer_gone; /* the daemon answered and closed early: its reply waits */
} out;

/* Octets of the request for this argv: the frame's own length field. */
static size_t measure_request(int argc, char **argv)
{
    size_t length = MSUB_REQUEST_FIXED_OCTETS;

    for (int i = 0; i < argc; i++) {
        /* Each argument takes 4 + strlen octets here and strlen + 1 + a pointer in ARG_MAX. */
        length += 4 + strlen(argv[i]);
        if (length > MSUB_MAX_FRAME_OCTETS)
            fail(FAIL_USAGE, "the command line is too long (a request holds at most %d octets)", MSUB_MAX_FRAME_OCTETS);
    }
    for (size_t i = 0; i < QMAIL_ENV_COUNT; i++)
        if (qmail_env_present[i])
            length += 1 + strlen(qmail_env_names[i]) + 2 + strlen(qmail_env_values[i]);
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
    /* fd 1 too in qmail-queue mode (the envelope) and sendmail mode (where -bs replies); the daemon decides. */
    int nfds = mode == MSUB_MODE_NATIVE ? 1 : 2;
    struct iovec iov = {request, out.used};
    struct msghdr msg;
    struct cmsghdr *cmsg;
    struct timeval timeout;
    ssize_t n;
    int ms;

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
        ms = remaining_ms() > 0 ? remaining_ms() : 1;
        timeout.tv_sec = ms / 1000;
        timeout.tv_usec = (ms % 1000) * 1000;
        setsockopt(out.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
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
static void send_request(int fd, int argc, char **argv)
{
    size_t length = measure_request(argc, argv), envc = 0;
    unsigned char fixed[4] = {MSUB_KIND_REQUEST, 0, (unsigned char)mode,
                              mode == MSUB_MODE_QMAIL_QUEUE ? MSUB_REQUEST_FLAG_ENVELOPE_FD : 0};

    for (size_t i = 0; i < QMAIL_ENV_COUNT; i++)
        envc += qmail_env_present[i] ? 1 : 0;
    out.fd = fd;
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
    for (size_t i = 0; i < QMAIL_ENV_COUNT; i++) {
        size_t name_length = strlen(qmail_env_names[i]);
        if (!qmail_env_present[i])
            continue;
        put_uint((uint32_t)name_length, 1);
        put_bytes(qmail_env_names[i], name_length);
        put_uint((uint32_t)strlen(qmail_env_values[i]), 2);
        put_bytes(qmail_env_values[i], strlen(qmail_env_values[i]));
    }
    send_packet();
}

static size_t receive_reply(int fd)
{
    struct pollfd pfd;
    ssize_t n;
    int ms, reset_seen = 0;

    for (;;) {
        if ((ms = remaining_ms()) == 0)
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

int main(int argc, char **argv)
{
    int closed, fd, status;
    size_t length, outcome_length, text_length;
    const char *problem;
    char line[MSUB_MAX_REPLY_TEXT_OCTETS + MSUB_MAX_OUTCOME_OCTETS + 32];

    mode = mode_from_name(argc > 0 ? argv[0] : NULL);
    closed = open_standard_fds();
    start_deadline();
    sanitize_process();

    if (argc < 1)
        fail(FAIL_USAGE, "started without a program name (argc is 0)");
    if (closed & 1)
        fail(FAIL_NO_INPUT, "standard input is closed: there is no message to submit");
    if (mode == MSUB_MODE_QMAIL_QUEUE && (closed & 2))
        fail(FAIL_NO_INPUT, "file descriptor 1 (the envelope) is closed");

    authorize();
    fd = connect_daemon();
    drop_group();

    send_request(fd, argc, argv);
    length = receive_reply(fd);
    if (check_reply(length, &problem) != 0)
        fail(FAIL_INTERNAL, "garbled reply from the mailsubmit daemon (%s)", problem);

    status = reply[8];
    outcome_length = reply[9];
    text_length = (size_t)(reply[10] | reply[11] << 8);
    /* The daemon sends no text for a silent success (no -v). */
    if (status != 0 || text_length > 0) {
        int n;
        if (text_length > 0)
            n = snprintf(line, sizeof(line), "%s: %.*s\n", program_name(), (int)text_length,
                         (const char *)reply + MSUB_REPLY_FIXED_OCTETS + outcome_length);
        else
            n = snprintf(line, sizeof(line), "%s: failed (%.*s)\n", program_name(), (int)outcome_length,
                         (const char *)reply + MSUB_REPLY_FIXED_OCTETS);
        if (n > 0)
            say(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    return status;
}
