/*
 * lib_sched.h: the scheduler, the one way events enter Lua (DESIGN's
 * loop/sched). Every event (a timer, a signal, a file change, a socket's
 * bytes, an HTTP response or stream chunk, a dashboard request, a
 * WebSocket message) runs in a coroutine of its own, made by sched_spawn;
 * a call that waits (loop.sleep, http.request, ws.connect) registers what
 * it waits on (sched_wait) and yields, and its completion resumes it
 * (sched_wake). The waits are kept in one registry, so a reload or a
 * shutdown can cancel them (nomade.sched.cancel_all). Budgets (host.limit)
 * belong to these coroutines and are kept here too.
 */
#ifndef NOMADE_SCHED_H
#define NOMADE_SCHED_H

#include <lua.h>

/*
 * Runs the function below nargs arguments (on L's stack, L the running
 * thread) in a new coroutine of the sched. A failure is logged as
 * "nomade: callback aborted: <what>: <message>" with the coroutine's
 * traceback, and -1 is returned; the caller goes on. A coroutine that
 * yields stays anchored while what it waits on is pending; one that
 * yields with nothing to wait on (a bare coroutine.yield) fails.
 */
int sched_spawn(lua_State *L, int nargs, const char *what);

/*
 * A wait, embedded in what the waiting library owns (a request, a timer,
 * a connection). cancel undoes it (stops the timer, removes the transfer)
 * without resuming anything: the sched then resumes the coroutine with
 * nil, "cancelled".
 */
struct sched_wait {
	struct sched_wait *next, *prev;
	lua_State *co;
	const char *api;
	void (*cancel)(struct sched_wait *w);
	unsigned long seq;  /* the order of waits, so a cancel ends only those before it */
};

/*
 * May the API (e.g. "http.request") wait here? 1: yield (L is a sched
 * coroutine that can yield); 0: block, on the main thread of a command
 * that allowed it (sched_allow_blocking) outside loop.run; else it raises
 * exactly "<api>: cannot wait here".
 */
int sched_can_wait(lua_State *L, const char *api);

/* the blocking forms' permission: main.c gives it to a command, loop.run
   takes it back while the loop runs; returns the previous one */
int sched_allow_blocking(lua_State *L, int allowed);

/* registers w for the running coroutine L (sched_can_wait said 1) and
   yields; the value at owner (0: none) stays anchored meanwhile */
int sched_wait(lua_State *L, struct sched_wait *w, const char *api, void (*cancel)(struct sched_wait *w),
               int owner);

/* the wait is over: resumes w->co with the nargs values pushed on its
   stack. Nothing is done for a wait that was cancelled (or never made) */
void sched_wake(struct sched_wait *w, int nargs);

/*
 * Budgets, per thread (host.limit). begin pushes two values, the thread's
 * budget so far (or nil) and a new one of n instructions, or of what the
 * outer one has left if that is less (returned), and HOST_MEMORY_LIMIT
 * bytes (or what the outer one has left), and arms the count hook on L:
 * once a limit is passed an error is raised, and then again at every
 * line, so that a pcall inside user code cannot swallow it. end, with
 * those two values at index at and at + 1, makes the outer budget L's
 * again, charged with what the inner one spent (no outer: the hook is
 * removed), and returns what ended the call ("memory limit exceeded
 * ..."), or NULL.
 */
lua_Integer sched_budget_begin(lua_State *L, lua_Integer n);
const char *sched_budget_end(lua_State *L, int at, lua_Integer given);

/* host.limit(n, f, ...) (also sched.limit), and host.guard, the same
   with the count armed only once the call has run a second */
int sched_limit(lua_State *L);
int sched_guard(lua_State *L);

/* host.guard for a loop in C that calls one function many times
   (book:run): sched_guard_open pushes a cell for it (the caller keeps it
   on its stack while it loops), and
   sched_guard_pcall is lua_pcall(L, nargs, nresults, 0) under
   host.guard(n): LUA_OK and the results, or an error status and the
   error (the budget's, if it ran out) on top */
struct budget;
struct budget *sched_guard_open(lua_State *L);
int sched_guard_pcall(lua_State *L, struct budget *c, lua_Integer n, int nargs, int nresults);

/* a stop signal came (async-signal-safe): the budgeted call running, if
   any, fails at its next instruction, or the process ends soon after */
void sched_interrupt(void);

/*
 * Around a wait that blocks (a command's HTTP request, sleep): the wait
 * is not the call's running time, so the watchdog pauses; begin returns
 * what end takes back.
 */
struct budget *sched_block_begin(void);
void sched_block_end(struct budget *was);

/* for host.c: the counting allocator and the watchdog (before anything
   is allocated), then the registry tables (in protected mode) */
void sched_open(lua_State *L);
void sched_init(lua_State *L);

#endif
