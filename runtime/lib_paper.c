/*
 * lib_paper.c: nomade.paper, the simulated exchange (one symbol, spot,
 * long only) and the backtester's candle loop. Both are C because the
 * loop runs once per candle over years of minutes; Lua is entered only
 * for the strategy's own decisions.
 *
 * The rules (README, "How the backtester fills orders"), on each candle:
 *   1. a pending market order fills at the open;
 *   2. a pending limit buy fills if low < price, at min(open, price), and
 *      is cancelled when ttl candles pass unfilled;
 *   3. with a position: the stop triggers if low <= stop, at
 *      min(open, stop); else the take if high >= take, at max(open, take).
 * Sizing: qty = floor_step(quote * size / (price * (1 + fee))), at most the
 * buy's max_qty (the risk limits' cap, nomade.risk); refused if
 * qty < min qty or qty * price < min amount. Fees in quote on both sides.
 * A sell is refused by the same rule, as Bybit refuses it: at the last
 * close for an exit, at the trigger's price for a stop or a take; the
 * position is kept, flagged as dust (position.dust).
 *
 *   paper.new{cash, fee, position_size, stop_loss, take_profit,
 *             qty_scale, tick_scale, min_qty, min_amt} -> book
 *   book:buy({type = "market"|"limit", price, ttl}, index[, max_qty]),
 *   book:sell(reason, index)          -> true, or false and the shield's
 *                                        state when the gate refuses, or
 *                                        false, nil and why for dust
 *   book:gate(entry) -> allowed, state  the gate alone (a refusal counts)
 *   book:guard(shield)                the live shield whose state the gate
 *                                     reads (the backtest's run passes a
 *                                     state per candle instead)
 *   book:open_candle(index, time, open, high, low[, close])   (close: the
 *                                     price an exit is judged at)
 *   book:run{...}                     the backtest loop (see b_run)
 *   book.quote, .base, .fees, .refused, .cancelled, .orders, .held,
 *   .position (nil or a table), .pending (boolean), .trades (a table),
 *   .blocked_entries, .blocked_exits, .shield (the state the gate reads)
 *
 * No order fills at the prices of a candle the shield did not accept as
 * clean (shield_clean: refused, or a jump): on such a candle nothing
 * fills and nothing triggers; what is pending waits for the next one.
 *
 * The gate: every order goes through gate() here, in C, so nothing in Lua
 * can send one the Integrity Shield forbids: GREEN lets all through, AMBER
 * exits only, RED nothing. Stops and takes already resting are not new
 * orders and still fill.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "host.h"
#include "csv.h"
#include "series.h"
#include "shield.h"
#include "lib_sched.h"

#define BOOK_MT "nomade.paper.book"

enum { NONE, MARKET_BUY, MARKET_SELL, LIMIT_BUY };

typedef struct {
	double quote, base, fee, size, stop_loss, take_profit;  /* 0: no stop/take */
	double qty_scale, tick_scale, min_qty, min_amt;
	int pending;
	double p_price, p_max;  /* p_max: the pending buy's largest qty, 0 for none */
	lua_Integer p_index, p_ttl;
	int has_pos;
	double pos_qty, pos_price, pos_time, pos_cost, pos_fee, pos_stop, pos_take;
	lua_Integer pos_index;
	int pos_dust;         /* a sell of it was refused: below the minimums */
	double mark;          /* the last close: the price an exit is judged at */
	double fees;
	lua_Integer refused, cancelled, orders, held, current;
	const shield *guard;  /* the live shield, or NULL: then gate_state */
	int gate_state;
	lua_Integer blocked_entries, blocked_exits;
	lua_Integer in_state[3];  /* run: candles closed in each state */
} book;

/* user values: 1 the trades table, 2 the pending sell's reason, 3 the shield */

/* floor(x * scale + 1e-9) / scale: see README for the 1e-9 */
static double floor_step(double x, double scale)
{
	return floor(x * scale + 1e-9) / scale;
}

static double ceil_step(double x, double scale)
{
	return ceil(x * scale - 1e-9) / scale;
}

static book *check_book(lua_State *L)
{
	return (book *)luaL_checkudata(L, 1, BOOK_MT);
}

static double field(lua_State *L, int t, const char *name, double def)
{
	double v;
	int isnum;

	lua_getfield(L, t, name);
	if (lua_isnoneornil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
		lua_pop(L, 1);
		return def;
	}
	v = lua_tonumberx(L, -1, &isnum);
	if (!isnum || !isfinite(v) || v < 0)
		luaL_error(L, "paper.new: %s must be a finite number >= 0", name);
	lua_pop(L, 1);
	return v;
}

