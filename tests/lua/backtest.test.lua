-- The backtester: fills, fees and rounding computed by hand, protective
-- exits, limit orders, the instrument's minimums, the tribunal seam, no
-- look-ahead, determinism, and the default strategy's figures pinned.
local t = require "testlib"
local bt = require "btlib"
local backtest = require "nomade.backtest"
local report = require "nomade.report"
local crypto = require "nomade.crypto"

-- a strategy that buys on the close of candle `buy` and sells on the close of `sell`
local function scripted(buy, sell, extra)
  return bt.file(string.format([[
settings = { interval = "1h", history = 1, position_size = 0.5 %s }
function regime(m) return "ANY" end
function entry(m, r, v)
  if v == nil then return m.index == %d end
  return %s
end
function prompt(m, r) return "p" end
function exit(m, p) return m.index == %d end
]], extra and extra.settings and (", " .. extra.settings) or "", buy, extra and extra.entry or "true", sell or -1))
end

-- the hand-worked candles of 1-4 move far more than jump_pct between
-- candles, and a jump's prices fill nothing (spikes.test.lua): these tests
-- of the fill rules loosen it
local HAND = "jump_pct=100"

-- 1. market orders: sizing, fees, rounding, by hand
do
  local data = bt.csv({ { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 },
    { 100, 101, 99, 100 }, { 105, 106, 104, 105 }, { 110, 111, 109, 110 }, { 110, 111, 109, 110 } })
  local r = assert(bt.run { shield = HAND, strategy = scripted(3, 5), data = data, cash = 10000, fee = 0.001 })
  local book = r.book
  -- buy at candle 4's open, 100: qty = floor(5000 / (100 * 1.001), 1e-6) = 49.950049,
  -- capped by max_position_value (default 1000) at the decision's close, 90:
  -- floor(1000 / 90, 1e-6) = 11.111111
  local qty = 11.111111
  local tr = book.trades[1]
  t.ok(#book.trades == 1 and tr.entry_price == 100 and tr.qty == qty, "market buy fills at the next open, qty floored to the step")
  -- sell at candle 6's open, 110
  local cost, fee1 = qty * 100, qty * 100 * 0.001
  local proceeds, fee2 = qty * 110, qty * 110 * 0.001
  t.close(book.quote, 10000 - cost - fee1 + proceeds - fee2, 1e-12, "quote after the round trip")
  t.close(tr.pnl, proceeds - fee2 - cost - fee1, 1e-12, "trade pnl net of both fees")
  t.close(book.fees, fee1 + fee2, 1e-12, "fees charged on both sides in quote")
  t.ok(tr.exit_price == 110 and tr.reason == "exit", "exit sells at the next open")
  t.eq(r.equity[#r.equity], book.quote, "equity is the quote balance once flat")
  -- the curve, kept as a step per fill: each candle's quote + base * close
  local closes, want = { 90, 90, 90, 100, 105, 110, 110 }, {}
  for k = 1, #closes - r.first + 1 do
    local i = r.first + k - 1
    want[k] = i < 4 and 10000 or i < 6 and 10000 - cost - fee1 + qty * closes[i] or book.quote
  end
  local fwd, back, odd = {}, {}, {}
  for k = 1, #r.equity do fwd[k] = r.equity[k] end
  for k = #r.equity, 1, -1 do back[k] = r.equity[k] end
  for _, k in ipairs({ 3, 1, #r.equity, 2 }) do odd[k] = r.equity[k] end
  local same = #r.equity == #want
  for k = 1, #want do same = same and fwd[k] == want[k] and back[k] == want[k] and (not odd[k] or odd[k] == want[k]) end
  t.ok(same and r.equity[0] == nil and r.equity[#r.equity + 1] == nil and r.equity.x == nil,
    "the equity curve: every candle's value, read in any order; nil out of range", table.concat(fwd, " "))
  local paper = require "nomade.paper"
  t.raises(function() book:run { first = r.first, last = r.last, candles = r.c, view = {}, ind = {}, indicators = {},
    cursor = require("nomade.ta").cursor(0), equity = r.equity, decide = print, budget = 1, changed = print,
    state = r.c.state } end, "equity must be a new paper.curve(candles.close, first)", "book:run wants a fresh curve")
  t.raises(function() paper.curve(r.c.close, 0) end, "bad argument #2 to 'curve' (must be >= 1)", "paper.curve: first >= 1")
end

-- 2. stop-loss and take-profit inside a candle, and through a gap
do
  local rows = { { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 100, 101, 99, 100 },
    { 100, 101, 94, 96 }, { 96, 96, 96, 96 } }
  local r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, { settings = "stop_loss = 0.05" }), data = bt.csv(rows) })
  local tr = r.book.trades[1]
  t.ok(tr and tr.reason == "stop_loss" and tr.exit_price == 95, "stop at 95 fills at the stop inside the candle")
  rows[4] = { 90, 101, 89, 96 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, { settings = "stop_loss = 0.05" }), data = bt.csv(rows) })
  t.eq(r.book.trades[1].exit_price, 90, "a gap under the stop fills at the open")
  rows[4] = { 100, 111, 99, 105 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, { settings = "take_profit = 0.1" }), data = bt.csv(rows) })
  tr = r.book.trades[1]
  t.ok(tr.reason == "take_profit" and tr.exit_price == 110, "take-profit at 110 (100 * 1.1 rounds to the tick as 110)")
  rows[4] = { 100, 111, 94, 105 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, { settings = "take_profit = 0.1, stop_loss = 0.05" }),
    data = bt.csv(rows) })
  t.eq(r.book.trades[1].reason, "stop_loss", "both in one candle: the stop is assumed first")
