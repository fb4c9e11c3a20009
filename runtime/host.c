/*
 * host.c: creates the Lua state, registers nomade.* and the embedded Lua
 * library in package.preload (so the binary works from any directory),
 * and owns the protected call used for every entry from C into Lua.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include "host.h"

int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

static const luaL_Reg c_modules[] = {
	{"nomade.host", luaopen_nomade_host},
	{"nomade.ta", luaopen_nomade_ta},
	{"nomade._candles", luaopen_nomade_candles},
	{"nomade.crypto", luaopen_nomade_crypto},
	{"nomade.paper", luaopen_nomade_paper},
	{"nomade.loop", luaopen_nomade_loop},
	{"nomade.term", luaopen_nomade_term},
	{"nomade.store", luaopen_nomade_store},
	{"nomade.http", luaopen_nomade_http},
	{"nomade._bybit", luaopen_nomade_bybit_core},
	{"nomade._shield", luaopen_nomade_shield_core},
	{"nomade._gemini", luaopen_nomade_gemini_core},
	{"nomade.ws", luaopen_nomade_ws},
	{"nomade.httpd", luaopen_nomade_httpd},
	{"cjson", luaopen_cjson},
	{"cjson.safe", luaopen_cjson_safe},
	{NULL, NULL}
};

int host_traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL) {  /* not a string: try __tostring, else say what it is */
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int host_pcall(lua_State *L, int nargs, int nresults)
{
	int base = lua_gettop(L) - nargs, status;

	lua_pushcfunction(L, host_traceback);
	lua_insert(L, base);
	status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	return status;
}

static void scrub_top(lua_State *L);

void host_report(lua_State *L, const char *where)
{
	const char *msg;

	if (lua_type(L, -1) == LUA_TSTRING)
		scrub_top(L);
	msg = lua_tostring(L, -1);
	fprintf(stderr, "nomade: %s: %s\n", where, msg ? msg : "(no message)");
	fflush(stderr);
	lua_pop(L, 1);
}

/*
 * Budgets belong to threads: a registry table (weak keys) maps each thread
 * inside host.limit to its cell (struct budget: the instructions and the
 * bytes it has left), and the count hook is set on that thread alone (a
 * hook is per thread). So a call in one coroutine cannot touch another's
 * budget, and a coroutine suspended on I/O keeps what it has left. A
 * nested host.limit takes a cell of its own, and what it spends is charged
 * to the outer one when it ends. A coroutine created under a budget
 * inherits the hook (lua_newthread copies it) but no cell: it spends from
 * the cell of the budgeted thread that resumed it, and a hook that finds
 * none removes itself.
 *
 * Three things the count hook cannot see are watched besides:
 * - memory: a C function (string.rep, table.concat, a `..`) is one VM
 *   instruction however much it allocates, so the state's allocator counts
 *   the bytes the running budgeted call takes (net of what it frees) and
 *   refuses what would pass HOST_MEMORY_LIMIT; Lua raises "not enough
 *   memory", and the hook raises again at every instruction after it,
 *   since a pcall in user code would catch it (as for instructions);
 * - time: a C function may also run long without allocating (a pattern
 *   that backtracks, a string.rep of ""), and an instruction may be slow
 *   (a concatenation copying megabytes). A watchdog timer runs while a
 *   budgeted call runs (not while it waits on I/O); past HOST_SOFT_DEADLINE
 *   the hook turns the call into an error as soon as the VM runs again;
 *   past HOST_HARD_DEADLINE the VM has not run again, the call is stuck in
 *   C, and the process ends with EXIT_STUCK (systemd's Restart= starts it
 *   again; the journal, SQLite in WAL mode, keeps every committed record);
 * - stop signals: SIGINT and SIGTERM during a budgeted call end it the same
 *   way (host_interrupt), so that the loop can see them; stuck in C, the
 *   process ends about HOST_STOP_GRACE seconds later.
 * The allocator and the signal handlers find the running call in `running`:
 * set where a budget begins or ends, around each resume from C, and by the
 * hook itself (a coroutine resumed from Lua has no C boundary).
 */
#define BUDGET_STEP 1000          /* instructions between hook calls */
#define BUDGET_ENDED LUA_MININTEGER  /* a cell whose host.limit is over */
#define ERROR_SLACK 65536         /* bytes a failed call may still take */
#define GC_MARGIN (1 << 20)       /* what a collection must free for a call at its limit */
#define STR(x) STR_(x)
#define STR_(x) #x
static const char budget_key = 'b';

