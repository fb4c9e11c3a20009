/*
 * host.c: creates the Lua state, registers nomade.* and the embedded Lua
 * library in package.preload (so the binary works from any directory),
 * and owns the protected call used for every entry from C into Lua.
 */
#include <stdio.h>
#include <string.h>
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

	lua_insert(L, -(nargs + 2));       /* co f args... */
	lua_xmove(L, co, nargs + 1);
	status = lua_resume(co, L, nargs, &nres);
	if (status == LUA_OK)
		lua_settop(co, 0);
	return settle(L, co, status, what);
}

int host_resume(lua_State *co, lua_State *from, int nargs, const char *what)
{
	int nres, status = lua_resume(co, from, nargs, &nres);

	if (status == LUA_OK || status == LUA_YIELD)
		lua_pop(co, nres);
	lua_pushthread(co);
	lua_xmove(co, from, 1);
	return settle(from, co, status, what);
}

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
 * inside host.limit to its cell, a userdata holding the instructions it has
 * left, and the count hook is set on that thread alone (a hook is per
 * thread). So a call in one coroutine cannot touch another's budget, and a
 * coroutine suspended on I/O keeps what it has left. A nested host.limit
 * takes a cell of its own, and what it spends is charged to the outer one
 * when it ends. A coroutine created under a budget inherits the hook
 * (lua_newthread copies it) but no cell: it spends from the cell of the
 * budgeted thread that resumed it, and a hook that finds none removes itself.
 */
#define BUDGET_STEP 1000          /* instructions between hook calls */
#define BUDGET_ENDED LUA_MININTEGER  /* a cell whose host.limit is over */
static const char budget_key = 'b';

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

static void budget_hook(lua_State *L, lua_Debug *ar);

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
static lua_Integer *adopt_cell(lua_State *L, int table)
{
	lua_pushnil(L);
	while (lua_next(L, table)) {
		lua_State *t = lua_tothread(L, -2);
		lua_Integer *c = (lua_Integer *)lua_touserdata(L, -1);
		if (t != L && *c != BUDGET_ENDED && resuming(t)) {
			lua_remove(L, -2);
			set_cell(L, -1);
			return c;
		}
		lua_pop(L, 1);
	}
	return NULL;
}

/* pushes the cell L spends from and returns it; NULL (nil pushed) if none */
static lua_Integer *push_cell(lua_State *L)
{
	lua_Integer *c;
	int table;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &budget_key);
	table = lua_gettop(L);
	lua_pushthread(L);
	lua_rawget(L, table);
	c = (lua_Integer *)lua_touserdata(L, -1);
	if (c == NULL || *c == BUDGET_ENDED) {
		lua_pop(L, 1);
		c = adopt_cell(L, table);
		if (c == NULL)
			lua_pushnil(L);
	}
	lua_remove(L, table);
	return c;
}

/* the hook for what is left: counting, or (spent) raising at every line
   and instruction, so that a pcall inside user code cannot swallow it */
static void arm(lua_State *L, lua_Integer left)
{
	if (left > 0)
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, left < BUDGET_STEP ? (int)left : BUDGET_STEP);
	else
		lua_sethook(L, budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	lua_Integer *left = push_cell(L);

	(void)ar;
	lua_pop(L, 1);  /* the cell stays anchored in the budget table */
	if (left == NULL) {
		lua_sethook(L, NULL, 0, 0);
		return;
	}
	*left -= lua_gethookcount(L);
	if (*left > 0) {
		if (*left < lua_gethookcount(L))
			arm(L, *left);
		return;
	}
	arm(L, 0);
	budget_where(L);
	lua_pushliteral(L, "instruction budget exceeded");
	lua_concat(L, 2);
	lua_error(L);
}

lua_Integer host_budget_begin(lua_State *L, lua_Integer n)
{
	lua_Hook hook = lua_gethook(L);
	lua_Integer *outer, *inner;

	if (hook != NULL && hook != budget_hook)
		luaL_error(L, "host.limit: another hook is set on this thread");
	outer = push_cell(L);
	if (outer != NULL && *outer < n)
		n = *outer > 0 ? *outer : 0;
	inner = (lua_Integer *)lua_newuserdatauv(L, sizeof *inner, 0);
	*inner = n;
	set_cell(L, -1);
	arm(L, n);
	return n;
}

void host_budget_end(lua_State *L, int at, lua_Integer given)
{
	lua_Integer *outer = (lua_Integer *)lua_touserdata(L, at);
	lua_Integer *inner = (lua_Integer *)lua_touserdata(L, at + 1);
	lua_Integer spent = given - (*inner > 0 ? *inner : 0);

	*inner = BUDGET_ENDED;  /* coroutines that adopted it let go too */
	set_cell(L, at);
	if (outer == NULL) {
		lua_sethook(L, NULL, 0, 0);
		return;
	}
	*outer -= spent;
	arm(L, *outer);
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

lua_State *host_open(void)
{
	lua_State *L = luaL_newstate();

	if (L == NULL)
		return NULL;
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
