/*
 * workspace-session: keeps the terminal's program running between browser connections, at the
 * cost of a copy per byte instead of a terminal emulator's parse per byte (what tmux pays).
 *
 *   workspace-session attach COMMAND [ARG...]   attach to the session, starting it with COMMAND
 *   workspace-session status                    pid, attached clients, size, bytes kept
 *   workspace-session dump                      what an attach replays (the recent output)
 *
 * The first attach starts a server (the "master", detached from the caller) that owns the pty of
 * COMMAND and listens on /tmp/workspace-session-<uid>/socket. Each attach is a client: it puts its
 * terminal in raw mode and passes it to the master over the socket, which writes output to it
 * directly (as tmux does: no copy through the client) and reads the keys typed there itself when
 * that terminal is also the attach's stdin (MSG_READ_TERMINAL: one process and one socket hop
 * less per keystroke); the client forwards resizes, and input only from another stdin. The
 * master keeps the most recent output in a
 * ring (WORKSPACE_SESSION_REPLAY_BYTES, 1 MiB by default) and replays it, from a line start, to a
 * client that attaches: the browser's terminal rebuilds the screen and scrollback from it. A few
 * terminal modes (alternate screen, mouse, cursor keys, bracketed paste) are tracked as output
 * leaves the ring, so the replay starts in the right modes; a full-screen program is sent SIGWINCH
 * after the replay to redraw itself. The newest client's size wins (tmux's `window-size latest`).
 *
 * Flow control: clients read from the ring at their own offsets; the master stops reading the pty
 * while any client is more than PENDING_MAX behind, so a slow reader slows the program down, as
 * under a plain terminal, and misses nothing. A client that takes nothing at all for LAG_MS while
 * behind (a stalled browser, or one whose ttyd has not yet hung up) stops holding the program
 * back: it skips ahead to a line start in the ring when the ring moves past it, as tmux skips to a
 * redraw, and holds back again once it has caught up. It is never dropped. Output also touches /tmp/workspace-session-<uid>/activity (at most
 * once a second): its mtime is the idle check's "last output".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RING (1u << 20)
#define MIN_RING (512u << 10)
#define MAX_RING (64u << 20)
#define PENDING_MAX (256u << 10)
#define READ_MAX (64u << 10)
#define MAX_CLIENTS 64
#define MSG_MAX 4096
#define INPUT_QUEUE (64u << 10)
#define LINE_SCAN_MAX (64u << 10)
#define END_FLUSH_MS 2000
#define LAG_MS 2000

enum { MSG_ATTACH = 1, MSG_INPUT, MSG_WINCH, MSG_STATUS, MSG_DUMP, MSG_READ_TERMINAL };

struct msg_header {
	uint8_t type;
	uint8_t pad;
	uint16_t len;
};

static void die(const char *what)
{
	fprintf(stderr, "workspace-session: %s: %s\r\n", what, strerror(errno));
	exit(1);
}

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		die("fcntl");
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- terminal modes seen in the output --------------------------------------------------- */

/* DEC private modes worth restoring on a replay that starts after they were set. */
static const struct {
	int mode;
	bool on_by_default;
} tracked[] = {
	{1049, false}, {1047, false}, {47, false}, /* alternate screen: first, since it clears */
	{1, false},	{25, true},	{7, true},	{1000, false}, {1002, false}, {1003, false},
	{1004, false}, {1005, false}, {1006, false}, {1015, false}, {2004, false},
};
#define N_TRACKED (sizeof(tracked) / sizeof(tracked[0]))
#define MAX_PARAMS 16

struct modes {
	bool on[N_TRACKED];
	enum { GROUND, ESCAPE, CSI_FIRST, CSI_PRIVATE, CSI_OTHER } state;
	int params[MAX_PARAMS];
	int n_params;
};

static void modes_reset(struct modes *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < N_TRACKED; i++)
		m->on[i] = tracked[i].on_by_default;
}