enum { SPENT_NOT, SPENT_INSTRUCTIONS, SPENT_MEMORY, SPENT_TIME, SPENT_SIGNAL };
static const char *const spent_what[] = {
	NULL, "instruction budget exceeded", "memory limit exceeded (a call may use "
	STR(HOST_MEMORY_LIMIT_MB) " MB)", "time limit exceeded (a call may run "
	STR(HOST_SOFT_DEADLINE) " s)", "interrupted: the process is stopping"
};

struct budget {
	lua_Integer left;      /* instructions; BUDGET_ENDED once its limit is over */
	long long bytes, max_bytes;  /* taken (net) and allowed */
	size_t refused;        /* the size of the request refused last, or 0 */
	long long refused_at;  /* bytes then */
	int spent;             /* SPENT_*: why it fails */
	lua_State *L;          /* its thread */
};

static struct {
	struct budget *volatile cell;  /* the budgeted call running, or NULL */
	volatile sig_atomic_t alarm;   /* 0, or SPENT_TIME / SPENT_SIGNAL */
	volatile sig_atomic_t calls;   /* counts the calls that started running */
	volatile sig_atomic_t ticking; /* the watchdog's timer is armed */
	volatile sig_atomic_t grace;   /* ticks since a stop signal */
	timer_t timer;
	int has_timer;
} running;

/*
 * The watchdog ticks once a second while calls run, rather than being
 * armed and disarmed around each (two system calls per candle would slow
 * a backtest by a third); it counts the ticks one call has been running,
 * and stops itself once no call has run for two ticks. So a deadline is
 * met within a second.
 */
static void ticking(int on)  /* async-signal-safe */
{
	struct itimerspec its;

	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = its.it_interval.tv_sec = on;
	running.ticking = on;
	if (running.has_timer)
		timer_settime(running.timer, 0, &its, NULL);
}

static void say(const char *msg)
{
	ssize_t n = write(2, msg, strlen(msg));
	(void)n;
}

/* SIGALRM, every second: past the soft deadline the call's hook fails
   it; past the hard one (the VM never ran again) the process ends */
static void on_watchdog(int sig)
{
	static sig_atomic_t seen = -1, ticks, idle;
	int saved = errno;

	(void)sig;
	if (running.cell == NULL) {
		if (++idle >= 2)
			ticking(0);
		errno = saved;
		return;
	}
	idle = 0;
	if (running.calls != seen) {
		seen = running.calls;
		ticks = 0;
	}
	ticks++;
	if (running.alarm == SPENT_SIGNAL ? ++running.grace > HOST_STOP_GRACE : ticks > HOST_HARD_DEADLINE) {
		say(running.alarm == SPENT_SIGNAL ? "nomade: watchdog: a call stuck in C code does not let the process stop; exiting\n"
			: "nomade: watchdog: a strategy or REPL call is stuck in C code past " STR(HOST_HARD_DEADLINE)
			" s; exiting (code 4) to be restarted\n");
		_exit(EXIT_STUCK);
	}
	if (ticks > HOST_SOFT_DEADLINE && running.alarm == 0)
		running.alarm = SPENT_TIME;
	errno = saved;
}

void host_interrupt(void)
{
	if (running.cell == NULL || running.alarm == SPENT_SIGNAL)
		return;
	running.grace = 0;
	running.alarm = SPENT_SIGNAL;
}

/* c is the budgeted call running from now on (NULL: the runtime's own
   code); the watchdog counts from the moment one starts running */
static void enter(struct budget *c)
{
	if (c != NULL && running.cell == NULL) {
		running.alarm = 0;
		running.calls++;
		running.cell = c;
		if (!running.ticking)
			ticking(1);
		return;
	}
	if (c == NULL)
		running.alarm = 0;
	running.cell = c;
}

struct budget *host_wait_begin(void)
{
	struct budget *was = running.cell;

	enter(NULL);
	return was;
}

void host_wait_end(struct budget *was)
{
	enter(was);
}

static void budget_hook(lua_State *L, lua_Debug *ar);

static size_t heap_used;  /* bytes the state holds */

