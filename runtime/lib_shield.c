/*
 * lib_shield.c: nomade._shield, the Integrity Shield (shield.c) for Lua.
 * nomade.shield wraps it; the order gate itself is in lib_paper.c, which
 * reads the state in C, so no Lua code can talk an order past it.
 *
 *   _shield.new{interval = s, grace = s, heartbeat = s, jump_atr =,
 *               jump_pct =, max_skew = s, zero_volume_run =, flat_run =,
 *               atr_period =, warmup =, api_errors =, strategy_errors =,
 *               recovery =} -> sh
 *   sh:candle(t, o, h, l, c, v)   "accepted", "refused" and why, or "repeat"
 *   sh:tick(now_ms), sh:heartbeat(now_ms) -> transitions so far (each
 *                                 frame of a stream: its caller reports
 *                                 only when that moved), sh:api(ok, what, now_ms),
 *   sh:skew(ms, now_ms), sh:strategy(ok, what, now_ms) (a turn of the
 *                                 strategy on a candle), sh:signal(name, on, detail, now_ms) with name one of
 *                                 disconnected, tribunal, risk, reconcile, halted
 *   sh:allows(entry) -> bool      the gate's rule, for a check before any order
 *   sh:clean(t) -> bool           may orders fill at the prices of the candle
 *                                 of time t? (the last accepted, no jump)
 *   sh:state() -> "GREEN"|"AMBER"|"RED" (the gate that reads it is C:
 *                                 lib_paper.c, lib_bybit.c)
 *   sh:reasons() -> {{check, severity, detail, since}...}
 *   sh:transitions([after_seq]) -> {{seq, time, from, to, check, detail}...}
 *   sh:stats() -> {GREEN, AMBER, RED (candles closed in each), refused,
 *                  repeats, gaps, transitions, candles}
 *   sh:scan{time =, open =, ...} -> {columns of the accepted candles (the
 *                  same series when none was refused), state = a byte per
 *                  candle (0 GREEN, 1 AMBER, 2 RED, with SHIELD_SUSPECT_BIT
 *                  when its prices fill nothing; a userdata, read with
 *                  _shield.state_at(state, i) and _shield.clean_at), n, transitions = {...},
 *                  refused = {{time, detail}...}}
 *                  the backtest's pass: every input of its shield is a candle
 */
#include <math.h>
#include <string.h>
#include <lauxlib.h>
#include "host.h"
#include "csv.h"
#include "series.h"
#include "shield.h"

static shield *shield_check_ud(lua_State *L, int arg)
{
	return (shield *)luaL_checkudata(L, arg, SHIELD_MT);
}

static double num_field(lua_State *L, const char *k, double def, double lo, double hi)
{
	double v;
	int isnum;

	lua_getfield(L, 1, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	v = lua_tonumberx(L, -1, &isnum);
	if (!isnum || !(v >= lo && v <= hi))
		luaL_error(L, "shield.new: %s must be a number in [%f, %f]", k, lo, hi);
	lua_pop(L, 1);
	return v;
}

static int s_new(lua_State *L)
{
	shield_config c;
	shield *s;

	luaL_checktype(L, 1, LUA_TTABLE);
	shield_defaults(&c, 1000 * num_field(L, "interval", 3600, 1, 31 * 86400));
	c.grace_ms = 1000 * num_field(L, "grace", c.grace_ms / 1000, 0, 86400);
	c.heartbeat_ms = 1000 * num_field(L, "heartbeat", 0, 0, 86400);
	c.jump_atr = num_field(L, "jump_atr", c.jump_atr, 0.5, 1000);
	c.jump_pct = num_field(L, "jump_pct", c.jump_pct, 0.001, 100);
	c.max_skew_ms = 1000 * num_field(L, "max_skew", c.max_skew_ms / 1000, 0.1, 3600);
	c.zero_volume_run = (int)num_field(L, "zero_volume_run", c.zero_volume_run, 1, 100000);
	c.flat_run = (int)num_field(L, "flat_run", c.flat_run, 1, 100000);
	c.atr_period = (int)num_field(L, "atr_period", c.atr_period, 1, 10000);
	c.warmup = (int)num_field(L, "warmup", 0, 0, 1e8);
	c.api_errors = (int)num_field(L, "api_errors", c.api_errors, 1, 10000);
	c.strategy_errors = (int)num_field(L, "strategy_errors", c.strategy_errors, 1, 100000);
	c.recovery = (int)num_field(L, "recovery", c.recovery, 1, 100000);
	s = (shield *)lua_newuserdatauv(L, sizeof *s, 0);
	shield_init(s, &c);
	luaL_setmetatable(L, SHIELD_MT);
	return 1;
}

static const char *const results[] = {"accepted", "refused", "repeat"};

static int s_candle(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	int r = shield_candle(s, luaL_checknumber(L, 2), luaL_checknumber(L, 3), luaL_checknumber(L, 4),
	                      luaL_checknumber(L, 5), luaL_checknumber(L, 6), luaL_checknumber(L, 7));
	lua_pushstring(L, results[r]);
	if (r != SHIELD_REFUSED)
		return 1;
	lua_pushstring(L, s->refusal);
	return 2;
}

static int s_tick(lua_State *L)
{
	shield_tick(shield_check_ud(L, 1), luaL_checknumber(L, 2));
	return 0;
}

static int s_heartbeat(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);

	shield_heartbeat(s, luaL_checknumber(L, 2));
	lua_pushinteger(L, (lua_Integer)s->ntrans);
	return 1;
}