static int p_new(lua_State *L)
{
	book *b;

	luaL_checktype(L, 1, LUA_TTABLE);
	b = (book *)lua_newuserdatauv(L, sizeof *b, 3);
	memset(b, 0, sizeof *b);
	b->quote = field(L, 1, "cash", 10000);
	b->fee = field(L, 1, "fee", 0.001);
	b->size = field(L, 1, "position_size", 1);
	b->stop_loss = field(L, 1, "stop_loss", 0);
	b->take_profit = field(L, 1, "take_profit", 0);
	b->qty_scale = field(L, 1, "qty_scale", 1e6);
	b->tick_scale = field(L, 1, "tick_scale", 100);
	b->min_qty = field(L, 1, "min_qty", 0);
	b->min_amt = field(L, 1, "min_amt", 0);
	if (b->fee >= 1 || b->size <= 0 || b->size > 1 || b->stop_loss >= 1 || b->qty_scale < 1
	    || b->tick_scale < 1)
		return luaL_error(L, "paper.new: fee must be < 1, position_size in (0, 1], "
		                     "stop_loss < 1, scales >= 1");
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, BOOK_MT);
	return 1;
}

static void buy(book *b, double price, double time, lua_Integer index)
{
	double qty = floor_step(b->quote * b->size / (price * (1 + b->fee)), b->qty_scale);
	double cost, fee;

	if (b->p_max > 0 && qty > b->p_max)
		qty = b->p_max;
	cost = qty * price, fee = cost * b->fee;
	if (qty < b->min_qty || cost < b->min_amt || qty <= 0) {
		b->refused++;
		return;
	}
	b->quote -= cost + fee;
	b->base += qty;
	b->fees += fee;
	b->has_pos = 1;
	b->pos_qty = qty, b->pos_price = price, b->pos_time = time, b->pos_index = index;
	b->pos_cost = cost, b->pos_fee = fee;
	b->pos_dust = 0;
	b->pos_stop = b->stop_loss > 0 ? floor_step(price * (1 - b->stop_loss), b->tick_scale) : 0;
	b->pos_take = b->take_profit > 0 ? ceil_step(price * (1 + b->take_profit), b->tick_scale) : 0;
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

/* why the exchange would not take a sell of the position at price (its
   minimum quantity or order value), or NULL */
static const char *below_minimum(const book *b, double price)
{
	if (b->pos_qty < b->min_qty || b->pos_qty <= 0)
		return "minOrderQty";
	if (b->pos_qty * price < b->min_amt)
		return "minOrderAmt";
	return NULL;
}

/* a sell the minimums refuse: counted, and the position is dust */
static int refuse_dust(book *b, double price)
{
	if (below_minimum(b, price) == NULL)
		return 0;
	b->refused++;
	b->pos_dust = 1;
	return 1;
}

/* the reason is at the top of the stack; it is popped */
static void sell(lua_State *L, book *b, double price, double time, lua_Integer index)
{
	double proceeds = b->pos_qty * price, fee = proceeds * b->fee;
	double pnl = proceeds - fee - b->pos_cost - b->pos_fee;

	b->quote += proceeds - fee;
	b->base -= b->pos_qty;
	b->fees += fee;
	b->has_pos = 0;
	b->pos_dust = 0;
	lua_getiuservalue(L, 1, 1);  /* stack: reason, trades */
	lua_createtable(L, 0, 11);
	set_num(L, "entry_time", b->pos_time);
	set_num(L, "entry_price", b->pos_price);
	set_num(L, "exit_time", time);
	set_num(L, "exit_price", price);
	set_num(L, "qty", b->pos_qty);
	set_num(L, "fees", b->pos_fee + fee);
	set_num(L, "pnl", pnl);
	set_num(L, "ret", pnl / (b->pos_cost + b->pos_fee));
	lua_pushinteger(L, index - b->pos_index + 1);
	lua_setfield(L, -2, "candles");
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "reason");
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_pop(L, 2);
}

/* steps 1-3 of a candle (book at index 1 of the stack); 1 if anything
   changed: a fill, or an order cancelled */