/* may c take more bytes? Not past HOST_MEMORY_LIMIT of its own, nor while
   the state holds HOST_HEAP_LIMIT (what calls kept, in state or in REPL
   globals, adds up). Once a call has failed it may take a little
   more, for the error its hook raises */
static int room_for(const struct budget *c, size_t more)
{
	size_t slack = c->spent != SPENT_NOT ? ERROR_SLACK : 0;
	size_t own = c->bytes < c->max_bytes ? (size_t)(c->max_bytes - c->bytes) : 0;
	size_t all = heap_used < HOST_HEAP_LIMIT ? HOST_HEAP_LIMIT - heap_used : 0;

	return more <= (own < all ? own : all) + slack;
}

/* the state's allocator: realloc, with the running budgeted call's bytes
   counted (a counter add: it is on every allocation) */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct budget *c = running.cell;
	size_t old = ptr != NULL ? osize : 0;  /* (with no ptr, osize is a type) */
	void *p;

	(void)ud;
	if (nsize == 0) {
		free(ptr);
		heap_used -= old;
		if (c != NULL)  /* (not below 0: what was there before is not its to free) */
			c->bytes = c->bytes > (long long)old ? c->bytes - (long long)old : 0;
		return NULL;
	}
	if (c != NULL && nsize > old && !room_for(c, nsize - old)) {
		c->spent = SPENT_MEMORY;
		c->refused = nsize;
		c->refused_at = c->bytes;
		lua_sethook(c->L, budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);  /* async-safe, so safe here */
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	heap_used += nsize - old;
	if (c != NULL) {
		/* Lua collected garbage and asked again, and it fitted: the call
		   goes on, unless the collection freed almost nothing (then each
		   allocation would be a full collection, and the call a crawl) */
		if (c->refused == nsize && c->spent == SPENT_MEMORY && c->refused_at - c->bytes >= GC_MARGIN)
			c->spent = SPENT_NOT;
		c->bytes += (long long)nsize - (long long)old;
		if (c->bytes < 0)
			c->bytes = 0;
		if (nsize > old)
			c->refused = 0;
	}
	return p;
}

/* "file:line:" of the innermost Lua frame outside nomade's own library
   (lua/nomade/...), else of the running one: the budget names the
   user's line that ran away, not the library call that entered it */
static void budget_where(lua_State *L)
{
	lua_Debug ar;
	int level;

	for (level = 0; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 && strncmp(ar.source, "@lua/nomade/", 12) != 0) {
			lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
			return;
		}
	}
	luaL_where(L, 0);
}

/* a thread that has resumed another and waits for it ("normal") */
static int resuming(lua_State *co)
{
	lua_Debug ar;
	return lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar);
}

/* budget[L] = the value at idx (nil removes it) */
static void set_cell(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key);
	lua_pushthread(L);
	lua_pushvalue(L, idx);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/* the cell of a thread inside this resume chain, adopted by L; pushes it
   and returns it, or pushes nothing and returns NULL */
static struct budget *adopt_cell(lua_State *L, int table)
{
	lua_pushnil(L);
	while (lua_next(L, table)) {
		lua_State *t = lua_tothread(L, -2);
		struct budget *c = (struct budget *)lua_touserdata(L, -1);
		if (t != L && c->left != BUDGET_ENDED && resuming(t)) {
			lua_remove(L, -2);
			set_cell(L, -1);
			return c;
		}
		lua_pop(L, 1);
	}
	return NULL;
}

/* pushes the cell L spends from and returns it; NULL (nil pushed) if none */
static struct budget *push_cell(lua_State *L)
{
	struct budget *c;
	int table;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key);
	table = lua_gettop(L);
	lua_pushthread(L);
	lua_rawget(L, table);
	c = (struct budget *)lua_touserdata(L, -1);
	if (c == NULL || c->left == BUDGET_ENDED) {
		lua_pop(L, 1);
		c = adopt_cell(L, table);
		if (c == NULL)
			lua_pushnil(L);
	}
	lua_remove(L, table);
	return c;
}

/* the cell of co (suspended), looked up from L; NULL if none */
static struct budget *cell_of(lua_State *L, lua_State *co)
{
	struct budget *c;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key);
	lua_pushthread(co);
	lua_xmove(co, L, 1);
	lua_rawget(L, -2);
	c = (struct budget *)lua_touserdata(L, -1);
	lua_pop(L, 2);
	return c != NULL && c->left != BUDGET_ENDED ? c : NULL;
}

