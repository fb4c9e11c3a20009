/*
 * lib_sched.c: nomade.sched, the scheduler: the one way events enter Lua.
 * Each event runs in a coroutine of its own (sched_spawn, from the main
 * thread, where libev's callbacks run); a call that waits registers its
 * wait here (sched_wait) and yields, and its completion resumes it
 * (sched_wake). The waits form one registry, so that a reload can cancel
 * the strategy's and a shutdown every one:
 *
 *   sched.cancel_all([tag]) -> n   cancels the waits of the coroutines
 *                                  tagged tag (all without one): each
 *                                  timer stopped, transfer removed,
 *                                  connection closed, and the coroutine
 *                                  resumed with nil, "cancelled" so that
 *                                  it ends through its own error path
 *                                  (state it was changing stays whole)
 *   sched.tag([name]) -> previous  tags the running coroutine ("strategy"
 *                                  around a strategy's turn)
 *   sched.waiting([tag]) -> n      coroutines waiting now (with that tag)
 *   sched.current() -> true, tag   in a coroutine of the sched; false
 *                                  elsewhere (the main thread, a
 *                                  coroutine of one's own)
 *   sched.limit(n, f, ...)         host.limit: the budgets below
 *   sched.guard(n, f, ...)         host.guard: the same, counted lazily
 *
 * A call that waits may only wait in a coroutine of the sched that can
 * yield; elsewhere (a table.sort comparator, a metamethod, a coroutine of
 * one's own, a handler on the loop) it raises "<api>: cannot wait here",
 * except on the main thread of a command that allowed blocking
 * (sched_allow_blocking: main.c, outside loop.run), where it blocks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include "host.h"
#include "lib_sched.h"

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
 *   way (sched_interrupt), so that the loop can see them; stuck in C, the
 *   process ends about HOST_STOP_GRACE seconds later.
 * host.guard is host.limit for a hot loop (a strategy's turn on every
 * candle). In Lua 5.4 a count hook makes every VM instruction call into
 * the debugger (luaG_traceexec), which doubles a strategy's cost, so the
 * guard sets no hook: the watchdog arms it once the same call has been
 * running at two of its ticks (a second or more), and from then on the
 * call has its n instructions. A turn can thus run about a second more
 * than host.limit would allow before its count begins; runaway code still
 * fails naming its line, and the memory, time and signal limits are the
 * same. At top level (no budgeted call running) the guard reuses its
 * thread's cell instead of making one per call.
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
	volatile sig_atomic_t lazy;  /* host.guard's: not counted until the watchdog arms it */
	int kept;              /* host.guard's: stays its thread's cell, for the next call */
	int msg;               /* the error it raises, once made: a registry ref (or LUA_NOREF) */
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

static void budget_hook(lua_State *L, lua_Debug *ar);

/* a guard's call has run long, or must stop: its count starts now
   (async-signal-safe, as lua_sethook is) */
static void wake_lazy(struct budget *c)
{
	if (c == NULL || !c->lazy)
		return;
	c->lazy = 0;
	lua_sethook(c->L, budget_hook, LUA_MASKCOUNT, running.alarm != 0 ? 1 : BUDGET_STEP);
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
	if (ticks >= 2 || running.alarm != 0)
		wake_lazy(running.cell);
	errno = saved;
}

void sched_interrupt(void)
{
	if (running.cell == NULL || running.alarm == SPENT_SIGNAL)
		return;
	running.grace = 0;
	running.alarm = SPENT_SIGNAL;
	wake_lazy(running.cell);
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

struct budget *sched_block_begin(void)
{
	struct budget *was = running.cell;

	enter(NULL);
	return was;
}

void sched_block_end(struct budget *was)
{
	enter(was);
}

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

/* the cell L spends from, or NULL: the running call's when it is L's
   (a C loop's guard is in no table), else as push_cell finds it */
static struct budget *cell_for(lua_State *L)
{
	struct budget *c = running.cell;

	if (c != NULL && c->L == L && c->left != BUDGET_ENDED)
		return c;
	c = push_cell(L);
	lua_pop(L, 1);  /* the budget table anchors it */
	return c;
}

/* the call in c is over: its error goes */
static void release_msg(lua_State *L, struct budget *c)
{
	if (c->msg != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, c->msg);
	c->msg = LUA_NOREF;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct budget *c = cell_for(L);

	(void)ar;
	if (c == NULL) {
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
			return;
		}
		c->spent = SPENT_INSTRUCTIONS;
	}
	arm(L, c);
	/* the first raise names the line that ran away; raised again (a pcall
	   caught it, and the library code around goes on), the same message */
	if (c->msg == LUA_NOREF) {
		budget_where(L);
		lua_pushstring(L, spent_what[c->spent]);
		lua_concat(L, 2);
		lua_pushvalue(L, -1);
		c->msg = luaL_ref(L, LUA_REGISTRYINDEX);
	} else {
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->msg);
	}
	lua_error(L);
}

