/*
 * lib_gemini.c: nomade._gemini, the tribunal's C side: the strict verdict
 * parser (verdict.c). The HTTP clients (nomade.gemini, nomade.openai) are
 * Lua over nomade.http; what they hand back is judged here.
 *
 *   _gemini.verdict(text) -> {signal = "BUY"|"WAIT", score = 0..100,
 *                             reasoning = string}
 *                         or nil, "not_json"|"schema", why
 */
#include <lauxlib.h>
#include "host.h"
#include "verdict.h"

static int g_verdict(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	struct verdict v;
	char why[160];
	int r = verdict_parse(text, len, &v, why, sizeof why);

	if (r != VERDICT_OK) {
		lua_pushnil(L);
		lua_pushstring(L, r == VERDICT_NOT_JSON ? "not_json" : "schema");
		lua_pushstring(L, why);
		return 3;
	}
	lua_createtable(L, 0, 3);
	lua_pushstring(L, v.buy ? "BUY" : "WAIT");
	lua_setfield(L, -2, "signal");
	lua_pushinteger(L, v.score);
	lua_setfield(L, -2, "score");
	lua_pushlstring(L, v.reasoning, v.reasoning_len);
	lua_setfield(L, -2, "reasoning");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"verdict", g_verdict},
	{NULL, NULL}
};

int luaopen_nomade_gemini_core(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
