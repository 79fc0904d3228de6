/*
 * NAME
 *	mailsubmit 1
 * SUMMARY
 *	hand a message to the mailsubmit daemon
 * SYNOPSIS
 *	mailsubmit [argument ...] < submission
 *	mailsubmit-sendmail [sendmail option ...] [recipient ...] < message
 *	mailsubmit-qmail-queue < message 1< envelope
 * SECURITY
 *	Set-gid, because only the daemon's socket group may connect to the
 *	socket and read the authorization list (0640 root:GROUP); the group
 *	is for nothing else. It is held while the list is read and the
 *	socket connected, then given up for good (setresgid), checked to
 *	be gone, before anything of the caller's is sent.
 *
 *	Trusted: the kernel's word on the real uid, the user and group
 *	databases (for the courtesy check only) and the compiled-in paths
 *	and deadline. Everything else (argv, environment,
 *	fds, the message) is the caller's and goes to the daemon as data.
 *
 *	Never: reads or parses the mail, executes a program, opens a file
 *	but the list and /dev/null, allocates memory (static buffers; the
 *	request goes one 64 KiB packet at a time), waits without a deadline,
 *	or answers 77 for a list the daemon would not use.
 *
 *	A hostile parent controls the following, neutralized as shown:
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
 *	For root, regaining a group cannot be prevented, so that check is
 *	skipped.
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
 *	followed by capabilities; \fB#\fR starts a comment. The list is read
 *	with the daemon's grammar (authorization-list.c; one conformance
 *	corpus holds both readers to it). A group matches when it is one of
 *	the real user's groups by the group database (getgrouplist, primary
 *	group included); a uid without a passwd entry is in no group. This
 *	early check is a courtesy to the caller; the daemon checks again
 *	from SO_PEERCRED;
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
 *	list is one the daemon's parser would refuse, or one only the daemon
 *	can judge (a sender pattern with non-ASCII characters or an A-label;
 *	more than 4096 principals to check for one listed twice), the helper
 *	does not answer for the list: it connects, and the daemon answers
 *	(75 while it cannot parse the list).
 * .IP "78 [55]"
 *	installed wrongly: the authorization list is missing, unreadable,
 *	not a regular file, not owned by root, or writable by group or
 *	others; connecting to the socket was refused by its permissions;
 *	the group could not be given up, or could be regained.
 * .IP "other"
 *	whatever status the daemon's reply carries.
 * SEE ALSO
 *	mailsubmitd(8), mailsubmitctl(8), frame.h, authorization-list.h,
 *	daemon-connection.h
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authorization-list.h"
#include "build-settings.h"
#include "daemon-connection.h"
#include "deadline.h"
#include "failure.h"
#include "frame.h"

/*
 * The compiled-in paths, recorded in the binary for `mailsubmitctl config
 * check` to read from the file and compare with the daemon's configuration.
 * Never printed: every argument belongs to the front door (mailsubmit-sendmail
 * has its own -V), so no option could be spared to show them.
 */
__attribute__((used)) static const char compiled_paths[] =
    "mailsubmit-compiled-paths\0socket\0" MAILSUBMIT_SOCKET "\0authorization_list\0" MAILSUBMIT_AUTH_LIST "\0";

/* qmail-queue mode: the TCP facts tcpserver leaves in the environment. */
static const char *const qmail_env_names[] = {"TCPREMOTEIP", "TCPREMOTEHOST", "TCPREMOTEPORT"};
#define QMAIL_ENV_COUNT (sizeof(qmail_env_names) / sizeof(qmail_env_names[0]))
_Static_assert(QMAIL_ENV_COUNT <= MSUB_MAX_ENV_ENTRIES, "more qmail environment names than a frame carries");

static char qmail_env_values[QMAIL_ENV_COUNT][MSUB_MAX_ENV_VALUE_OCTETS + 1];
static struct request_env qmail_env[QMAIL_ENV_COUNT];
static size_t qmail_env_count;
/* NGROUPS_MAX is 65536 on Linux; static, so no allocation can fail. */
static gid_t groups[65536];
static int ngroups = -1; /* -1 until an @group line needs them */

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
            _exit(failure_status(FAIL_INTERNAL));
    }
    return closed;
}

