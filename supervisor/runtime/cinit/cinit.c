/*
 * berth-cinit: the container init of berth's runtime, in C, for the
 * common container (see ../cinit_linux.go for which ones). The runtime
 * embeds it (../initbin) and starts it as it starts the Go init, with
 * the same fds: 3 the sync socket, 4 an O_PATH fd of the exec fifo, 5...
 * the extra files, then this executable's own sealed copy.
 *
 * It decides nothing. The runtime compiles the container's setup into a
 * program (encodeCInit): which mounts, in which order, with which flags,
 * which devices, links, sysctls, masked and read-only paths, which
 * identity and capabilities. This file only carries the program out, step
 * for step as the Go init does the same (rootfs_linux.go,
 * process_linux.go, user.go), and words its errors the same way. A change
 * to one needs the same change to the other; TestCInitMatchesGoInit runs
 * both on the same containers and compares what the containers see.
 *
 * Why C: a Go init starts a Go runtime for every container (threads,
 * a heap, ~190 page faults), which cost more CPU than the setup itself.
 *
 * It also runs exec'd processes (berth exec, health probes, hooks): the
 * runtime then starts it with the nsenter environment of ../nsenter, whose
 * C file is linked in, and sends a program of the finish only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/* openat2 (Linux 5.6) and close_range (5.9) are older than some systems'
 * kernel headers: their ABI, where the headers lack it. */
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#else
struct open_how {
	uint64_t flags, mode, resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SYNC_FD 3
#define FIFO_FD 4
#define EXTRA_FD 5
#define MAX_CONFIG (4 << 20)
#define MAGIC "berth-cinit/1\n"

/* What the program starts (cinit_linux.go). */
enum { MODE_CREATE = 1, MODE_EXEC = 2 };

/* Mount kinds of the program (cinit_linux.go). */
enum { OP_FS = 1, OP_BIND = 2, OP_CGROUP = 3, OP_SETUP_DEV = 4, OP_DEVICE = 5 };

static int sync_fd = SYNC_FD; /* -1 once closed */
static char ctx[8192];        /* what we are doing, for errors: "rootfs: mount /x: " */

/* ---- errors ---- */

/* errtext is the errno's text as Go words it (strerror, lower case first). */
static const char *errtext(int e)
{
	static char buf[128];
	snprintf(buf, sizeof buf, "%s", strerror(e));
	if (strncmp(buf, "Unknown error", 13) == 0) {
		snprintf(buf, sizeof buf, "errno %d", e);
		return buf;
	}
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

static int send_packet(const char *type, const char *msg)
{
	static char buf[1 << 17];
	size_t n = 0;
	n += snprintf(buf, sizeof buf, "{\"type\":\"%s\"", type);
	if (msg != NULL) {
		n += snprintf(buf + n, sizeof buf - n, ",\"error\":\"");
		for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof buf - 16; p++) {
			if (*p == '"' || *p == '\\')
				n += snprintf(buf + n, sizeof buf - n, "\\%c", *p);
			else if (*p < 0x20)
				n += snprintf(buf + n, sizeof buf - n, "\\u%04x", *p);
			else
				buf[n++] = (char)*p;
		}
		n += snprintf(buf + n, sizeof buf - n, "\"");
	}
	n += snprintf(buf + n, sizeof buf - n, "}");
	ssize_t w;
	while ((w = send(sync_fd, buf, n, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return w < 0 ? -1 : 0;
}

/* die reports ctx and the message to the runtime (while it listens) and
 * on stderr, as the Go init does, and exits 127. */
__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	static char msg[1 << 15];
	size_t n = snprintf(msg, sizeof msg, "%s", ctx);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - n, fmt, ap);
	va_end(ap);
	if (sync_fd >= 0)
		send_packet("error", msg);
	dprintf(2, "berth init: %s\n", msg);
	_exit(127);
}

static void setctx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* ---- the program ---- */

struct reader {
	const unsigned char *p, *end;
};

static uint64_t rd_uint(struct reader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			die("init program: truncated");
		unsigned char b = *r->p++;
		if (shift == 63 && b > 1)
			break; /* overflows 64 bits */
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	die("init program: bad number");
}

static int64_t rd_int(struct reader *r)
{
	uint64_t u = rd_uint(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int rd_bool(struct reader *r)
{
	uint64_t v = rd_uint(r);
	if (v > 1)
		die("init program: bad boolean");
	return (int)v;
}

/* rd_bytes returns a NUL-terminated copy and its length. */
static char *rd_bytes(struct reader *r, size_t *len)
{
	uint64_t n = rd_uint(r);
	if (n > (uint64_t)(r->end - r->p))
		die("init program: truncated");
	char *s = xmalloc(n + 1);
	memcpy(s, r->p, n);
	s[n] = '\0';
	r->p += n;
	if (len)
		*len = n;
	return s;
}

static char *rd_str(struct reader *r) { return rd_bytes(r, NULL); }

/* rd_strs returns a NULL-terminated list. */
static char **rd_strs(struct reader *r, size_t *count)
{
	uint64_t n = rd_uint(r);
	if (n > (uint64_t)(r->end - r->p))
		die("init program: truncated");
	char **v = xmalloc((n + 1) * sizeof *v);
	for (uint64_t i = 0; i < n; i++)
		v[i] = rd_str(r);
	v[n] = NULL;
	if (count)
		*count = n;
	return v;
}

/* ---- paths, as Go's path/filepath does them ---- */

/* path_clean is filepath.Clean. */
static char *path_clean(const char *path)
{
	size_t n = strlen(path);
	if (n == 0)
		return strdup(".");
	char *out = xmalloc(n + 2);
	int rooted = path[0] == '/';
	size_t r = 0, w = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < n && path[r] != '/'; r++)
				out[w++] = path[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
	return out;
}

/* path_join is filepath.Join of two elements. */
static char *path_join(const char *a, const char *b)
{
	if (*a == '\0')
		return path_clean(b);
	if (*b == '\0')
		return path_clean(a);
	char *s = xmalloc(strlen(a) + strlen(b) + 2);
	sprintf(s, "%s/%s", a, b);
	char *c = path_clean(s);
	free(s);
	return c;
}

/* path_dir is filepath.Dir. */
static char *path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) + 1 : 0;
	char *s = xmalloc(n + 1);
	memcpy(s, path, n);
	s[n] = '\0';
	char *c = path_clean(s);
	free(s);
	return c;
}

/* path_base is filepath.Base. */
static char *path_base(const char *path)
{
	size_t n = strlen(path);
	if (n == 0)
		return strdup(".");
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (n == 0)
		return strdup("/");
	size_t i = n;
	while (i > 0 && path[i - 1] != '/')
		i--;
	char *s = xmalloc(n - i + 1);
	memcpy(s, path + i, n - i);
	s[n - i] = '\0';
	return s;
}

/* fdpath is the magic link through which mount(2) reaches exactly the
 * file an O_PATH fd refers to. */
static const char *fdpath(int fd)
{
	static char bufs[2][32];
	static int i;
	i ^= 1;
	snprintf(bufs[i], sizeof bufs[i], "/proc/self/fd/%d", fd);
	return bufs[i];
}

/* ---- syscalls ---- */

/* do_mount is mount(2), retried on EINTR; 0 or -errno. Empty data is
 * NULL, as Go's unix.Mount passes it. */
static int do_mount(const char *src, const char *target, const char *type, unsigned long flags, const char *data)
{
	for (;;) {
		if (mount(src, target, type, flags, (data && *data) ? data : NULL) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* utf8_len is the length of the valid UTF-8 sequence at p (2-4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] >= 0xc2 && p[0] <= 0xdf && (p[1] & 0xc0) == 0x80)
		return 2;
	if (p[0] >= 0xe0 && p[0] <= 0xef && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80) {
		if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* quoted writes s as Go's %q does: its escapes for control characters,
 * \xNN for bytes that are not UTF-8, other characters as they are (Go
 * also escapes the rare non-printable ones above ASCII; this does not). */
static const char *quoted(const char *s)
{
	static char bufs[2][4096];
	static int i;
	i ^= 1;
	char *b = bufs[i];
	size_t n = 0, max = sizeof bufs[i] - 8;
	b[n++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++) {
		const char *esc = NULL;
		switch (*p) {
		case '\a': esc = "\\a"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\v': esc = "\\v"; break;
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		}
		size_t u;
		if (esc) {
			n += snprintf(b + n, sizeof bufs[i] - n, "%s", esc);
		} else if (*p < 0x20 || *p == 0x7f) {
			n += snprintf(b + n, sizeof bufs[i] - n, "\\x%02x", *p);
		} else if (*p < 0x80) {
			b[n++] = (char)*p;
		} else if ((u = utf8_len(p)) > 0) {
			memcpy(b + n, p, u);
			n += u;
			p += u - 1;
		} else {
			n += snprintf(b + n, sizeof bufs[i] - n, "\\x%02x", *p);
		}
	}
	b[n++] = '"';
	b[n] = '\0';
	return b;
}

static void mount_error(const char *src, const char *target, const char *type, unsigned long flags, const char *data, int err)
{
	die("mount %s (type %s, flags 0x%lx, data %s) on %s: %s", src, quoted(type), flags, quoted(data), target,
	    errtext(-err));
}

static void xmount(const char *src, const char *target, const char *type, unsigned long flags, const char *data)
{
	int err = do_mount(src, target, type, flags, data);
	if (err < 0)
		mount_error(src, target, type, flags, data, err);
}

/* open_in_root opens path below rootfd with every symlink resolved as if
 * rootfd were "/" (openat2 RESOLVE_IN_ROOT), magic links refused: an fd
 * or -errno. */
static int open_in_root(int rootfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno != EINTR && errno != EAGAIN) /* EAGAIN: a rename raced the lookup */
			return -errno;
	}
}

static int xopen_in_root(int rootfd, const char *path, int flags, uint64_t resolve)
{
	int fd = open_in_root(rootfd, path, flags, resolve);
	if (fd < 0)
		die("openat2 (in root) %s: %s", path, errtext(-fd));
	return fd;
}

static int is_dir_fd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat: %s", errtext(errno));
	return S_ISDIR(st.st_mode);
}

/* resolve_in_root is resolveInRoot of syscalls_linux.go: path with every
 * symlink resolved as if rootfd were "/"; what does not exist is kept. */
static char *resolve_in_root(int rootfd, const char *path, int no_symlinks)
{
	char *s = xmalloc(strlen(path) + 2);
	sprintf(s, "/%s", path);
	char *rest = path_clean(s); /* the components still to walk */
	free(s);
	char *cur = strdup("/");
	int links = 0;
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		char *comp = strndup(p, len);
		p = end;
		if (strcmp(comp, ".") == 0) {
			free(comp);
			continue;
		}
		if (strcmp(comp, "..") == 0) {
			char *d = path_dir(cur);
			free(cur);
			cur = d;
			free(comp);
			continue;
		}
		char *next = path_join(cur, comp);
		free(comp);
		struct stat st;
		if (fstatat(rootfd, next + 1, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR) {
				char *r = path_join(next, p);
				return r;
			}
			die("lstat (in root) %s: %s", next, errtext(errno));
		}
		if (!S_ISLNK(st.st_mode)) {
			free(cur);
			cur = next;
			continue;
		}
		if (no_symlinks)
			die("refusing %s: %s is a symlink in the image", path, next);
		if (++links > 255)
			die("resolve (in root) %s: %s", path, errtext(ELOOP));
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(rootfd, next + 1, target, PATH_MAX);
		if (n < 0)
			die("readlink (in root) %s: %s", next, errtext(errno));
		target[n] = '\0';
		if (target[0] == '/') {
			free(cur);
			cur = strdup("/");
		}
		char *nrest = xmalloc((size_t)n + strlen(p) + 2);
		sprintf(nrest, "%s/%s", target, p);
		p = nrest; /* the old rest leaks: an init lives for milliseconds */
		free(next);
	}
	return cur;
}

/* mkdir_all_in_root is mkdirAllInRoot: it makes path and its parents
 * below rootfd (the last one an empty file with file set), each step
 * resolved inside the root, and returns an O_PATH fd of the result. */
static int mkdir_all_in_root(int rootfd, const char *path, int file, uint64_t resolve)
{
	char *clean = resolve_in_root(rootfd, path, (resolve & RESOLVE_NO_SYMLINKS) != 0);
	if (strcmp(clean, "/") == 0)
		return xopen_in_root(rootfd, "/", O_PATH | O_DIRECTORY, resolve);
	int parent = xopen_in_root(rootfd, "/", O_PATH | O_DIRECTORY, resolve);
	char *sub = strdup(clean);
	const char *p = clean + 1;
	for (;;) {
		const char *end = strchrnul(p, '/');
		int last = *end == '\0';
		size_t sublen = (size_t)(end - clean);
		memcpy(sub, clean, sublen);
		sub[sublen] = '\0';
		char *name = strndup(p, (size_t)(end - p));
		int fd = open_in_root(rootfd, sub, O_PATH, resolve);
		if (fd == -ENOENT) {
			if (last && file) {
				/* O_EXCL|O_NOFOLLOW: never write through a symlink */
				int f = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
				if (f >= 0)
					close(f);
				else if (errno != EEXIST)
					die("create %s: %s", sub, errtext(errno));
			} else if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) {
				die("mkdir %s: %s", sub, errtext(errno));
			}
			fd = open_in_root(rootfd, sub, O_PATH, resolve);
		}
		close(parent);
		if (fd < 0)
			die("openat2 (in root) %s: %s", sub, errtext(-fd));
		free(name);
		if (last) {
			free(sub);
			free(clean);
			return fd;
		}
		parent = fd;
		p = end + 1;
	}
}