static int open_candle(lua_State *L, book *b, lua_Integer i, double time, double open,
                       double high, double low)
{
	int filled = 0;

	if (b->pending == MARKET_BUY || b->pending == MARKET_SELL) {
		int side = b->pending;
		b->pending = NONE;
		filled = 1;
		if (side == MARKET_BUY) {
			buy(b, open, time, i);
		} else {
			lua_getiuservalue(L, 1, 2);
			sell(L, b, open, time, i);
		}
	} else if (b->pending == LIMIT_BUY) {
		if (low < b->p_price) {
			b->pending = NONE;
			filled = 1;
			buy(b, open < b->p_price ? open : b->p_price, time, i);
		} else if (i - b->p_index >= b->p_ttl) {
			b->pending = NONE;
			b->cancelled++;
			filled = 1;
		}
	}
	if (b->has_pos && b->pending == NONE) {
		double stop_px = open < b->pos_stop ? open : b->pos_stop;
		double take_px = open > b->pos_take ? open : b->pos_take;
		if (b->pos_stop > 0 && low <= b->pos_stop) {
			if (!refuse_dust(b, stop_px)) {
				lua_pushliteral(L, "stop_loss");
				sell(L, b, stop_px, time, i);
				filled = 1;
			}
		} else if (b->pos_take > 0 && high >= b->pos_take && !refuse_dust(b, take_px)) {
			lua_pushliteral(L, "take_profit");
			sell(L, b, take_px, time, i);
			filled = 1;
		}
	}
	return filled;
}

static int b_open_candle(lua_State *L)
{
	book *b = check_book(L);
	lua_Integer i = luaL_checkinteger(L, 2);
	double t = luaL_checknumber(L, 3), o = luaL_checknumber(L, 4);
	double h = luaL_checknumber(L, 5), l = luaL_checknumber(L, 6);

	/* a live book fills only at the prices of the candle its shield has
	   just accepted as clean */
	if (b->guard != NULL && !shield_clean(b->guard, t)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	b->mark = luaL_optnumber(L, 7, o);
	lua_settop(L, 6);
	lua_pushboolean(L, open_candle(L, b, i, t, o, h, l));
	return 1;
}

static int book_state(const book *b)
{
	return b->guard ? b->guard->state : b->gate_state;
}

/* the Integrity Shield's gate; a refusal is counted */
static int gate(book *b, int entry)
{
	if (shield_allows(book_state(b), entry))
		return 1;
	if (entry)
		b->blocked_entries++;
	else
		b->blocked_exits++;
	return 0;
}

static int refuse(lua_State *L, const book *b)
{
	lua_pushboolean(L, 0);
	lua_pushstring(L, shield_state_name(book_state(b)));
	return 2;
}

static int b_gate(lua_State *L)
{
	book *b = check_book(L);
	lua_pushboolean(L, gate(b, lua_toboolean(L, 2)));
	lua_pushstring(L, shield_state_name(book_state(b)));
	return 2;
}

static int b_guard(lua_State *L)
{
	book *b = check_book(L);
	b->guard = (const shield *)luaL_checkudata(L, 2, SHIELD_MT);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 1, 3);
	return 0;
}

/* book:buy({type = "market"} or {type = "limit", price = p, ttl = n}, index[, max_qty]) */
static int b_buy(lua_State *L)
{
	book *b = check_book(L);
	lua_Integer index = luaL_checkinteger(L, 3);
	double max_qty = luaL_optnumber(L, 4, 0);
	const char *type;

	luaL_checktype(L, 2, LUA_TTABLE);
	if (!isfinite(max_qty) || max_qty < 0)
		return luaL_error(L, "paper: a buy's max_qty must be a finite number >= 0");
	if (b->has_pos || b->pending != NONE)
		return luaL_error(L, "paper: a buy while a position or an order is open");
	if (!gate(b, 1))
		return refuse(L, b);
	lua_getfield(L, 2, "type");
	type = lua_tostring(L, -1);
	if (type && !strcmp(type, "market")) {
		b->pending = MARKET_BUY;
	} else if (type && !strcmp(type, "limit")) {
		lua_getfield(L, 2, "price");
		lua_getfield(L, 2, "ttl");
		b->p_price = floor_step(luaL_checknumber(L, -2), b->tick_scale);
		b->p_ttl = luaL_optinteger(L, -1, 1);
		b->pending = LIMIT_BUY;
	} else {
		return luaL_error(L, "paper: order type must be market or limit");
	}
	b->p_index = index;
	b->p_max = max_qty;
	b->orders++;
	lua_pushboolean(L, 1);
	return 1;
}

