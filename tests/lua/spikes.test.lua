-- Absurd candles cannot move the book (README, "The Integrity Shield"):
-- the class of spikes (open, high, low, close; up and down; beyond any
-- plausible range, or merely a jump) and of absurd magnitudes (subnormal,
-- huge) at every position of a short series, in the backtest, in nomade
-- run's paper book and in the live exchange book: no fill at such a
-- candle's prices, no indicator fed with a refused one. And no real candle
-- of the bundled data (2022's LUNA and FTX crashes included) is refused.
local t = require "testlib"
local bt = require "btlib"
local core = require "nomade._shield"
local cjson = require "cjson"

-- 1. the bundled real candles: none refused as implausible or absurd
for _, path in ipairs({ "data/binance-spot-btcusdt-1h-2022-2023.csv", "data/binance-spot-ethusdt-1h-2022-2023.csv",
  "data/binance-spot-solusdt-1h-2022-2023.csv", "data/binance-spot-btcusdt-1m-2023-03-24-outage.csv",
  "data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv" }) do
  local c = assert(require("nomade.candles").load(path))
  local sh = core.new { interval = (c.time[2] - c.time[1]) / 1000 }
  local scan = sh:scan(c)
  local bad = {}
  for _, r in ipairs(scan.refused) do
    if r.detail:find("implausible", 1, true) or r.detail:find("outside", 1, true) then bad[#bad + 1] = r.detail end
  end
  t.ok(#bad == 0 and scan.n == c.n, path .. ": no real candle refused (" .. c.n .. " candles)", bad[1])
end

-- the series: quiet candles around 100, with one candle replaced
local function csv(rows)
  local p = os.tmpname()
  local f = assert(io.open(p, "w"))
  f:write("open_time_ms,open,high,low,close,volume\n")
  for i, r in ipairs(rows) do
    f:write(string.format("%d,%.17g,%.17g,%.17g,%.17g,%.17g\n", 1672531200000 + (i - 1) * 3600000, r[1], r[2], r[3],
      r[4], r[5] or 1))
  end
  f:close()
  return p
end
local N = 40
local function quiet(i)
  local c = 100 + (i % 4) * 0.1
  return { c - 0.05, c + 0.2, c - 0.25, c, 5 }
end
-- the class: {name, f(previous close) -> o, h, l, c, v, refused?}
local SPIKES = {
  { "open x3", function(p) return 3 * p, 3 * p, p, p end, true },
  { "open /3", function(p) return p / 3, p, p / 3, p end, true },
  { "high x1e6", function(p) return p, 1e6 * p, p, p end, true },
  { "low 0.01", function(p) return p, p, 0.01, p end, true },
  { "close x5", function(p) return p, 5 * p, p, 5 * p end, true },
  { "close /5", function(p) return p, p, p / 5, p / 5 end, true },
  { "take at 1e300", function(p) return p, 1e300, p, p end, true },
  { "close 1e300", function(p) return p, 1e300, p, 1e300 end, true },
  { "subnormal low", function(p) return p, p, 1e-320, p end, true },
  { "subnormal candle", function() return 1e-320, 1e-320, 1e-320, 1e-320 end, true },
  { "huge candle", function() return 1e16, 1e16, 1e16, 1e16 end, true },
  { "subnormal volume", function(p) return p, p + 0.1, p - 0.1, p, 1e-320 end, true },
  { "open +30% (a jump)", function(p) return 1.3 * p, 1.3 * p, p, p end, false },
  { "low -40% (a jump)", function(p) return p, p, 0.6 * p, p end, false },
  { "high +60% (a jump)", function(p) return p, 1.6 * p, p, p end, false },
}
local function series(at, spike)
  local rows = {}
  for i = 1, N do rows[i] = quiet(i) end
  local o, h, l, c, v = spike(rows[at - 1][4])
  rows[at] = { o, h, l, c, v or 5 }
  return rows
end

-- buys at market on every candle it may, with a 1% stop and take, sells
-- after two candles; fails if its EMA or close ever leaves the quiet range
local STRATEGY = bt.file([[
settings = { interval = "1h", history = 3, stop_loss = 0.01, take_profit = 0.01 }
indicators = { e = ta.ema(3) }
function regime(m)
  if m.ind.e ~= m.ind.e or m.ind.e > 200 or m.ind.e < 50 then error("the EMA was fed a spike: " .. m.ind.e) end
  return "ANY"
end
function entry(m, r, v) if v then return { type = "market" } end return true end
function exit(m, p) if m.index >= p.index + 2 then return "two candles" end end
function prompt() return "p" end
]])

-- 2. the backtest: the class at every position
do
  local bad = {}
  for _, sp in ipairs(SPIKES) do
    for at = 5, N - 1 do
      local rows = series(at, sp[2])
      local spike_time = 1672531200000 + (at - 1) * 3600000
      local r, err = bt.run { strategy = STRATEGY, data = csv(rows) }
      if not r then
        bad[#bad + 1] = sp[1] .. " at " .. at .. ": " .. tostring(err)
      else
        local refused = #r.shield.refused > 0
        if refused ~= sp[3] then bad[#bad + 1] = sp[1] .. " at " .. at .. ": refused " .. tostring(refused) end
        for _, tr in ipairs(r.book.trades) do
          if tr.entry_time == spike_time or tr.exit_time == spike_time or tr.entry_price > 101 or tr.entry_price < 99
              or tr.exit_price > 101 or tr.exit_price < 99 then
            bad[#bad + 1] = string.format("%s at %d: a fill at %.6g / %.6g", sp[1], at, tr.entry_price, tr.exit_price)
          end
        end
        local last = r.equity[#r.equity]
        if not (last > 9000 and last < 11000) then bad[#bad + 1] = sp[1] .. " at " .. at .. ": equity " .. last end
      end
    end
  end
  t.ok(#bad == 0, "backtest: " .. #SPIKES .. " kinds of spike at every position: no fill at its prices, the EMA "
    .. "untouched, the equity sane", table.concat(bad, "\n"):sub(1, 1500))
end

-- 3. nomade run --exec paper: the same class, a few positions each
do
  local bad = {}
  for _, sp in ipairs(SPIKES) do
    for _, at in ipairs({ 6, 7, 8 }) do
      local rows = series(at, sp[2])
      local spike_time = os.date("!%Y-%m-%d %H:%M", (1672531200000 + (at - 1) * 3600000) // 1000)
      local rc, out = t.run("run " .. STRATEGY .. " --feed replay:" .. csv(rows) .. " --speed max --log-format json "
        .. "--http off --journal " .. os.tmpname() .. ".journal --socket " .. os.tmpname() .. ".sock")
      local fills, refused, waiting = 0, false, {}
      for line in out:gmatch("[^\n]+") do
        local ok, doc = pcall(cjson.decode, line)
        if ok and type(doc) == "table" then
          if doc.event == "refused" then refused = true end
          -- a fill is logged in the turn of the candle it fills on, before that candle's line
          if doc.event == "fill" then
            fills = fills + 1
            waiting[#waiting + 1] = doc
          end
          if doc.event == "candle" then
            for _, f in ipairs(waiting) do
              if doc.time == spike_time or f.price > 101 or f.price < 99 then
                bad[#bad + 1] = string.format("%s at %d: a fill at %.6g on %s", sp[1], at, f.price, doc.time)
              end
            end
            waiting = {}
          end
          if doc.event == "error" or doc.event == "strategy_error" then bad[#bad + 1] = sp[1] .. ": " .. line end
        end
      end
      if rc ~= 0 or fills == 0 or refused ~= sp[3] then
        bad[#bad + 1] = string.format("%s at %d: rc %d, %d fills, refused %s", sp[1], at, rc, fills, tostring(refused))
      end
    end
  end
  t.ok(#bad == 0, "nomade run (paper): every kind of spike: no fill at its prices, the EMA untouched",
    table.concat(bad, "\n"):sub(1, 1500))
end

-- 4. the live exchange book: a resting stop or take is not triggered by the
-- low or high of a candle the shield did not accept as clean
do
  local exchange = require "nomade.bybit.book"
  local sent = {}
  local client = { recv_window = 5000, create_order = function(_, o) sent[#sent + 1] = o
    return { orderId = "x" .. #sent } end, open_orders = function() return { list = {} } end,
    executions = function() return { list = {} } end }
  local function book_with_position(sh)  -- each with a journal of its own
    local journal = assert(require("nomade.journal").open(os.tmpname() .. ".journal", { strategy = "s",
      symbol = "BTCUSDT", interval = "1h", exec = "bybit" }))
    local b = assert(exchange.new { client = client, shield = sh, journal = journal, fee = 0.001,
      settings = { symbol = "BTCUSDT", stop_loss = 0.01, take_profit = 0.01, max_daily_loss = 1 },
      rules = { base = "BTC", quote = "USDT", qty_step = { value = 0.001, scale = 1000 }, min_qty = 0.001,
        min_amt = 1, tick = { value = 0.01, scale = 100 } }, emit = function() end })
    b.position, b.base = { qty = 1, price = 100, stop = 99, take = 101, time = 0, index = 1 }, 1
    return b
  end
  local bad = {}
  for _, sp in ipairs(SPIKES) do
    local sh = core.new { interval = 3600 }
    local p0 = #sent
    local b = book_with_position(sh)
    for i = 1, 20 do
      local q = quiet(i)
      sh:candle(1672531200000 + (i - 1) * 3600000, q[1], q[2], q[3], q[4], q[5])
    end
    local o, h, l, c, v = sp[2](quiet(20)[4])
    local time = 1672531200000 + 20 * 3600000
    local verdict = sh:candle(time, o, h, l, c, v or 5)
    -- nomade run hands the book only the candles the shield accepted
    if verdict == "accepted" then b:open_candle(21, time, o, h, l, c, true) end
    if #sent ~= p0 or b.price == c and c ~= quiet(20)[4] then
      bad[#bad + 1] = sp[1] .. ": " .. (#sent ~= p0 and "a sell sent" or "its close taken as the price")
    end
  end
  t.ok(#bad == 0, "the live book: no stop or take triggered, no price taken, by a spike", table.concat(bad, "\n"))
  local sh = core.new { interval = 3600 }
  local b = book_with_position(sh)
  for i = 1, 20 do
    local q = quiet(i)
    sh:candle(1672531200000 + (i - 1) * 3600000, q[1], q[2], q[3], q[4], q[5])
  end
  local time = 1672531200000 + 20 * 3600000
  sh:candle(time, 100, 100.1, 98.5, 98.6, 5)
  sh:signal("reconcile", false, "", time)
  local n0 = #sent
  b:open_candle(21, time, 100, 100.1, 98.5, 98.6, true)
  t.ok(#sent == n0 + 1 and sent[#sent].side == "Sell", "(a clean candle through the stop does sell)", #sent - n0)
end

t.done()
