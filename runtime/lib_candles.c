/*
 * lib_candles.c: nomade.candles, loading candle files into packed series.
 *   candles.load_csv(path) -> {time=, open=, high=, low=, close=, volume=
 *                              (series), n=, path=}  or  nil, err
 * Plain and gzip files are both read (zlib reads plain files as they are).
 * A file that cannot be read or holds a bad row is an operational failure:
 * nil and a message naming the file, the line and the field.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <lauxlib.h>
#include "csv.h"
#include "host.h"
#include "series.h"

#define GZ_MT "nomade.candles.gzfile"

static const char *const columns[CSV_FIELDS] = {
	"time", "open", "high", "low", "close", "volume"
};

/* the gzFile lives in a userdata so that a Lua error cannot leak it */
static int gz_gc(lua_State *L)
{
	gzFile *box = (gzFile *)luaL_checkudata(L, 1, GZ_MT);
	if (*box) {
		gzclose(*box);
		*box = NULL;
	}
	return 0;
}

static const char *gz_failure(gzFile f)
{
	int code;
	const char *msg = gzerror(f, &code);
	return code == Z_ERRNO ? strerror(errno) : msg;
}

/* pushes the whole file as a string, or nil and the reason; returns 1 or 2 */
static int read_all(lua_State *L, const char *path)
{
	gzFile *box = (gzFile *)lua_newuserdatauv(L, sizeof(gzFile), 0);
	int box_at = lua_gettop(L), n;
	luaL_Buffer b;

	*box = NULL;
	luaL_setmetatable(L, GZ_MT);
	if ((*box = gzopen(path, "rb")) == NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	luaL_buffinit(L, &b);
	do {
		n = gzread(*box, luaL_prepbuffsize(&b, 1 << 16), 1 << 16);
		if (n > 0)
			luaL_addsize(&b, (size_t)n);
	} while (n > 0);
	if (n < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, gz_failure(*box));
		return 2;
	}
	luaL_pushresult(&b);
	lua_pushcfunction(L, gz_gc);  /* close now rather than at the next GC */
	lua_pushvalue(L, box_at);
	lua_call(L, 1, 0);
	return 1;
}

struct sink {
	lua_State *L;
	series *col[CSV_FIELDS];
};

static int add_row(void *ud, const double *row)
{
	struct sink *k = (struct sink *)ud;
	int f;

	for (f = 0; f < CSV_FIELDS; f++)
		series_push(k->L, k->col[f], row[f]);
	return 0;
}

static int load_csv(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct sink k;
	char err[256];
	size_t len;
	const char *text;
	int f;

	if (read_all(L, path) == 2)
		return 2;
	text = lua_tolstring(L, -1, &len);
	lua_createtable(L, 0, CSV_FIELDS + 2);
	k.L = L;
	for (f = 0; f < CSV_FIELDS; f++) {
		k.col[f] = series_new(L, len / 64);
		lua_setfield(L, -2, columns[f]);
	}
	if (csv_parse(text, len, add_row, &k, err, sizeof err) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, err);
		return 2;
	}
	lua_pushinteger(L, (lua_Integer)k.col[0]->len);
	lua_setfield(L, -2, "n");
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "path");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"load_csv", load_csv},
	{NULL, NULL}
};

int luaopen_nomade_candles(lua_State *L)
{
	if (luaL_newmetatable(L, GZ_MT)) {
		lua_pushcfunction(L, gz_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	series_open(L);
	luaL_newlib(L, funcs);
	return 1;
}
