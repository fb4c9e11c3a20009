/*
 * series.h: the packed series, a growable C array of doubles as a Lua
 * userdata ("nomade.series"), so that indicators and candle columns never
 * walk a Lua table per element. Owned by the Lua GC.
 */
#ifndef NOMADE_SERIES_H
#define NOMADE_SERIES_H

#include <stddef.h>
#include <lua.h>

#define SERIES_MT "nomade.series"

typedef struct {
	double *v;
	size_t len, cap;
} series;

/* pushes a new empty series with room for cap values */
series *series_new(lua_State *L, size_t cap);
series *series_check(lua_State *L, int arg);
series *series_test(lua_State *L, int arg);
/* appends; raises a memory error when the array cannot grow */
void series_push(lua_State *L, series *s, double x);
/* makes room for len values and sets the length (contents undefined) */
double *series_resize(lua_State *L, series *s, size_t len);
void series_open(lua_State *L);  /* registers the metatables */
int series_ctor(lua_State *L);   /* ta.series([table]) */

/*
 * A view is a read-only window onto a series: its first `*limit` values,
 * where the limit belongs to a cursor that many views share. The
 * backtester hands views to strategies and moves one cursor per candle,
 * so a strategy cannot see (or change) a candle it should not know yet.
 */
#define VIEW_MT "nomade.series.view"
#define CURSOR_MT "nomade.series.cursor"

int series_cursor_ctor(lua_State *L);  /* ta.cursor([n]) */
/* the position of the cursor at arg, to move it from C (raises if not one) */
size_t *series_cursor_pos(lua_State *L, int arg);
/*
 * ta.stamper(cursor, target, {key = series, ...}) returns st, and st(i)
 * moves the cursor to i and sets target[key] = series[i] for every key, in
 * one call: the backtester's per-candle update of the market view.
 */
int series_stamper_ctor(lua_State *L);
/* is arg a series or a view? then *p, *len are its visible values */
int series_span(lua_State *L, int arg, const double **p, size_t *len);

#endif