/* locked_flags is lockedMountFlags: the flags of the mount holding path
 * that a bind remount must keep. */
static unsigned long locked_flags(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) < 0)
		return 0;
	return (unsigned long)st.f_flags &
	       (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_RDONLY);
}

/* remount_bind changes the flags of the mount now at dest. */
static void remount_bind(int rootfd, const char *dest, unsigned long flags)
{
	int fd = xopen_in_root(rootfd, dest, O_PATH, 0);
	const char *p = fdpath(fd);
	unsigned long f = MS_BIND | MS_REMOUNT | flags;
	int err = do_mount("", p, "", f, "");
	if (err == -EPERM) {
		f |= locked_flags(p);
		err = do_mount("", p, "", f, "");
	}
	if (err < 0)
		mount_error("", p, "", f, "", err);
	close(fd);
}

static void remount_propagation(int rootfd, const char *dest, unsigned long flag)
{
	int fd = xopen_in_root(rootfd, dest, O_PATH, 0);
	xmount("", fdpath(fd), "", flag, "");
	close(fd);
}

static void refuse_symlink(int rootfd, const char *dest)
{
	struct stat st;
	if (fstatat(rootfd, dest + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		die("refusing to mount on %s: it is a symlink in the image", dest);
}

static void propagations(struct reader *r, int rootfd, const char *dest)
{
	uint64_t n = rd_uint(r);
	for (uint64_t i = 0; i < n; i++)
		remount_propagation(rootfd, dest, (unsigned long)rd_uint(r));
}

/* op_fs is mountOne for a filesystem (not bind, not cgroup). */
static void op_fs(struct reader *r, int rootfd)
{
	char *dest = rd_str(r), *src = rd_str(r), *type = rd_str(r);
	unsigned long flags = (unsigned long)rd_uint(r);
	char *data = rd_str(r);
	uint64_t resolve = rd_uint(r);
	int refuse = rd_bool(r), sysfs = rd_bool(r);
	if (refuse)
		refuse_symlink(rootfd, dest);
	int fd = mkdir_all_in_root(rootfd, dest, 0, resolve);
	int err = do_mount(src, fdpath(fd), type, flags, data);
	if (err < 0 && sysfs && (err == -EPERM || err == -EBUSY)) {
		/* no network namespace of our own: the host's /sys, read-only */
		err = do_mount("/sys", fdpath(fd), "", MS_BIND | MS_REC, "");
		if (err < 0)
			mount_error("/sys", fdpath(fd), "", MS_BIND | MS_REC, "", err);
		remount_bind(rootfd, dest, flags | MS_RDONLY);
	} else if (err < 0) {
		mount_error(src, fdpath(fd), type, flags, data, err);
	}
	propagations(r, rootfd, dest);
	close(fd);
}

/* op_bind is bindMount: a host source (opened once) onto dest, then the
 * other flags with a remount. */
static void op_bind(struct reader *r, int rootfd)
{
	char *dest = rd_str(r), *src = rd_str(r);
	int refuse = rd_bool(r);
	unsigned long flags = (unsigned long)rd_uint(r), rest = (unsigned long)rd_uint(r);
	if (refuse)
		refuse_symlink(rootfd, dest);
	int sfd = open(src, O_PATH | O_CLOEXEC);
	if (sfd < 0)
		die("open bind source %s: %s", src, errtext(errno));
	int dir = is_dir_fd(sfd);
	int fd = mkdir_all_in_root(rootfd, dest, !dir, 0);
	if (is_dir_fd(fd) != dir)
		die("bind source %s and destination differ in type (directory vs file)", src);
	char s[32];
	snprintf(s, sizeof s, "%s", fdpath(sfd));
	xmount(s, fdpath(fd), "", flags, "");
	if (rest)
		remount_bind(rootfd, dest, rest);
	propagations(r, rootfd, dest);
	close(fd);
	close(sfd);
}

/* op_cgroup is mountCgroup without a user namespace: cgroup2 on a unified
 * host, else a tmpfs with one mount per host hierarchy. */
static void op_cgroup(struct reader *r, int rootfd)
{
	char *dest = rd_str(r);
	int refuse = rd_bool(r);
	unsigned long flags = (unsigned long)rd_uint(r);
	int readonly = rd_bool(r), unified = rd_bool(r);
	uint64_t n = rd_uint(r);
	if (refuse)
		refuse_symlink(rootfd, dest);
	int fd = mkdir_all_in_root(rootfd, dest, 0, RESOLVE_NO_SYMLINKS);
	if (unified) {
		xmount("cgroup", fdpath(fd), "cgroup2", flags, "");
		close(fd);
		return;
	}
	xmount("tmpfs", fdpath(fd), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
	int tfd = xopen_in_root(rootfd, dest, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
	for (uint64_t i = 0; i < n; i++) {
		char *name = rd_str(r), *fstype = rd_str(r), *opts = rd_str(r);
		if (mkdirat(tfd, name, 0755) < 0 && errno != EEXIST) {
			char *p = path_join(dest, name);
			die("mkdir %s: %s", p, errtext(errno));
		}
		int sfd = openat(tfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0) {
			char *p = path_join(dest, name);
			die("open %s: %s", p, errtext(errno));
		}
		xmount("cgroup", fdpath(sfd), fstype, flags, opts);
		close(sfd);
	}
	close(tfd);
	if (readonly)
		remount_bind(rootfd, dest, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	close(fd);
}

/* create_device is createDevice without a user namespace: mknod. */
static void create_device(int rootfd, const char *dest, mode_t type, mode_t perm, unsigned int major,
			  unsigned int minor, int64_t uid, int64_t gid)
{
	char *dir = path_dir(dest);
	int parent = mkdir_all_in_root(rootfd, dir, 0, 0);
	char *name = path_base(dest);
	unlinkat(parent, name, 0);
	if (mknodat(parent, name, type | perm, makedev(major, minor)) < 0)
		die("mknod %s: %s", dest, errtext(errno));
	if ((uid >= 0 || gid >= 0) && fchownat(parent, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		die("chown %s: %s", dest, errtext(errno));
	close(parent);
	free(name);
	free(dir);
}

/* setup_dev fills a fresh /dev: standard devices, the /proc/self/fd
 * links, /dev/ptmx pointing at the container's own devpts. */
static void setup_dev(int rootfd)
{
	static const struct {
		const char *path;
		unsigned int major, minor;
	} devs[] = {
		{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
		{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
	};
	static const char *links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	};
	for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
		create_device(rootfd, devs[i].path, S_IFCHR, 0666, devs[i].major, devs[i].minor, -1, -1);
	int devfd = xopen_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		if (strcmp(links[i][1], "ptmx") == 0)
			unlinkat(devfd, "ptmx", 0);
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST)
			die("symlink /dev/%s: %s", links[i][1], errtext(errno));
	}
	close(devfd);
}

static void pivot(const char *rootfs)
{
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		die("open /: %s", errtext(errno));
	int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0)
		die("open %s: %s", rootfs, errtext(errno));
	if (fchdir(newroot) < 0)
		die("fchdir: %s", errtext(errno));
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root %s: %s", rootfs, errtext(errno));
	if (fchdir(oldroot) < 0)
		die("fchdir: %s", errtext(errno));
	/* the old root a slave, so that its unmount does not reach the host */
	xmount("", ".", "", MS_SLAVE | MS_REC, "");
	while (umount2(".", MNT_DETACH) < 0)
		if (errno != EINTR)
			die("umount .: %s", errtext(errno));
	if (chdir("/") < 0)
		die("chdir: %s", errtext(errno));
	close(oldroot);
	close(newroot);
}

/* write_no_create is writeFileNoCreate. */
static void write_no_create(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, errtext(errno));
	size_t n = strlen(data);
	ssize_t w;
	while ((w = write(fd, data, n)) < 0 && errno == EINTR)
		;
	if (w < 0)
		die("write %s: %s", path, errtext(errno));
	if (close(fd) < 0 && errno != EINTR)
		die("close %s: %s", path, errtext(errno));
}

static void mask_path(const char *p)
{
	int fd = open_in_root(AT_FDCWD, p, O_PATH, 0);
	if (fd == -ENOENT)
		return;
	if (fd < 0)
		die("openat2 (in root) %s: %s", p, errtext(-fd));
	if (is_dir_fd(fd))
		xmount("tmpfs", fdpath(fd), "tmpfs", MS_RDONLY, "size=0k");
	else
		xmount("/dev/null", fdpath(fd), "", MS_BIND, "");
	close(fd);
}

static void readonly_path(const char *p)
{
	int fd = open_in_root(AT_FDCWD, p, O_PATH, 0);
	if (fd == -ENOENT)
		return;
	if (fd < 0)
		die("openat2 (in root) %s: %s", p, errtext(-fd));
	char s[32];
	snprintf(s, sizeof s, "%s", fdpath(fd));
	xmount(s, s, "", MS_BIND | MS_REC, "");
	close(fd);
	remount_bind(AT_FDCWD, p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

/* ---- the user, from the image's passwd and group (user.go) ---- */

/* A span of bytes, which may hold NULs (as Go strings do). */
struct span {
	const char *p;
	size_t n;
};

static int span_eq(struct span a, struct span b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

static struct span cspan(const char *s) { return (struct span){s, strlen(s)}; }

/* read_file returns the whole of path, or n == 0 and p == NULL when it
 * cannot be opened. */
static struct span read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return (struct span){NULL, 0};
	size_t cap = 8192, len = 0;
	char *b = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > SIZE_MAX / 2)
				break;
			cap *= 2;
			b = xrealloc(b, cap);
		}
		ssize_t n = read(fd, b + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return (struct span){b, len};
}

/* parse_u32 is strconv.ParseUint(s, 10, 32). */
static int parse_u32(struct span s, uint32_t *out)
{
	uint64_t v = 0;
	if (s.n == 0)
		return -1;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* space_at and space_before are the byte lengths of a white-space rune
 * (unicode.IsSpace, in UTF-8) starting at p, or ending before end; 0 if
 * there is none. */
static size_t space_at(const unsigned char *p, size_t n)
{
	if (n >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
		return 1;
	if (n >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
		return 2; /* U+0085, U+00A0 */
	if (n >= 3 && p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
		return 3; /* U+1680 */
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
		return p[2] >= 0x80 ? 3 : 0; /* U+2000-U+200A, U+2028, U+2029, U+202F */
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
		return 3; /* U+205F */
	if (n >= 3 && p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
		return 3; /* U+3000 */
	return 0;
}

static size_t space_before(const unsigned char *start, const unsigned char *end)
{
	size_t n = (size_t)(end - start);
	for (size_t k = 1; k <= 3 && k <= n; k++)
		if (space_at(end - k, k) == k)
			return k;
	return 0;
}

/* trim is strings.TrimSpace. */
static struct span trim(struct span s)
{
	const unsigned char *p = (const unsigned char *)s.p, *e = p + s.n;
	size_t k;
	while (p < e && (k = space_at(p, (size_t)(e - p))) > 0)
		p += k;
	while (e > p && (k = space_before(p, e)) > 0)
		e -= k;
	return (struct span){(const char *)p, (size_t)(e - p)};
}

/* A line reader as bufio.Scanner with ScanLines: it stops, as the Go init
 * does (it ignores the scanner's error), at a line longer than the
 * scanner's 64 KiB buffer. */
struct lines {
	const char *p, *end;
};

static int next_line(struct lines *l, struct span *line)
{
	if (l->p == NULL || l->p >= l->end)
		return 0;
	const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	const char *e = nl ? nl : l->end;
	if ((size_t)(e - l->p) >= 64 * 1024)
		return 0;
	*line = trim((struct span){l->p, (size_t)(e - l->p)});
	l->p = nl ? nl + 1 : l->end;
	return 1;
}

/* split_fields splits s at ':' into at most max fields; returns the count
 * of all of them. */
static size_t split_fields(struct span s, struct span *f, size_t max)
{
	size_t n = 0;
	for (;;) {
		const char *c = memchr(s.p, ':', s.n);
		size_t len = c ? (size_t)(c - s.p) : s.n;
		if (n < max)
			f[n] = (struct span){s.p, len};
		n++;
		if (c == NULL)
			return n;
		s.n -= len + 1;
		s.p = c + 1;
	}
}

/* next_record reads the next line of l that is neither empty nor a
 * comment and splits it at ':' into f (at most max fields; *nf counts
 * them all); 0 at the end. */
static int next_record(struct lines *l, struct span *f, size_t max, size_t *nf)
{
	struct span line;
	while (next_line(l, &line))
		if (line.n > 0 && line.p[0] != '#') {
			*nf = split_fields(line, f, max);
			return 1;
		}
	return 0;
}

struct pwent {
	struct span name, home;
	uint32_t uid, gid;
};

struct grent {
	struct span name, members; /* members: comma separated */
	uint32_t gid;
};

static void *grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap *= 2;
	return xrealloc(v, *cap * size);
}

static size_t parse_passwd(struct span b, struct pwent **out)
{
	size_t n = 0, cap = 16;
	struct pwent *v = xmalloc(cap * sizeof *v);
	struct lines l = {b.p, b.p + b.n};
	struct span f[6];
	size_t nf;
	while (next_record(&l, f, 6, &nf)) {
		if (nf < 4)
			continue;
		struct pwent e = {.name = f[0], .home = {"", 0}};
		if (parse_u32(f[2], &e.uid) < 0 || parse_u32(f[3], &e.gid) < 0)
			continue;
		if (nf > 5)
			e.home = f[5];
		v = grow(v, n, &cap, sizeof *v);
		v[n++] = e;
	}
	*out = v;
	return n;
}

static size_t parse_group(struct span b, struct grent **out)
{
	size_t n = 0, cap = 16;
	struct grent *v = xmalloc(cap * sizeof *v);
	struct lines l = {b.p, b.p + b.n};
	struct span f[4];
	size_t nf;
	while (next_record(&l, f, 4, &nf)) {
		if (nf < 3)
			continue;
		struct grent e = {.name = f[0], .members = {"", 0}};
		if (parse_u32(f[2], &e.gid) < 0)
			continue;
		if (nf > 3)
			e.members = f[3];
		v = grow(v, n, &cap, sizeof *v);
		v[n++] = e;
	}
	*out = v;
	return n;
}

struct user {
	uint32_t uid, gid;
	gid_t *groups;
	size_t ngroups, cap;
	struct span home;
};

static void add_group(struct user *u, gid_t g)
{
	u->groups = grow(u->groups, u->ngroups, &u->cap, sizeof *u->groups);
	u->groups[u->ngroups++] = g;
}

/* resolve_user is resolveUser of user.go. */
static struct user resolve_user(const char *spec)
{
	struct pwent *users;
	struct grent *groups;
	size_t nu = parse_passwd(read_file("/etc/passwd"), &users);
	size_t ng = parse_group(read_file("/etc/group"), &groups);
	struct span userpart = cspan(spec), grouppart = {NULL, 0};
	const char *colon = strchr(spec, ':');
	if (colon) {
		userpart.n = (size_t)(colon - spec);
		grouppart = cspan(colon + 1);
	}
	if (userpart.n == 0)
		userpart = cspan("0");
	struct user u = {.home = cspan("/"), .cap = 4};
	u.groups = xmalloc(u.cap * sizeof *u.groups);
	struct span name = {NULL, 0};
	int found = 0;
	uint32_t n;
	if (parse_u32(userpart, &n) == 0) {
		u.uid = n;
		for (size_t i = 0; i < nu && !found; i++)
			if (users[i].uid == u.uid) {
				u.gid = users[i].gid;
				u.home = users[i].home;
				name = users[i].name;
				found = 1;
			}
	} else {
		for (size_t i = 0; i < nu && !found; i++)
			if (span_eq(users[i].name, userpart)) {
				u.uid = users[i].uid;
				u.gid = users[i].gid;
				u.home = users[i].home;
				name = users[i].name;
				found = 1;
			}
		if (!found)
			die("user %s: no such user in the image's /etc/passwd", quoted(strndup(userpart.p, userpart.n)));
	}
	if (grouppart.n > 0) {
		if (parse_u32(grouppart, &n) == 0) {
			u.gid = n;
		} else {
			int ok = 0;
			for (size_t i = 0; i < ng && !ok; i++)
				if (span_eq(groups[i].name, grouppart)) {
					u.gid = groups[i].gid;
					ok = 1;
				}
			if (!ok)
				die("group %s: no such group in the image's /etc/group", quoted(grouppart.p));
		}
		return u;
	}
	/* every listing of the user as a member counts, as in the Go init */
	if (found)
		for (size_t i = 0; i < ng; i++) {
			struct span m = groups[i].members;
			if (m.n == 0)
				continue; /* no members (Go splits only a non-empty list) */
			for (;;) {
				const char *c = memchr(m.p, ',', m.n);
				size_t len = c ? (size_t)(c - m.p) : m.n;
				if (span_eq((struct span){m.p, len}, name) && groups[i].gid != u.gid)
					add_group(&u, groups[i].gid);
				if (c == NULL)
					break;
				m.n -= len + 1;
				m.p = c + 1;
			}
		}
	if (u.home.n == 0)
		u.home = cspan("/");
	return u;
}

/* ---- the finish (process_linux.go: finishProcess) ---- */

static const char *env_get(char **env, size_t n, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = n; i > 0; i--) {
		const char *e = env[i - 1];
		const char *eq = strchr(e, '=');
		size_t elen = eq ? (size_t)(eq - e) : strlen(e);
		if (elen == klen && strncmp(e, key, klen) == 0)
			return eq ? eq + 1 : "";
	}
	return NULL;
}

/* look_path is lookPath: the executable in the container's PATH. */
static char *look_path(const char *file, char **env, size_t nenv)
{
	if (strchr(file, '/'))
		return strdup(file);
	const char *path = env_get(env, nenv, "PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path;;) {
		const char *c = strchrnul(p, ':');
		char *dir = strndup(p, (size_t)(c - p));
		char *cand = path_join(*dir ? dir : ".", file);
		free(dir);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
			return cand;
		free(cand);
		if (*c == '\0')
			break;
		p = c + 1;
	}
	die("exec %s: executable file not found in $PATH", quoted(file));
}

static void install_seccomp(const char *prog, size_t len, unsigned long flags)
{
	if (len % sizeof(struct sock_filter) != 0)
		die("seccomp: program of %zu bytes is not a whole number of instructions", len);
	if (len == 0)
		die("seccomp: empty filter");
	size_t n = len / sizeof(struct sock_filter);
	if (n > 4096)
		die("seccomp: filter has %zu instructions, the kernel takes at most 4096", n);
	struct sock_filter *ins = xmalloc(len);
	memcpy(ins, prog, len);
	struct sock_fprog fp = {.len = (unsigned short)n, .filter = ins};
	long r;
	while ((r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_TSYNC, &fp)) < 0 &&
	       errno == EINTR)
		;
	if (r < 0 && errno == EACCES)
		die("seccomp: install filter: seccomp: %s (the thread needs no_new_privs or CAP_SYS_ADMIN)",
		    errtext(errno));
	if (r < 0)
		die("seccomp: install filter: seccomp: %s", errtext(errno));
	if (r > 0)
		die("seccomp: install filter: thread %ld cannot be synchronised", r);
}

static void xprctl(int op, unsigned long a, unsigned long b, const char *what)
{
	if (prctl(op, a, b, 0, 0) < 0)
		die("prctl(%s): %s", what, errtext(errno));
}

/* prepare_fds moves the extra files to 3... and marks every other fd
 * above them close-on-exec (CVE-2024-21626). */
static void prepare_fds(unsigned int nextra)
{
	for (unsigned int i = 0; i < nextra; i++)
		if (dup3((int)(EXTRA_FD + i), (int)(3 + i), 0) < 0)
			die("dup3: %s", errtext(errno));
	unsigned int keep = 3 + nextra;
	if (syscall(SYS_close_range, keep, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		die("open /proc/self/fd: %s", errtext(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint32_t fd;
		if (parse_u32(cspan(e->d_name), &fd) < 0 || fd < keep)
			continue;
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

/* run_reaper is runReaper (compose `init: true`): this process stays pid
 * 1, already confined as the command will be, forks the command, forwards
 * it every signal but SIGCHLD, reaps every zombie reparented to it, and
 * exits with the command's status. It keeps no fd but stdio. */
__attribute__((noreturn)) static void run_reaper(const char *exe, char **args, char **env)
{
	/* Every signal, 32 and 33 too (sigfillset leaves out what glibc
	 * keeps for its threads): raw sigprocmask and sigtimedwait. */
	uint64_t all = ~0ULL, old = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &old, sizeof all);
	pid_t pid = fork();
	if (pid < 0)
		die("fork/exec %s: %s", exe, errtext(errno));
	if (pid == 0) {
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
		execve(exe, args, env);
		die("fork/exec %s: %s", exe, errtext(errno));
	}
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	for (;;) {
		siginfo_t si;
		int sig = (int)syscall(SYS_rt_sigtimedwait, &all, &si, NULL, sizeof all);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(pid, sig);
			continue;
		}
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0)
			if (w == pid)
				_exit(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
	}
}

static void finish(struct reader *r)
{
	setctx("%s", "");
	uint64_t nrl = rd_uint(r);
	for (uint64_t i = 0; i < nrl; i++) {
		char *name = rd_str(r);
		int res = (int)rd_uint(r);
		struct rlimit rl;
		rl.rlim_cur = rd_uint(r);
		rl.rlim_max = rd_uint(r);
		if (setrlimit(res, &rl) < 0)
			die("setrlimit %s: %s", name, errtext(errno));
	}
	if (rd_bool(r)) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)rd_int(r));
		write_no_create("/proc/self/oom_score_adj", v);
	}
	char *userspec = rd_str(r);
	size_t nadd;
	uint64_t n = rd_uint(r);
	if (n > (uint64_t)(r->end - r->p))
		die("init program: truncated");
	uint32_t *add = xmalloc((n + 1) * sizeof *add);
	for (nadd = 0; nadd < n; nadd++)
		add[nadd] = (uint32_t)rd_uint(r);
	size_t nenv, nargs;
	char **env = rd_strs(r, &nenv);
	char **args = rd_strs(r, &nargs);
	uint64_t bounding = rd_uint(r), effective = rd_uint(r), permitted = rd_uint(r);
	uint64_t inheritable = rd_uint(r), ambient = rd_uint(r);
	uint64_t lastcap64 = rd_uint(r); /* the host's, read by the runtime */
	int nnp = rd_bool(r);
	char *prog = NULL;
	size_t proglen = 0;
	unsigned long sflags = 0;
	int has_seccomp = rd_bool(r);
	if (has_seccomp) {
		prog = rd_bytes(r, &proglen);
		sflags = (unsigned long)rd_uint(r);
	}
	char *cwd = rd_str(r);
	unsigned int nextra = (unsigned int)rd_uint(r);
	int reaper = rd_bool(r);
	if (r->p != r->end)
		die("init program: %zu bytes left over", (size_t)(r->end - r->p));

	struct user u = resolve_user(userspec);
	for (size_t i = 0; i < nadd; i++)
		add_group(&u, add[i]);
	int bad_env = 0; /* a NUL in HOME: execve fails as Go's does */
	if (env_get(env, nenv, "HOME") == NULL) {
		bad_env = memchr(u.home.p, '\0', u.home.n) != NULL;
		env = xrealloc(env, (nenv + 2) * sizeof *env);
		env[nenv] = xmalloc(u.home.n + 6);
		memcpy(env[nenv], "HOME=", 5);
		memcpy(env[nenv] + 5, u.home.p, u.home.n);
		env[nenv][u.home.n + 5] = '\0';
		env[++nenv] = NULL;
	}
	char *exe = look_path(args[0], env, nenv);
	if (lastcap64 > 63)
		die("cap_last_cap %llu is out of range", (unsigned long long)lastcap64);
	int lastcap = (int)lastcap64;
	uint64_t known = lastcap == 63 ? ~0ULL : (1ULL << (lastcap + 1)) - 1;
	bounding &= known, effective &= known, permitted &= known, inheritable &= known, ambient &= known;
	/* The fds first: nothing opens one after this, and the close_range
	 * that marks them comes before any filter that could refuse it. */
	prepare_fds(nextra);
	/* Without no_new_privs only a process holding CAP_SYS_ADMIN may
	 * install a filter: load it while we still are root. */
	if (has_seccomp && !nnp)
		install_seccomp(prog, proglen, sflags);
	for (int c = 0; c <= lastcap; c++)
		if (!(bounding & (1ULL << c)))
			xprctl(PR_CAPBSET_DROP, (unsigned long)c, 0, "PR_CAPBSET_DROP");
	xprctl(PR_SET_KEEPCAPS, 1, 0, "PR_SET_KEEPCAPS");
	/* raw syscalls: this one thread, as the Go init does */
	if (syscall(SYS_setgroups, u.ngroups, u.ngroups ? u.groups : NULL) < 0 &&
	    !(errno == EPERM && u.ngroups == 0))
		die("setgroups: %s", errtext(errno));
	if (syscall(SYS_setresgid, u.gid, u.gid, u.gid) < 0)
		die("setresgid: %s", errtext(errno));
	if (syscall(SYS_setresuid, u.uid, u.uid, u.uid) < 0)
		die("setresuid: %s", errtext(errno));
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable},
		{(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset: %s", errtext(errno));
	xprctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, "PR_CAP_AMBIENT_CLEAR_ALL");
	for (int c = 0; c <= lastcap; c++)
		if (ambient & (1ULL << c))
			xprctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, "PR_CAP_AMBIENT_RAISE");
	xprctl(PR_SET_KEEPCAPS, 0, 0, "PR_SET_KEEPCAPS");
	if (*cwd == '\0')
		cwd = "/";
	if (chdir(cwd) < 0)
		die("chdir %s: %s", cwd, errtext(errno));
	/* CVE-2024-21626: a cwd reached through a leaked host fd lies outside
	 * our root; getcwd(2) then answers "(unreachable)/...". */
	char wd[PATH_MAX + 1];
	if (syscall(SYS_getcwd, wd, sizeof wd) < 0 || wd[0] != '/')
		die("cwd %s is outside the container root", quoted(cwd));
	if (nnp) {
		xprctl(PR_SET_NO_NEW_PRIVS, 1, 0, "PR_SET_NO_NEW_PRIVS");
		if (has_seccomp)
			install_seccomp(prog, proglen, sflags);
	}
	if (bad_env) {
		errno = EINVAL;
		die("exec %s: %s", exe, errtext(errno));
	}
	if (reaper)
		run_reaper(exe, args, env);
	execve(exe, args, env);
	die("exec %s: %s", exe, errtext(errno));
}

/* ---- main ---- */

static void recv_program(struct reader *r)
{
	char peek;
	ssize_t size;
	while ((size = recv(SYNC_FD, &peek, 1, MSG_PEEK | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (size < 0)
		die("read config: recvmsg: %s", errtext(errno));
	if (size == 0)
		die("read config: EOF");
	if (size > MAX_CONFIG)
		die("read config: sync message of %zd bytes is over the limit of %d", size, MAX_CONFIG);
	unsigned char *buf = xmalloc((size_t)size);
	ssize_t n;
	while ((n = recv(SYNC_FD, buf, (size_t)size, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		die("read config: recvmsg: %s", errtext(errno));
	r->p = buf;
	r->end = buf + n;
	size_t ml = strlen(MAGIC);
	if ((size_t)n < ml || memcmp(buf, MAGIC, ml) != 0)
		die("init program: not from this berth (bad magic)");
	r->p += ml;
}

/* berth_nsenter (../nsenter/nsenter.c, linked in) joins the namespaces of
 * a running container when the runtime asks for it (an exec), as it does
 * for the Go init before the Go runtime starts; a no-op otherwise. */
void berth_nsenter(void);

int main(void)
{
	struct reader r;
	berth_nsenter();
	recv_program(&r);
	uint64_t mode = rd_uint(&r);
	if (mode == MODE_EXEC) {
		finish(&r); /* a process joining a running container */
		return 127;
	}
	if (mode != MODE_CREATE)
		die("init program: unknown mode %llu", (unsigned long long)mode);

	size_t njoin;
	char **join = rd_strs(&r, &njoin);
	for (size_t i = 0; i < njoin; i++) {
		setctx("join cgroup: cgroup: ");
		char *p = path_join(join[i], "tasks");
		int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %s", p, errtext(errno));
		if (write(fd, "0", 1) < 0)
			die("writing \"0\" to %s: %s", p, errtext(errno));
		if (close(fd) < 0 && errno != EINTR)
			die("close %s: %s", p, errtext(errno));
	}
	setctx("%s", "");
	if (rd_bool(&r) && unshare(CLONE_NEWCGROUP) < 0)
		die("unshare(CLONE_NEWCGROUP): %s", errtext(errno));
	char *hostname = rd_str(&r), *domainname = rd_str(&r);
	if (*hostname && sethostname(hostname, strlen(hostname)) < 0)
		die("sethostname: %s", errtext(errno));
	if (*domainname && setdomainname(domainname, strlen(domainname)) < 0)
		die("setdomainname: %s", errtext(errno));
	umask(0);

	/* setupRootfs */
	char *rootfs = rd_str(&r);
	setctx("rootfs: ");
	xmount("", "/", "", MS_SLAVE | MS_REC, ""); /* nothing we mount reaches the host */
	xmount(rootfs, rootfs, "", MS_BIND | MS_REC, ""); /* pivot_root needs a mount point */
	int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die("open %s: %s", rootfs, errtext(errno));
	uint64_t nops = rd_uint(&r);
	for (uint64_t i = 0; i < nops; i++) {
		uint64_t op = rd_uint(&r);
		char *label = rd_str(&r);
		switch (op) {
		case OP_FS:
			setctx("rootfs: mount %s: ", label);
			op_fs(&r, rootfd);
			break;
		case OP_BIND:
			setctx("rootfs: mount %s: ", label);
			op_bind(&r, rootfd);
			break;
		case OP_CGROUP:
			setctx("rootfs: mount %s: ", label);
			op_cgroup(&r, rootfd);
			break;
		case OP_SETUP_DEV:
			setctx("rootfs: /dev: ");
			setup_dev(rootfd);
			break;
		case OP_DEVICE: {
			setctx("rootfs: device %s: ", label);
			char *dest = rd_str(&r);
			mode_t type = (mode_t)rd_uint(&r), perm = (mode_t)rd_uint(&r);
			unsigned int major = (unsigned int)rd_uint(&r), minor = (unsigned int)rd_uint(&r);
			int64_t uid = rd_int(&r), gid = rd_int(&r);
			create_device(rootfd, dest, type, perm, major, minor, uid, gid);
			break;
		}
		default:
			die("init program: unknown step %llu", (unsigned long long)op);
		}
	}
	setctx("rootfs: ");
	pivot(rootfs);
	/* From here the init reaches its own fds through /proc/self/fd (the
	 * exec fifo, the mounts on masked and read-only paths): an image's
	 * own files there would take it elsewhere. */
	struct statfs pst;
	if (statfs("/proc", &pst) < 0 || pst.f_type != PROC_SUPER_MAGIC)
		die("/proc is not procfs: the container needs a proc mount there");
	uint64_t n = rd_uint(&r);
	for (uint64_t i = 0; i < n; i++) {
		char *key = rd_str(&r), *path = rd_str(&r), *val = rd_str(&r);
		setctx("rootfs: sysctl %s: ", key);
		write_no_create(path, val);
	}
	size_t nmask, nro;
	char **masked = rd_strs(&r, &nmask);
	for (size_t i = 0; i < nmask; i++) {
		setctx("rootfs: masked path %s: ", masked[i]);
		mask_path(masked[i]);
	}
	char **ro = rd_strs(&r, &nro);
	for (size_t i = 0; i < nro; i++) {
		setctx("rootfs: readonly path %s: ", ro[i]);
		readonly_path(ro[i]);
	}
	setctx("rootfs: ");
	unsigned long prop = (unsigned long)rd_uint(&r);
	if (prop)
		xmount("", "/", "", prop, "");
	if (rd_bool(&r))
		xmount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), "");
	close(rootfd);
	umask(022);

	/* Ready: block until Start opens the fifo (reopened through
	 * /proc/self/fd: it lives outside our root). */
	setctx("%s", "");
	if (send_packet("ready", NULL) < 0)
		die("sendmsg: %s", errtext(errno));
	int fifo = open(fdpath(FIFO_FD), O_WRONLY | O_CLOEXEC);
	if (fifo < 0)
		die("open exec fifo: open %s: %s", fdpath(FIFO_FD), errtext(errno));
	close(FIFO_FD);
	ssize_t w;
	while ((w = write(fifo, "0", 1)) < 0 && errno == EINTR)
		;
	if (w < 0)
		die("write exec fifo: write %s: %s", fdpath(FIFO_FD), errtext(errno));
	close(fifo);
	close(SYNC_FD);
	sync_fd = -1;

	finish(&r);
	return 127;
}
