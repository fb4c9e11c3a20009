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

/* views and cursors */

typedef struct {
	size_t n;
} cursor;

typedef struct {
	const series *s;
	const cursor *c;  /* both kept alive by the view's user values */
} view;

int series_cursor_ctor(lua_State *L)
{
	lua_Integer n = luaL_optinteger(L, 1, 0);
	cursor *c;

	luaL_argcheck(L, n >= 0, 1, "position must be >= 0");
	c = (cursor *)lua_newuserdatauv(L, sizeof *c, 0);
	c->n = (size_t)n;
	luaL_setmetatable(L, CURSOR_MT);
	return 1;
}

size_t *series_cursor_pos(lua_State *L, int arg)
{
	return &((cursor *)luaL_checkudata(L, arg, CURSOR_MT))->n;
}

static int c_set(lua_State *L)
{
	cursor *c = (cursor *)luaL_checkudata(L, 1, CURSOR_MT);
	lua_Integer n = luaL_checkinteger(L, 2);

	luaL_argcheck(L, n >= 0, 2, "position must be >= 0");
	c->n = (size_t)n;
	return 0;
}

static int c_get(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)((cursor *)luaL_checkudata(L, 1, CURSOR_MT))->n);
	return 1;
}

/* cursor:view(series): a view of series limited by this cursor */
static int c_view(lua_State *L)
{
	cursor *c = (cursor *)luaL_checkudata(L, 1, CURSOR_MT);
	series *s = series_check(L, 2);
	view *v = (view *)lua_newuserdatauv(L, sizeof *v, 2);

	v->s = s;
	v->c = c;
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 2);
	luaL_setmetatable(L, VIEW_MT);
	return 1;
}

static size_t visible(const view *v)
{
	return v->c->n < v->s->len ? v->c->n : v->s->len;
}

int series_span(lua_State *L, int arg, const double **p, size_t *len)
{
	series *s = series_test(L, arg);
	view *v;

	if (s) {
		*p = s->v, *len = s->len;
		return 1;
	}
	v = (view *)luaL_testudata(L, arg, VIEW_MT);
	if (v == NULL)
		return 0;
	*p = v->s->v, *len = visible(v);
	return 1;
}

/* the span at arg, or an error naming what was expected */
static const double *check_span(lua_State *L, int arg, size_t *len)
{
	const double *p = NULL;
	if (!series_span(L, arg, &p, len))
		luaL_typeerror(L, arg, "series or view");
	return p;
}

#define STAMPER_MT "nomade.series.stamper"

typedef struct {
	cursor *c;
	size_t n;
	struct stamp {
		const series *s;
		int key;  /* index of the key in the stamper's key table */
	} f[];
} stamper;

int series_stamper_ctor(lua_State *L)
{
	cursor *c = (cursor *)luaL_checkudata(L, 1, CURSOR_MT);
	stamper *st;
	size_t n = 0;

	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		if (lua_type(L, -2) != LUA_TSTRING || !series_test(L, -1))
			return luaL_argerror(L, 3, "expected {name = series, ...}");
		lua_pop(L, 1);
		n++;
	}
	/* user values: the cursor, the target, the keys in order, the series map */
	st = (stamper *)lua_newuserdatauv(L, sizeof *st + n * sizeof st->f[0], 4);
	st->c = c;
	st->n = 0;
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 2);
	lua_createtable(L, (int)n, 0);
	lua_pushnil(L);
	while (lua_next(L, 3)) {  /* stack: st, keys, key, series */
		st->f[st->n].s = series_test(L, -1);
		st->f[st->n].key = (int)st->n + 1;
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, (lua_Integer)++st->n);
	}
	lua_setiuservalue(L, -2, 3);
	lua_pushvalue(L, 3);
	lua_setiuservalue(L, -2, 4);
	luaL_setmetatable(L, STAMPER_MT);
	return 1;
}