static int s_api(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	shield_api(s, lua_toboolean(L, 2), luaL_checknumber(L, 4), luaL_optstring(L, 3, "?"));
	return 0;
}

static int s_strategy(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	shield_strategy(s, lua_toboolean(L, 2), luaL_checknumber(L, 4), luaL_optstring(L, 3, "?"));
	return 0;
}

static int s_skew(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	shield_skew(s, luaL_checknumber(L, 2), luaL_checknumber(L, 3));
	return 0;
}

/* only the reasons an outside event decides; the rest are the shield's own */
static int s_signal(lua_State *L)
{
	static const char *const names[] = {"disconnected", "tribunal", "risk", "reconcile", "halted", NULL};
	static const int ids[] = {SH_DISCONNECTED, SH_TRIBUNAL, SH_RISK, SH_RECONCILE, SH_HALTED};
	shield *s = shield_check_ud(L, 1);
	int which = luaL_checkoption(L, 2, NULL, names);

	shield_signal(s, ids[which], lua_toboolean(L, 3), luaL_checknumber(L, 5), luaL_optstring(L, 4, ""));
	return 0;
}

static int s_allows(lua_State *L)
{
	lua_pushboolean(L, shield_allows(shield_check_ud(L, 1)->state, lua_toboolean(L, 2)));
	return 1;
}

static int s_clean(lua_State *L)
{
	lua_pushboolean(L, shield_clean(shield_check_ud(L, 1), luaL_checknumber(L, 2)));
	return 1;
}

static int s_state(lua_State *L)
{
	lua_pushstring(L, shield_state_name(shield_check_ud(L, 1)->state));
	return 1;
}

static int s_reasons(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	int k, n = 0;

	lua_newtable(L);
	for (k = 0; k < SH_NCHECKS; k++) {
		if (!s->reason[k].active)
			continue;
		lua_createtable(L, 0, 4);
		lua_pushstring(L, shield_check_name(k));
		lua_setfield(L, -2, "check");
		lua_pushstring(L, shield_state_name(shield_check_severity(k)));
		lua_setfield(L, -2, "severity");
		lua_pushstring(L, s->reason[k].detail);
		lua_setfield(L, -2, "detail");
		lua_pushinteger(L, (lua_Integer)s->reason[k].since);
		lua_setfield(L, -2, "since");
		lua_rawseti(L, -2, ++n);
	}
	return 1;
}

static void push_transition(lua_State *L, const struct shield_transition *t)
{
	lua_createtable(L, 0, 6);
	lua_pushinteger(L, t->seq);
	lua_setfield(L, -2, "seq");
	lua_pushinteger(L, (lua_Integer)t->time);
	lua_setfield(L, -2, "time");
	lua_pushstring(L, shield_state_name(t->from));
	lua_setfield(L, -2, "from");
	lua_pushstring(L, shield_state_name(t->to));
	lua_setfield(L, -2, "to");
	lua_pushstring(L, t->check >= 0 ? shield_check_name(t->check) : "clean");
	lua_setfield(L, -2, "check");
	lua_pushstring(L, t->detail);
	lua_setfield(L, -2, "detail");
}

/* the transitions after seq `after` that the ring still holds, oldest first */
static int s_transitions(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	long long after = (long long)luaL_optinteger(L, 2, 0), q;
	int n = 0;

	if (after < s->ntrans - SHIELD_HISTORY)
		after = s->ntrans - SHIELD_HISTORY;
	lua_newtable(L);
	for (q = after + 1; q <= s->ntrans; q++) {
		push_transition(L, &s->trans[(q - 1) % SHIELD_HISTORY]);
		lua_rawseti(L, -2, ++n);
	}
	return 1;
}

