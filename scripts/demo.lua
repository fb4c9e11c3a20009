-- demo.lua: what `make run` shows until the live runtime exists. Loads a
-- candle file, computes the default strategy's indicators in batch, checks
-- that streams fed candle by candle agree, and prints the last candles.
--   nomade script scripts/demo.lua FILE.csv[.gz]
local ta = require "nomade.ta"
local candles = require "nomade.candles"

local path = ...
if not path then
  io.stderr:write("usage: nomade script scripts/demo.lua FILE.csv\n")
  return 2
end
local c, err = candles.load_csv(path)
if not c then
  io.stderr:write("demo: ", err, "\n")
  return 1
end

local close = c.close
local ema200, rsi14, rsi_seed = ta.ema(close, 200), ta.rsi(close, 14), ta.rsi_sma(close, 14)
local _, _, hist = ta.macd(close)
local atr14 = ta.atr(c.high, c.low, close, 14)

-- the live runtime will use streams; they must agree with batch
local s_ema, s_rsi = ta.ema(200), ta.rsi(14)
local worst = 0
for i = 1, c.n do
  local e, r = s_ema:update(close[i]), s_rsi:update(close[i])
  worst = math.max(worst, math.abs(e - ema200[i]) / ema200[i])
  if not ta.isnan(r) then worst = math.max(worst, math.abs(r - rsi14[i]) / 100) end
end

print(string.format("%s: %d candles, %s to %s", path, c.n,
  os.date("!%Y-%m-%d %H:%M", c.time[1] // 1000), os.date("!%Y-%m-%d %H:%M", c.time[c.n] // 1000)))
print(string.format("streams vs batch: largest relative difference %.1e", worst))
print()
print(string.format("%-16s %10s %10s %7s %7s %9s %8s  %s", "open (UTC)", "close", "EMA200",
  "RSI14", "seedRSI", "MACDhist", "ATR14", "regime"))
for i = math.max(1, c.n - 9), c.n do
  print(string.format("%-16s %10.2f %10.2f %7.2f %7.2f %9.2f %8.2f  %s",
    os.date("!%Y-%m-%d %H:%M", c.time[i] // 1000), close[i], ema200[i], rsi14[i],
    rsi_seed[i], hist[i], atr14[i], close[i] > ema200[i] and "UPTREND" or "DOWNTREND"))
end