static void modes_apply(struct modes *m, bool set)
{
	for (int p = 0; p < m->n_params; p++)
		for (size_t i = 0; i < N_TRACKED; i++)
			if (tracked[i].mode == m->params[p])
				m->on[i] = set;
}

/* Follows CSI ? Pn ; ... h/l and ESC c; skips everything else fast (memchr to the next ESC). */
static void modes_feed(struct modes *m, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		if (m->state == GROUND) {
			p = memchr(p, '\033', (size_t)(end - p));
			if (p == NULL)
				return;
			m->state = ESCAPE;
			p++;
			continue;
		}
		unsigned char c = (unsigned char)*p++;
		switch (m->state) {
		case ESCAPE:
			if (c == '[') {
				m->state = CSI_FIRST;
				m->n_params = 0;
				memset(m->params, 0, sizeof(m->params));
			} else if (c == 'c') {
				modes_reset(m); /* RIS: the terminal's full reset */
			} else if (c != '\033') {
				m->state = GROUND;
			}
			break;
		case CSI_FIRST:
			if (c == '?') {
				m->state = CSI_PRIVATE;
				m->n_params = 1;
				break;
			}
			m->state = CSI_OTHER;
			/* fall through */
		case CSI_OTHER:
			if (c >= 0x40 && c <= 0x7e)
				m->state = GROUND;
			else if (c == '\033')
				m->state = ESCAPE;
			break;
		case CSI_PRIVATE:
			if (c >= '0' && c <= '9') {
				int *v = &m->params[m->n_params - 1];
				if (*v < 100000)
					*v = *v * 10 + (c - '0');
			} else if (c == ';') {
				if (m->n_params < MAX_PARAMS)
					m->n_params++;
			} else if (c == 'h' || c == 'l') {
				modes_apply(m, c == 'h');
				m->state = GROUND;
			} else if (c == '\033') {
				m->state = ESCAPE;
			} else if (c >= 0x40 && c <= 0x7e) {
				m->state = GROUND;
			}
			break;
		case GROUND:
			break;
		}
	}
}

static bool modes_alternate(const struct modes *m)
{
	return m->on[0] || m->on[1] || m->on[2];
}

/* Escape sequences that put a fresh terminal into the modes `m` holds. */
static size_t modes_prefix(const struct modes *m, char *out, size_t size)
{
	size_t n = 0;
	if (modes_alternate(m))
		n += (size_t)snprintf(out + n, size - n, "\033[?1049h");
	for (size_t i = 3; i < N_TRACKED && n < size; i++)
		if (m->on[i] != tracked[i].on_by_default)
			n += (size_t)snprintf(out + n, size - n, "\033[?%d%c", tracked[i].mode,
					      m->on[i] ? 'h' : 'l');
	return n < size ? n : size;
}

/* ---- paths ------------------------------------------------------------------------------- */

static int lock_fd = -1; /* held while an attach starts the session */
/* Short enough for a socket address (108 bytes). */
static char dir_path[48], socket_path[64], lock_path[64], activity_path[64];

static void init_paths(void)
{
	unsigned uid = (unsigned)getuid();
	snprintf(dir_path, sizeof(dir_path), "/tmp/workspace-session-%u", uid);
	snprintf(socket_path, sizeof(socket_path), "/tmp/workspace-session-%u/socket", uid);
	snprintf(lock_path, sizeof(lock_path), "/tmp/workspace-session-%u/lock", uid);
	snprintf(activity_path, sizeof(activity_path), "/tmp/workspace-session-%u/activity", uid);
}

/* The folder is ours alone: another user must not plant a socket we would talk to. */
static void ensure_dir(void)
{
	if (mkdir(dir_path, 0700) < 0 && errno != EEXIST)
		die("mkdir");
	struct stat st;
	if (lstat(dir_path, &st) < 0)
		die("stat");
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0) {
		fprintf(stderr, "workspace-session: %s is not a private folder of this user\r\n",
			dir_path);
		exit(1);
	}
}