static void set_int(lua_State *L, const char *k, long long v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static int s_stats(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	int k;

	lua_newtable(L);
	for (k = 0; k < 3; k++)
		set_int(L, shield_state_name(k), s->in_state[k]);
	set_int(L, "refused", s->refused);
	set_int(L, "repeats", s->repeats);
	set_int(L, "gaps", s->gaps);
	set_int(L, "transitions", s->ntrans);
	set_int(L, "candles", s->candles);
	return 1;
}

/* the accepted candles' columns: the input series themselves when none
   was refused (a year of minutes is not copied), else compacted copies */
static void scan_columns(lua_State *L, const series *const in[6], const unsigned char *mark, size_t n,
                         long long refused)
{
	size_t i;
	int k;

	for (k = 0; k < 6; k++) {
		if (refused == 0) {
			lua_getfield(L, 2, candle_columns[k]);
		} else {
			series *out = series_new(L, n - (size_t)refused);
			for (i = 0; i < n; i++)
				if (mark[i] != 0xFF)
					series_push(L, out, in[k]->v[i]);
		}
		lua_setfield(L, 3, candle_columns[k]);
	}
}

static int s_scan(lua_State *L)
{
	shield *s = shield_check_ud(L, 1);
	const series *in[6];
	unsigned char *mark;
	size_t i, n = (size_t)-1;
	int k, res, ntrans = 0, nref = 0;

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	for (k = 0; k < 6; k++) {
		lua_getfield(L, 2, candle_columns[k]);
		in[k] = series_test(L, -1);
		if (in[k] == NULL)
			return luaL_error(L, "shield:scan: %s must be a series", candle_columns[k]);
		if (in[k]->len < n)
			n = in[k]->len;
		lua_pop(L, 1);  /* the table at 2 keeps it alive */
	}
	lua_createtable(L, 0, 10);  /* 3: the result */
	lua_newtable(L);  /* 4: transitions */
	lua_newtable(L);  /* 5: refused */
	/* 6: a state byte per candle, 0xFF for a refused one */
	mark = (unsigned char *)lua_newuserdatauv(L, n > 0 ? n : 1, 0);
	for (i = 0; i < n; i++) {
		long long before = s->ntrans, q;
		res = shield_candle(s, in[0]->v[i], in[1]->v[i], in[2]->v[i], in[3]->v[i], in[4]->v[i], in[5]->v[i]);
		for (q = before + 1; q <= s->ntrans; q++) {
			push_transition(L, &s->trans[(q - 1) % SHIELD_HISTORY]);
			lua_rawseti(L, 4, ++ntrans);
		}
		mark[i] = res == SHIELD_ACCEPTED ? (unsigned char)(s->state | (s->suspect ? SHIELD_SUSPECT_BIT : 0)) : 0xFF;
		if (res != SHIELD_ACCEPTED) {
			lua_createtable(L, 0, 2);
			lua_pushnumber(L, in[0]->v[i]);
			lua_setfield(L, -2, "time");
			lua_pushstring(L, res == SHIELD_REPEAT ? "a repeat of a candle before, dropped" : s->refusal);
			lua_setfield(L, -2, "detail");
			lua_rawseti(L, 5, ++nref);
		}
	}
	scan_columns(L, in, mark, n, nref);
	if (nref > 0) {  /* the accepted candles' states, in place */
		size_t j = 0;
		for (i = 0; i < n; i++)
			if (mark[i] != 0xFF)
				mark[j++] = mark[i];
		while (j < n)
			mark[j++] = 0xFF;
	}
	lua_setfield(L, 3, "state");
	lua_pushvalue(L, 4);
	lua_setfield(L, 3, "transitions");
	lua_pushvalue(L, 5);
	lua_setfield(L, 3, "refused");
	lua_pushinteger(L, (lua_Integer)(n - (size_t)nref));
	lua_setfield(L, 3, "n");
	lua_pushvalue(L, 3);
	return 1;
}

static const luaL_Reg methods[] = {
	{"candle", s_candle},
	{"tick", s_tick},
	{"heartbeat", s_heartbeat},
	{"api", s_api},
	{"skew", s_skew},
	{"strategy", s_strategy},
	{"signal", s_signal},
	{"allows", s_allows},
	{"clean", s_clean},
	{"state", s_state},
	{"reasons", s_reasons},
	{"transitions", s_transitions},
	{"stats", s_stats},
	{"scan", s_scan},
	{NULL, NULL}
};

static unsigned char scan_byte(lua_State *L)
{
	lua_Integer i = luaL_checkinteger(L, 2);

	luaL_checktype(L, 1, LUA_TUSERDATA);
	luaL_argcheck(L, i >= 1 && (size_t)i <= lua_rawlen(L, 1), 2, "out of range");
	return ((const unsigned char *)lua_touserdata(L, 1))[i - 1];
}

/* _shield.state_at(scan.state, i) -> "GREEN"|"AMBER"|"RED" */
static int s_state_at(lua_State *L)
{
	lua_pushstring(L, shield_state_name(scan_byte(L) & ~SHIELD_SUSPECT_BIT));
	return 1;
}

/* _shield.clean_at(scan.state, i) -> may orders fill at candle i's prices? */
static int s_clean_at(lua_State *L)
{
	lua_pushboolean(L, (scan_byte(L) & SHIELD_SUSPECT_BIT) == 0);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"new", s_new},
	{"state_at", s_state_at},
	{"clean_at", s_clean_at},
	{NULL, NULL}
};

int luaopen_nomade_shield_core(lua_State *L)
{
	series_open(L);
	if (luaL_newmetatable(L, SHIELD_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