/* c, a budget of n instructions and HOST_MEMORY_LIMIT bytes for a call
   in L, not spent */
static void fresh(struct budget *c, lua_State *L, lua_Integer n)
{
	c->L = L;
	c->left = n;
	c->spent = SPENT_NOT;
	c->bytes = 0;
	c->refused = 0;
	c->max_bytes = HOST_MEMORY_LIMIT;
}

lua_Integer sched_budget_begin(lua_State *L, lua_Integer n)
{
	lua_Hook hook = lua_gethook(L);
	struct budget *outer, *inner;

	if (hook != NULL && hook != budget_hook)
		luaL_error(L, "host.limit: another hook is set on this thread");
	outer = push_cell(L);
	inner = (struct budget *)lua_newuserdatauv(L, sizeof *inner, 0);
	fresh(inner, L, n);
	inner->msg = LUA_NOREF;
	inner->lazy = inner->kept = 0;
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

/* the end of a guarded call in L's kept cell c, with no outer budget */
static const char *guard_end(lua_State *L, struct budget *c)
{
	c->left = BUDGET_ENDED;
	c->lazy = 0;
	release_msg(L, c);
	enter(NULL);
	lua_sethook(L, NULL, 0, 0);
	return spent_what[c->spent];
}

const char *sched_budget_end(lua_State *L, int at, lua_Integer given)
{
	struct budget *outer = (struct budget *)lua_touserdata(L, at);
	struct budget *inner = (struct budget *)lua_touserdata(L, at + 1);
	lua_Integer spent = given - (inner->left > 0 ? inner->left : 0);

	inner->left = BUDGET_ENDED;  /* coroutines that adopted it let go too */
	inner->lazy = 0;
	release_msg(L, inner);
	if (!inner->kept)
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

/* a failed budgeted call's error, on top: Lua's "not enough memory" says
   which limit it was (why, what ended the call, if anything did) */
static void name_limit(lua_State *L, int status, const char *why)
{
	if (status != LUA_OK && status != LUA_YIELD && why != NULL && lua_type(L, -1) == LUA_TSTRING
		&& strcmp(lua_tostring(L, -1), "not enough memory") == 0) {
		lua_pushstring(L, why);
		lua_replace(L, -2);
	}
}

/* after the budgeted call, returned or resumed from a yield (stack: outer
   budget, inner budget, results or error): the outer budget is the
   thread's again; answers ok, results... or false, error */
static int limit_done(lua_State *L, int status, lua_KContext given)
{
	name_limit(L, status, sched_budget_end(L, 1, (lua_Integer)given));
	lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
	lua_replace(L, 2);
	lua_remove(L, 1);
	return lua_gettop(L);
}

/* host.limit(n, f, ...): like pcall(f, ...), but f may run only about n VM
   instructions; exceeding them fails with "instruction budget exceeded",
   and the memory and time limits of host.h hold too.
   The budget is the running coroutine's: inside another host.limit it is
   at most what the outer one has left. f may yield (a tribunal's HTTP
   request inside a strategy's turn): lua_pcallk picks up where it left off
   when the coroutine is resumed. */
int sched_limit(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1), given;

	luaL_argcheck(L, n > 0, 1, "budget must be > 0");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_remove(L, 1);
	given = sched_budget_begin(L, n);
	lua_rotate(L, 1, 2);  /* outer, inner, f, args... */
	return limit_done(L, lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, (lua_KContext)given, limit_done),
		(lua_KContext)given);
}

/* a cell for host.guard, not in use (pushed) */
static struct budget *new_kept(lua_State *L)
{
	struct budget *c = (struct budget *)lua_newuserdatauv(L, sizeof *c, 0);

