-- The packed series: construction, indexing, slices, conversion, errors.
local t = require "testlib"
local ta = require "nomade.ta"
local nan = 0 / 0

local s = ta.series { 1, 2, 3 }
t.eq(#s, 3, "length")
t.ok(s[1] == 1 and s[3] == 3, "1-based indexing")
t.ok(s[0] == nil and s[4] == nil and s[-1] == nil, "out of range reads are nil")
s:push(4, 5)
t.ok(#s == 5 and s[5] == 5, "push appends several values")
s[2] = 20
t.eq(s[2], 20, "assignment within range")
t.raises(function() s[7] = 1 end, "series: index 7 out of range (1..5)", "assignment out of range")
t.raises(function() s[1] = "x" end, "number expected", "assignment of a non-number")
t.same(s:slice(2, 3), { 20, 3 }, 0, "slice(i, j)")
t.same(s:slice(-2), { 4, 5 }, 0, "slice from the end")
t.eq(#s:slice(4, 2), 0, "an empty slice")
t.same(s:slice(-100, 100), { 1, 20, 3, 4, 5 }, 0, "slice clamps to the series")
t.ok(s:last() == 5 and s:last(2) == 4 and s:last(6) == nil, "last(k)")
local tbl = s:totable()
t.ok(type(tbl) == "table" and #tbl == 5 and tbl[2] == 20, "totable")
local sum = 0
for _, v in ipairs(s) do sum = sum + v end
t.eq(sum, 33, "ipairs walks the series")
t.eq(#ta.series(), 0, "an empty series")
t.raises(function() ta.series { 1, "x" } end, "bad argument #1 to 'series' (item 2 is string, not a number)", "a non-number item")
local big = ta.series()
for i = 1, 100000 do big:push(i) end
t.ok(#big == 100000 and big[100000] == 100000, "grows to 100000 values")
t.ok(ta.isnan(ta.series { 0 / 0 }[1]), "a series holds NaN")
t.raises(function() ta.isnan("x") end, "bad argument #1 to 'isnan'", "isnan needs a number")


-- views: read-only windows that a cursor moves (the backtester's guard
-- against look-ahead)
local full = ta.series { 10, 20, 30, 40 }
local cur = ta.cursor(2)
local v = cur:view(full)
t.ok(#v == 2 and v[2] == 20 and v[3] == nil, "a view shows only up to its cursor")
t.ok(v:last() == 20 and #v:slice(1) == 2 and #v:totable() == 2, "view methods stop at the cursor")
cur:set(4)
t.ok(#v == 4 and v[4] == 40 and cur:get() == 4, "moving the cursor reveals more")
cur:set(10)
t.eq(#v, 4, "a view never shows past its series")
t.raises(function() v[1] = 0 end, "attempt to change a read-only view", "a view is read-only")
t.eq(v.push, nil, "a view has no push")
cur:set(3)
t.same(ta.sma(v, 2), { nan, 15, 25 }, 0, "batch indicators accept views, up to the cursor")
local st = ta.sma(2)
t.same(st:update(v), { nan, 15, 25 }, 0, "streams accept views as chunks")
t.raises(function() ta.cursor(-1) end, "position must be >= 0", "cursor position >= 0")
t.raises(function() ta.sma({}, 2) end, "bad argument #1 to 'sma' (number expected, got table)", "a table is not a series")

t.done()
