/*
 * lib_ta.c: the nomade.ta module. Each indicator is a descriptor (inputs,
 * outputs, parameters, and adapters onto runtime/ta/), and one piece of
 * glue serves them all in two forms that share the same C code:
 *   ta.ema(series, 200)  batch: series in, a new series out (or several);
 *   ta.ema(200)          a stream: o:update(x) returns the new value in
 *                        O(1); o:update(series) feeds a chunk and returns
 *                        the chunk's outputs as a series.
 * Warm-up outputs are NaN in both forms (a series holds doubles; see
 * README for why not nil). Misuse raises an error naming the function.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include "series.h"
#include "ta/ta.h"

#define STREAM_MT "nomade.ta.stream"
#define MAXIO 3

typedef struct {
	const char *name;
	int is_int;
	double def;       /* TA_NAN: required */
} param;

typedef struct indicator {
	const char *name;
	int nin, nout, nparam;
	param params[MAXIO];
	const char *why;  /* what init rejects beyond each parameter's range */
	size_t (*size)(const double *p);
	int (*init)(void *st, const double *p);
	void (*run)(void *st, const double *const *in, size_t len, double *const *out);
} indicator;

/* adapters for the one-series, one-period, one-output indicators */
#define ADAPT1(x)                                                          \
	static size_t x##_size(const double *p) { return ta_##x##_size((int)p[0]); } \
	static int x##_init(void *s, const double *p) { return ta_##x##_init((ta_##x *)s, (int)p[0]); } \
	static void x##_run(void *s, const double *const *in, size_t n, double *const *out) \
	{ ta_##x##_run((ta_##x *)s, in[0], n, out[0]); }

ADAPT1(ema)
ADAPT1(sma)
ADAPT1(stddev)
ADAPT1(rsi_sma)
ADAPT1(rsi)

static size_t minmax_size(const double *p) { return ta_minmax_size((int)p[0]); }
static int highest_init(void *s, const double *p) { return ta_minmax_init((ta_minmax *)s, (int)p[0], 1); }
static int lowest_init(void *s, const double *p) { return ta_minmax_init((ta_minmax *)s, (int)p[0], 0); }
static void minmax_run(void *s, const double *const *in, size_t n, double *const *out)
{
	ta_minmax_run((ta_minmax *)s, in[0], n, out[0]);
}

static size_t bbands_size(const double *p) { return ta_bbands_size((int)p[0]); }
static int bbands_init(void *s, const double *p) { return ta_bbands_init((ta_bbands *)s, (int)p[0], p[1]); }
static void bbands_run(void *s, const double *const *in, size_t n, double *const *out)
{
	ta_bbands_run((ta_bbands *)s, in[0], n, out[0], out[1], out[2]);
}

static size_t atr_size(const double *p) { return ta_atr_size((int)p[0]); }
static int atr_init(void *s, const double *p) { return ta_atr_init((ta_atr *)s, (int)p[0]); }
static void atr_run(void *s, const double *const *in, size_t n, double *const *out)
{
	ta_atr_run((ta_atr *)s, in[0], in[1], in[2], n, out[0]);
}

static size_t macd_size(const double *p) { return ta_macd_size((int)p[0], (int)p[1], (int)p[2]); }
static int macd_init(void *s, const double *p) { return ta_macd_init((ta_macd *)s, (int)p[0], (int)p[1], (int)p[2]); }
static void macd_run(void *s, const double *const *in, size_t n, double *const *out)
{
	ta_macd_run((ta_macd *)s, in[0], n, out[0], out[1], out[2]);
}

#define PERIOD {"period", 1, TA_NAN}
#define ONE(x) #x, 1, 1, 1, {PERIOD}, NULL, x##_size, x##_init, x##_run

static const indicator indicators[] = {
	{ONE(ema)},
	{ONE(sma)},
	{ONE(stddev)},
	{ONE(rsi_sma)},
	{ONE(rsi)},
	{"highest", 1, 1, 1, {PERIOD}, NULL, minmax_size, highest_init, minmax_run},
	{"lowest", 1, 1, 1, {PERIOD}, NULL, minmax_size, lowest_init, minmax_run},
	{"bbands", 1, 3, 2, {PERIOD, {"k", 0, 2.0}}, NULL, bbands_size, bbands_init, bbands_run},
	{"atr", 3, 1, 1, {PERIOD}, NULL, atr_size, atr_init, atr_run},
	{"macd", 1, 3, 3, {{"fast", 1, 12}, {"slow", 1, 26}, {"signal", 1, 9}},
	 "fast period must be less than slow period", macd_size, macd_init, macd_run},
};

typedef struct {
	const indicator *ind;
	double p[MAXIO];
	double last[MAXIO];
	size_t count;
	double st[];      /* the indicator's state, ind->size(p) bytes */
} stream;

/* reads the parameters from arg on; raises naming the one that is wrong */
static void check_params(lua_State *L, const indicator *ind, int arg, double *p)
{
	int i;

	for (i = 0; i < ind->nparam; i++, arg++) {
		const param *d = &ind->params[i];
		if (lua_isnoneornil(L, arg) && !isnan(d->def)) {
			p[i] = d->def;
			continue;
		}
		if (d->is_int) {
			lua_Integer v = luaL_checkinteger(L, arg);
			if (v < 1 || v > TA_MAX_PERIOD)
				luaL_argerror(L, arg, lua_pushfstring(L, "%s must be in 1..%d, got %I",
				                                      d->name, TA_MAX_PERIOD, v));
			p[i] = (double)v;
		} else {
			p[i] = luaL_checknumber(L, arg);
			if (!isfinite(p[i]) || p[i] < 0)
				luaL_argerror(L, arg, lua_pushfstring(L, "%s must be finite and >= 0", d->name));
		}
	}
}

static void init_or_raise(lua_State *L, const indicator *ind, void *st, const double *p)
{
	if (ind->init(st, p) != TA_OK)
		luaL_error(L, "%s: invalid parameters (%s)", ind->name,
		           ind->why ? ind->why : "out of range");
}

/* checks nin series (or views) from arg on: same length, every value finite */
static size_t check_inputs(lua_State *L, const indicator *ind, int arg,
                           const double **in)
{
	size_t len = 0;
	int i;

	for (i = 0; i < ind->nin; i++) {
		size_t n = 0, bad;
		const double *v = NULL;
		if (!series_span(L, arg + i, &v, &n))
			luaL_typeerror(L, arg + i, "series or view");
		bad = ta_first_nonfinite(v, n);
		if (bad < n)
			luaL_argerror(L, arg + i, lua_pushfstring(L, "%s at index %I",
			              isnan(v[bad]) ? "NaN" : "infinity", (lua_Integer)bad + 1));
		if (i > 0 && n != len)
			luaL_argerror(L, arg + i, lua_pushfstring(L, "length %I differs from #%d's %I",
			              (lua_Integer)n, arg, (lua_Integer)len));
		len = n;
		in[i] = v;
	}
	return len;
}

/* is arg a series or a view? */
static int is_span(lua_State *L, int arg)
{
	const double *p;
	size_t n;
	return series_span(L, arg, &p, &n);
}

/* runs st over the inputs at arg.., pushing one new series per output */
static int run_series(lua_State *L, const indicator *ind, void *st, int arg)
{
	const double *in[MAXIO];
	double *out[MAXIO];
	size_t len = check_inputs(L, ind, arg, in);
	int i;

	for (i = 0; i < ind->nout; i++)
		out[i] = series_resize(L, series_new(L, 0), len);
	ind->run(st, in, len, out);
	return ind->nout;
}

static int batch(lua_State *L, const indicator *ind)
{
	double p[MAXIO];
	void *st;

	check_params(L, ind, ind->nin + 1, p);
	st = lua_newuserdatauv(L, ind->size(p), 0);  /* GC-owned scratch state */
	init_or_raise(L, ind, st, p);
	return run_series(L, ind, st, 1);
}

static int new_stream(lua_State *L, const indicator *ind)
{
	double p[MAXIO];
	stream *s;
	int i;

	check_params(L, ind, 1, p);
	s = (stream *)lua_newuserdatauv(L, sizeof(stream) + ind->size(p), 0);
	s->ind = ind;
	memcpy(s->p, p, sizeof p);
	s->count = 0;
	for (i = 0; i < MAXIO; i++)
		s->last[i] = TA_NAN;
	init_or_raise(L, ind, s->st, p);
	luaL_setmetatable(L, STREAM_MT);
	return 1;
}

/* ta.X(...): a series first means batch, anything else a stream */
static int ctor(lua_State *L)
{
	const indicator *ind = (const indicator *)lua_touserdata(L, lua_upvalueindex(1));
	return is_span(L, 1) ? batch(L, ind) : new_stream(L, ind);
}

static stream *check_stream(lua_State *L)
{
	return (stream *)luaL_checkudata(L, 1, STREAM_MT);
}

static int push_last(lua_State *L, const stream *s)
{
	int i;
	for (i = 0; i < s->ind->nout; i++)
		lua_pushnumber(L, s->last[i]);
	return s->ind->nout;
}

static int st_update(lua_State *L)
{
	stream *s = check_stream(L);
	const indicator *ind = s->ind;
	double x[MAXIO], *out[MAXIO];
	const double *in[MAXIO];
	int i, n;

	if (is_span(L, 2)) {  /* a chunk */
		int top = lua_gettop(L);
		n = run_series(L, ind, s->st, 2);
		for (i = 0; i < n; i++) {
			series *o = series_check(L, top + 1 + i);
			if (o->len > 0)
				s->last[i] = o->v[o->len - 1];
		}
		s->count += series_check(L, top + 1)->len;
		return n;
	}
	for (i = 0; i < ind->nin; i++) {
		x[i] = luaL_checknumber(L, 2 + i);
		if (!isfinite(x[i]))
			luaL_argerror(L, 2 + i, isnan(x[i]) ? "NaN" : "infinity");
		in[i] = &x[i];
	}
	for (i = 0; i < ind->nout; i++)
		out[i] = &s->last[i];
	ind->run(s->st, in, 1, out);
	s->count++;
	return push_last(L, s);
}

static int st_value(lua_State *L)
{
	return push_last(L, check_stream(L));
}

static int st_ready(lua_State *L)
{
	lua_pushboolean(L, !isnan(check_stream(L)->last[0]));
	return 1;
}

static int st_count(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)check_stream(L)->count);
	return 1;
}