	c->kept = 1;
	c->left = BUDGET_ENDED;
	c->spent = SPENT_NOT;
	c->msg = LUA_NOREF;
	c->L = L;
	return c;
}

/* L's kept cell (host.guard's), made the first time, and pushed; NULL
   (nothing pushed) when L is in another budget's call or its guard's */
static struct budget *kept_cell(lua_State *L)
{
	struct budget *c;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key);
	lua_pushthread(L);
	lua_rawget(L, -2);
	c = (struct budget *)lua_touserdata(L, -1);
	if (c != NULL && c->left != BUDGET_ENDED) {
		lua_pop(L, 2);
		return NULL;
	}
	if (c == NULL || !c->kept) {
		lua_pop(L, 1);
		c = new_kept(L);
		lua_pushthread(L);
		lua_pushvalue(L, -2);
		lua_rawset(L, -4);
	}
	lua_remove(L, -2);
	return c;
}

/* a guarded call of n instructions begins in L's cell c */
static void guard_begin(lua_State *L, struct budget *c, lua_Integer n)
{
	fresh(c, L, n);
	c->lazy = 1;
	enter(c);
}

struct budget *sched_guard_open(lua_State *L)
{
	return new_kept(L);
}

int sched_guard_pcall(lua_State *L, struct budget *c, lua_Integer n, int nargs, int nresults)
{
	int status, base = lua_gettop(L) - nargs;  /* f */

	if (running.cell != NULL || lua_gethook(L) != NULL || c->left != BUDGET_ENDED) {  /* inside a budget: host.limit */
		lua_pushcfunction(L, sched_limit);
		lua_insert(L, base);
		lua_pushinteger(L, n);
		lua_insert(L, base + 1);
		if ((status = lua_pcall(L, nargs + 2, LUA_MULTRET, 0)) != LUA_OK)
			return status;
		if (!lua_toboolean(L, base)) {
			lua_settop(L, base + 1);
			lua_remove(L, base);
			return LUA_ERRRUN;
		}
		lua_remove(L, base);
		if (nresults != LUA_MULTRET)
			lua_settop(L, base - 1 + nresults);
		return LUA_OK;
	}
	guard_begin(L, c, n);
	status = lua_pcall(L, nargs, nresults, 0);
	name_limit(L, status, guard_end(L, c));
	return status;
}

/* host.guard(n, f, ...): host.limit, with the count armed late (above).
   Inside a budgeted call, or with a hook set, it is host.limit */
int sched_guard(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	struct budget *c;

	luaL_argcheck(L, n > 0, 1, "budget must be > 0");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (running.cell != NULL || lua_gethook(L) != NULL || (c = kept_cell(L)) == NULL)
		return sched_limit(L);
	lua_pushnil(L);  /* no outer budget */
	lua_replace(L, 1);
	lua_rotate(L, 2, 1);  /* nil, cell, f, args... */
	guard_begin(L, c, n);
	return limit_done(L, lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, (lua_KContext)n, limit_done),
		(lua_KContext)n);
}

/*
 * The coroutines. Two registry tables: threads (weak keys) holds each
 * coroutine the sched made, with its tag (or true); waits anchors each
 * waiting coroutine with what its wait is embedded in (the request, the
 * timer, the connection), so neither is collected while the wait is
 * pending. The waits themselves are a C list, for cancel_all.
 */
static const char threads_key = 't';
static const char waits_key = 'q';
static const char blocking_key = 'w';

static struct {
	struct sched_wait *head;
	unsigned long seq;
	lua_State *waking;  /* the coroutine being resumed by its wait's end */
} sched;

