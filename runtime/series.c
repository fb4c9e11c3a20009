/*
 * series.c: the packed series userdata (see series.h). Lua sees 1-based
 * indexing (s[i], #s, ipairs), s[i] = x within 1..#s, and methods push,
 * slice, last, totable. Out-of-range reads give nil, as a table would.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "series.h"

series *series_new(lua_State *L, size_t cap)
{
	series *s = (series *)lua_newuserdatauv(L, sizeof *s, 0);
	s->v = NULL;
	s->len = s->cap = 0;  /* a valid empty series before anything can fail */
	luaL_setmetatable(L, SERIES_MT);
	if (cap > 0)
		series_resize(L, s, cap), s->len = 0;
	return s;
}

series *series_check(lua_State *L, int arg)
{
	return (series *)luaL_checkudata(L, arg, SERIES_MT);
}

series *series_test(lua_State *L, int arg)
{
	return (series *)luaL_testudata(L, arg, SERIES_MT);
}

static void grow(lua_State *L, series *s, size_t need)
{
	size_t cap = s->cap ? s->cap : 16;
	double *v;

	while (cap < need) {
		if (cap > ((size_t)-1 / sizeof(double)) / 2)
			luaL_error(L, "series: too large (%zu values)", need);
		cap *= 2;
	}
	v = (double *)realloc(s->v, cap * sizeof(double));
	if (v == NULL)
		luaL_error(L, "series: out of memory growing to %zu values", need);
	s->v = v;
	s->cap = cap;
}

void series_push(lua_State *L, series *s, double x)
{
	if (s->len == s->cap)
		grow(L, s, s->len + 1);
	s->v[s->len++] = x;
}

double *series_resize(lua_State *L, series *s, size_t len)
{
	if (len > s->cap)
		grow(L, s, len);
	s->len = len;
	return s->v;
}

int series_ctor(lua_State *L)
{
	lua_Integer i, n;
	series *s;

	if (lua_isnoneornil(L, 1)) {
		series_new(L, 0);
		return 1;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	s = series_new(L, (size_t)n);
	for (i = 1; i <= n; i++) {
		int isnum;
		double x;
		lua_geti(L, 1, i);
		x = lua_tonumberx(L, -1, &isnum);
		if (!isnum)
			return luaL_error(L, "bad argument #1 to 'series' (item %d is %s, not a number)",
			                  (int)i, luaL_typename(L, -1));
		lua_pop(L, 1);
		series_push(L, s, x);
	}
	return 1;
}

/* a Lua index 1..len (negative counts from the end) to 0-based, or -1 */
static long long position(const series *s, lua_Integer i)
{
	lua_Integer len = (lua_Integer)s->len;
	if (i < 0)
		i += len + 1;
	return (i >= 1 && i <= len) ? (long long)(i - 1) : -1;
}

static int s_index(lua_State *L)
{
	series *s = series_check(L, 1);
	int isint;
	lua_Integer i = lua_tointegerx(L, 2, &isint);

	if (isint) {
		long long p = i >= 1 ? position(s, i) : -1;
		if (p < 0)
			lua_pushnil(L);
		else
			lua_pushnumber(L, s->v[p]);
		return 1;
	}
	lua_getmetatable(L, 1);
	lua_getfield(L, -1, "methods");
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int s_newindex(lua_State *L)
{
	series *s = series_check(L, 1);
	lua_Integer i = luaL_checkinteger(L, 2);
	double x = luaL_checknumber(L, 3);

	if (i < 1 || (size_t)i > s->len)
		return luaL_error(L, "series: index %d out of range (1..%d)", (int)i, (int)s->len);
	s->v[i - 1] = x;
	return 0;
}

static int s_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)series_check(L, 1)->len);
	return 1;
}

static int s_push(lua_State *L)
{
	series *s = series_check(L, 1);
	int i, top = lua_gettop(L);

	for (i = 2; i <= top; i++)
		series_push(L, s, luaL_checknumber(L, i));
	lua_settop(L, 1);
	return 1;
}

/* s:slice(i [, j]) copies s[i..j]; negative positions count from the end */
static int s_slice(lua_State *L)
{
	series *s = series_check(L, 1);
	lua_Integer len = (lua_Integer)s->len;
	lua_Integer i = luaL_checkinteger(L, 2), j = luaL_optinteger(L, 3, -1);
	series *out;

	if (i < 0)
		i = i + len + 1 < 1 ? 1 : i + len + 1;
	else if (i == 0)
		i = 1;
	if (j < 0)
		j += len + 1;
	else if (j > len)
		j = len;
	out = series_new(L, 0);
	if (i <= j) {
		series_resize(L, out, (size_t)(j - i + 1));
		memcpy(out->v, s->v + (i - 1), (size_t)(j - i + 1) * sizeof(double));
	}
	return 1;
}

/* s:last([k]) is the k-th value from the end (1 = the last), nil if none */
static int s_last(lua_State *L)
{
	series *s = series_check(L, 1);
	lua_Integer k = luaL_optinteger(L, 2, 1);

	if (k < 1 || (size_t)k > s->len)
		lua_pushnil(L);
	else
		lua_pushnumber(L, s->v[s->len - (size_t)k]);
	return 1;
}

static int s_totable(lua_State *L)
{
	series *s = series_check(L, 1);
	size_t i;

	lua_createtable(L, (int)s->len, 0);
	for (i = 0; i < s->len; i++) {
		lua_pushnumber(L, s->v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int s_tostring(lua_State *L)
{
	series *s = series_check(L, 1);
	if (s->len == 0)
		lua_pushstring(L, "series(0)");
	else
		lua_pushfstring(L, "series(%d, last %f)", (int)s->len, s->v[s->len - 1]);
	return 1;
}

static int s_gc(lua_State *L)
{
	series *s = series_check(L, 1);
	free(s->v);
	s->v = NULL;
	s->len = s->cap = 0;
	return 0;
}

static const luaL_Reg methods[] = {
	{"push", s_push},
	{"slice", s_slice},
	{"last", s_last},
	{"totable", s_totable},
	{NULL, NULL}
};

static const luaL_Reg metamethods[] = {
	{"__index", s_index},
	{"__newindex", s_newindex},
	{"__len", s_len},
	{"__tostring", s_tostring},
	{"__gc", s_gc},
	{"__close", s_gc},
	{NULL, NULL}
};

void series_open(lua_State *L)
{
	if (luaL_newmetatable(L, SERIES_MT)) {
		luaL_setfuncs(L, metamethods, 0);
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "methods");
	}
	lua_pop(L, 1);
}
