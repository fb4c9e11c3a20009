-- bench_ta.lua: the same indicators from Lua, what a strategy pays: a
-- batch call over a series, and a stream's :update(x) per value.
local ta = require "nomade.ta"
local N = 1000000

local closes = ta.series()
local p, s = 30000.0, 0x12345
for _ = 1, N do
  s = (s * 1103515245 + 12345) % 2147483648
  p = p * (1 + 0.002 * (s / 2147483648 - 0.5))
  closes:push(p)
end

local function best(f)
  local b = math.huge
  for _ = 1, 3 do
    local t0 = os.clock(); f(); b = math.min(b, os.clock() - t0)
  end
  return b / N * 1e9
end

print("from Lua, ns/element (best of 3)")
print(string.format("%-10s %8s %14s", "", "batch", "stream:update"))
for _, spec in ipairs({ { "ema", 200 }, { "rsi_sma", 14 }, { "rsi", 14 } }) do
  local name, n = spec[1], spec[2]
  local b = best(function() ta[name](closes, n) end)
  local st = best(function()
    local o = ta[name](n)
    for i = 1, N do o:update(closes[i]) end
  end)
  print(string.format("%-10s %8.2f %14.2f", name .. n, b, st))
end