/* table[co] = the value at idx (nil removes), the table in the registry at key */
static void mark(lua_State *L, const char *key, lua_State *co, int idx)
{
	idx = lua_absindex(L, idx);
	lua_rawgetp(L, LUA_REGISTRYINDEX, key);
	lua_pushthread(co);
	lua_xmove(co, L, 1);
	lua_pushvalue(L, idx);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/* pushes table[co] (the table in the registry at key); returns its type */
static int lookup(lua_State *L, const char *key, lua_State *co)
{
	int type;

	lua_rawgetp(L, LUA_REGISTRYINDEX, key);
	lua_pushthread(co);
	lua_xmove(co, L, 1);
	type = lua_rawget(L, -2);
	lua_remove(L, -2);
	return type;
}

static int is_waiting(lua_State *L, lua_State *co)
{
	int type = lookup(L, &waits_key, co);

	lua_pop(L, 1);
	return type != LUA_TNIL;
}

static void unlink_wait(lua_State *L, struct sched_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		sched.head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	lua_pushnil(L);
	mark(L, &waits_key, w->co, -1);
	lua_pop(L, 1);
	w->co = NULL;
}

/* after a resume of co (pushed on L's stack at -1): a coroutine that
   yielded must wait on something (else nothing would resume it); one
   that failed is reported and closed. Pops co */
static int settle(lua_State *L, lua_State *co, int status, const char *what)
{
	char where[96];

	if (status == LUA_YIELD && !is_waiting(L, co)) {
		lua_pushliteral(co, "a coroutine of the sched yielded with nothing to wait for (coroutine.yield "
			"outside a coroutine of one's own)");
		status = LUA_ERRRUN;
	}
	if (status == LUA_OK || status == LUA_YIELD) {
		lua_pop(L, 1);
		return 0;
	}
	luaL_traceback(L, co, lua_tostring(co, -1), 0);
	snprintf(where, sizeof where, "callback aborted: %s", what);
	host_report(L, where);
#if LUA_VERSION_RELEASE_NUM >= 50405
	lua_closethread(co, L);
#else
	lua_resetthread(co);
#endif
	lua_pop(L, 1);
	return -1;
}

int sched_spawn(lua_State *L, int nargs, const char *what)
{
	lua_State *co = lua_newthread(L);  /* stack: f args... co */
	struct budget *was = running.cell;
	int nres, status;

	lua_insert(L, -(nargs + 2));       /* co f args... */
	lua_pushboolean(L, 1);
	mark(L, &threads_key, co, -1);
	lua_pop(L, 1);
	lua_xmove(L, co, nargs + 1);
	enter(NULL);  /* a new thread is in no budgeted call */
	status = lua_resume(co, L, nargs, &nres);
	enter(was);
	if (status == LUA_OK || status == LUA_YIELD)
		lua_pop(co, nres);
	return settle(L, co, status, what);
}

/* resumes co, whose wait is over, with the nargs values on its stack */
static void resume_waiter(lua_State *from, lua_State *co, int nargs, const char *what)
{
	struct budget *was = running.cell;
	int nres, status;

	lua_pushthread(co);  /* held on from's stack while it runs */
	lua_xmove(co, from, 1);
	enter(cell_of(from, co));  /* in the budgeted call it waited in, if any */
	sched.waking = co;
	status = lua_resume(co, from, nargs, &nres);
	sched.waking = NULL;
	enter(was);
	if (status == LUA_OK || status == LUA_YIELD)
		lua_pop(co, nres);
	settle(from, co, status, what);
}

void sched_wake(struct sched_wait *w, int nargs)
{
	lua_State *co = w->co, *main;

	if (co == NULL)
		return;
	main = host_main(co);
	unlink_wait(main, w);
	resume_waiter(main, co, nargs, w->api);
}

/* where a wait's yield returns: from its end (sched_wake, a cancel), or
   from Lua code that resumed the coroutine itself (coroutine.running()
   handed over), which is refused and undoes the wait; w is still
   anchored then, by the waits table */
static int wait_done(lua_State *L, int status, lua_KContext ctx)
{
	struct sched_wait *w = (struct sched_wait *)ctx;
	const char *api;

	(void)status;
	if (sched.waking == L) {
		sched.waking = NULL;
		return lua_gettop(L);
	}
	api = w->api;
	w->cancel(w);  /* (first: unlinked, what w is part of may be collected) */
	unlink_wait(L, w);
	return luaL_error(L, "%s: resumed by Lua code before its wait was over", api);
}

int sched_wait(lua_State *L, struct sched_wait *w, const char *api, void (*cancel)(struct sched_wait *w),
               int owner)
{
	if (owner != 0)
		lua_pushvalue(L, owner);
	else
		lua_pushboolean(L, 1);
	mark(L, &waits_key, L, -1);
	lua_settop(L, 0);  /* the continuation returns what resumes it */
	w->co = L;
	w->api = api;
	w->cancel = cancel;
	w->seq = ++sched.seq;
	w->prev = NULL;
	w->next = sched.head;
	if (sched.head)
		sched.head->prev = w;
	sched.head = w;
	return lua_yieldk(L, 0, (lua_KContext)w, wait_done);
}

/* is co tagged tag? (NULL: any) */
static int tagged(lua_State *L, lua_State *co, const char *tag)
{
	int yes;

	if (tag == NULL)
		return 1;
	yes = lookup(L, &threads_key, co) == LUA_TSTRING && strcmp(lua_tostring(L, -1), tag) == 0;
	lua_pop(L, 1);
	return yes;
}

/* the oldest wait made before seq whose coroutine is tagged tag, or NULL */
static struct sched_wait *next_to_cancel(lua_State *L, unsigned long seq, const char *tag)
{
	struct sched_wait *w, *found = NULL;

	for (w = sched.head; w; w = w->next)
		if (w->seq <= seq && (found == NULL || w->seq < found->seq) && tagged(L, w->co, tag))
			found = w;
	return found;
}

/* cancels the waits there are now (not those the cancelled coroutines
   make as they go on: a coroutine that waits again is left to wait) */
static int cancel_waits(lua_State *L, const char *tag)
{
	unsigned long seq = sched.seq;
	struct sched_wait *w;
	int n = 0;

	while ((w = next_to_cancel(L, seq, tag)) != NULL) {
		lua_State *co = w->co;
		const char *api = w->api;
		w->cancel(w);
		unlink_wait(L, w);
		lua_pushnil(co);
		lua_pushliteral(co, "cancelled");
		resume_waiter(L, co, 2, api);
		n++;
	}
	return n;
}

static int s_cancel_all(lua_State *L)
{
	lua_pushinteger(L, cancel_waits(L, luaL_optstring(L, 1, NULL)));
	return 1;
}

static int s_waiting(lua_State *L)
{
	const char *tag = luaL_optstring(L, 1, NULL);
	struct sched_wait *w;
	lua_Integer n = 0;

	for (w = sched.head; w; w = w->next)
		n += tagged(L, w->co, tag);
	lua_pushinteger(L, n);
	return 1;
}

static int s_tag(lua_State *L)
{
	const char *tag = luaL_optstring(L, 1, NULL);

	if (lookup(L, &threads_key, L) == LUA_TNIL)
		return luaL_error(L, "sched.tag: not in a coroutine of the sched");
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_pushnil(L);
	}
	if (tag != NULL)
		lua_pushstring(L, tag);
	else
		lua_pushboolean(L, 1);
	mark(L, &threads_key, L, -1);
	lua_pop(L, 1);
	return 1;
}

