/*
 * lib_loop.c: nomade.loop, the event loop (libev, one thread) as Lua
 * primitives. Every handler runs in a coroutine of its own (sched_spawn),
 * so a handler that fails is logged with its traceback and the loop goes
 * on; nothing a handler does can unwind through ev_run.
 *
 *   loop.timer(after, every, fn) -> t   fn(t) after `after` s, then every
 *                                       `every` s (0: once); t:stop()
 *   loop.watch(path, fn [, debounce])   fn(path) when the file changes,
 *                                       once edits settle (default 0.03 s).
 *                                       inotify on the file's folder says
 *                                       when to look (an editor's rename
 *                                       included); changes are judged
 *                                       here, on inode, size and ns
 *                                       mtime/ctime (libev's ev_stat
 *                                       compares mtime in whole seconds
 *                                       and misses a same-size save within
 *                                       a second), and a 50 ms poll backs
 *                                       inotify up where it is missing
 *   loop.signal(name, fn)               "INT", "TERM", "HUP" or "USR1"
 *   loop.listen(path, {data = fn(conn, bytes), close = fn(conn)})
 *                                       a Unix socket server, the socket
 *                                       made 0600; conn:write(s),
 *                                       conn:close(), conn.id. Nothing at
 *                                       path is removed but a stale socket
 *                                       (one nobody answers on); closing
 *                                       removes only the server's own
 *   loop.sleep(s)                       in a handler: yields, and the loop
 *                                       resumes it s seconds later (with
 *                                       nil, "cancelled" if the sched
 *                                       cancels it first); on a command's
 *                                       main thread outside loop.run it
 *                                       blocks; elsewhere it raises
 *                                       "loop.sleep: cannot wait here"
 *   loop.run()                          until loop.stop() or nothing is left;
 *                                       nothing may block while it runs
 *   loop.stop(), loop.now()                the loop's time (cached per iteration)
 *   loop.time()                         the wall clock now, for exchange
 *                                       timestamps that must not lag
 * An active watcher belongs to the loop: its userdata is anchored in the
 * registry until it stops, so Lua's GC cannot free it under libev.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <lauxlib.h>
#include "host.h"
#include "lib_sched.h"

#define WATCH_MT "nomade.loop.watcher"
#define SLEEP_MT "nomade.loop.sleeper"

enum { TIMER, STAT, SIGNAL };

typedef struct watcher {
	union {
		ev_timer timer;
		ev_signal sig;
	} w;
	ev_timer debounce;  /* STAT: fires once the file has settled */
	ev_timer poll;      /* STAT: re-stats, for what inotify cannot see */
	struct stat seen;   /* STAT: the file as last judged */
	struct watcher *next;  /* STAT: the other files watched */
	int wd;             /* STAT: its folder's inotify watch, or -1 */
	int kind, active;
	int self_ref, fn_ref;
	lua_State *L;       /* the main state, for callbacks */
	char path[4096];
} watcher;

static struct ev_loop *loop_of(void)
{
	return EV_DEFAULT;
}

/* the files watched, and one inotify descriptor for their folders (-1
   where inotify is missing: the poll alone then) */
static struct {
	int fd;
	ev_io io;
	watcher *files;
} folders = {-2, {0}, NULL};

static void look(struct ev_loop *loop, watcher *w);

/* something changed in a folder watched: each file is judged again */
static void on_notify(struct ev_loop *loop, ev_io *io, int revents)
{
	char buf[4096];
	watcher *w;

	(void)io, (void)revents;
	while (read(folders.fd, buf, sizeof buf) > 0)
		continue;  /* which file it was does not matter: all are looked at */
	for (w = folders.files; w != NULL; w = w->next)
		look(loop, w);
}

/* w's folder watched (w->wd), and w among the files */
static void notify_add(watcher *w)
{
	char dir[sizeof w->path];
	char *slash;

	if (folders.fd == -2) {
		folders.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (folders.fd >= 0) {
			ev_io_init(&folders.io, on_notify, folders.fd, EV_READ);
			ev_io_start(loop_of(), &folders.io);
			ev_unref(loop_of());  /* it alone does not keep run() going */
		}
	}
	strcpy(dir, w->path);
	slash = strrchr(dir, '/');
	slash[slash == dir] = '\0';  /* "/x" watches "/" */
	w->wd = folders.fd >= 0 ? inotify_add_watch(folders.fd, dir, IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO
		| IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) : -1;
	w->next = folders.files;
	folders.files = w;
}

/* w no longer among the files; its folder's watch ends with the last
   file in that folder (inotify gives one folder one watch) */
