-- The risk limits (nomade.risk) in every mode: the module by hand (the
-- day's loss by UTC day, the orders of the last hour by candle time, the
-- cap floored to the step, its snapshot), then one strategy backtested
-- over a candle file, run on paper over the same file, and run live with
-- --exec bybit against the stand-in showing the same candles (its fills
-- at each candle's close, as the paper book fills at the next open): the
-- cap, max_orders_per_hour and the day's loss trip on the same candles in
-- all three.
local t = require "testlib"
local bt = require "btlib"
local x = require "livex"
local risk = require "nomade.risk"
local instruments = require "nomade.instruments"
local bybit = require "nomade.bybit.rest"

local MIN, DAY = 60000, 86400000
local rules = assert(require("nomade.bybit.instruments").load(nil, "BTCUSDT"))
local function settings(o)
  local s = { max_position_value = 1000, max_orders_per_hour = 12, max_daily_loss = 0.05, on_daily_loss = "hold" }
  for k, v in pairs(o or {}) do s[k] = v end
  return s
end

-- 1. the module by hand
do
  local said = {}
  local r = risk.new(settings { max_daily_loss = 0.01 }, rules, function(on, why, time)
    said[#said + 1] = { on = on, why = why, time = time }
  end)
  local day0 = 20000 * DAY
  t.eq(r:candle(day0 + 5 * MIN, 10000), false, "the day's first candle sets its starting equity")
  t.eq(r:candle(day0 + 6 * MIN, 9901), false, "a loss of 0.99% is within max_daily_loss = 0.01")
  t.eq(r:candle(day0 + 7 * MIN, 9899), true, "a loss of 1.01% breaches it")
  t.ok(said[#said].on and said[#said].time == day0 + 7 * MIN and said[#said].why:find("max_daily_loss", 1, true),
    "the breach is signalled at the candle's time, naming the limit", said[#said].why)
  t.eq(r:candle(day0 + 8 * MIN, 10500), true, "it lasts the day, even when the equity comes back")
  local cap, why = r:entry(day0 + 8 * MIN, 20000)
  t.ok(not cap and why:find("max_daily_loss", 1, true), "no entry while breached", why)
  t.eq(r:flatten(), false, "hold: a breach does not sell")
  r:configure(settings { max_daily_loss = 0.01, on_daily_loss = "flatten" })
  t.eq(r:flatten(), true, "flatten (a reload's setting, the state kept): it sells")
  local fresh = risk.new(settings { on_daily_loss = "flatten" }, rules, function(on, _, time)
    said[#said + 1] = { on = on, time = time }
  end)
  fresh:restore(r:snapshot())
  t.ok(said[#said].on and said[#said].time == day0 and fresh:flatten(), "restored from the snapshot, the breach "
    .. "holds and is signalled again")
  t.eq(r:candle(day0 + DAY, 10500), false, "the next UTC day starts clear")
  t.eq(said[#said].on, false, "and the clearing is signalled")

  r = risk.new(settings { max_orders_per_hour = 2 }, rules)
  r:sent(day0)
  r:sent(day0 + 30 * MIN)
  cap, why = r:entry(day0 + 59 * MIN, 20000)
  t.ok(not cap and why == "2 orders in the last hour (max_orders_per_hour = 2)", "the third order within the hour "
    .. "(by candle time) is refused", why)
  t.ok(r:entry(day0 + 60 * MIN, 20000), "an hour after the first, it goes")
  t.eq(r:entry(day0 + 60 * MIN, 30000), instruments.floor(1000 / 30000, rules.qty_step),
    "the cap: max_position_value at the price, floored to the quantity step")
  t.eq(r:entry(day0 + 60 * MIN, 30000), 0.033333, "(1000 / 30000 floored to 0.000001)")
  r:configure(settings { max_position_value = 4 })
  cap, why = r:entry(day0 + 60 * MIN, 30000)
  t.ok(not cap and why:find("below the exchange's minimum order", 1, true), "a cap under the minimum order: refused, "
    .. "saying so", why)
end

-- 2. under the cap, a backtest's sizing is as before (the hand-worked
-- market buy of backtest.test.lua, with a cap it stays under)
do
  local data = bt.csv({ { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 },
    { 100, 101, 99, 100 }, { 105, 106, 104, 105 }, { 110, 111, 109, 110 }, { 110, 111, 109, 110 } })
  local strat = bt.file([[
settings = { interval = "1h", history = 1, position_size = 0.5, max_position_value = 6000 }
function regime(m) return "ANY" end
function entry(m, r, v) if v == nil then return m.index == 3 end return true end
function prompt(m, r) return "p" end
function exit(m, p) return m.index == 5 end
]])
  local r = assert(bt.run { shield = "jump_pct=100", strategy = strat, data = data })
  t.eq(r.book.trades[1].qty, 49.950049, "floor(5000 / (100 * 1.001)) under a cap of 6000 at 90: not capped")
end

-- 3. the same candles in every mode
local ex = x.exchange()
t.ok(ex, "the stand-in started")
ex.control { rate_limits = false }

-- the candles the stand-in will show from its current minute on (L1 ..
-- L8), after `history` - 1 before them: read ahead of time by shifting
-- its series, written as a CSV file; returns its path and the rows
local HISTORY, LIVE = 100, 8
local function plan()
  x.close_candle(ex)  -- early in a minute: none closes unasked
  x.pin(ex, 30)
  local m0 = math.tointeger(ex.control().server_time // MIN * MIN)
  local off, ahead = x.PRICES_AT - m0, (LIVE + 2) * MIN
  ex.control { series_offset_ms = off + ahead }
  local c = assert(bybit.new { base = ex.base }:candles("BTCUSDT", "1m", HISTORY - 1 + LIVE,
    { ["end"] = m0 - ahead + (LIVE - 1) * MIN }))
  ex.control { series_offset_ms = off }
  local path, rows = os.tmpname() .. ".csv", {}
  local f = assert(io.open(path, "w"))
  f:write("open_time_ms,open,high,low,close,volume\n")
  for k = 1, c.n do
    rows[k] = { time = math.tointeger(c.time[k] + ahead), close = c.close[k] }
    f:write(string.format("%d,%.1f,%.1f,%.1f,%.1f,%.6f\n", rows[k].time, c.open[k], c.high[k], c.low[k], c.close[k],
      c.volume[k]))
  end
  f:close()
  t.ok(c.n == HISTORY - 1 + LIVE and rows[HISTORY].time == m0, "the candles ahead, read from the stand-in", c.n)
  return path, rows
end

local function iso(ms) return os.date("!%Y-%m-%d %H:%M", ms // 1000) end

-- what a turn did, in words the three modes share: the day's loss
-- stops entries at the gate in a run (its shield is AMBER) and in the
-- engine in a backtest (no live shield there)
local function word(what, detail)
  local text = tostring(detail)
  if (what == "blocked" or what == "refused") and text:find("max_daily_loss", 1, true) then return "no entry: daily loss" end
  if what == "refused" and text:find("max_orders_per_hour", 1, true) then return "refused: orders per hour" end
  return tostring(what) .. (what == "refused" and ": " .. text or "")
end

-- the backtest: {iso time = word} for L1 .. L_LIVE-1, and the bought qty
local function backtest(strat, data)
  local run = assert(require("nomade.backtest").prepare { strategy = strat, data = data, shield = "recovery=1" })
  local turns = { reasons = {} }
  run.on_turn = function(i, what, detail) turns[iso(run.c.time[i])] = word(what, detail) end
  local r = require("nomade.backtest").execute(run)
  local buys = {}
  for _, tr in ipairs(r.book.trades) do buys[#buys + 1], turns.reasons[#turns.reasons + 1] = tr.qty, tr.reason end
  if r.book.position then buys[#buys + 1] = r.book.position.qty end
  return turns, buys
end

-- a run's log (--log-format json) -> the same, read off its events: what
-- a turn did is logged before the candle's line
local function from_log(events)
  local turns, buys, pending = { reasons = {} }, {}, nil
  for _, e in ipairs(events) do
    if e.event == "decision" and (e.outcome == "buy" or e.outcome == "sell") then
      pending = e.outcome
    elseif e.event == "refused_order" then
      pending = word("refused", e.why)
    elseif e.event == "blocked" then
      pending = word("blocked", e.why)
    elseif e.event == "fill" and e.side == "buy" then
      buys[#buys + 1] = e.qty
    elseif e.event == "trade" or (e.event == "fill" and e.side == "sell" and e.reason) then
      turns.reasons[#turns.reasons + 1] = e.reason
    elseif e.event == "candle" then
      turns[e.time] = pending
      pending = nil
    end
  end
  return turns, buys
end

local function paper(strat, data)
  local dir = x.tmpdir()
  local rc, out, err = t.run(string.format("run %s --feed replay:%s --speed max --journal %s/j.journal --socket %s/sock "
    .. "--http off --log-format json --shield recovery=1", strat, data, dir, dir))
  local p = { out = dir .. "/out" }
  local f = assert(io.open(p.out, "w"))
  f:write(out, "\n", err)
  f:close()
  t.eq(rc, 0, "the paper run over the file ends")
  return from_log(x.events(p))
end

-- live: before each close the stand-in's book is set to that candle's
-- close, so a market order fills where the paper book fills it (the next
-- open is this close)
local function live(dir, rows)
  local p = x.start(ex, dir, "--http off")
  t.ok(p.ready, "nomade run --exec bybit starts", x.slurp(p.out):sub(1, 1500))
  for j = 1, LIVE - 1 do
    ex.control { set_price = { symbol = "BTCUSDT", price = string.format("%.1f", rows[HISTORY - 1 + j].close) } }
    x.close_candle(ex)
    x.wait(p, 10, "candle", nil, j)
    x.agrees(p, ex)
  end
  x.stop(p)
  local turns, buys = from_log(x.events(p))
  return turns, buys, p
end

local function strategy(dir, extra, exit)
  local path = dir .. "/s.lua"
  local f = assert(io.open(path, "w"))
  f:write(string.format([[
settings = { symbol = "BTCUSDT", interval = "1m", history = %d, position_size = 0.5, %s }
function regime(m) return "any" end
function entry(m, r, v) if v then return { type = "market" } end return true end
%s
function prompt() return "p" end
]], HISTORY, extra, exit))
  f:close()
  return path
end

-- each mode's turns on L1 .. L_LIVE-1 against the words expected
local function same(name, rows, want, turns)
  local got = {}
  for j = 1, #want do got[j] = turns[iso(rows[HISTORY - 1 + j].time)] or "nothing" end
  t.eq(table.concat(got, ", "), table.concat(want, ", "), name)
end

local function cap(value, close) return instruments.floor(value / close, rules.qty_step) end

-- 3a. the cap and max_orders_per_hour: buy, sell, buy, sell (exits are
-- never held back), then 4 orders in the hour refuse the entries
do
  local dir = x.tmpdir()
  local strat = strategy(dir, "max_position_value = 200, max_orders_per_hour = 3, max_daily_loss = 0.5",
    'function exit() return "out" end')
  local data, rows = plan()
  local want = { "buy", "sell", "buy", "sell", "refused: orders per hour", "refused: orders per hour" }
  local c1, c3 = rows[HISTORY].close, rows[HISTORY + 2].close
  local bturns, bbuys = backtest(strat, data)
  same("backtest: the orders per hour trip on L5 and L6", rows, want, bturns)
  t.ok(bbuys[1] == cap(200, c1) and bbuys[2] == cap(200, c3), "backtest: each entry capped to max_position_value "
    .. "at its close", table.concat(bbuys, " "))
  local pturns, pbuys = paper(strat, data)
  same("paper: the same candles", rows, want, pturns)
  t.ok(pbuys[1] == cap(200, c1) and pbuys[2] == cap(200, c3), "paper: the same capped quantities",
    table.concat(pbuys, " "))
  local lturns, lbuys, p = live(dir, rows)
  same("live (--exec bybit): the same candles", rows, want, lturns)
  t.ok(lbuys[1] == cap(200, c1) and lbuys[2] == cap(200, c3), "live: the same capped quantities",
    table.concat(lbuys, " "))
  t.eq(#x.all(p, "risk"), 2, "live: each cap is logged, as before")
end

-- 3b. the day's loss: a position of 4000 USDT loses the fees and more on
-- L2, beyond 5 USDT (max_daily_loss 0.0005 of 10000); flatten sells it
-- there, and no entry follows that day
do
  local dir = x.tmpdir()
  local strat = strategy(dir, 'max_position_value = 4000, max_daily_loss = 0.0005, on_daily_loss = "flatten"',
    "function exit() end")
  ex.control { reset = true }
  ex.control { rate_limits = false }
  local data, rows = plan()
  local want = { "buy", "sell", "no entry: daily loss", "no entry: daily loss", "no entry: daily loss" }
  local c1 = rows[HISTORY].close
  local bturns, bbuys = backtest(strat, data)
  same("backtest: the day's loss trips on L2 and flattens", rows, want, bturns)
  t.eq(bbuys[1], cap(4000, c1), "backtest: the entry capped to 4000 USDT at its close")
  t.eq(bturns.reasons[1], "daily_loss", "backtest: the trade's reason is daily_loss")
  local pturns, pbuys = paper(strat, data)
  same("paper: the same candles", rows, want, pturns)
  t.eq(pbuys[1], cap(4000, c1), "paper: the same quantity")
  t.eq(pturns.reasons[1], "daily_loss", "paper: the trade's reason is daily_loss")
  local lturns, lbuys, p = live(dir, rows)
  same("live (--exec bybit): the same candles", rows, want, lturns)
  t.eq(lbuys[1], cap(4000, c1), "live: the same quantity")
  t.eq(lturns.reasons[1], "daily_loss", "live: the trade's reason is daily_loss")
  local amber = x.all(p, "shield", function(e) return e.check == "risk" and e.to == "AMBER" end)
  t.eq(#amber, 1, "live: the breach turns the shield AMBER (risk), once")
  -- the breach outlasts a restart (the journal's snapshot keeps it)
  p = x.start(ex, dir, "--http off")
  ex.control { set_price = { symbol = "BTCUSDT", price = string.format("%.1f", rows[HISTORY - 1 + LIVE].close) } }
  x.close_candle(ex)
  local again = x.wait(p, 10, "shield", function(e) return e.check == "risk" and e.to == "AMBER" end)
  t.ok(again and again.detail:find("before the restart", 1, true), "restarted: the shield is AMBER (risk) again",
    again and again.detail or x.slurp(p.out):sub(-1500))
  t.ok(x.wait(p, 10, "blocked"), "and the entry is blocked", x.slurp(p.out):sub(-800))
  x.stop(p)
  t.eq(#x.orders(ex), 2, "live: the buy and the flattening sell, nothing after")
end

ex.stop()
t.done()