/* book:sell(reason, index): the whole position, at the next open */
static int b_sell(lua_State *L)
{
	book *b = check_book(L);

	luaL_checkstring(L, 2);
	luaL_checkinteger(L, 3);
	if (!b->has_pos || b->pending != NONE)
		return luaL_error(L, "paper: a sell without a position, or with an order open");
	if (!gate(b, 0))
		return refuse(L, b);
	if (refuse_dust(b, b->mark)) {
		lua_pushboolean(L, 0);
		lua_pushnil(L);
		lua_pushfstring(L, "the position is dust: %f at %f is under the exchange's %s", b->pos_qty, b->mark,
		                below_minimum(b, b->mark));
		return 3;
	}
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 1, 2);
	b->pending = MARKET_SELL;
	b->orders++;
	lua_pushboolean(L, 1);
	return 1;
}

/* book:configure{position_size, stop_loss, take_profit}: a reloaded
   strategy's sizing and protective exits, for the next entries (an open
   position keeps the stop and take it was entered with) */
static int b_configure(lua_State *L)
{
	book *b = check_book(L);
	double size, sl, tp;

	luaL_checktype(L, 2, LUA_TTABLE);
	size = field(L, 2, "position_size", b->size);
	sl = field(L, 2, "stop_loss", 0);
	tp = field(L, 2, "take_profit", 0);
	if (size <= 0 || size > 1 || sl >= 1)
		return luaL_error(L, "book:configure: position_size in (0, 1], stop_loss < 1");
	b->size = size, b->stop_loss = sl, b->take_profit = tp;
	return 0;
}

/* book:snapshot(): everything but the trades, as a table of numbers and a
   reason string, for the journal; book:restore(t) puts it back */
static const char *const snapshot_fields[] = {
	"quote", "base", "size", "stop_loss", "take_profit", "p_price", "pos_qty", "pos_price",
	"pos_time", "pos_cost", "pos_fee", "pos_stop", "pos_take", "fees", NULL
};

static double *snapshot_slot(book *b, int k)
{
	double *slots[] = {&b->quote, &b->base, &b->size, &b->stop_loss, &b->take_profit, &b->p_price,
	                   &b->pos_qty, &b->pos_price, &b->pos_time, &b->pos_cost, &b->pos_fee,
	                   &b->pos_stop, &b->pos_take, &b->fees};
	return slots[k];
}

static const char *const count_fields[] = {
	"pending", "p_index", "p_ttl", "has_pos", "pos_index", "refused", "cancelled", "orders", "held", NULL
};

static lua_Integer *count_slot(book *b, int k, lua_Integer *tmp)
{
	switch (k) {
	case 0: *tmp = b->pending; return tmp;
	case 1: return &b->p_index;
	case 2: return &b->p_ttl;
	case 3: *tmp = b->has_pos; return tmp;
	case 4: return &b->pos_index;
	case 5: return &b->refused;
	case 6: return &b->cancelled;
	case 7: return &b->orders;
	default: return &b->held;
	}
}

static int b_snapshot(lua_State *L)
{
	book *b = check_book(L);
	lua_Integer tmp;
	int k;

	lua_newtable(L);
	for (k = 0; snapshot_fields[k]; k++)
		set_num(L, snapshot_fields[k], *snapshot_slot(b, k));
	for (k = 0; count_fields[k]; k++) {
		lua_pushinteger(L, *count_slot(b, k, &tmp));
		lua_setfield(L, -2, count_fields[k]);
	}
	lua_getiuservalue(L, 1, 2);
	lua_setfield(L, -2, "sell_reason");
	lua_pushboolean(L, b->pos_dust);
	lua_setfield(L, -2, "dust");
	set_num(L, "p_max", b->p_max);
	return 1;
}

static int b_restore(lua_State *L)
{
	book *b = check_book(L);
	lua_Integer tmp;
	int k;

	luaL_checktype(L, 2, LUA_TTABLE);
	for (k = 0; snapshot_fields[k]; k++) {
		lua_getfield(L, 2, snapshot_fields[k]);
		*snapshot_slot(b, k) = luaL_checknumber(L, -1);
		lua_pop(L, 1);
	}
	for (k = 0; count_fields[k]; k++) {
		lua_Integer *slot = count_slot(b, k, &tmp);
		lua_getfield(L, 2, count_fields[k]);
		*slot = luaL_checkinteger(L, -1);
		lua_pop(L, 1);
		if (k == 0)
			b->pending = (int)tmp;
		else if (k == 3)
			b->has_pos = (int)tmp;
	}
	if (b->pending < NONE || b->pending > LIMIT_BUY)
		return luaL_error(L, "book:restore: bad pending order kind");
	lua_getfield(L, 2, "dust");  /* absent from journals older than it */
	b->pos_dust = lua_toboolean(L, -1);
	lua_getfield(L, 2, "p_max");  /* so is this */
	b->p_max = luaL_optnumber(L, -1, 0);
	lua_pop(L, 2);
	if (!isfinite(b->p_max) || b->p_max < 0)
		return luaL_error(L, "book:restore: bad p_max");
	lua_getfield(L, 2, "sell_reason");
	lua_setiuservalue(L, 1, 2);
	lua_getfield(L, 2, "trades");
	if (lua_istable(L, -1))
		lua_setiuservalue(L, 1, 1);
	return 0;
}

