-- nomade.feed: where `nomade run` gets its candles. A feed holds the
-- candles so far (cols: time, open, high, low, close, volume arrays and n,
-- growing) and, once started, hands each new one to deliver(k, live): live
-- false for a candle that closed before it could be acted on (history,
-- catch-up), which the strategy sees but does not decide on. A live feed
-- also has clock() (the exchange's time, ms), backfill(from, to), and calls
-- on_poll(ok, err, clock_offset) after each REST request, on_link(up,
-- why) when a stream goes down or is whole again and on_beat() for every
-- frame a stream brings, for the shield.
--   replay:FILE  a candle file played `speed` times faster than real time
--   bybit        Bybit's kline stream (WebSocket), REST for history and gaps
--   bybit-rest   Bybit V5 REST klines, polled right after each close
-- (the Bybit feeds are the adapter's: nomade.bybit.feed)
local loop = require "nomade.loop"
local time = require "nomade.time"
local bybit = require "nomade.bybit.feed"

local M = {}

-- M.replay(path, settings, speed) -> feed or nil, err
function M.replay(path, s, speed)
  local candles = require "nomade.candles"
  local cols, err = candles.load(path)
  if not cols then return nil, err end
  local spaced, serr = candles.check_interval(cols, s.interval)
  if not spaced then return nil, serr end
  local f = { cols = cols, name = "replay:" .. path }
  local timer
  -- after: the journal's last candle time (a resumed run), or nil
  function f.start(after, deliver, finish)
    local k = 1
    if after then
      while k <= cols.n and cols.time[k] <= after do k = k + 1 end
    else
      -- the warm-up at once: the strategy cannot decide before `history`
      f.history = math.min(cols.n, s.history - 1)
      for h = 1, f.history do deliver(h, true) end
      k = f.history + 1
    end
    local period = time.INTERVALS[s.interval] / speed
    -- one candle at a time: a candle whose turn waits (on the tribunal)
    -- holds the next ones back
    local busy = false
    timer = loop.timer(0, math.max(period, 1e-9), function(t)
      if busy then return end
      if k > cols.n then
        t:stop()
        return finish()
      end
      k = k + 1
      busy = true
      local ok, why = pcall(deliver, k - 1, true)
      busy = false
      if not ok then error(why, 0) end
    end)
  end
  function f.stop() if timer then timer:stop() end end
  function f.status() return { file = path, total = cols.n } end
  function f.describe()
    return string.format("replaying %s (%d candles, %d as history) at %s", path, cols.n, f.history or 0,
      speed == math.huge and "max speed" or ("x" .. require("nomade.pretty").number(speed)))
  end
  return f
end

-- M.open(opts, settings, after) -> feed or nil, err, from --feed
function M.open(opts, s, after)
  if opts.feed == "bybit" then return bybit.bybit_ws(opts, s, after) end
  if opts.feed == "bybit-rest" then return bybit.bybit_rest(opts, s, after) end
  local path = opts.feed and opts.feed:match("^replay:(.+)$")
  if not path then return nil, "--feed must be replay:FILE, bybit or bybit-rest" end
  return M.replay(path, s, opts.speed)
end

return M