static int s_current(lua_State *L)
{
	int type = lookup(L, &threads_key, L);

	lua_pushboolean(L, type != LUA_TNIL);
	if (type != LUA_TSTRING) {
		lua_replace(L, -2);
		return 1;
	}
	lua_insert(L, -2);
	return 2;
}

int sched_allow_blocking(lua_State *L, int allowed)
{
	int was;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &blocking_key);
	was = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_pushboolean(L, allowed);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &blocking_key);
	return was;
}

int sched_can_wait(lua_State *L, const char *api)
{
	int ours = lookup(L, &threads_key, L) != LUA_TNIL, allowed;

	lua_pop(L, 1);
	if (ours && lua_isyieldable(L))
		return 1;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &blocking_key);
	allowed = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (!allowed || L != host_main(L))
		luaL_error(L, "%s: cannot wait here", api);
	return 0;
}

void sched_open(lua_State *L)
{
	/* luaL_newstate's allocator is realloc/free too, so blocks it made are
	   ours to free; only budgeted calls' bytes are counted */
	heap_used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
	lua_setallocf(L, counting_alloc, NULL);
	watchdog_open();
	sched.head = NULL;
	sched.waking = NULL;
}

/* a registry table at key, weak-keyed or not */
static void new_table(lua_State *L, const char *key, int weak)
{
	lua_newtable(L);
	if (weak) {
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void sched_init(lua_State *L)
{
	new_table(L, &waits_key, 0);
	new_table(L, &threads_key, 1);
	new_table(L, &budget_key, 1);  /* the budgets of threads inside host.limit */
}

int luaopen_nomade_sched(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"cancel_all", s_cancel_all},
		{"waiting", s_waiting},
		{"tag", s_tag},
		{"current", s_current},
		{"limit", sched_limit},
		{"guard", sched_guard},
		{NULL, NULL}
	};

	luaL_newlib(L, funcs);
	return 1;
}