static int b_equity(lua_State *L)
{
	book *b = check_book(L);
	lua_pushnumber(L, b->quote + b->base * luaL_checknumber(L, 2));
	return 1;
}

static void push_position(lua_State *L, const book *b)
{
	if (!b->has_pos) {
		lua_pushnil(L);
		return;
	}
	lua_createtable(L, 0, 7);
	set_num(L, "qty", b->pos_qty);
	set_num(L, "price", b->pos_price);
	set_num(L, "time", b->pos_time);
	lua_pushinteger(L, b->pos_index);
	lua_setfield(L, -2, "index");
	if (b->pos_stop > 0)
		set_num(L, "stop", b->pos_stop);
	if (b->pos_take > 0)
		set_num(L, "take", b->pos_take);
	if (b->pos_dust) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "dust");
	}
}

static void push_in_state(lua_State *L, const book *b)
{
	int k;

	lua_createtable(L, 0, 3);
	for (k = SHIELD_GREEN; k <= SHIELD_RED; k++) {
		lua_pushinteger(L, b->in_state[k]);
		lua_setfield(L, -2, shield_state_name(k));
	}
}

static int b_index(lua_State *L)
{
	book *b = check_book(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "quote")) lua_pushnumber(L, b->quote);
	else if (!strcmp(k, "base")) lua_pushnumber(L, b->base);
	else if (!strcmp(k, "fees")) lua_pushnumber(L, b->fees);
	else if (!strcmp(k, "refused")) lua_pushinteger(L, b->refused);
	else if (!strcmp(k, "cancelled")) lua_pushinteger(L, b->cancelled);
	else if (!strcmp(k, "orders")) lua_pushinteger(L, b->orders);
	else if (!strcmp(k, "held")) lua_pushinteger(L, b->held);
	else if (!strcmp(k, "current")) lua_pushinteger(L, b->current);
	else if (!strcmp(k, "blocked_entries")) lua_pushinteger(L, b->blocked_entries);
	else if (!strcmp(k, "blocked_exits")) lua_pushinteger(L, b->blocked_exits);
	else if (!strcmp(k, "shield")) lua_pushstring(L, shield_state_name(book_state(b)));
	else if (!strcmp(k, "in_state")) push_in_state(L, b);
	else if (!strcmp(k, "pending")) lua_pushboolean(L, b->pending != NONE);
	else if (!strcmp(k, "position")) push_position(L, b);
	else if (!strcmp(k, "trades")) lua_getiuservalue(L, 1, 1);
	else if (!strcmp(k, "capabilities")) {
		lua_getmetatable(L, 1);
		lua_getfield(L, -1, "capabilities");
	} else {
		lua_getmetatable(L, 1);
		lua_getfield(L, -1, "methods");
		lua_getfield(L, -1, k);
	}
	return 1;
}

/* a series field of the table at t, or an error naming it */
static const series *series_field(lua_State *L, int t, const char *k)
{
	const series *s;

	lua_getfield(L, t, k);
	s = series_test(L, -1);
	if (s == NULL)
		luaL_error(L, "book:run: %s must be a series", k);
	lua_pop(L, 1);  /* the table it sits in keeps it alive */
	return s;
}

/*
 * The equity curve of book:run: the equity at each candle's close. It is
 * kept as the balances from the candle they took effect (a step per fill)
 * and the closes, so that a year of minutes costs a few kilobytes instead
 * of a double per candle; curve[k] is computed as the run computed it,
 * quote + base * close. paper.curve(close, first) -> a curve of candles
 * first.. of the close series; #curve, curve[k] (nil out of range).
 */
#define CURVE_MT "nomade.paper.curve"

struct step {
	lua_Integer k;  /* from curve[k] on */
	double quote, base;
};