static void notify_remove(watcher *w)
{
	watcher **p, *o;

	for (p = &folders.files; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	for (o = folders.files; o != NULL; o = o->next)
		if (o->wd == w->wd)
			return;
	if (w->wd >= 0)
		inotify_rm_watch(folders.fd, w->wd);
}

static void anchor(lua_State *L, watcher *w, int idx)
{
	lua_pushvalue(L, idx);
	w->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	w->active = 1;
}

static void stop_watcher(watcher *w)
{
	struct ev_loop *loop = loop_of();

	if (!w->active)
		return;
	w->active = 0;
	if (w->kind == TIMER)
		ev_timer_stop(loop, &w->w.timer);
	else if (w->kind == STAT) {
		notify_remove(w);
		ev_timer_stop(loop, &w->debounce);
		ev_timer_stop(loop, &w->poll);
	} else {
		ev_signal_stop(loop, &w->w.sig);
	}
	luaL_unref(w->L, LUA_REGISTRYINDEX, w->fn_ref);
	luaL_unref(w->L, LUA_REGISTRYINDEX, w->self_ref);
	w->fn_ref = w->self_ref = LUA_NOREF;
}

/* runs the watcher's function in a new coroutine with one argument */
static void fire(watcher *w, const char *what)
{
	lua_State *L = w->L;
	int top = lua_gettop(L);

	lua_rawgeti(L, LUA_REGISTRYINDEX, w->fn_ref);
	if (w->kind == STAT)
		lua_pushstring(L, w->path);
	else
		lua_rawgeti(L, LUA_REGISTRYINDEX, w->self_ref);
	sched_spawn(L, 1, what);
	lua_settop(L, top);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	watcher *w = (watcher *)t->data;

	(void)loop, (void)revents;
	if (t->repeat == 0)
		w->active = 2;  /* about to be done: stop after the call */
	fire(w, "timer");
	if (w->active == 2) {
		w->active = 1;
		stop_watcher(w);
	}
}

static void on_settled(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	ev_timer_stop(loop, t);  /* its repeat is the settle time, not a period */
	fire((watcher *)t->data, "file watch");
}

/* has the file changed since it was last judged? (a missing file has
   st_ino 0, so a deletion and a re-creation count as changes too) */
static int changed(watcher *w)
{
	struct stat st;

	if (stat(w->path, &st) != 0)
		memset(&st, 0, sizeof st);
	if (st.st_ino == w->seen.st_ino && st.st_size == w->seen.st_size
	    && st.st_mtim.tv_sec == w->seen.st_mtim.tv_sec
	    && st.st_mtim.tv_nsec == w->seen.st_mtim.tv_nsec
	    && st.st_ctim.tv_sec == w->seen.st_ctim.tv_sec
	    && st.st_ctim.tv_nsec == w->seen.st_ctim.tv_nsec)
		return 0;
	w->seen = st;
	return 1;
}

/* w's file judged again: a change (re)starts the debounce, so that a
   burst of writes fires once */
static void look(struct ev_loop *loop, watcher *w)
{
	if (changed(w))
		ev_timer_again(loop, &w->debounce);
}

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	look(loop, (watcher *)t->data);
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
	(void)loop, (void)revents;
	fire((watcher *)s->data, "signal");
}

static watcher *new_watcher(lua_State *L, int kind, int fn)
{
	watcher *w;

	luaL_checktype(L, fn, LUA_TFUNCTION);
	w = (watcher *)lua_newuserdatauv(L, sizeof *w, 0);
	memset(w, 0, sizeof *w);
	w->kind = kind;
	w->fn_ref = w->self_ref = LUA_NOREF;
	w->L = host_main(L);
	luaL_setmetatable(L, WATCH_MT);
	lua_pushvalue(L, fn);
	w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return w;
}

static int l_timer(lua_State *L)
{
	double after = luaL_checknumber(L, 1), every = luaL_checknumber(L, 2);
	watcher *w;

	luaL_argcheck(L, after >= 0, 1, "must be >= 0");
	luaL_argcheck(L, every >= 0, 2, "must be >= 0");
	w = new_watcher(L, TIMER, 3);
	ev_timer_init(&w->w.timer, on_timer, after, every);
	w->w.timer.data = w;
	ev_timer_start(loop_of(), &w->w.timer);
	anchor(L, w, -1);
	return 1;
}

