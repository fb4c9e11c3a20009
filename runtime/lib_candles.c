/*
 * lib_candles.c: nomade._candles, the C half of nomade.candles (see
 * lua/nomade/candles.lua): loading candle CSV files into packed series.
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

/* why f failed, without the "path: " zlib puts before its own messages
   (the caller names the file) */
static const char *gz_failure(gzFile f, const char *path)
{
	int code;
	const char *msg = gzerror(f, &code);
	size_t n = strlen(path);

	if (code == Z_ERRNO)
		return strerror(errno);
	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		msg += n + 2;
	return msg;
}

struct sink {
	lua_State *L;
	series *col[CSV_FIELDS];
};

#define CHUNK (1 << 16)
#define MAX_LINE 4096

/* parses one line into the sink; csv_line's result */
static int feed(csv_state *st, struct sink *k, const char *line, size_t n,
                char *err, size_t errlen)
{
	double row[CSV_FIELDS];
	int f, rc;

	if (n > MAX_LINE) {
		snprintf(err, errlen, "line %zu: longer than %d bytes", st->line + 1, MAX_LINE);
		return -1;
	}
	rc = csv_line(st, line, n, row, err, errlen);
	for (f = 0; rc == 1 && f < CSV_FIELDS; f++)
		series_push(k->L, k->col[f], row[f]);
	return rc;
}

/*
 * Reads and parses the file a chunk at a time, so that memory holds the
 * candles and not the text too (a year of minutes is 45 MB of text).
 * buf holds CHUNK + MAX_LINE + 1 bytes. Returns 0, or -1 with the reason
 * in err (the caller names the file).
 */
static int parse_file(gzFile f, const char *path, struct sink *k, char *buf, char *err, size_t errlen)
{
	csv_state st;
	size_t have = 0;

	csv_init(&st);
	for (;;) {
		size_t start = 0;
		const char *nl;
		int n = gzread(f, buf + have, CHUNK), code;
		/* a truncated archive ends in a 0 read too: only gzerror tells */
		if (n < 0 || (n == 0 && (gzerror(f, &code), code != Z_OK))) {
			snprintf(err, errlen, "%s", gz_failure(f, path));
			return -1;
		}
		have += (size_t)n;
		while ((nl = (const char *)memchr(buf + start, '\n', have - start)) != NULL) {
			size_t end = (size_t)(nl - buf);
			if (feed(&st, k, buf + start, end - start, err, errlen) < 0)
				return -1;
			start = end + 1;
		}
		memmove(buf, buf + start, have - start);  /* keep the incomplete line */
		have -= start;
		if (n == 0) {  /* the end: a last line without its newline, if any */
			if (have > 0 && feed(&st, k, buf, have, err, errlen) < 0)
				return -1;
			return csv_finish(&st, err, errlen);
		}
		if (have > MAX_LINE) {
			snprintf(err, errlen, "line %zu: longer than %d bytes", st.line + 1, MAX_LINE);
			return -1;
		}
	}
}

static int load_csv(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	gzFile *box = (gzFile *)lua_newuserdatauv(L, sizeof(gzFile), 0);
	char *buf = (char *)lua_newuserdatauv(L, CHUNK + MAX_LINE + 1, 0);  /* GC-owned */
	struct sink k;
	char err[256];
	int f;

	*box = NULL;
	lua_pushvalue(L, -2);
	luaL_setmetatable(L, GZ_MT);
	lua_pop(L, 1);
	if ((*box = gzopen(path, "rb")) == NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	gzbuffer(*box, CHUNK);
	lua_createtable(L, 0, CSV_FIELDS + 2);
	k.L = L;
	for (f = 0; f < CSV_FIELDS; f++) {
		k.col[f] = series_new(L, 0);
		lua_setfield(L, -2, candle_columns[f]);
	}
	if (parse_file(*box, path, &k, buf, err, sizeof err) != 0) {
		gzclose(*box);
		*box = NULL;
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, err);
		return 2;
	}
	gzclose(*box);
	*box = NULL;
	lua_pushinteger(L, (lua_Integer)k.col[0]->len);
	lua_setfield(L, -2, "n");
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "path");
	return 1;
}

/* _candles.field(f, text) -> value, or nil and why: text as the CSV
   parser takes field f (0 time, 1-4 prices, 5 volume); not a string: nil */
static int field(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 1);
	size_t len;
	const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
	const char *why;
	double v;

	luaL_argcheck(L, f >= 0 && f < CSV_FIELDS, 1, "a field from 0 to 5");
	why = s ? csv_field((int)f, s, len, &v) : "not a string";
	if (why) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	if (f == 0)
		lua_pushinteger(L, (lua_Integer)v);
	else
		lua_pushnumber(L, v);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"field", field},
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