typedef struct {
	struct step *steps;
	size_t nsteps, cap, at;  /* at: the step the last lookup found */
	lua_Integer n, first;    /* its candles, the first's index in close */
	const series *close;     /* anchored in the curve's user value */
} curve;

static int c_new(lua_State *L)
{
	const series *close = series_check(L, 1);
	lua_Integer first = luaL_checkinteger(L, 2);
	curve *cv;

	luaL_argcheck(L, first >= 1, 2, "must be >= 1");
	cv = (curve *)lua_newuserdatauv(L, sizeof *cv, 1);
	memset(cv, 0, sizeof *cv);
	cv->first = first;
	cv->close = close;
	luaL_setmetatable(L, CURVE_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* the next candle's balances; a step when they changed */
static void curve_push(lua_State *L, curve *cv, double quote, double base)
{
	struct step *last = cv->nsteps ? &cv->steps[cv->nsteps - 1] : NULL;

	cv->n++;
	if (last != NULL && memcmp(&last->quote, &quote, sizeof quote) == 0 && memcmp(&last->base, &base, sizeof base) == 0)
		return;
	if (cv->nsteps == cv->cap) {
		size_t cap = cv->cap ? cv->cap * 2 : 64;
		struct step *p = (struct step *)realloc(cv->steps, cap * sizeof *p);
		if (p == NULL)
			luaL_error(L, "book:run: out of memory for the equity curve");
		cv->steps = p, cv->cap = cap;
	}
	cv->steps[cv->nsteps++] = (struct step){cv->n, quote, base};
}

/* the step curve[k] is in (1 <= k <= n): the last lookup's or one of the
   next two, as the report reads it in order, else by bisection */
static const struct step *step_of(curve *cv, lua_Integer k)
{
	size_t lo = 0, hi = cv->nsteps, j = cv->at;
	int hop;

	if (j < cv->nsteps && cv->steps[j].k <= k) {
		for (hop = 0; hop < 2 && j + 1 < cv->nsteps && cv->steps[j + 1].k <= k; hop++)
			j++;
		if (j + 1 == cv->nsteps || cv->steps[j + 1].k > k) {
			cv->at = j;
			return &cv->steps[j];
		}
	}
	while (hi - lo > 1) {  /* steps[lo].k <= k < steps[hi].k */
		size_t mid = lo + (hi - lo) / 2;
		if (cv->steps[mid].k <= k)
			lo = mid;
		else
			hi = mid;
	}
	cv->at = lo;
	return &cv->steps[lo];
}

static int c_index(lua_State *L)
{
	curve *cv = (curve *)luaL_checkudata(L, 1, CURVE_MT);
	int isint;
	lua_Integer k = lua_tointegerx(L, 2, &isint);
	const struct step *st;

	if (!isint || k < 1 || k > cv->n || (size_t)(cv->first + k - 1) > cv->close->len) {
		lua_pushnil(L);
		return 1;
	}
	st = step_of(cv, k);
	lua_pushnumber(L, st->quote + st->base * cv->close->v[cv->first + k - 2]);
	return 1;
}

static int c_len(lua_State *L)
{
	lua_pushinteger(L, ((curve *)luaL_checkudata(L, 1, CURVE_MT))->n);
	return 1;
}

static int c_gc(lua_State *L)
{
	curve *cv = (curve *)luaL_checkudata(L, 1, CURVE_MT);

	free(cv->steps);
	cv->steps = NULL;
	cv->nsteps = cv->cap = 0;
	cv->n = 0;
	return 0;
}

/* the turn's guard and what book:run's turns are told */
struct turns {
	struct budget *guard;
	lua_Integer budget;
	int decide, on_turn;  /* stack indexes (on_turn 0: none) */
};

/* decide(i) under host.guard(budget): what it did to on_turn (if any);
   its error raised (it reaches book:run's caller) */
static void turn(lua_State *L, const struct turns *t, lua_Integer i)
{
	if (t->on_turn)
		lua_pushvalue(L, t->on_turn);
	lua_pushvalue(L, t->decide);
	lua_pushinteger(L, i);
	if (sched_guard_pcall(L, t->guard, t->budget, 1, 2) != LUA_OK)  /* what, detail */
		lua_error(L);
	if (t->on_turn) {
		lua_pushinteger(L, i);
		lua_insert(L, -3);  /* on_turn, i, what, detail */
		lua_call(L, 3, 0);
		return;
	}
	lua_pop(L, 2);
}

/*
 * book:run{first =, last =, candles = {time, open, ..}, view = m's table,
 *          ind = m.ind's table, indicators = {name = series}, cursor =,
 *          equity = paper.curve(close, first), decide = function(i), budget = instructions,
 *          on_turn = function(i, what, detail) or nil, changed = function(),
 *          state = the shield's scan.state}
 * For each candle i in first..last: move the cursor, copy the candle, the
 * shield's state (byte i of state, from its scan) and the indicator values
 * into view and ind, fill (steps 1-3), call changed()
 * if an order filled or was cancelled, record the equity at the close,
 * and, unless i is the last, call decide(i) under host.guard(budget)
 * and tell on_turn what it did; a failed turn raises its error (the
 * value decide raised, or the budget's). book.current says where.
 */
static int b_run(lua_State *L)
{
	book *b = check_book(L);
	const series *col[6], **ind;
	const unsigned char *st;
	size_t stlen = 0;
	int k, g, nind = 0, view, indt, keys, filled, names;
	lua_Integer i, first, last;
	struct turns t;
	curve *eq;
	size_t *cur;

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	lua_getfield(L, 2, "first");
	lua_getfield(L, 2, "last");
	first = luaL_checkinteger(L, 3), last = luaL_checkinteger(L, 4);
	lua_getfield(L, 2, "candles");  /* 5 */
	luaL_checktype(L, 5, LUA_TTABLE);
	for (k = 0; k < 6; k++)
		col[k] = series_field(L, 5, candle_columns[k]);
	lua_getfield(L, 2, "view");  /* 6 */
	lua_getfield(L, 2, "ind");   /* 7 */
	lua_getfield(L, 2, "indicators");  /* 8 */
	lua_getfield(L, 2, "cursor");  /* 9 */
	lua_getfield(L, 2, "equity");  /* 10 */
	lua_getfield(L, 2, "decide");  /* 11 */
	lua_getfield(L, 2, "changed");  /* 12 */
	luaL_checktype(L, 6, LUA_TTABLE);
	luaL_checktype(L, 7, LUA_TTABLE);
	luaL_checktype(L, 8, LUA_TTABLE);
	cur = series_cursor_pos(L, 9);
	eq = (curve *)luaL_checkudata(L, 10, CURVE_MT);
	luaL_argcheck(L, eq->n == 0 && eq->first == first && eq->close == col[4], 2,
		"equity must be a new paper.curve(candles.close, first)");
	luaL_checktype(L, 11, LUA_TFUNCTION);
	luaL_checktype(L, 12, LUA_TFUNCTION);
	view = 6, indt = 7, t.decide = 11, filled = 12;
	for (k = 0; k < 6; k++)
		if (col[k]->len < (size_t)last)
			return luaL_error(L, "book:run: last (%d) is past the candles", (int)last);
	if (first < 1 || first > last)
		return luaL_error(L, "book:run: bad span %d..%d", (int)first, (int)last);
	/* the indicators: names in a table (keys), series pointers in scratch */
	lua_newtable(L);  /* 13: keys */
	keys = 13;
	lua_pushnil(L);
	while (lua_next(L, 8)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, ++nind);
	}
	ind = (const series **)lua_newuserdatauv(L, (size_t)(nind + 1) * sizeof *ind, 0);  /* 14 */
	for (k = 0; k < nind; k++) {
		lua_rawgeti(L, keys, k + 1);
		ind[k] = series_field(L, 8, lua_tostring(L, -1));
		lua_pop(L, 1);
		if (ind[k]->len < (size_t)last)
			return luaL_error(L, "book:run: indicator too short");
	}
	lua_getfield(L, 2, "state");  /* 15 */
	st = lua_type(L, 15) == LUA_TUSERDATA ? (const unsigned char *)lua_touserdata(L, 15) : NULL;
	stlen = st != NULL ? lua_rawlen(L, 15) : 0;
	if (st == NULL || stlen < (size_t)last)  /* no shield, no run */
		return luaL_error(L, "book:run: state must be the shield's scan, a byte per candle");
	lua_getfield(L, 2, "budget");  /* 16 */
	t.budget = luaL_checkinteger(L, 16);
	luaL_argcheck(L, t.budget > 0, 2, "budget must be > 0");
	lua_getfield(L, 2, "on_turn");  /* 17 */
	t.on_turn = lua_isnil(L, 17) ? 0 : 17;
	t.guard = sched_guard_open(L);  /* 18, kept on the stack */
	/* the view's keys as Lua strings, 19..26: lua_setfield would look each
	   C string up again on every candle */
	names = lua_gettop(L) + 1;
	for (k = 0; k < 6; k++)
		lua_pushstring(L, candle_columns[k]);
	lua_pushliteral(L, "index");
	lua_pushliteral(L, "equity");
	for (i = first; i <= last; i++) {
		double close = col[4]->v[i - 1];
		b->current = i;
		*cur = (size_t)i;
		for (k = 0; k < 6; k++) {
			lua_pushvalue(L, names + k);
			lua_pushnumber(L, col[k]->v[i - 1]);
			lua_rawset(L, view);
		}
		lua_pushvalue(L, names + 6);
		lua_pushinteger(L, i);
		lua_rawset(L, view);
		/* anything but 0 or 1 is RED: fail closed */
		g = (st[i - 1] & ~SHIELD_SUSPECT_BIT) == 0 ? SHIELD_GREEN
		    : (st[i - 1] & ~SHIELD_SUSPECT_BIT) == 1 ? SHIELD_AMBER : SHIELD_RED;
		if (g != b->gate_state || i == first) {
			lua_pushstring(L, shield_state_name(g));
			lua_setfield(L, view, "shield");
		}
		b->gate_state = g;
		b->in_state[g]++;
		for (k = 0; k < nind; k++) {
			lua_rawgeti(L, keys, k + 1);
			lua_pushnumber(L, ind[k]->v[i - 1]);
			lua_rawset(L, indt);
		}
		if (i > first && !(st[i - 1] & SHIELD_SUSPECT_BIT)
		    && open_candle(L, b, i, col[0]->v[i - 1], col[1]->v[i - 1], col[2]->v[i - 1], col[3]->v[i - 1])) {
			lua_pushvalue(L, filled);
			lua_call(L, 0, 0);
		}
		if (!(st[i - 1] & SHIELD_SUSPECT_BIT))
			b->mark = close;
		lua_pushvalue(L, names + 7);
		lua_pushnumber(L, b->quote + b->base * close);
		lua_rawset(L, view);
		curve_push(L, eq, b->quote, b->base);
		if (b->has_pos)
			b->held++;
		if (i < last)
			turn(L, &t, i);
	}
	return 0;
}

/* the capabilities proxy: reads go to the table in upvalue 1 (or, for
   __pairs, through caps_next), writes are refused */
static int caps_readonly(lua_State *L)
{
	return luaL_error(L, "book.capabilities is read-only (tried to set %s)", luaL_tolstring(L, 2, NULL));
}

static int caps_next(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_next(L, lua_upvalueindex(1)))
		return 2;
	lua_pushnil(L);
	return 1;
}