static int l_watch(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	double settle = luaL_optnumber(L, 3, 0.03);
	watcher *w;

	luaL_argcheck(L, path[0] == '/', 1, "the path must be absolute");
	luaL_argcheck(L, strlen(path) < sizeof w->path, 1, "path too long");
	luaL_argcheck(L, settle > 0, 3, "must be > 0");
	w = new_watcher(L, STAT, 2);
	strcpy(w->path, path);
	ev_init(&w->debounce, on_settled);
	w->debounce.repeat = settle;
	w->debounce.data = w;
	ev_timer_init(&w->poll, on_poll, 0.05, 0.05);
	w->poll.data = w;
	changed(w);  /* the starting point */
	notify_add(w);
	ev_timer_start(loop_of(), &w->poll);
	ev_unref(loop_of());  /* the poll alone does not keep run() going */
	anchor(L, w, -1);
	return 1;
}

/* SIGINT, SIGTERM: libev's handler only queues the signal for the loop,
   which a budgeted call running (or stuck) keeps from seeing it; this one
   ends that call first (sched_interrupt), then queues it as libev does */
static void on_stop_signal(int signum)
{
	int saved = errno;

	sched_interrupt();
	ev_feed_signal(signum);
	errno = saved;
}

static int l_signal(lua_State *L)
{
	static const char *const names[] = {"INT", "TERM", "HUP", "USR1", NULL};
	static const int numbers[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
	int which = luaL_checkoption(L, 1, NULL, names);
	watcher *w = new_watcher(L, SIGNAL, 2);

	ev_signal_init(&w->w.sig, on_signal, numbers[which]);
	w->w.sig.data = w;
	ev_signal_start(loop_of(), &w->w.sig);
	if (numbers[which] == SIGINT || numbers[which] == SIGTERM) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_stop_signal;
		sigfillset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		sigaction(numbers[which], &sa, NULL);  /* in place of libev's, after it */
	}
	ev_unref(loop_of());  /* a signal watcher alone does not keep run() going */
	anchor(L, w, -1);
	return 1;
}

static int w_stop(lua_State *L)
{
	watcher *w = (watcher *)luaL_checkudata(L, 1, WATCH_MT);
	if (w->active && (w->kind == SIGNAL || w->kind == STAT))
		ev_ref(loop_of());  /* undo the unref of l_signal / l_watch */
	stop_watcher(w);
	return 0;
}

static int w_active(lua_State *L)
{
	lua_pushboolean(L, ((watcher *)luaL_checkudata(L, 1, WATCH_MT))->active != 0);
	return 1;
}

/* a sleeping coroutine's timer (a userdata the sched anchors while it
   waits): it resumes the coroutine */
typedef struct {
	ev_timer t;
	struct sched_wait wait;
} sleeper;

static void on_wake(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	sched_wake(&((sleeper *)t)->wait, 0);
}

static void sleep_cancel(struct sched_wait *w)
{
	ev_timer_stop(loop_of(), &((sleeper *)((char *)w - offsetof(sleeper, wait)))->t);
}

static int sleeper_gc(lua_State *L)
{
	ev_timer_stop(loop_of(), &((sleeper *)luaL_checkudata(L, 1, SLEEP_MT))->t);
	return 0;
}

static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	sleeper *z;

	luaL_argcheck(L, s >= 0 && s < 86400, 1, "seconds in 0..86400");
	if (!sched_can_wait(L, "loop.sleep")) {  /* a command's own wait: it blocks */
		struct timespec ts;
		struct budget *was = sched_block_begin();
		ts.tv_sec = (time_t)s;
		ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		sched_block_end(was);
		return 0;
	}
	z = (sleeper *)lua_newuserdatauv(L, sizeof *z, 0);
	memset(z, 0, sizeof *z);
	luaL_setmetatable(L, SLEEP_MT);
	ev_timer_init(&z->t, on_wake, s, 0);
	ev_timer_start(loop_of(), &z->t);
	return sched_wait(L, &z->wait, "loop.sleep", sleep_cancel, -1);
}

static int l_run(lua_State *L)
{
	int could = sched_allow_blocking(L, 0);  /* a handler that blocks stalls every other */

	ev_run(loop_of(), 0);
	sched_allow_blocking(L, could);
	return 0;
}

static int l_stop(lua_State *L)
{
	(void)L;
	ev_break(loop_of(), EVBREAK_ALL);
	return 0;
}

static int l_now(lua_State *L)
{
	lua_pushnumber(L, ev_now(loop_of()));
	return 1;
}

static int l_time(lua_State *L)
{
	lua_pushnumber(L, ev_time());
	return 1;
}

/* Unix socket servers and their connections */

#define SERVER_MT "nomade.loop.server"
#define CONN_MT "nomade.loop.conn"
#define MAX_OUT (4 << 20)  /* a client that reads nothing is dropped here */

