/*
 * lib_host.c: nomade.host, what Lua code may ask of the host itself:
 * its version and a call under an instruction budget.
 */
#include <curl/curl.h>
#include <ev.h>
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include "host.h"

/* host.limit(n, f, ...): like pcall(f, ...), but f may run only about n VM
   instructions; exceeding them fails with "instruction budget exceeded" */
static int h_limit(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	int status, top;

	luaL_argcheck(L, n > 0, 1, "budget must be > 0");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (lua_gethook(L) != NULL)
		return luaL_error(L, "host.limit: a budget is already running");
	top = lua_gettop(L);
	host_set_budget(L, (long)n);
	status = lua_pcall(L, top - 2, LUA_MULTRET, 0);
	host_set_budget(L, 0);
	lua_pushboolean(L, status == LUA_OK);
	lua_insert(L, 2);  /* n, status, results or error */
	return lua_gettop(L) - 1;
}

static int h_versions(lua_State *L)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, NOMADE_VERSION);
	lua_setfield(L, -2, "nomade");
	lua_pushstring(L, LUA_RELEASE);
	lua_setfield(L, -2, "lua");
	lua_pushfstring(L, "%d.%d", ev_version_major(), ev_version_minor());
	lua_setfield(L, -2, "libev");
	lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
	lua_setfield(L, -2, "libcurl");
	lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
	lua_setfield(L, -2, "openssl");
	lua_pushstring(L, sqlite3_libversion());
	lua_setfield(L, -2, "sqlite");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"limit", h_limit},
	{"versions", h_versions},
	{NULL, NULL}
};

int luaopen_nomade_host(lua_State *L)
{
	luaL_newlib(L, funcs);
	lua_pushstring(L, NOMADE_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
