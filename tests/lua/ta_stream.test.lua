-- The two forms agree: a stream fed one value at a time, or in chunks of
-- 2, 3, 7, 100 or everything at once, gives what batch gives. Then the
-- edge cases and the misuse errors.
local t = require "testlib"
local ta = require "nomade.ta"

local c = assert(nomade.candles.load_csv("data/binance-spot-btcusdt-1h-2022-2023.csv"))
local nan = 0 / 0

-- name, parameters, inputs
local specs = {
  { "ema", { 200 }, { c.close } }, { "ema", { 1 }, { c.close } },
  { "sma", { 20 }, { c.close } }, { "stddev", { 20 }, { c.close } },
  { "rsi_sma", { 14 }, { c.close } }, { "rsi", { 14 }, { c.close } },
  { "rsi", { 1 }, { c.close } },
  { "highest", { 20 }, { c.high } }, { "lowest", { 20 }, { c.low } },
  { "bbands", { 20, 2 }, { c.close } }, { "atr", { 14 }, { c.high, c.low, c.close } },
  { "macd", { 12, 26, 9 }, { c.close } },
}

local function stream_outputs(spec, chunk)
  local name, params, inputs = table.unpack(spec)
  local s = ta[name](table.unpack(params))
  local outs = {}
  local len = #inputs[1]
  local i = 1
  while i <= len do
    local j = math.min(len, i + chunk - 1)
    local res
    if chunk == 1 then
      local args = {}
      for k, inp in ipairs(inputs) do args[k] = inp[i] end
      res = { s:update(table.unpack(args)) }
      for k, v in ipairs(res) do outs[k] = outs[k] or {}; outs[k][i] = v end
    else
      local args = {}
      for k, inp in ipairs(inputs) do args[k] = inp:slice(i, j) end
      res = { s:update(table.unpack(args)) }
      for k, ser in ipairs(res) do
        outs[k] = outs[k] or {}
        for q = 1, #ser do outs[k][i + q - 1] = ser[q] end
      end
    end
    i = j + 1
  end
  return outs, s
end