/* the hook for what is left: counting, or (spent) raising at every line
   and instruction, so that a pcall inside user code cannot swallow it */
static void arm(lua_State *L, const struct budget *c)
{
	if (c->left > 0 && c->spent == SPENT_NOT)
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, c->left < BUDGET_STEP ? (int)c->left : BUDGET_STEP);
	else
		lua_sethook(L, budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct budget *c = push_cell(L);

	(void)ar;
	if (c == NULL) {
		lua_pop(L, 1);
		lua_sethook(L, NULL, 0, 0);
		return;
	}
	if (running.cell != c)
		enter(c);
	if (c->spent == SPENT_NOT && running.alarm != 0)
		c->spent = running.alarm;
	if (c->spent == SPENT_NOT) {
		c->left -= lua_gethookcount(L);
		if (c->left > 0) {
			if (c->left < lua_gethookcount(L) || (lua_gethookmask(L) & LUA_MASKLINE))
				arm(L, c);  /* (counting again after a refusal that passed) */
			lua_pop(L, 1);  /* the cell stays anchored in the budget table */
			return;
		}
		c->spent = SPENT_INSTRUCTIONS;
	}
	arm(L, c);
	/* the first raise names the line that ran away; raised again (a pcall
	   caught it, and the library code around goes on), the same message */
	if (lua_getiuservalue(L, -1, 1) != LUA_TSTRING) {
		lua_pop(L, 1);
		budget_where(L);
		lua_pushstring(L, spent_what[c->spent]);
		lua_concat(L, 2);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, -3, 1);
	}
	lua_error(L);
}

lua_Integer host_budget_begin(lua_State *L, lua_Integer n)
{
	lua_Hook hook = lua_gethook(L);
	struct budget *outer, *inner;

	if (hook != NULL && hook != budget_hook)
		luaL_error(L, "host.limit: another hook is set on this thread");
	outer = push_cell(L);
	inner = (struct budget *)lua_newuserdatauv(L, sizeof *inner, 1);  /* its error */
	inner->L = L;
	inner->spent = SPENT_NOT;
	inner->bytes = 0;
	inner->refused = 0;
	inner->max_bytes = HOST_MEMORY_LIMIT;
	if (outer != NULL) {
		if (outer->left < n)
			n = outer->left > 0 ? outer->left : 0;
		if (outer->max_bytes - outer->bytes < inner->max_bytes)
			inner->max_bytes = outer->max_bytes - outer->bytes;
		inner->spent = outer->spent;
	}
	inner->left = n;
	set_cell(L, -1);
	arm(L, inner);
	enter(inner);
	return n;
}

const char *host_budget_end(lua_State *L, int at, lua_Integer given)
{
	struct budget *outer = (struct budget *)lua_touserdata(L, at);
	struct budget *inner = (struct budget *)lua_touserdata(L, at + 1);
	lua_Integer spent = given - (inner->left > 0 ? inner->left : 0);

	inner->left = BUDGET_ENDED;  /* coroutines that adopted it let go too */
	set_cell(L, at);
	enter(outer);
	if (outer == NULL) {
		lua_sethook(L, NULL, 0, 0);
		return spent_what[inner->spent];
	}
	outer->left -= spent;
	outer->bytes += inner->bytes;
	arm(L, outer);
	return spent_what[inner->spent];
}

static const char suspended_key = 's';

/* the string at the top, replaced by nomade.secrets' scrub of it (the
   registry's "nomade.scrub", set when that module loads: before, no secret
   is known). An error may quote what a server echoed, a key among it. */
static void scrub_top(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, "nomade.scrub") != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return;
	}
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
		lua_pop(L, 1);
		lua_pushliteral(L, "(a message that could not be scrubbed of secrets)");
	}
}

/* after a resume of co (pushed on L's stack at -1): anchor it if it
   yielded, report it if it failed; pops co */
