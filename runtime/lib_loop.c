/*
 * lib_loop.c: nomade.loop, the event loop (libev, one thread) as Lua
 * primitives. Every handler runs in a coroutine of its own (host_spawn),
 * so a handler that fails is logged with its traceback and the loop goes
 * on; nothing a handler does can unwind through ev_run.
 *
 *   loop.timer(after, every, fn) -> t   fn(t) after `after` s, then every
 *                                       `every` s (0: once); t:stop()
 *   loop.watch(path, fn [, debounce])   fn(path) when the file changes,
 *                                       once edits settle (default 0.03 s).
 *                                       libev's ev_stat compares mtime in
 *                                       whole seconds, so a same-size save
 *                                       within a second would go unseen:
 *                                       changes are judged here, on inode,
 *                                       size and ns mtime/ctime, and a
 *                                       50 ms poll backs ev_stat up
 *   loop.signal(name, fn)               "INT", "TERM" or "HUP"
 *   loop.run()                          until loop.stop() or nothing is left
 *   loop.stop(), loop.now()
 * An active watcher belongs to the loop: its userdata is anchored in the
 * registry until it stops, so Lua's GC cannot free it under libev.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ev.h>
#include <lauxlib.h>
#include "host.h"

#define WATCH_MT "nomade.loop.watcher"

enum { TIMER, STAT, SIGNAL };

typedef struct {
	union {
		ev_timer timer;
		ev_stat stat;
		ev_signal sig;
	} w;
	ev_timer debounce;  /* STAT: fires once the file has settled */
	ev_timer poll;      /* STAT: re-stats, for what ev_stat cannot see */
	struct stat seen;   /* STAT: the file as last judged */
	int kind, active;
	int self_ref, fn_ref;
	lua_State *L;       /* the main state, for callbacks */
	char path[4096];
} watcher;

static struct ev_loop *loop_of(void)
{
	return EV_DEFAULT;
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
		ev_stat_stop(loop, &w->w.stat);
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
	host_spawn(L, 1, what);
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

/* a change: (re)start the debounce, so a burst of writes fires once */
static void on_stat(struct ev_loop *loop, ev_stat *s, int revents)
{
	watcher *w = (watcher *)s->data;

	(void)revents;
	if (changed(w))
		ev_timer_again(loop, &w->debounce);
}

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	watcher *w = (watcher *)t->data;

	(void)revents;
	if (changed(w))
		ev_timer_again(loop, &w->debounce);
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
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	w->L = lua_tothread(L, -1);
	lua_pop(L, 1);
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

	luaL_argcheck(L, path[0] == '/', 1, "the path must be absolute (libev's ev_stat)");
	luaL_argcheck(L, strlen(path) < sizeof w->path, 1, "path too long");
	luaL_argcheck(L, settle > 0, 3, "must be > 0");
	w = new_watcher(L, STAT, 2);
	strcpy(w->path, path);
	/* interval 0.1 s: the fallback poll where inotify is missing */
	ev_stat_init(&w->w.stat, on_stat, w->path, 0.1);
	w->w.stat.data = w;
	ev_init(&w->debounce, on_settled);
	w->debounce.repeat = settle;
	w->debounce.data = w;
	ev_timer_init(&w->poll, on_poll, 0.05, 0.05);
	w->poll.data = w;
	changed(w);  /* the starting point */
	ev_stat_start(loop_of(), &w->w.stat);
	ev_timer_start(loop_of(), &w->poll);
	ev_unref(loop_of());  /* the poll alone does not keep run() going */
	anchor(L, w, -1);
	return 1;
}

static int l_signal(lua_State *L)
{
	static const char *const names[] = {"INT", "TERM", "HUP", NULL};
	static const int numbers[] = {SIGINT, SIGTERM, SIGHUP};
	int which = luaL_checkoption(L, 1, NULL, names);
	watcher *w = new_watcher(L, SIGNAL, 2);

	ev_signal_init(&w->w.sig, on_signal, numbers[which]);
	w->w.sig.data = w;
	ev_signal_start(loop_of(), &w->w.sig);
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

static int l_run(lua_State *L)
{
	(void)L;
	ev_run(loop_of(), 0);
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

static const luaL_Reg watcher_methods[] = {
	{"stop", w_stop},
	{"active", w_active},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"timer", l_timer},
	{"watch", l_watch},
	{"signal", l_signal},
	{"run", l_run},
	{"stop", l_stop},
	{"now", l_now},
	{NULL, NULL}
};

int luaopen_nomade_loop(lua_State *L)
{
	if (luaL_newmetatable(L, WATCH_MT)) {
		luaL_newlib(L, watcher_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
