-- engine.step, the one candle path of nomade run (and of nomade audit and
-- tribunal ask): a candle goes through the shield, the columns and the
-- indicator streams, the fills at its prices and the strategy's turn, and
-- the step says what happened. Also a journal's candles resumed into a new
-- engine, and a reload's indicators caught up.
local t = require "testlib"
local engine = require "nomade.engine"
local strategy = require "nomade.strategy"
local shield_mod = require "nomade.shield"
local ta = require "nomade.ta"

local T0, STEP = 1796066400000, 3600000  -- the test's clock: candle k opens at T0 + k * STEP

local SRC = [[
settings = { interval = "1h", history = 4, position_size = 0.5 }
indicators = { e = ta.ema(3), bands = ta.bbands(3) }
function regime(m) return "R" end
function entry(m, r, v) return true end
function exit(m, p) if m.index >= p.index + 1 then return "done" end end
function prompt(m, r) return "p" end
]]

local function judge() return { signal = "BUY", score = 100, source = "off", reasoning = "off" } end

local function make(src)
  local strat = assert(strategy.load(src or SRC, "=engine-test.lua"))
  local sh = assert(shield_mod.new(strat))
  local rules = { qty_step = { scale = 6 }, tick = { scale = 2 }, min_qty = 0, min_amt = 0 }
  local book = engine.paper_book(strat.settings, rules, { cash = 10000, fee = 0 })
  book:guard(sh)
  return engine.new { strategy = strat, book = book, judge = judge, shield = sh, rules = rules }, book, strat, sh
end

-- candle k: a gentle rise, so that every check stays GREEN
local function row(k)
  local p = 100 + k
  return { time = T0 + k * STEP, open = p, high = p + 1, low = p - 1, close = p + 0.5, volume = 10 + k }
end

local e, book = make()
local outs = {}
for k = 1, 7 do outs[k] = e.step(row(k), true) end
t.ok(outs[1].accepted and #outs[1].fills == 0 and not outs[1].decided and not outs[3].decided,
  "no turn before history candles")
t.ok(outs[4].decided and outs[4].ok and outs[4].what == "buy" and outs[4].detail.signal == "BUY",
  "the turn on the history-th candle: a buy, with its verdict")
t.eq(e.n, 7, "e.n counts the candles in")
local f5 = outs[5].fills
t.ok(#f5 == 1 and f5[1].side == "buy" and f5[1].price == row(5).open and f5[1].qty > 0,
  "the next candle fills the buy at its open, and says so")
t.ok(outs[5].what == nil and outs[6].what == "sell" and outs[6].detail == "done", "exit's sell decided when it says")
local f7 = outs[7].fills
t.ok(#f7 == 1 and f7[1].side == "sell" and f7[1].price == row(7).open and f7[1].reason == "done"
  and math.abs(f7[1].pnl - f7[1].qty * (row(7).open - row(5).open)) < 1e-6, "the sell filled, with its pnl")
t.eq(#book.trades, 1, "the book holds the trade")

-- m is the candle's: the columns and the streams' values
local m = e.m
local ema = ta.ema(3)
local want
for k = 1, 7 do want = ema:update(row(k).close) end
t.ok(m.close == row(7).close and m.candles.close[1] == row(1).close and m.candles.close[7] == row(7).close
  and m.index == 7, "m moved to the candle, m.candles the series so far")
t.ok(math.abs(m.ind.e - want) < 1e-9 and m.ind.bands_upper > m.ind.bands_lower, "m.ind: the streams' values")
t.ok(m.equity == book:equity(row(7).close), "m.equity at the close")

-- a candle the shield refuses goes no further
local bad = row(8)
bad.low, bad.high = bad.high + 5, bad.low
local r = e.step(bad, true)
t.ok(not r.accepted and r.verdict == "refused" and type(r.refusal) == "string" and r.fills == nil and e.n == 7,
  "a refused candle: not accepted, why, and the engine did not move")

-- caught up, not live: no turn
local e2 = make()
local quiet = true
for k = 1, 6 do quiet = quiet and not e2.step(row(k), false).decided end
t.ok(quiet, "candles that are not live get no turn")

-- a journal's candles resumed: the same m as the engine that saw them
local e3, book3 = make()
local rows = {}
for k = 1, 7 do rows[k] = { row(k).time, row(k).open, row(k).high, row(k).low, row(k).close, row(k).volume } end
e3.resume(rows, book:snapshot())
t.ok(e3.n == 7 and math.abs(e3.m.ind.e - want) < 1e-9 and e3.m.close == row(7).close
  and book3:equity(row(7).close) == book:equity(row(7).close) and e3.m.pending, "resume: the candles, the streams "
  .. "caught up, the book restored (its pending buy too)")
local a8, b8 = e.step(row(8), true), e3.step(row(8), true)
t.ok(#a8.fills == 1 and #b8.fills == 1 and b8.fills[1].side == "buy" and b8.fills[1].qty == a8.fills[1].qty
  and b8.fills[1].price == a8.fills[1].price and e3.n == 8, "after a resume the steps go on as they would have, "
  .. "old fills not said again")

-- a reload: the new strategy's indicators from the candles so far
e3.reload(assert(strategy.load(SRC:gsub("bands = ta.bbands%(3%)", "s = ta.sma(2)"), "=engine-test.lua")))
t.ok(e3.m.ind.s == (row(7).close + row(8).close) / 2 and e3.m.ind.bands_upper == nil,
  "reload: the new indicators caught up, the old ones gone")

t.raises(function() engine.new { strategy = assert(strategy.load(SRC, "=x")), book = book, judge = judge } end,
  "engine.new: an engine without o.columns takes candles through a shield", "no shield, no step: said")
t.done()