static int connect_socket(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_msg(int fd, uint8_t type, const void *data, size_t len)
{
	char buf[sizeof(struct msg_header) + MSG_MAX];
	struct msg_header h = {.type = type, .len = (uint16_t)len};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), data, len);
	size_t total = sizeof(h) + len, done = 0;
	while (done < total) {
		ssize_t n = write(fd, buf + done, total - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* ---- master ------------------------------------------------------------------------------ */

struct client {
	int fd;		    /* the socket: messages in, and output for status and dump */
	int out;	    /* where output goes: the attach's terminal (passed over the socket), or fd */
	int passed;	    /* a terminal passed before its MSG_ATTACH, or -1 */
	bool attached;	    /* counted in `status`, gets output until it leaves */
	bool reads_terminal; /* its keys are read here from `out`, not forwarded (MSG_READ_TERMINAL) */
	uint64_t sent;	    /* stream offset of the next ring byte to send */
	uint64_t end;	    /* stream offset to stop at (UINT64_MAX: follow the stream) */
	char prefix[512];   /* sent before the ring bytes: modes for a replay, or a status text */
	size_t prefix_len, prefix_off;
	char in[sizeof(struct msg_header) + MSG_MAX];
	size_t in_len;
	bool redraw_after_replay;
	uint64_t replay_end;
	bool query; /* status or dump: closed once its answer is out */
	bool lagging;	    /* took nothing for LAG_MS while behind: skips, holds nothing back */
	uint64_t stuck_since; /* when it last was behind without taking anything, or 0 */
};

static struct {
	char *ring;
	size_t cap;
	uint64_t head; /* bytes of output so far; the ring holds [head - cap, head) */
	struct modes tail_modes; /* modes in force at the ring's oldest byte */
	int pty;
	pid_t child;
	int listen_fd;
	struct client clients[MAX_CLIENTS];
	int n_clients;
	char input[INPUT_QUEUE];
	size_t input_len;
	struct winsize size;
	int activity_fd;
	time_t activity_s;
	int signal_pipe[2];
	bool ended;
} M;

static uint64_t ring_tail(void)
{
	return M.head > M.cap ? M.head - M.cap : 0;
}

/* Calls fn on the ring bytes [from, to) in at most two pieces. */
static void ring_each(uint64_t from, uint64_t to, void (*fn)(const char *, size_t, void *), void *arg)
{
	while (from < to) {
		size_t at = (size_t)(from % M.cap);
		size_t n = M.cap - at;
		if (n > to - from)
			n = (size_t)(to - from);
		fn(M.ring + at, n, arg);
		from += n;
	}
}

static void feed_modes(const char *buf, size_t len, void *arg)
{
	modes_feed(arg, buf, len);
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(M.signal_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a wake-up is already pending */
	}
	errno = saved;
}

static void touch_activity(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != M.activity_s && M.activity_fd >= 0) {
		M.activity_s = ts.tv_sec;
		futimens(M.activity_fd, NULL);
	}
}

static uint64_t max_pending(void)
{
	uint64_t most = 0;
	for (int i = 0; i < M.n_clients; i++) {
		struct client *c = &M.clients[i];
		if (c->lagging)
			continue;
		uint64_t until = c->end < M.head ? c->end : M.head;
		if (until > c->sent && until - c->sent > most)
			most = until - c->sent;
	}
	return most;
}

static void read_pty(void)
{
	static char chunk[READ_MAX];
	size_t room = M.cap - (size_t)max_pending();
	ssize_t n = read(M.pty, chunk, room < READ_MAX ? room : READ_MAX);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		M.ended = true; /* EIO: every holder of the terminal's other end is gone */
		return;
	}
	/* The bytes about to be overwritten leave the ring: their modes now hold at its tail. */
	uint64_t new_head = M.head + (uint64_t)n;
	if (new_head > M.cap)
		ring_each(ring_tail(), new_head - M.cap, feed_modes, &M.tail_modes);
	size_t at = (size_t)(M.head % M.cap), first = M.cap - at;
	if (first > (size_t)n)
		first = (size_t)n;
	memcpy(M.ring + at, chunk, first);
	memcpy(M.ring, chunk + first, (size_t)n - first);
	M.head = new_head;
	touch_activity();
	/* A lagging client the ring moved past goes on from the first whole line it still holds. */
	uint64_t tail = ring_tail();
	for (int i = 0; i < M.n_clients; i++) {
		struct client *c = &M.clients[i];
		if (!c->lagging || c->sent >= tail + READ_MAX)
			continue;
		uint64_t from = tail + READ_MAX, limit = from + LINE_SCAN_MAX;
		c->sent = from < M.head ? from : M.head;
		for (uint64_t o = from; o < limit && o < M.head; o++)
			if (M.ring[o % M.cap] == '\n') {
				c->sent = o + 1;
				break;
			}
	}
}

