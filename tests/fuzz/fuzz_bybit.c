/*
 * fuzz_bybit.c: libFuzzer target for the Bybit response parsing
 * (nomade.bybit.parse_response and kline_rows: Lua over lua-cjson, in the
 * real host). An input is a status byte, header lines up to a blank line,
 * then the body; the parser must answer a result table or nil and an error
 * with a kind and a message, and never raise. The Lua lines it runs are
 * handed to libFuzzer as extra coverage counters, so the search is guided
 * through the Lua code as it is through C.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_COUNTERS (1 << 14)
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_lines[LINE_COUNTERS];

static const char harness[] =
	"local bybit = require 'nomade.bybit'\n"
	"local STATUS = { 200, 200, 200, 200, 403, 429, 500, 502, 400, 404 }\n"
	"return function(data)\n"
	"  local status = STATUS[data:byte(1) % #STATUS + 1]\n"
	"  local head, body = data:sub(2):match('^(.-)\\n\\n(.*)$')\n"
	"  if not head then head, body = '', data:sub(2) end\n"
	"  local headers = {}\n"
	"  for name, value in head:gmatch('([^:\\n]+):%s*([^\\n]*)') do headers[name:lower()] = value end\n"
	"  local res, err = bybit.parse_response('/v5/market/kline', status, headers, body)\n"
	"  if res == nil then\n"
	"    assert(type(err.kind) == 'string' and type(tostring(err)) == 'string', 'an error without kind or message')\n"
	"    return\n"
	"  end\n"
	"  assert(type(res) == 'table', 'a result that is not a table')\n"
	"  local rows, why = bybit.kline_rows(res.list)\n"
	"  assert(rows or type(why) == 'string', 'a refusal without a reason')\n"
	"  for _, r in ipairs(rows or {}) do\n"
	"    assert(math.type(r[1]) == 'integer', 'a time that is not an integer')\n"
	"    for c = 2, 6 do assert(r[c] == r[c] and math.abs(r[c]) ~= math.huge, 'a price not finite') end\n"
	"  end\n"
	"end\n";

static lua_State *L;

/* the line being run, as a counter: its chunk's name (interned, so its
 * address is stable) and the line number */
static void on_line(lua_State *l, lua_Debug *ar)
{
	uintptr_t h;

	if (!lua_getinfo(l, "S", ar))
		return;
	h = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
	lua_lines[(h ^ (h >> 15)) % LINE_COUNTERS]++;
}

static void setup(void)
{
	L = host_open();
	if (luaL_loadbuffer(L, harness, sizeof harness - 1, "=fuzz_bybit") != LUA_OK
	    || host_pcall(L, 0, 1) != LUA_OK) {
		fprintf(stderr, "fuzz_bybit: %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_bybit");
	lua_sethook(L, on_line, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!L)
		setup();
	lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_bybit");
	lua_pushlstring(L, (const char *)data, size);
	if (host_pcall(L, 1, 0) != LUA_OK) {
		fprintf(stderr, "fuzz_bybit: the parser raised: %s\n", lua_tostring(L, -1));
		abort();
	}
	return 0;
}