static int st_reset(lua_State *L)
{
	stream *s = check_stream(L);
	int i;

	s->ind->init(s->st, s->p);  /* parameters were accepted once already */
	s->count = 0;
	for (i = 0; i < MAXIO; i++)
		s->last[i] = TA_NAN;
	lua_settop(L, 1);
	return 1;
}

/* o:spec(): {name =, params = {...}, inputs =, outputs =}, so the
   backtester can compute a declared stream's values in batch */
static int st_spec(lua_State *L)
{
	stream *s = check_stream(L);
	int i;

	lua_createtable(L, 0, 4);
	lua_pushstring(L, s->ind->name);
	lua_setfield(L, -2, "name");
	lua_createtable(L, s->ind->nparam, 0);
	for (i = 0; i < s->ind->nparam; i++) {
		if (s->ind->params[i].is_int)
			lua_pushinteger(L, (lua_Integer)s->p[i]);
		else
			lua_pushnumber(L, s->p[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "params");
	lua_pushinteger(L, s->ind->nin);
	lua_setfield(L, -2, "inputs");
	lua_pushinteger(L, s->ind->nout);
	lua_setfield(L, -2, "outputs");
	return 1;
}

static int st_tostring(lua_State *L)
{
	stream *s = check_stream(L);
	char buf[128];
	int i, k = snprintf(buf, sizeof buf, "%s(", s->ind->name);

	for (i = 0; i < s->ind->nparam; i++)
		k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%g", i ? ", " : "", s->p[i]);
	lua_pushfstring(L, "%s)", buf);
	return 1;
}

static int ta_isnan(lua_State *L)
{
	lua_Number x = luaL_checknumber(L, 1);
	lua_pushboolean(L, isnan(x));
	return 1;
}

static const luaL_Reg stream_methods[] = {
	{"update", st_update},
	{"value", st_value},
	{"ready", st_ready},
	{"count", st_count},
	{"reset", st_reset},
	{"spec", st_spec},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"series", series_ctor},
	{"cursor", series_cursor_ctor},
	{"stamper", series_stamper_ctor},
	{"isnan", ta_isnan},
	{NULL, NULL}
};

int luaopen_nomade_ta(lua_State *L);

int luaopen_nomade_ta(lua_State *L)
{
	size_t i;

	series_open(L);
	if (luaL_newmetatable(L, STREAM_MT)) {
		luaL_newlib(L, stream_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, st_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	for (i = 0; i < sizeof indicators / sizeof indicators[0]; i++) {
		lua_pushlightuserdata(L, (void *)&indicators[i]);
		lua_pushcclosure(L, ctor, 1);
		lua_setfield(L, -2, indicators[i].name);
	}
	lua_pushnumber(L, TA_NAN);
	lua_setfield(L, -2, "nan");
	return 1;
}