/* No new attaches once the program ended: the next one starts a new session. */
static void stop_listening(void)
{
	if (M.listen_fd < 0)
		return;
	unlink(socket_path);
	close(M.listen_fd);
	M.listen_fd = -1;
}

static void drop_client(int i)
{
	struct client *c = &M.clients[i];
	if (c->out != c->fd)
		close(c->out);
	if (c->passed >= 0)
		close(c->passed);
	close(c->fd);
	M.clients[i] = M.clients[--M.n_clients];
}

static void set_size(const struct winsize *ws)
{
	if (ws->ws_col == 0 || ws->ws_row == 0)
		return;
	M.size = *ws;
	/* The kernel sends SIGWINCH to the foreground program when the size changes. */
	ioctl(M.pty, TIOCSWINSZ, ws);
}

/* Start `c` at the replay: the first line start in the ring, with the modes in force there. */
static void start_replay(struct client *c)
{
	uint64_t tail = ring_tail(), start = tail;
	struct modes at_start = M.tail_modes;
	if (tail > 0) {
		/* Skip the partial first line (its start, and any escape sequence in it, is gone). */
		uint64_t limit = tail + LINE_SCAN_MAX < M.head ? tail + LINE_SCAN_MAX : M.head;
		for (uint64_t o = tail; o < limit; o++)
			if (M.ring[o % M.cap] == '\n') {
				start = o + 1;
				break;
			}
		ring_each(tail, start, feed_modes, &at_start);
	}
	c->prefix_len = 0;
	if (tail > 0) {
		/* A fresh terminal, then the modes the replayed bytes expect. */
		c->prefix_len = modes_prefix(&at_start, c->prefix, sizeof(c->prefix));
	}
	c->prefix_off = 0;
	c->sent = start;
	struct modes now = at_start;
	ring_each(start, M.head, feed_modes, &now);
	c->redraw_after_replay = modes_alternate(&now);
	c->replay_end = M.head;
}

static void handle_message(struct client *c, const struct msg_header *h, const char *data)
{
	struct winsize ws;
	switch (h->type) {
	case MSG_ATTACH:
		if (c->attached || h->len != sizeof(ws))
			return;
		memcpy(&ws, data, sizeof(ws));
		c->attached = true;
		if (c->passed >= 0) {
			/* Output goes straight to the attach's terminal: one copy less per byte. */
			c->out = c->passed;
			c->passed = -1;
			set_nonblock(c->out);
		}
		c->end = UINT64_MAX;
		start_replay(c);
		set_size(&ws);
		break;
	case MSG_WINCH:
		if (h->len != sizeof(ws))
			return;
		memcpy(&ws, data, sizeof(ws));
		set_size(&ws);
		break;
	case MSG_READ_TERMINAL:
		/* The attach's stdin is the terminal it passed: its keys are read here from now on,
		 * one process and one socket hop less per keystroke. */
		if (c->attached && c->out != c->fd)
			c->reads_terminal = true;
		break;
	case MSG_INPUT:
		if (M.input_len + h->len <= INPUT_QUEUE) {
			memcpy(M.input + M.input_len, data, h->len);
			M.input_len += h->len;
		}
		break;
	case MSG_STATUS: {
		if (c->attached)
			return;
		int attached = 0;
		for (int i = 0; i < M.n_clients; i++)
			attached += M.clients[i].attached;
		int n = snprintf(c->prefix, sizeof(c->prefix),
				 "pid %d\nclients %d\nsize %ux%u\nkept %llu\nwritten %llu\n", (int)M.child,
				 attached, M.size.ws_col, M.size.ws_row,
				 (unsigned long long)(M.head - ring_tail()), (unsigned long long)M.head);
		c->prefix_len = (size_t)n < sizeof(c->prefix) ? (size_t)n : sizeof(c->prefix) - 1;
		c->prefix_off = 0;
		c->sent = c->end = M.head;
		c->query = true;
		break;
	}
	case MSG_DUMP:
		if (c->attached)
			return;
		start_replay(c);
		c->query = true;
		c->end = M.head;
		break;
	}
}

