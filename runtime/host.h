/*
 * host.h: the one Lua state and the only ways C enters Lua.
 */
#ifndef NOMADE_HOST_H
#define NOMADE_HOST_H

#include <lua.h>

#define NOMADE_VERSION "0.1.0"

/* exit codes of the nomade command (documented in README and help) */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,    /* the Lua code raised an error or returned false */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_LOAD = 3,     /* the script could not be read or compiled */
	EXIT_STUCK = 4     /* the watchdog: a budgeted call stuck in C code */
};

/*
 * What one budgeted call (host.limit: a strategy's turn on a candle, its
 * load, a REPL evaluation) may take besides its instructions: bytes (net
 * of what it frees), and seconds of running (not of waiting on I/O). Past
 * the soft deadline it fails as soon as the VM runs again; past the hard
 * one (still in one C function) the process exits with EXIT_STUCK; after
 * SIGINT or SIGTERM, it has HOST_STOP_GRACE seconds more; the watchdog
 * ticks once a second, so each is met within a second (README, "Budgets").
 */
#define HOST_MEMORY_LIMIT_MB 64
#define HOST_MEMORY_LIMIT ((long long)HOST_MEMORY_LIMIT_MB << 20)
#define HOST_HEAP_LIMIT_MB 1024  /* the whole state, while a call runs */
#define HOST_HEAP_LIMIT ((size_t)HOST_HEAP_LIMIT_MB << 20)
#define HOST_SOFT_DEADLINE 5
#define HOST_HARD_DEADLINE 10
#define HOST_STOP_GRACE 1

/* a state with the standard libraries, nomade.* and the embedded Lua library */
lua_State *host_open(void);
void host_close(lua_State *L);

/*
 * lua_pcall with a message handler that appends a traceback. Every C->Lua
 * call goes through here (or host_resume for coroutines).
 */
int host_pcall(lua_State *L, int nargs, int nresults);

/* the message handler host_pcall uses: the error with a traceback (for a
   lua_pcallk of one's own, in a coroutine) */
int host_traceback(lua_State *L);

/*
 * Runs the function below nargs arguments (on L's stack) in a coroutine of
 * its own, as every event handler does (DESIGN §2). A failure is logged as
 * "nomade: callback aborted: <what>: <message>" with the coroutine's
 * traceback, and -1 is returned; the caller goes on. A coroutine that
 * yields stays anchored until whatever it waits on resumes it.
 */
int host_spawn(lua_State *L, int nargs, const char *what);

/*
 * Resumes co (suspended in a yield) with the nargs values on its stack, as
 * an I/O completion does; from is the running thread (the main one in a
 * libev callback). The same bookkeeping as host_spawn: done or failed,
 * it is released; yielding again, it stays anchored.
 */
int host_resume(lua_State *co, lua_State *from, int nargs, const char *what);

/* prints "nomade: <where>: <error at top>" to stderr and pops it */
void host_report(lua_State *L, const char *where);

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
lua_Integer host_budget_begin(lua_State *L, lua_Integer n);
const char *host_budget_end(lua_State *L, int at, lua_Integer given);

/* a stop signal came (async-signal-safe): the budgeted call running, if
   any, fails at its next instruction, or the process ends soon after */
void host_interrupt(void);

/*
 * Around a wait that blocks (a command's HTTP request, sleep): the wait
 * is not the call's running time, so the watchdog pauses; begin returns
 * what end takes back.
 */
struct budget;
struct budget *host_wait_begin(void);
void host_wait_end(struct budget *was);

/*
 * Calls that wait (loop.sleep, http.request, ws.connect) yield the running
 * coroutine. Where nothing can yield they may block only where it was
 * allowed: main.c allows it for its commands (the CLI waits on purpose),
 * and loop.run takes it back while the loop runs, since a handler that
 * blocks stalls every other. host_allow_blocking sets that permission and
 * returns the previous one; host_must_yield is 1 where L can yield, 0
 * where it may block, and raises "WHAT: called where nothing can yield"
 * elsewhere.
 */
int host_allow_blocking(lua_State *L, int allowed);
int host_must_yield(lua_State *L, const char *what);

/* the embedded library, generated from lua/ by scripts/embed-lua */
struct embedded_lua {
	const char *module, *chunkname;
	const char *source;
	size_t len;
};
extern const struct embedded_lua embedded_lua[];

int luaopen_nomade_host(lua_State *L);
int luaopen_nomade_ta(lua_State *L);
int luaopen_nomade_candles(lua_State *L);
int luaopen_nomade_crypto(lua_State *L);
int luaopen_nomade_paper(lua_State *L);
int luaopen_nomade_loop(lua_State *L);
int luaopen_nomade_term(lua_State *L);
int luaopen_nomade_store(lua_State *L);
int luaopen_nomade_http(lua_State *L);
int luaopen_nomade_bybit_core(lua_State *L);
int luaopen_nomade_shield_core(lua_State *L);
int luaopen_nomade_gemini_core(lua_State *L);
int luaopen_nomade_ws(lua_State *L);
int luaopen_nomade_httpd(lua_State *L);

#endif
