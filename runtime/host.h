/*
 * host.h: the one Lua state: its making, its main thread, a protected call.
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
 * What one budgeted call (host.limit, in lib_sched.c: a strategy's turn on a
 * candle, its load, a REPL evaluation) may take besides its instructions: bytes (net
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
 * lua_pcall with a message handler that appends a traceback: a command's
 * entry (main.c) and the start-up. Events enter Lua through lib_sched.h.
 */
int host_pcall(lua_State *L, int nargs, int nresults);

/* the message handler host_pcall uses: the error with a traceback (for a
   lua_pcallk of one's own, in a coroutine) */
int host_traceback(lua_State *L);

/* prints "nomade: <where>: <error at top>" to stderr (scrubbed of
   secrets) and pops it */
void host_report(lua_State *L, const char *where);

/* the state's main thread, from any of its threads: the one thread every
   event is spawned from and every completion resumes from (libev's
   callbacks run on it) */
lua_State *host_main(lua_State *L);

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
int luaopen_nomade_sched(lua_State *L);

#endif
