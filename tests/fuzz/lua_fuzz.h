/*
 * lua_fuzz.h: what the fuzz targets of Lua parsers share. The parser runs
 * in the real host (host_open: every nomade module, lua-cjson), and the
 * Lua lines it runs are handed to libFuzzer as extra coverage counters, so
 * the search is guided through the Lua code as it is through C. A target
 * gives a Lua chunk returning function(data); an error from it aborts.
 */
#ifndef NOMADE_LUA_FUZZ_H
#define NOMADE_LUA_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_COUNTERS (1 << 14)
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_lines[LINE_COUNTERS];

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

/* runs harness(data) in the host; the state is made on the first call */
static void lua_fuzz_run(const char *name, const char *harness, size_t len, const uint8_t *data, size_t size)
{
	static lua_State *L;

	if (!L) {
		L = host_open();
		if (luaL_loadbuffer(L, harness, len, name) != LUA_OK || host_pcall(L, 0, 1) != LUA_OK) {
			fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
			abort();
		}
		lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_harness");
		lua_sethook(L, on_line, LUA_MASKLINE, 0);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_harness");
	lua_pushlstring(L, (const char *)data, size);
	if (host_pcall(L, 1, 0) != LUA_OK) {
		fprintf(stderr, "%s: the parser raised: %s\n", name, lua_tostring(L, -1));
		abort();
	}
}

#endif