static int stamper_call(lua_State *L)
{
	stamper *st = (stamper *)luaL_checkudata(L, 1, STAMPER_MT);
	lua_Integer i = luaL_checkinteger(L, 2);
	size_t k;

	luaL_argcheck(L, i >= 0, 2, "position must be >= 0");
	st->c->n = (size_t)i;
	lua_getiuservalue(L, 1, 2);  /* target */
	lua_getiuservalue(L, 1, 3);  /* keys */
	for (k = 0; k < st->n; k++) {
		const series *s = st->f[k].s;
		lua_rawgeti(L, -1, st->f[k].key);
		if (i >= 1 && (size_t)i <= s->len)
			lua_pushnumber(L, s->v[i - 1]);
		else
			lua_pushnil(L);
		lua_rawset(L, -4);
	}
	return 0;
}

/* s[i] for a series or view, and their methods */
static int span_index(lua_State *L)
{
	size_t len;
	const double *p = check_span(L, 1, &len);
	int isint;
	lua_Integer i = lua_tointegerx(L, 2, &isint);

	if (isint) {
		if (i >= 1 && (size_t)i <= len)
			lua_pushnumber(L, p[i - 1]);
		else
			lua_pushnil(L);
		return 1;
	}
	lua_getmetatable(L, 1);
	lua_getfield(L, -1, "methods");
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int v_newindex(lua_State *L)
{
	return luaL_error(L, "attempt to change a read-only view of a series");
}

static int span_len(lua_State *L)
{
	size_t len;
	check_span(L, 1, &len);
	lua_pushinteger(L, (lua_Integer)len);
	return 1;
}

static int v_tostring(lua_State *L)
{
	size_t len;
	const double *p = check_span(L, 1, &len);

	if (len == 0)
		lua_pushstring(L, "view(0)");
	else
		lua_pushfstring(L, "view(%d, last %f)", (int)len, p[len - 1]);
	return 1;
}

/* pushes a new series holding p[i..j] (1-based, clamped like string.sub) */
static int push_slice(lua_State *L, const double *p, size_t n, lua_Integer i, lua_Integer j)
{
	lua_Integer len = (lua_Integer)n;
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
		memcpy(out->v, p + (i - 1), (size_t)(j - i + 1) * sizeof(double));
	}
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
	size_t len;
	const double *p = check_span(L, 1, &len);
	return push_slice(L, p, len, luaL_checkinteger(L, 2), luaL_optinteger(L, 3, -1));
}

/* s:last([k]) is the k-th value from the end (1 = the last), nil if none */
static int s_last(lua_State *L)
{
	size_t len;
	const double *p = check_span(L, 1, &len);
	lua_Integer k = luaL_optinteger(L, 2, 1);

	if (k < 1 || (size_t)k > len)
		lua_pushnil(L);
	else
		lua_pushnumber(L, p[len - (size_t)k]);
	return 1;
}

static int s_totable(lua_State *L)
{
	size_t len, i;
	const double *p = check_span(L, 1, &len);

	lua_createtable(L, (int)len, 0);
	for (i = 0; i < len; i++) {
		lua_pushnumber(L, p[i]);
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

static const luaL_Reg view_methods[] = {
	{"slice", s_slice},
	{"last", s_last},
	{"totable", s_totable},
	{NULL, NULL}
};

static const luaL_Reg view_metamethods[] = {
	{"__index", span_index},
	{"__newindex", v_newindex},
	{"__len", span_len},
	{"__tostring", v_tostring},
	{NULL, NULL}
};

static const luaL_Reg cursor_methods[] = {
	{"set", c_set},
	{"get", c_get},
	{"view", c_view},
	{NULL, NULL}
};

static const luaL_Reg metamethods[] = {
	{"__index", span_index},
	{"__newindex", s_newindex},
	{"__len", span_len},
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
	if (luaL_newmetatable(L, VIEW_MT)) {
		luaL_setfuncs(L, view_metamethods, 0);
		luaL_newlib(L, view_methods);
		lua_setfield(L, -2, "methods");
	}
	if (luaL_newmetatable(L, CURSOR_MT)) {
		luaL_newlib(L, cursor_methods);
		lua_setfield(L, -2, "__index");
	}
	if (luaL_newmetatable(L, STAMPER_MT)) {
		lua_pushcfunction(L, stamper_call);
		lua_setfield(L, -2, "__call");
	}
	lua_pop(L, 4);
}
