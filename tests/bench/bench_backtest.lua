-- bench_backtest.lua: time of each stage of a backtest, in-process.
--   nomade script tests/bench/bench_backtest.lua DATA STRATEGY
local backtest = require "nomade.backtest"
local candles = require "nomade.candles"
local data, strat = ...

local t0 = os.clock()
local c = assert(candles.load(data))
local t1 = os.clock()
local run = assert(backtest.prepare { strategy = strat, candles = c })
local r = backtest.execute(run)
local t2 = os.clock()
local n = r.last - r.first + 1
print(string.format("backtest  %d candles: load %.3f s (%.0f candles/s), run %.3f s (%.0f candles/s; target 2,000,000)",
  c.n, t1 - t0, c.n / (t1 - t0), t2 - t1, n / (t2 - t1)))