static void sanitize_process(void)
{
    struct sigaction ignore;

    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, NULL);

    if (helper_mode == MSUB_MODE_QMAIL_QUEUE) {
        for (size_t i = 0; i < QMAIL_ENV_COUNT; i++) {
            const char *value = getenv(qmail_env_names[i]);
            /* An over-long value is dropped, not cut: half a host name is wrong data. */
            if (value != NULL && strlen(value) <= MSUB_MAX_ENV_VALUE_OCTETS) {
                strcpy(qmail_env_values[i], value);
                qmail_env[qmail_env_count].name = qmail_env_names[i];
                qmail_env[qmail_env_count++].value = qmail_env_values[i];
            }
        }
    }
    if (clearenv() != 0)
        fail(FAIL_INTERNAL, "cannot clear the environment");
    umask(077);
    if (chdir("/") != 0)
        fail(FAIL_INTERNAL, "cannot change to /: %s", strerror(errno));
}

/*
 * Whether the caller is in the group, as the daemon counts members: one of
 * the user's groups by getgrouplist, under that name. The groups are looked
 * up only when an @group line is reached: with NSS modules such as
 * systemd's, getgrouplist is most of the helper's system calls, and most
 * lists name users.
 */
static int in_group(const char *name, void *context)
{
    const struct passwd *user = context;
    const struct group *group;
    gid_t gid;

    if (user == NULL || (group = getgrnam(name)) == NULL)
        return 0;
    gid = group->gr_gid;
    if (ngroups < 0) {
        ngroups = (int)(sizeof(groups) / sizeof(groups[0]));
        if (getgrouplist(user->pw_name, user->pw_gid, groups, &ngroups) < 0)
            ngroups = 0;
    }
    for (int i = 0; i < ngroups; i++)
        if (groups[i] == gid)
            /* The daemon knows a gid by its name in the group database: an alias sharing the gid is not it. */
            return (group = getgrgid(gid)) != NULL && strcmp(group->gr_name, name) == 0;
    return 0;
}

static void authorize(void)
{
    struct list_caller caller;
    static struct passwd user;
    static char name[256];
    struct passwd *pw;
    struct stat st;
    enum list_verdict verdict = LIST_UNSURE;
    int fd, judge = 1;

    caller.uid = getuid();
    caller.name = NULL;
    caller.in_group = in_group;
    caller.context = NULL;
    if ((pw = getpwuid(caller.uid)) != NULL) {
        /* A name longer than any the list can hold: only its groups could match, and the daemon will say. */
        judge = strlen(pw->pw_name) < sizeof(name);
        snprintf(name, sizeof(name), "%s", pw->pw_name);
        user.pw_name = name;
        user.pw_gid = pw->pw_gid;
        caller.name = name;
        caller.context = &user;
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

    if (judge)
        verdict = list_check(fd, &caller);
    if (verdict == LIST_READ_ERROR)
        fail(FAIL_CONFIG, "cannot read the authorization list %s: %s", MAILSUBMIT_AUTH_LIST, strerror(errno));
    /* A list the helper cannot judge for sure is the daemon's to answer (75 while it cannot parse it), never a 77 here. */
    if (verdict == LIST_NOT_LISTED) {
        char label[32];
        if (caller.name == NULL)
            snprintf(label, sizeof(label), "uid:%u", (unsigned)caller.uid);
        fail(FAIL_NOT_AUTHORIZED,
             "user %s (uid %u) is not authorized to submit mail; ask the administrator to run: mailsubmitctl allow %s",
             caller.name != NULL ? caller.name : label, (unsigned)caller.uid, caller.name != NULL ? caller.name : label);
    }
    close(fd);
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

int main(int argc, char **argv)
{
    struct reply reply;
    int closed, fd;
    char line[MSUB_MAX_REPLY_TEXT_OCTETS + MSUB_MAX_OUTCOME_OCTETS + 32];

    helper_mode = mode_from_name(argc > 0 ? argv[0] : NULL);
    closed = open_standard_fds();
    deadline_start();
    sanitize_process();

    if (argc < 1)
        fail(FAIL_USAGE, "started without a program name (argc is 0)");
    if (closed & 1)
        fail(FAIL_NO_INPUT, "standard input is closed: there is no message to submit");
    if (helper_mode == MSUB_MODE_QMAIL_QUEUE && (closed & 2))
        fail(FAIL_NO_INPUT, "file descriptor 1 (the envelope) is closed");

    authorize();
    fd = connect_daemon();
    drop_group();

    send_request(fd, helper_mode, argc, argv, qmail_env, qmail_env_count);
    receive_reply(fd, &reply);

    /* The daemon sends no text for a silent success (no -v). */
    if (reply.status != 0 || reply.text_length > 0) {
        int n;
        if (reply.text_length > 0)
            n = snprintf(line, sizeof(line), "%s: %.*s\n", program_name(), (int)reply.text_length, reply.text);
        else
            n = snprintf(line, sizeof(line), "%s: failed (%.*s)\n", program_name(), (int)reply.outcome_length,
                         reply.outcome);
        if (n > 0)
            say(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    return reply.status;
}