static void read_client(int i)
{
	struct client *c = &M.clients[i];
	struct iovec iov = {.iov_base = c->in + c->in_len, .iov_len = sizeof(c->in) - c->in_len};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
	ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			int passed;
			memcpy(&passed, CMSG_DATA(cm), sizeof(passed));
			if (c->passed >= 0 || c->attached || !isatty(passed))
				close(passed); /* one terminal per attach, and only a terminal */
			else
				c->passed = passed;
		}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(i);
		return;
	}
	c->in_len += (size_t)n;
	size_t off = 0;
	while (c->in_len - off >= sizeof(struct msg_header)) {
		struct msg_header h;
		memcpy(&h, c->in + off, sizeof(h));
		if (h.len > MSG_MAX) {
			drop_client(i);
			return;
		}
		if (c->in_len - off < sizeof(h) + h.len)
			break;
		handle_message(c, &h, c->in + off + sizeof(h));
		off += sizeof(h) + h.len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

/* Returns false when the client is done or gone (the caller drops it). */
static bool write_client(struct client *c, uint64_t now)
{
	if (c->prefix_off < c->prefix_len) {
		ssize_t n = write(c->out, c->prefix + c->prefix_off, c->prefix_len - c->prefix_off);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->prefix_off += (size_t)n;
		if (c->prefix_off < c->prefix_len)
			return true;
	}
	uint64_t until = c->end < M.head ? c->end : M.head;
	if (c->sent < until) {
		struct iovec iov[2];
		int n_iov = 0;
		uint64_t from = c->sent;
		while (from < until && n_iov < 2) {
			size_t at = (size_t)(from % M.cap), n = M.cap - at;
			if (n > until - from)
				n = (size_t)(until - from);
			iov[n_iov].iov_base = M.ring + at;
			iov[n_iov].iov_len = n;
			n_iov++;
			from += n;
		}
		ssize_t n = writev(c->out, iov, n_iov);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0) {
			c->sent += (uint64_t)n;
			c->stuck_since = 0;
		}
	}
	if (c->redraw_after_replay && c->sent >= c->replay_end) {
		/* Only now: the redraw lands after the replay on this client's screen. */
		c->redraw_after_replay = false;
		pid_t group = tcgetpgrp(M.pty);
		if (group > 0)
			kill(-group, SIGWINCH);
	}
	if (until - c->sent < PENDING_MAX) {
		c->lagging = false;
		c->stuck_since = 0;
	} else if (c->stuck_since == 0) {
		c->stuck_since = now;
	} else if (now - c->stuck_since >= LAG_MS) {
		c->lagging = true;
	}
	return !(c->query && c->prefix_off >= c->prefix_len && c->sent >= c->end);
}

