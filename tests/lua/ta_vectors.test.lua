-- Every indicator against the committed references (pandas for EMA, seed
-- RSI, SMA, stddev, Bollinger, highest/lowest; TA-Lib for Wilder RSI, ATR
-- and MACD) on real candles. Tolerance 1e-9 relative (1e-9 absolute below
-- 1); exact where the reference is exact.
local t = require "testlib"
local vectors = require "vectors"
local ta = require "nomade.ta"

local REL = 1e-9

for _, name in ipairs(vectors.files) do
  local want = vectors.load(name)
  local c = assert(nomade.candles.load_csv("data/" .. name .. ".csv"))
  local close = c.close
  local function check(col, got, rel)
    t.same(got, want[col], rel or REL, name .. ": " .. col)
  end
  t.eq(c.n, #want.open_time_ms, name .. ": same candles as the vectors")
  check("open_time_ms", c.time, 0)
  check("ema_10", ta.ema(close, 10))
  check("ema_200", ta.ema(close, 200))
  check("rsi_sma_14", ta.rsi_sma(close, 14))
  check("rsi_sma_2", ta.rsi_sma(close, 2))
  check("sma_20", ta.sma(close, 20))
  check("sma_200", ta.sma(close, 200))
  check("stddev_20", ta.stddev(close, 20))
  local up, mid, low = ta.bbands(close, 20, 2)
  check("bb_20_2_upper", up)
  check("bb_20_2_middle", mid)
  check("bb_20_2_lower", low)
  check("highest_20", ta.highest(close, 20), 0)
  check("lowest_20", ta.lowest(close, 20), 0)
  check("rsi_14", ta.rsi(close, 14))
  check("rsi_2", ta.rsi(close, 2))
  check("atr_14", ta.atr(c.high, c.low, close, 14))
  local m, s, h = ta.macd(close, 12, 26, 9)
  check("macd_12_26_9", m)
  check("macd_12_26_9_signal", s)
  check("macd_12_26_9_hist", h)

  -- where pandas saw a window of equal closes its mean is that close and
  -- its deviation 0, exactly; ours must be too (the outage's flat run)
  local sma, sd = ta.sma(close, 20), ta.stddev(close, 20)
  local flat, exact = 0, true
  for i = 1, #sd do
    if want.stddev_20[i] == 0 then
      flat = flat + 1
      exact = exact and sd[i] == 0 and sma[i] == want.sma_20[i]
    end
  end
  t.ok(exact, name .. ": flat windows give exact mean and zero deviation (" .. flat .. " rows)")
end

t.done()