static int caps_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushnil(L);
	lua_pushnil(L);
	return 3;
}

/* pushes the paper book's capabilities, read-only */
static void push_capabilities(lua_State *L)
{
	static const char *const no[] = {"private_stream", "reconcile", "stop", "cancel", NULL};
	int k;

	lua_newtable(L);  /* the proxy */
	lua_createtable(L, 0, 4);  /* its metatable */
	lua_createtable(L, 0, 6);  /* the capabilities */
	lua_pushliteral(L, "paper");
	lua_setfield(L, -2, "exchange");
	lua_pushliteral(L, "next_open");
	lua_setfield(L, -2, "fills_at");
	for (k = 0; no[k]; k++) {
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, no[k]);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "__index");
	lua_pushcclosure(L, caps_next, 1);
	lua_pushcclosure(L, caps_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushcfunction(L, caps_readonly);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}

static const luaL_Reg methods[] = {
	{"buy", b_buy},
	{"sell", b_sell},
	{"open_candle", b_open_candle},
	{"equity", b_equity},
	{"configure", b_configure},
	{"snapshot", b_snapshot},
	{"restore", b_restore},
	{"run", b_run},
	{"gate", b_gate},
	{"guard", b_guard},
	{NULL, NULL}
};

static const luaL_Reg funcs[] = {
	{"new", p_new},
	{"curve", c_new},
	{NULL, NULL}
};

static const luaL_Reg curve_meta[] = {
	{"__index", c_index},
	{"__len", c_len},
	{"__gc", c_gc},
	{NULL, NULL}
};

int luaopen_nomade_paper(lua_State *L)
{
	series_open(L);
	if (luaL_newmetatable(L, BOOK_MT)) {
		lua_pushcfunction(L, b_index);
		lua_setfield(L, -2, "__index");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "methods");
		push_capabilities(L);
		lua_setfield(L, -2, "capabilities");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, CURVE_MT))
		luaL_setfuncs(L, curve_meta, 0);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