static int settle(lua_State *L, lua_State *co, int status, const char *what)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &suspended_key);
	lua_pushvalue(L, -2);
	if (status == LUA_YIELD)
		lua_pushboolean(L, 1);
	else
		lua_pushnil(L);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	if (status == LUA_OK || status == LUA_YIELD) {
		lua_pop(L, 1);
		return 0;
	}
	luaL_traceback(L, co, lua_tostring(co, -1), 0);
	scrub_top(L);
	fprintf(stderr, "nomade: callback aborted: %s: %s\n", what, lua_tostring(L, -1));
	fflush(stderr);
#if LUA_VERSION_RELEASE_NUM >= 50405
	lua_closethread(co, L);
#else
	lua_resetthread(co);
#endif
	lua_pop(L, 2);
	return -1;
}

int host_spawn(lua_State *L, int nargs, const char *what)
{
	lua_State *co = lua_newthread(L);  /* stack: f args... co */
	int nres, status;

	struct budget *was = running.cell;

	lua_insert(L, -(nargs + 2));       /* co f args... */
	lua_xmove(L, co, nargs + 1);
	enter(NULL);  /* a new thread is in no budgeted call */
	status = lua_resume(co, L, nargs, &nres);
	enter(was);
	if (status == LUA_OK)
		lua_settop(co, 0);
	return settle(L, co, status, what);
}

int host_resume(lua_State *co, lua_State *from, int nargs, const char *what)
{
	struct budget *was = running.cell;
	int nres, status;

	enter(cell_of(from, co));  /* in the budgeted call it waited in, if any */
	status = lua_resume(co, from, nargs, &nres);
	enter(was);

	if (status == LUA_OK || status == LUA_YIELD)
		lua_pop(co, nres);
	lua_pushthread(co);
	lua_xmove(co, from, 1);
	return settle(from, co, status, what);
}

static const char blocking_key = 'w';

int host_allow_blocking(lua_State *L, int allowed)
{
	int was;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &blocking_key);
	was = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_pushboolean(L, allowed);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &blocking_key);
	return was;
}

int host_must_yield(lua_State *L, const char *what)
{
	int allowed;

	if (lua_isyieldable(L))
		return 1;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &blocking_key);
	allowed = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (!allowed)
		luaL_error(L, "%s: called where nothing can yield", what);
	return 0;
}

/* package.preload loader for an embedded module (upvalue: its index) */
static int load_embedded(lua_State *L)
{
	const struct embedded_lua *m = &embedded_lua[lua_tointeger(L, lua_upvalueindex(1))];

	if (luaL_loadbufferx(L, m->source, m->len, m->chunkname, "t") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, m->module);
	lua_call(L, 1, 1);  /* errors go to require's caller, which is protected */
	return 1;
}

static int open_all(lua_State *L)
{
	const luaL_Reg *c;
	int i;

	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (c = c_modules; c->name; c++) {
		lua_pushcfunction(L, c->func);
		lua_setfield(L, -2, c->name);
	}
	for (i = 0; embedded_lua[i].module; i++) {
		if (embedded_lua[i].module[0] == '\0')
			continue;  /* data, not a module: see host.embedded */
		lua_pushinteger(L, i);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, embedded_lua[i].module);
	}
	lua_newtable(L);  /* coroutines waiting for an event */
	lua_rawsetp(L, LUA_REGISTRYINDEX, &suspended_key);
	lua_newtable(L);  /* the budgets of threads inside host.limit */
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &budget_key);
	lua_getglobal(L, "require");
	lua_pushstring(L, "nomade");
	lua_call(L, 1, 1);
	lua_setglobal(L, "nomade");
	return 0;
}

/* the watchdog's timer: SIGALRM to on_watchdog */
static void watchdog_open(void)
{
	struct sigaction sa;
	struct sigevent sev;

	if (running.has_timer)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_watchdog;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	running.has_timer = timer_create(CLOCK_MONOTONIC, &sev, &running.timer) == 0;
}

lua_State *host_open(void)
{
	lua_State *L = luaL_newstate();

	if (L == NULL)
		return NULL;
	/* luaL_newstate's allocator is realloc/free too, so blocks it made are
	   ours to free; only budgeted calls' bytes are counted */
	heap_used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
	lua_setallocf(L, counting_alloc, NULL);
	watchdog_open();
	lua_pushcfunction(L, open_all);
	if (host_pcall(L, 0, 0) != LUA_OK) {
		host_report(L, "start-up");
		lua_close(L);
		return NULL;
	}
	return L;
}

void host_close(lua_State *L)
{
	lua_close(L);
}
