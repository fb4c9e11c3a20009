-- nomade.live: `nomade run`, the runtime that stays up. A feed hands it
-- candles on the event loop; each candle runs in its own coroutine through
-- the same engine step as the backtester (nomade.engine) with paper
-- execution; the strategy file is watched and reloaded in place, keeping
-- `state` and the book. Feeds (nomade.feed): a replay of a candle file X
-- times faster than real time, or Bybit's klines. Execution: the paper
-- book, or Bybit itself (nomade.bybit.book) behind the shield, the risk
-- limits and the kill switch. The run itself is an object
-- (nomade.runtime); this is its command-line entry.
local cli = require "nomade.cli"
local engine = require "nomade.engine"
local options = require "nomade.runtime.options"
local publish = require "nomade.runtime.publish"
local runtime = require "nomade.runtime"

local M = {}

-- VM instructions one candle's strategy calls may take (nomade backtest's too)
M.CANDLE_BUDGET = engine.CANDLE_BUDGET

M.USAGE = options.USAGE

M.web_dir = publish.web_dir

function M.main(...)
  local opts, err = options.parse({ ... })
  if not opts then return cli.refuse("run", err, M.USAGE) end
  return runtime.new(opts, opts.strategy and options.absolute(opts.strategy)):main()
end

return M