typedef struct {
	ev_io io;
	int fd, ref, handlers_ref;
	lua_State *L;
	char path[108];
	dev_t dev;  /* the socket file made, to remove it and nothing else */
	ino_t ino;
} server;

typedef struct {
	ev_io rd, wr;
	int fd, ref, handlers_ref;
	lua_Integer id;
	lua_State *L;
	char *out;         /* bytes not yet written */
	size_t len, cap;
} conn;

static lua_Integer next_id;

static void conn_close(conn *c)
{
	struct ev_loop *loop = loop_of();

	if (c->fd < 0)
		return;
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->len = c->cap = 0;
}

/* calls handlers[name](conn [, bytes]) in a coroutine */
static void conn_event(conn *c, const char *name, const char *bytes, size_t n)
{
	lua_State *L = c->L;
	int top = lua_gettop(L);

	lua_rawgeti(L, LUA_REGISTRYINDEX, c->handlers_ref);
	lua_getfield(L, -1, name);
	if (lua_isfunction(L, -1)) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
		if (bytes)
			lua_pushlstring(L, bytes, n);
		sched_spawn(L, bytes ? 2 : 1, "socket client");
	}
	lua_settop(L, top);
}

/*
 * Closes and lets the GC have the connection. Only a drop seen by the loop
 * (the client went away) calls the close handler: a close asked from Lua
 * is known to Lua already, and runs inside a coroutine, where spawning
 * another on the main thread's stack is not safe.
 */
static void conn_drop(conn *c, int notify)
{
	int ref = c->ref;

	if (c->fd < 0)
		return;
	conn_close(c);
	if (notify)
		conn_event(c, "close", NULL, 0);
	luaL_unref(c->L, LUA_REGISTRYINDEX, c->handlers_ref);
	c->ref = c->handlers_ref = LUA_NOREF;
	luaL_unref(c->L, LUA_REGISTRYINDEX, ref);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	conn *c = (conn *)w->data;
	char buf[4096];
	ssize_t n;

	(void)loop, (void)revents;
	n = read(c->fd, buf, sizeof buf);
	if (n > 0)
		conn_event(c, "data", buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		conn_drop(c, 1);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	conn *c = (conn *)w->data;
	ssize_t n;

	(void)revents;
	n = write(c->fd, c->out, c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_drop(c, 1);
		return;
	}
	memmove(c->out, c->out + n, c->len - (size_t)n);
	c->len -= (size_t)n;
	if (c->len == 0)
		ev_io_stop(loop, &c->wr);
}

static conn *check_conn(lua_State *L)
{
	return (conn *)luaL_checkudata(L, 1, CONN_MT);
}

/* conn:write(s): queued and written as the socket takes it; false once
   the client is gone or has let MAX_OUT pile up (then it is dropped) */
static int c_write(lua_State *L)
{
	conn *c = check_conn(L);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);

	if (c->fd < 0 || c->len + n > MAX_OUT) {
		if (c->fd >= 0)
			conn_drop(c, 0);
		lua_pushboolean(L, 0);
		return 1;
	}
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *p;
		while (cap < c->len + n)
			cap *= 2;
		p = (char *)realloc(c->out, cap);
		if (p == NULL)
			return luaL_error(L, "conn:write: out of memory");
		c->out = p, c->cap = cap;
	}
	memcpy(c->out + c->len, s, n);
	c->len += n;
	ev_io_start(loop_of(), &c->wr);
	lua_pushboolean(L, 1);
	return 1;
}

static int c_close(lua_State *L)
{
	conn_drop(check_conn(L), 0);
	return 0;
}

static int c_gc(lua_State *L)
{
	conn_close(check_conn(L));
	return 0;
}

static int c_index(lua_State *L)
{
	conn *c = check_conn(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "id"))
		lua_pushinteger(L, c->id);
	else if (!strcmp(k, "open"))
		lua_pushboolean(L, c->fd >= 0);
	else {
		lua_getmetatable(L, 1);
		lua_getfield(L, -1, "methods");
		lua_getfield(L, -1, k);
	}
	return 1;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	server *sv = (server *)w->data;
	lua_State *L = sv->L;
	int fd = accept(sv->fd, NULL, NULL);
	conn *c;

	(void)revents;
	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	c = (conn *)lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->L = L;
	c->id = ++next_id;
	luaL_setmetatable(L, CONN_MT);
	c->ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* open: anchored */
	lua_rawgeti(L, LUA_REGISTRYINDEX, sv->handlers_ref);
	c->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	ev_io_init(&c->rd, on_readable, fd, EV_READ);
	ev_io_init(&c->wr, on_writable, fd, EV_WRITE);
	c->rd.data = c->wr.data = c;
	ev_io_start(loop, &c->rd);
	conn_event(c, "open", NULL, 0);
}

