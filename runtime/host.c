/*
 * host.c: creates the Lua state, registers nomade.* and the embedded Lua
 * library in package.preload (so the binary works from any directory),
 * and owns the protected call of a command's entry, the error report and
 * the way to the main thread. Events enter Lua through lib_sched.c.
 */
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>
#include "host.h"
#include "lib_sched.h"

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
	{"nomade.sched", luaopen_nomade_sched},
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

lua_State *host_main(lua_State *L)
{
	lua_State *main;

	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	main = lua_tothread(L, -1);
	lua_pop(L, 1);
	return main;
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
	sched_init(L);
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
	sched_open(L);
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
