-- btlib: helpers for the backtest tests: synthetic candle files and
-- strategies written to temporary files.
local M = {}

-- candles {{open, high, low, close[, volume]}, ...} one hour apart from
-- 2023-01-01, written as a CSV file; returns its path
function M.csv(rows, step_ms)
  local p = os.tmpname()
  local f = assert(io.open(p, "w"))
  f:write("open_time_ms,open,high,low,close,volume\n")
  for i, r in ipairs(rows) do
    f:write(string.format("%d,%.8f,%.8f,%.8f,%.8f,%.8f\n", 1672531200000 + (i - 1) * (step_ms or 3600000),
      r[1], r[2], r[3], r[4], r[5] or 1))
  end
  f:close()
  return p
end

function M.file(text)
  local p = os.tmpname() .. ".lua"
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

-- runs a backtest in-process; returns the result or nil, err
function M.run(opts)
  local bt = require "nomade.backtest"
  local run, err = bt.prepare(opts)
  if not run then return nil, err end
  local ok, res = pcall(bt.execute, run)
  if not ok then return nil, res end
  return res
end

return M
