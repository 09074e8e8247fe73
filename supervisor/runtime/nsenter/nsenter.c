//go:build linux && cgo

// berth_nsenter: see doc.go. Keep this file small: it runs in every
// process of the binary, before anything else.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
	dprintf(2, "berth nsenter: %s: %s\n", what, strerror(errno));
	_exit(126);
}

void berth_nsenter(void)
{
	const char *list = getenv("_BERTH_NSENTER");
	const char *pipe_s = getenv("_BERTH_NSENTER_PIPE");
	const char *p;
	char *end;
	int pipefd;
	pid_t pid;

	if (list == NULL)
		return;	/* an ordinary start: nothing to do */
	if (pipe_s == NULL)
		die("_BERTH_NSENTER_PIPE missing");
	pipefd = atoi(pipe_s);

	/* Join each namespace, in the order the parent chose (user first,
	 * mount last). nstype 0: the fd says which namespace it is. */
	for (p = list; *p != '\0';) {
		long fd = strtol(p, &end, 10);
		if (end == p || fd < 0) {
			errno = EINVAL;
			die("parse _BERTH_NSENTER");
		}
		if (setns((int)fd, 0) < 0)
			die("setns");
		close((int)fd);
		p = (*end == ',') ? end + 1 : end;
	}
	unsetenv("_BERTH_NSENTER");
	unsetenv("_BERTH_NSENTER_PIPE");

	/* setns(CLONE_NEWPID) only moves our future children: fork. Like
	 * fork(2), but CLONE_PARENT makes the child our parent's child. */
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		die("clone");
	if (pid > 0) {
		if (write(pipefd, &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
			die("report pid");
		_exit(0);
	}
	close(pipefd);
	/* the child returns into the Go runtime, in the container */
}