/* Keys typed into an attach's terminal (see MSG_READ_TERMINAL). False: the terminal is gone. */
static bool read_terminal(struct client *c)
{
	size_t room = INPUT_QUEUE - M.input_len;
	if (room == 0)
		return true; /* read once the program has taken some */
	ssize_t n = read(c->out, M.input + M.input_len, room);
	if (n > 0) {
		M.input_len += (size_t)n;
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

static void write_input(void)
{
	ssize_t n = write(M.pty, M.input, M.input_len);
	if (n > 0) {
		memmove(M.input, M.input + n, M.input_len - (size_t)n);
		M.input_len -= (size_t)n;
	}
}

static void accept_client(void)
{
	int fd = accept4(M.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (M.n_clients == MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct client *c = &M.clients[M.n_clients++];
	memset(c, 0, sizeof(*c));
	c->fd = c->out = fd;
	c->passed = -1;
	c->end = c->sent = M.head; /* nothing to send until it says what it wants */
}

static int listen_socket(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	unlink(socket_path);
	mode_t old = umask(0077);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind");
	umask(old);
	if (listen(fd, 16) < 0)
		die("listen");
	return fd;
}

static size_t ring_size(void)
{
	const char *value = getenv("WORKSPACE_SESSION_REPLAY_BYTES");
	size_t size = DEFAULT_RING;
	if (value && *value) {
		char *end;
		unsigned long long parsed = strtoull(value, &end, 10);
		if (*end == '\0')
			size = parsed < MIN_RING ? MIN_RING : parsed > MAX_RING ? MAX_RING : (size_t)parsed;
	}
	return size;
}

static void master_loop(void)
{
	struct pollfd fds[3 + 2 * MAX_CLIENTS];
	uint64_t ended_at = 0;
	for (;;) {
		uint64_t now = now_ms();
		bool behind = false;
		if (M.ended) {
			stop_listening();
			/* Flush what clients still lack, for a bounded time, then go. */
			if (ended_at == 0)
				ended_at = now;
			if (max_pending() == 0 || now - ended_at > END_FLUSH_MS)
				return;
		}
		int n = 0;
		fds[n++] = (struct pollfd){.fd = M.signal_pipe[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = M.listen_fd, .events = POLLIN};
		short pty_events = 0;
		if (!M.ended && max_pending() < PENDING_MAX)
			pty_events |= POLLIN;
		if (!M.ended && M.input_len > 0)
			pty_events |= POLLOUT;
		fds[n++] = (struct pollfd){.fd = M.pty, .events = pty_events};
		for (int i = 0; i < M.n_clients; i++) {
			struct client *c = &M.clients[i];
			uint64_t until = c->end < M.head ? c->end : M.head;
			short in = M.input_len + sizeof(c->in) <= INPUT_QUEUE ? POLLIN : 0;
			short out = 0;
			if (c->prefix_off < c->prefix_len || c->sent < until || c->redraw_after_replay)
				out = POLLOUT;
			behind |= !c->lagging && until - c->sent >= PENDING_MAX;
			/* Two entries, also when both are the socket (status, dump). */
			fds[n++] = (struct pollfd){.fd = c->fd, .events = in};
			fds[n++] = (struct pollfd){.fd = c->out, .events = out | (c->reads_terminal ? in : 0)};
		}
		int timeout = M.ended ? 100 : behind ? 500 : -1;
		if (poll(fds, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		now = now_ms();
		if (fds[0].revents & POLLIN) {
			char sigs[64];
			ssize_t got = read(M.signal_pipe[0], sigs, sizeof(sigs));
			for (ssize_t s = 0; s < got; s++)
				if (sigs[s] == SIGCHLD && waitpid(M.child, NULL, WNOHANG) == M.child) {
					/* The program ended: what it wrote last is still in the pty. */
					while (!M.ended && max_pending() < PENDING_MAX) {
						uint64_t before = M.head;
						read_pty();
						if (M.head == before)
							break;
					}
					M.ended = true;
				}
		}
		if (!M.ended && (fds[2].revents & POLLOUT))
			write_input();
		if (!M.ended && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)))
			read_pty();
		/* Clients, from the last (dropping one moves the last into its slot). */
		for (int i = M.n_clients - 1; i >= 0; i--) {
			short revents = fds[3 + 2 * i].revents;
			if (revents & (POLLIN | POLLHUP | POLLERR)) {
				int before = M.n_clients;
				read_client(i);
				if (M.n_clients != before)
					continue;
			}
			struct client *c = &M.clients[i];
			if (c->reads_terminal && (fds[4 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !read_terminal(c)) {
				drop_client(i);
				continue;
			}
			if (!write_client(&M.clients[i], now))
				drop_client(i);
		}
		/* After the clients: a new one has no entry in this round's fds. */
		if (M.listen_fd >= 0 && (fds[1].revents & POLLIN))
			accept_client();
	}
}

static void master_main(const struct winsize *ws, char **argv, int ready_fd)
{
	M.cap = ring_size();
	M.ring = malloc(M.cap);
	if (M.ring == NULL)
		die("malloc");
	modes_reset(&M.tail_modes);
	M.size = *ws;
	if (pipe2(M.signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		die("pipe");
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	M.listen_fd = listen_socket();
	M.activity_fd = open(activity_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	M.child = forkpty(&M.pty, NULL, NULL, ws->ws_col ? ws : NULL);
	if (M.child < 0)
		die("forkpty");
	if (M.child == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "workspace-session: %s: %s\r\n", argv[0], strerror(errno));
		_exit(127);
	}
	fcntl(M.pty, F_SETFD, FD_CLOEXEC);
	set_nonblock(M.pty);
	touch_activity();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	if (write(ready_fd, "", 1) < 0) {
		/* the starting client is gone; the session still starts */
	}
	close(ready_fd);
	master_loop();
	stop_listening();
	exit(0);
}

/* A master for COMMAND, detached from the caller (its own session, reparented to init). */
static void spawn_master(const struct winsize *ws, char **argv)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(ready[0]);
		close(lock_fd); /* the master must not hold the start lock */
		setsid();
		pid_t inner = fork();
		if (inner < 0)
			_exit(1);
		if (inner > 0)
			_exit(0);
		master_main(ws, argv, ready[1]);
	}
	close(ready[1]);
	waitpid(pid, NULL, 0);
	char c;
	ssize_t n;
	do
		n = read(ready[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(ready[0]);
	if (n != 1) {
		fprintf(stderr, "workspace-session: the session did not start\r\n");
		exit(1);
	}
}

/* ---- client ------------------------------------------------------------------------------ */

static struct termios saved_termios;
static bool termios_saved;
static int client_signal_pipe[2];

/* The terminal's modes come back; its O_NONBLOCK stays: the session may still hold the same
 * open terminal (passed to it) for a moment and must never block writing to it. */
static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(0, TCSANOW, &saved_termios);
}

static void client_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(client_signal_pipe[1], &c, 1) < 0) {
		/* a wake-up is already pending */
	}
	errno = saved;
}

/* MSG_ATTACH with our terminal (fd 1) passed along: the session writes output to it directly. */
static bool attach_passing(int fd, const struct winsize *ws)
{
	struct msg_header h = {.type = MSG_ATTACH, .len = sizeof(*ws)};
	struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
			       {.iov_base = (void *)ws, .iov_len = sizeof(*ws)}};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr mh = {
		.msg_iov = iov, .msg_iovlen = 2, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	int out = 1;
	memcpy(CMSG_DATA(cm), &out, sizeof(out));
	ssize_t n;
	do
		n = sendmsg(fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)(sizeof(h) + sizeof(*ws));
}

static bool same_terminal(int a, int b)
{
	struct stat sa, sb;
	return isatty(a) && isatty(b) && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_rdev == sb.st_rdev;
}

static struct winsize own_size(void)
{
	struct winsize ws = {0};
	ioctl(0, TIOCGWINSZ, &ws);
	return ws;
}

static int client_attach(char **argv)
{
	ensure_dir();
	struct winsize ws = own_size();
	int fd = connect_socket();
	if (fd < 0) {
		lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
			die("lock");
		fd = connect_socket(); /* another attach may have started it meanwhile */
		if (fd < 0) {
			spawn_master(&ws, argv);
			fd = connect_socket();
		}
		close(lock_fd);
		lock_fd = -1;
		if (fd < 0)
			die("connect");
	}
	if (pipe2(client_signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		die("pipe");
	struct sigaction sa = {.sa_handler = client_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (isatty(0) && tcgetattr(0, &saved_termios) == 0) {
		termios_saved = true;
		struct termios raw = saved_termios;
		cfmakeraw(&raw);
		tcsetattr(0, TCSADRAIN, &raw);
	}
	atexit(restore_terminal);
	set_nonblock(1); /* ttyd being slow must not hold back typed keys */
	/* Raw first: the replay may reach the terminal as soon as the attach is sent. */
	if (!(isatty(1) ? attach_passing(fd, &ws) : send_msg(fd, MSG_ATTACH, &ws, sizeof(ws))))
		die("attach");
	/* Our keys come from the terminal the session writes to: it reads them there itself. */
	char none = 0;
	bool session_reads = same_terminal(0, 1) && send_msg(fd, MSG_READ_TERMINAL, &none, 0);

	static char out[READ_MAX];
	size_t out_len = 0, out_off = 0;
	bool session_over = false;
	for (;;) {
		struct pollfd fds[4] = {
			{.fd = client_signal_pipe[0], .events = POLLIN},
			{.fd = 0, .events = (session_over || session_reads) ? 0 : POLLIN},
			{.fd = fd, .events = (out_len == 0 && !session_over) ? POLLIN : 0},
			{.fd = 1, .events = out_len > 0 ? POLLOUT : 0},
		};
		if (session_over && out_len == 0)
			return 0;
		if (poll(fds, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (fds[0].revents & POLLIN) {
			char sigs[64];
			ssize_t got = read(client_signal_pipe[0], sigs, sizeof(sigs));
			for (ssize_t s = 0; s < got; s++) {
				if (sigs[s] == SIGWINCH) {
					ws = own_size();
					send_msg(fd, MSG_WINCH, &ws, sizeof(ws));
				} else {
					return 0; /* the browser left: detach, the session stays */
				}
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (session_reads)
				return 0; /* a hangup (nothing else is asked of stdin): the browser left */
			char buf[MSG_MAX];
			ssize_t n = read(0, buf, sizeof(buf));
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return 0;
			if (n > 0 && !send_msg(fd, MSG_INPUT, buf, (size_t)n))
				session_over = true;
		}
		if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, out, sizeof(out));
			if (n > 0) {
				out_len = (size_t)n;
				out_off = 0;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				session_over = true; /* the program ended: show the rest, then exit */
			}
		}
		if (out_len > 0) {
			ssize_t n = write(1, out + out_off, out_len - out_off);
			if (n > 0) {
				out_off += (size_t)n;
				if (out_off == out_len)
					out_len = out_off = 0;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return 0;
			}
		}
	}
}

/* status / dump: one request, print the answer. */
static int client_query(uint8_t type)
{
	int fd = connect_socket();
	if (fd < 0) {
		fprintf(stderr, "workspace-session: no session\n");
		return 1;
	}
	if (!send_msg(fd, type, NULL, 0))
		die("send");
	char buf[READ_MAX];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	init_paths();
	if (argc >= 3 && strcmp(argv[1], "attach") == 0)
		return client_attach(argv + 2);
	if (argc == 2 && strcmp(argv[1], "status") == 0)
		return client_query(MSG_STATUS);
	if (argc == 2 && strcmp(argv[1], "dump") == 0)
		return client_query(MSG_DUMP);
	fprintf(stderr, "usage: workspace-session attach COMMAND [ARG...] | status | dump\n");
	return 64;
}