for _, spec in ipairs(specs) do
  local name, params, inputs = table.unpack(spec)
  local args = {}
  for k, inp in ipairs(inputs) do args[k] = inp end
  for _, p in ipairs(params) do args[#args + 1] = p end
  local batch = { ta[name](table.unpack(args)) }
  local label = name .. "(" .. table.concat(params, ",") .. ")"
  for _, chunk in ipairs({ 1, 2, 3, 7, 100, #inputs[1] }) do
    local outs, s = stream_outputs(spec, chunk)
    local agree = true
    for k = 1, #batch do
      agree = t.same(outs[k], batch[k], 1e-12, label .. " output " .. k .. ", chunks of " .. chunk) and agree
    end
    if chunk == 1 then
      local v = { s:value() }
      t.ok(t.near(v[1], batch[1][#batch[1]], 1e-12) and s:count() == #inputs[1],
        label .. ": value() and count() after the stream")
    end
  end
end

-- edge cases
local function S(t_) return ta.series(t_) end
t.same(ta.ema(S { 5, 7, 9 }, 1), { 5, 7, 9 }, 0, "ema(1) is the input")
t.same(ta.ema(S { 4, 8 }, 3), { 4, 6 }, 0, "ema starts at the first input, alpha = 2/(n+1)")
t.same(ta.rsi_sma(S { 1, 1, 1, 1 }, 2), { nan, nan, nan, nan }, 0, "rsi_sma: 0/0 is NaN")
t.same(ta.rsi_sma(S { 1, 2, 3 }, 2), { nan, 100, 100 }, 0, "rsi_sma: no losses is 100")
t.same(ta.rsi_sma(S { 3, 2, 1 }, 2), { nan, 0, 0 }, 0, "rsi_sma: no gains is 0")
-- found by fuzz_ta: 100*g/(g+l) rounded to 100.00000000000001 here
t.same(ta.rsi_sma(S { 30000.00, 30436.96, 31310.88 }, 2), { nan, 100, 100 }, 0,
  "rsi_sma: no losses is exactly 100, never above")
t.same(ta.rsi(S { 1, 1, 1, 1 }, 2), { nan, nan, 0, 0 }, 0, "rsi: flat is 0, as TA-Lib")
t.same(ta.rsi(S { 1, 2, 3, 2 }, 2), { nan, nan, 100, 50 }, 1e-15, "rsi: seed mean then Wilder")
t.same(ta.highest(S { 1, 3, 2, 0, 0 }, 2), { nan, 3, 3, 2, 0 }, 0, "highest(2)")
t.same(ta.lowest(S { 1, 3, 2, 0, 5 }, 1), { 1, 3, 2, 0, 5 }, 0, "lowest(1) is the input")
t.same(ta.sma(S { 1, 2, 3, 4 }, 2), { nan, 1.5, 2.5, 3.5 }, 0, "sma(2)")
t.same(ta.stddev(S { 2, 4, 4, 4, 5, 5, 7, 9 }, 8), { nan, nan, nan, nan, nan, nan, nan, 2 }, 1e-15,
  "stddev is the population deviation")
t.same(ta.atr(S { 2, 3 }, S { 1, 1 }, S { 1.5, 2 }, 1), { nan, 2 }, 0, "atr(1) is the true range")
t.eq(#ta.ema(S {}, 3), 0, "batch over an empty series is empty")

local r = ta.rsi(3)
t.ok(not r:ready() and ta.isnan(r:update(1)), "warm-up returns NaN and ready() is false")
r:update(2); r:update(3); r:update(4)
t.ok(r:ready() and r:value() == 100, "ready() once the first value is out")
r:reset()
t.ok(r:count() == 0 and ta.isnan(r:value()), "reset() starts over")
t.eq(tostring(ta.macd()), "macd(12, 26, 9)", "macd defaults to 12, 26, 9")
t.eq(tostring(ta.bbands(20)), "bbands(20, 2)", "bbands k defaults to 2")

-- misuse names the function and the argument
t.raises(function() ta.ema(0) end, "bad argument #1 to 'ema' (period must be in 1..", "period 0")
t.raises(function() ta.sma(2.5) end, "number has no integer representation", "fractional period")
t.raises(function() ta.rsi("x") end, "bad argument #1 to 'rsi'", "period of the wrong type")
t.raises(function() ta.ema() end, "bad argument #1 to 'ema' (number expected, got no value)", "no period")
t.raises(function() ta.ema(S { 1, nan, 3 }, 3) end, "bad argument #1 to 'ema' (NaN at index 2)", "NaN in a batch input")
t.raises(function() ta.sma(S { 1, 1 / 0 }, 3) end, "(infinity at index 2)", "infinity in a batch input")
t.raises(function() ta.ema(3):update(nan) end, "bad argument #1 to 'update' (NaN)", "NaN into a stream")
t.raises(function() ta.ema(3):update("x") end, "bad argument #1 to 'update' (number expected", "string into a stream")
t.raises(function() ta.atr(3):update(1, 2) end, "bad argument #3 to 'update'", "atr stream needs h, l, c")
t.raises(function() ta.atr(S { 1, 2 }, S { 1 }, S { 1, 2 }, 3) end, "length 1 differs", "atr inputs of different lengths")
t.raises(function() ta.macd(26, 12, 9) end, "macd: invalid parameters (fast period must be less than slow period)", "macd fast >= slow")
t.raises(function() ta.bbands(20, -1) end, "bad argument #2 to 'bbands' (k must be finite and >= 0)", "negative k")
t.raises(function() ta.ema(S { 1 }, 1 << 30) end, "period must be in 1..16777216", "period too large")
t.raises(function() ta.ema(3).update({}, 1) end, "nomade.ta.stream expected", "update on a non-stream")

t.done()