end

-- 3. limit orders fill only when the price is traded through
do
  local rows = { { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 100, 101, 95, 100 },
    { 100, 101, 94.5, 100 }, { 100, 100, 100, 100 } }
  local limit = { entry = '{ type = "limit", price = 95, ttl = 2 }' }
  local r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, limit), data = bt.csv(rows) })
  t.ok(r.book.position and r.book.position.price == 95 and r.book.position.index == 4,
    "a low equal to the limit does not fill; a low under it fills at the limit")
  rows[4] = { 100, 101, 96, 100 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, limit), data = bt.csv(rows) })
  t.ok(r.book.position == nil and r.book.cancelled == 1, "unfilled after its ttl, the order is cancelled")
  rows[3] = { 93, 101, 92, 100 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, limit), data = bt.csv(rows) })
  t.eq(r.book.position.price, 93, "an open under the limit fills at the open")
end

-- 4. the instrument's minimums refuse an order, and say so
do
  local rows = { { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 100, 100, 100, 100 } }
  local r = assert(bt.run { shield = HAND, strategy = scripted(2), data = bt.csv(rows), cash = 9 })
  t.ok(r.book.position == nil and r.book.refused == 1, "4.5 USDT is under minOrderAmt 5: refused")
  -- a sell under the minimums is refused as Bybit refuses it: the position
  -- stays, flagged as dust
  rows = { { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 80, 80, 80, 80 },
    { 80, 80, 80, 80 }, { 80, 80, 80, 80 } }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, 4), data = bt.csv(rows), cash = 11 })
  local p = r.book.position
  t.ok(p and p.dust and p.qty == 0.054945 and #r.book.trades == 0 and r.book.refused == 1,
    "an exit worth 4.40 USDT (under minOrderAmt 5) is refused; the position is kept as dust")
  rows[4] = { 100, 100, 85, 85 }
  r = assert(bt.run { shield = HAND, strategy = scripted(2, nil, { settings = "stop_loss = 0.1" }), data = bt.csv(rows), cash = 11 })
  p = r.book.position
  t.ok(p and p.dust and #r.book.trades == 0 and r.book.refused >= 1,
    "a stop worth 4.94 USDT is refused too; the position is kept as dust")
  r = assert(bt.run { shield = HAND, strategy = scripted(2, 4), data = bt.csv(rows), cash = 12 })
  t.ok(r.book.position == nil and #r.book.trades == 1, "a sell over the minimums fills")
end

-- 5. the tribunal seam
do
  local rows = {}
  for i = 1, 6 do rows[i] = { 100 + i, 101 + i, 99 + i, 100 + i } end
  local data = bt.csv(rows)
  local hash = crypto.sha256("p")
  local function cache(line)
    local p = os.tmpname()
    local f = assert(io.open(p, "w")); f:write(line, "\n"); f:close()
    return p
  end
  local r = assert(bt.run { strategy = scripted(2), data = data, tribunal = "cache",
    cache = cache(string.format('{"prompt_sha256":"%s","signal":"WAIT","score":90}', hash)) })
  t.ok(r.book.position == nil and r.tribunal.calls == 1 and r.tribunal.wait == 1, "a cached WAIT blocks the entry")
  r = assert(bt.run { strategy = scripted(2), data = data, tribunal = "cache",
    cache = cache(string.format('{"prompt_sha256":"%s","signal":"BUY","score":69}', hash)) })
  t.ok(r.book.position == nil and r.tribunal.below_min == 1, "a BUY under min_score (70) blocks the entry")
  r = assert(bt.run { strategy = scripted(2), data = data, tribunal = "cache",
    cache = cache(string.format('{"prompt_sha256":"%s","signal":"BUY","score":70}', hash)) })
  t.ok(r.book.position ~= nil and r.tribunal.buy == 1, "a BUY at min_score enters")
  r = assert(bt.run { strategy = scripted(2), data = data, tribunal = "cache", cache = cache("") })
  t.ok(r.book.position == nil and r.tribunal.misses == 1 and r.tribunal.wait == 1, "a cache miss is a WAIT, counted")
  local rc, _, err = t.run("backtest " .. scripted(2) .. " --data " .. data .. " --tribunal live",
    "env -u GEMINI_API_KEY -u NOMADE_SECRETS")
  t.ok(rc == 1 and err:find("--tribunal live needs GEMINI_API_KEY", 1, true), "live without a key: says which", err)
  local none
  none, err = bt.run { strategy = scripted(2), data = data, tribunal = "cache", cache = cache("{nope") }
  t.ok(none == nil and err:find(":1: not a verdict", 1, true), "a broken cache line is named", err)
  r = assert(bt.run { strategy = scripted(2), data = data })
  t.ok(r.tribunal.mode == "off" and r.book.position ~= nil, "off passes every candidate")
end

-- 6. no look-ahead: changing candles after t changes nothing up to t
do
  local ta = require "nomade.ta"
  local c = assert(nomade.candles.load("data/binance-spot-btcusdt-1h-2022-2023.csv"))
  local base = assert(bt.run { candles = c })
  local cut = 9000
  local changed = { n = c.n, path = c.path }
  for _, k in ipairs({ "time", "open", "high", "low", "close", "volume" }) do
    changed[k] = c[k]:slice(1)
  end
  local seed = 7
  for i = cut + 1, c.n do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local f = 0.5 + seed / 2147483648
    for _, k in ipairs({ "open", "high", "low", "close" }) do changed[k][i] = c[k][i] * f end
  end
  local other = assert(bt.run { candles = changed })
  local same, upto = true, cut - base.first + 1
  for k = 1, upto do same = same and base.equity[k] == other.equity[k] end
  t.ok(same, "equity up to candle t is identical when later candles change")
  local trades_same = true
  for k, tr in ipairs(base.book.trades) do
    if tr.exit_time <= c.time[cut] then
      local o = other.book.trades[k]
      trades_same = trades_same and o and o.entry_time == tr.entry_time and o.exit_time == tr.exit_time
        and o.pnl == tr.pnl
    end
  end
  t.ok(trades_same, "trades closed by candle t are identical")
  t.ok(base.equity[upto + 200] ~= other.equity[upto + 200], "and the change does matter after t")
  local seen = bt.file([[
settings = { interval = "1h", history = 1 }
function regime(m)
  assert(#m.candles.close == m.index and m.candles.close[m.index + 1] == nil, "saw the future")
  assert(m.candles.close:last() == m.close)
  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  t.ok(bt.run { strategy = seen, candles = c }, "the strategy's views end at the current candle")
  local _ = ta
end

-- 7. determinism: the same run writes the same report.json, byte for byte
do
  local strat = bt.file([[
settings = { interval = "1h", history = 20, stop_loss = 0.01 }
indicators = { fast = ta.ema(5), slow = ta.sma(20) }
function regime(m) return m.ind.fast > m.ind.slow and "UP" or "DOWN" end
function entry(m, r, v) return r == "UP" end
function prompt(m, r) return "p" .. m.index end
function exit(m, p) return m.regime == "DOWN" end
]])
  local function out()
    local dir = os.tmpname() .. ".d"
    local rc = t.run("backtest --data data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
      .. "--out " .. dir .. " " .. strat)
    local f = assert(io.open(dir .. "/report.json")); local s = f:read("a"); f:close()
    return rc, s, dir
  end
  local rc1, a, dir = out()
  local rc2, b = out()
  t.ok(rc1 == 0 and rc2 == 0 and a == b and #a > 100, "two runs give a byte-identical report.json")
  local doc = require("cjson").decode(a)
  t.ok(doc.trades > 0 and doc.tribunal.mode == "off" and doc.candles == 172, "report.json carries the figures")
  for _, name in ipairs({ "trades.csv", "equity.csv", "report.html" }) do
    local f = io.open(dir .. "/" .. name)
    t.ok(f and #f:read("a") > 50, "--out writes " .. name)
    if f then f:close() end
  end
  local f = assert(io.open(dir .. "/report.html")); local html = f:read("a"); f:close()
  t.ok(html:find("<svg", 1, true) and not html:find("src=", 1, true) and not html:find("href=", 1, true),
    "report.html is self-contained, with inline SVG charts")
  local eq = assert(io.open(dir .. "/equity.csv")); local lines = 0
  for _ in eq:lines() do lines = lines + 1 end
  eq:close()
  t.eq(lines, 173, "equity.csv has a row per candle")
end

-- 8. the default strategy on the bundled BTCUSDT 1h candles, figures pinned
do
  local r = assert(bt.run { data = "data/binance-spot-btcusdt-1h-2022-2023.csv" })
  local f = report.figures(r)
  t.eq(f.candles, 17320, "default strategy: candles traded (after 200 of history)")
  t.eq(f.trades, 142, "default strategy: trades")
  t.eq(f.wins, 32, "default strategy: winning trades")
  t.close(f.final_equity, 10044.80062347187, 1e-9, "default strategy: final equity")
  t.close(f.max_drawdown, 0.037989481870899122, 1e-9, "default strategy: max drawdown")
  t.close(f.fees, 284.32354799813004, 1e-9, "default strategy: fees")
  -- close 42283.58 on 2023-12-31 23:00 over close 41791.51 on 2022-01-09 07:00
  t.close(f.buy_and_hold, 42283.58 / 41791.51 - 1, 1e-15, "buy and hold over the same span")
  t.eq(f.tribunal.candidates, 142, "every candidate became a trade with the tribunal off")
end

-- 9. CLI
do
  local rc, _, err = t.run("backtest")
  t.ok(rc == 2 and err:find("--data FILE is required", 1, true) and err:find("usage:", 1, true), "no --data: usage, exit 2")
  rc, _, err = t.run("backtest --data x.csv --from 2023-02-30")
  t.ok(rc == 2 and err:find("not a date: '2023-02-30'", 1, true), "an impossible date is refused", err)
  local help
  rc, help = t.run("backtest --help")
  t.ok(rc == 0 and help:find("usage: nomade backtest", 1, true), "--help prints the usage, exit 0")
  rc, _, err = t.run("backtest --data x.csv --bogus 1")
  t.ok(rc == 2 and err:find("unknown option '--bogus'", 1, true), "an unknown option is refused")
  rc, _, err = t.run("backtest --data x.csv --fee 2")
  t.ok(rc == 2 and err:find("--fee must be a number in [0, 1)", 1, true), "a fee of 200% is refused")
  rc, _, err = t.run("backtest --data /nonexistent.csv")
  t.ok(rc == 1 and err:find("/nonexistent.csv: No such file", 1, true), "a missing data file exits 1")
  rc, _, err = t.run("backtest --data data/binance-spot-btcusdt-1m-2023-03-24-outage.csv")
  t.ok(rc == 1 and err:find("candles are 60 s apart but the strategy's interval is 1h", 1, true),
    "data at another interval than the strategy's is refused", err)
  local out
  rc, out = t.run("backtest --data data/binance-spot-btcusdt-1h-2022-2023.csv --from 2023-01-01 --to 2023-06-30")
  t.ok(rc == 0 and out:find("2023-01-01T00:00:00Z .. 2023-06-30T23:00:00Z", 1, true)
    and out:find("OFF: every candidate passed as BUY", 1, true), "--from/--to bound the span; off is labelled", out)
  t.ok(backtest.parse_date("2023-03-24T12:30") == 1679661000000, "dates are UTC")
end

-- a runaway strategy: the backtest gives every call the run's instruction
-- budget, and fails naming the strategy's line and the candle
do
  local s = bt.file([[
settings = { interval = "1h", history = 1 }
function regime(m) return "R" end
function entry(m)
  if m.index == 4 then
    while true do end
  end
  return false
end
function prompt() return "p" end
]])
  local data = bt.csv({ { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 },
    { 90, 91, 89, 90 } })
  local rc, _, err = t.run("backtest " .. s .. " --data " .. data, "timeout 120")
  t.ok(rc == 1 and err:find("strategy failed in entry(m, regime, nil) on the candle of 2023-01-01 03:00: " .. s
    .. ":5: instruction budget exceeded", 1, true), "a runaway entry() fails the backtest with its file:line and candle",
    rc .. " " .. err)
end

-- a backtest run inside another budget (a REPL evaluation's): each turn's
-- budget nests in it, counted at once; the results are the same
do
  local data = bt.csv({ { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 },
    { 90, 91, 89, 90 } })
  local s = bt.file([[
settings = { interval = "1h", history = 1 }
function regime(m) return "R" end
function entry(m)
  if m.index == 4 then
    for _ = 1, 2000000 do end
  end
  return false
end
function prompt() return "p" end
]])
  local host = require "nomade.host"
  local plain = bt.run { strategy = s, data = data }
  local ok, nested = host.limit(10000000, bt.run, { strategy = s, data = data })
  t.ok(plain and ok and nested and nested.tribunal.candidates == plain.tribunal.candidates
    and nested.equity[#nested.equity] == plain.equity[#plain.equity], "inside a budget: the same backtest")
  local okl, res = host.limit(1000000, bt.run, { strategy = s, data = data })
  t.ok(okl == false and tostring(res):find("instruction budget exceeded", 1, true),
    "inside a budget: the turns spend from it, and the outer call fails when it runs out", res)
  local runaway = bt.file((io.open(s):read("a"):gsub("for _ = 1, 2000000 do end", "while true do end")))
  local err
  okl, res, err = host.limit(200000000, bt.run, { strategy = runaway, data = data })
  t.ok(okl and res == nil and tostring(err):find(runaway .. ":5: instruction budget exceeded", 1, true),
    "inside a budget: a runaway turn fails with the candle's budget, naming its line, and the outer call goes on", err)
end

-- hostile strategies: what the instruction budget cannot see (memory,
-- time, finalizers, to-be-closed variables, the collector) fails the
-- candle with the limit named; code stuck in C ends the process (exit 4)
do
  local data = bt.csv({ { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 }, { 90, 91, 89, 90 },
    { 90, 91, 89, 90 } })
  local HOSTILE = {
    { "a finalizer", "setmetatable({}, { __gc = function() while true do end end })", "__gc is not allowed here" },
    { "__close", "local x <close> = setmetatable({}, { __close = function() while true do end end })",
      "instruction budget exceeded" },
    { "collectgarbage", 'collectgarbage("stop")', "attempt to call a nil value (global 'collectgarbage')" },
    { "a huge string.rep", 'local s = ("x"):rep(1 << 30)', "memory limit exceeded (a call may use 64 MB)" },
    { "a doubling concatenation", 'local s = "x" while true do s = s .. s end', "memory limit exceeded" },
    { "a concatenation in a loop", 'local s = "" for i = 1, 1e9 do s = s .. ("x"):rep(64) end',
      "time limit exceeded (a call may run 5 s)" },
    { "table growth", "local t = {} for i = 1, 1e9 do t[i] = i end", "memory limit exceeded" },
    { "table.concat", "local t = {} for i = 1, 20 do t[i] = ('x'):rep(4 << 20) end local s = table.concat(t)",
      "memory limit exceeded" },
  }
  for _, h in ipairs(HOSTILE) do
    local s = bt.file([[
settings = { interval = "1h", history = 1 }
function regime(m) return "R" end
function entry(m)
  if m.index == 4 then ]] .. h[2] .. [[ end
  return false
end
function prompt() return "p" end
]])
    local rc, _, err = t.run("backtest " .. s .. " --data " .. data, "timeout 120")
    t.ok(rc == 1 and err:find("strategy failed in entry(m, regime, nil) on the candle of 2023-01-01 03:00: ", 1, true)
      and err:find(h[3], 1, true), "a strategy with " .. h[1] .. " fails its candle: " .. h[3], rc .. " " .. err)
  end
  -- a __gc put in a metatable after setmetatable marks nothing: no finalizer
  -- runs, not even when the state closes at the end
  local late = bt.file([[
settings = { interval = "1h", history = 1 }
local mt = {}
keep = setmetatable({}, mt)
mt.__gc = function() while true do end end
setmetatable({}, mt)
function regime(m) return "R" end
function entry(m) setmetatable({}, mt) return false end
function prompt() return "p" end
]])
  local rc, out, err = t.run("backtest " .. late .. " --data " .. data, "timeout 120")
  t.ok(rc == 1 and err:find("__gc is not allowed here", 1, true), "a __gc added later is refused where it is passed again",
    rc .. " " .. out .. err)
  late = bt.file([[
settings = { interval = "1h", history = 1 }
local mt = {}
keep = { setmetatable({}, mt), setmetatable({}, mt) }
mt.__gc = function() while true do end end
function regime(m) keep = nil return "R" end
function entry(m) return false end
function prompt() return "p" end
]])
  rc, out, err = t.run("backtest " .. late .. " --data " .. data, "timeout 120")
  t.ok(rc == 0, "a __gc added after setmetatable never runs (the backtest ends)", rc .. " " .. out .. err)
  local stuck = bt.file([[
settings = { interval = "1h", history = 1 }
function regime(m) return "R" end
function entry(m)
  if m.index == 4 then return string.find(("a"):rep(30000), ("a*"):rep(30) .. "b") ~= nil end
  return false
end
function prompt() return "p" end
]])
  rc, out, err = t.run("backtest " .. stuck .. " --data " .. data, "timeout 120")
  t.ok(rc == 4 and err:find("nomade: watchdog: a strategy or REPL call is stuck in C code past 10 s; exiting (code 4)", 1, true),
    "a strategy stuck in C code (a backtracking pattern): the backtest exits 4, saying why", rc .. " " .. out .. err)
end

t.done()