/* is something already answering on path? */
static int answering(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return 0;
	ok = connect(fd, (const struct sockaddr *)a, sizeof *a) == 0;
	close(fd);
	return ok;
}

/* why path cannot be had for a socket, or NULL: nothing is there, or
   only a socket that nobody answers on (left by a process that died),
   which is removed. Anything else there (a journal given as --socket) is
   left alone */
static const char *claim(const struct sockaddr_un *a)
{
	struct stat st;

	if (lstat(a->sun_path, &st) != 0)
		return errno == ENOENT ? NULL : strerror(errno);
	if (!S_ISSOCK(st.st_mode))
		return "something other than a socket is there (it is left alone)";
	if (answering(a))
		return "another process is already listening there";
	return unlink(a->sun_path) == 0 || errno == ENOENT ? NULL : strerror(errno);
}

static int l_listen(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct sockaddr_un a;
	struct stat st;
	server *sv;
	mode_t old;
	const char *why;
	int fd, rc;

	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_argcheck(L, strlen(path) < sizeof a.sun_path, 1, "socket path too long");
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, path);
	why = claim(&a);
	if (why) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, why);
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "socket: %s", strerror(errno));
		return 2;
	}
	old = umask(0177);  /* the socket is born 0600: no window for others */
	rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	/* as many waiting connects as the system allows: clients attaching at
	   once are accepted in turn, not refused */
	if (rc != 0 || listen(fd, SOMAXCONN) != 0 || lstat(path, &st) != 0) {
		int e = errno;
		close(fd);
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(e));
		return 2;
	}
	sv = (server *)lua_newuserdatauv(L, sizeof *sv, 0);
	memset(sv, 0, sizeof *sv);
	sv->fd = fd;
	sv->L = host_main(L);  /* clients are spawned from it, long after this call */
	strcpy(sv->path, path);
	sv->dev = st.st_dev;
	sv->ino = st.st_ino;
	luaL_setmetatable(L, SERVER_MT);
	lua_pushvalue(L, -1);
	sv->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 2);
	sv->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	ev_io_init(&sv->io, on_accept, fd, EV_READ);
	sv->io.data = sv;
	ev_io_start(loop_of(), &sv->io);
	ev_unref(loop_of());  /* a listening socket alone does not keep run() going */
	return 1;
}

static int s_close(lua_State *L)
{
	server *sv = (server *)luaL_checkudata(L, 1, SERVER_MT);
	struct stat st;

	if (sv->fd < 0)
		return 0;
	ev_ref(loop_of());
	ev_io_stop(loop_of(), &sv->io);
	close(sv->fd);
	sv->fd = -1;
	if (lstat(sv->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == sv->dev && st.st_ino == sv->ino)
		unlink(sv->path);  /* still ours: what replaced it is not */
	luaL_unref(L, LUA_REGISTRYINDEX, sv->handlers_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, sv->ref);
	return 0;
}

static const luaL_Reg conn_methods[] = {
	{"write", c_write},
	{"close", c_close},
	{NULL, NULL}
};

static const luaL_Reg server_methods[] = {
	{"close", s_close},
	{NULL, NULL}
};

static const luaL_Reg watcher_methods[] = {
	{"stop", w_stop},
	{"active", w_active},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"timer", l_timer},
	{"watch", l_watch},
	{"signal", l_signal},
	{"listen", l_listen},
	{"sleep", l_sleep},
	{"run", l_run},
	{"stop", l_stop},
	{"now", l_now},
	{"time", l_time},
	{NULL, NULL}
};

int luaopen_nomade_loop(lua_State *L)
{
	if (luaL_newmetatable(L, WATCH_MT)) {
		luaL_newlib(L, watcher_methods);
		lua_setfield(L, -2, "__index");
	}
	if (luaL_newmetatable(L, SERVER_MT)) {
		luaL_newlib(L, server_methods);
		lua_setfield(L, -2, "__index");
	}
	if (luaL_newmetatable(L, CONN_MT)) {
		lua_pushcfunction(L, c_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, c_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, conn_methods);
		lua_setfield(L, -2, "methods");
	}
	if (luaL_newmetatable(L, SLEEP_MT)) {
		lua_pushcfunction(L, sleeper_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 4);
	luaL_newlib(L, funcs);
	return 1;
}
