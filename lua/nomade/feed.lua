-- nomade.feed: where `nomade run` gets its candles. A feed holds the
-- candles so far (cols: time, open, high, low, close, volume arrays and n,
-- growing) and, once started, hands each new one to deliver(k, live): live
-- false for a candle that closed before it could be acted on (history,
-- catch-up), which the strategy sees but does not decide on. A live feed
-- also has clock() (the exchange's time, ms), backfill(from, to) and calls
-- on_poll(ok, err, clock_offset) after each request, for the shield.
--   replay:FILE  a candle file played `speed` times faster than real time
--   bybit        Bybit V5 REST klines, polled right after each close
local loop = require "nomade.loop"
local log = require "nomade.log"

local M = {}

local COLUMNS = { "time", "open", "high", "low", "close", "volume" }

-- how long after a close the exchange is given to publish the candle
M.SETTLE_MS = 1500
-- overdue polls back off up to this many seconds
M.MAX_RETRY = 15
-- a restart catches up at most this many missed candles (else: a new journal)
M.MAX_CATCHUP = 50000

local function iso(ms) return os.date("!%Y-%m-%d %H:%M", ms // 1000) end

-- M.replay(path, settings, speed) -> feed or nil, err
function M.replay(path, s, speed)
  local cols, err = require("nomade.candles").load(path)
  if not cols then return nil, err end
  local spaced, serr = require("nomade.backtest").check_interval(cols, s.interval)
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
    local period = require("nomade.strategy").INTERVALS[s.interval] / speed
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

-- M.bybit(opts, settings, after) -> feed or nil, err. History: the last
-- max(1000, history) confirmed candles, or with `after` (a resumed journal)
-- every candle since. Needs no keys.
function M.bybit(opts, s, after)
  local bybit = require "nomade.bybit"
  local ok, client = pcall(bybit.new, { base = opts["base-url"] or "mainnet", timeout = 10 })
  if not ok then return nil, tostring(client):gsub("^.-: ", "") end
  local step = require("nomade.strategy").INTERVALS[s.interval] * 1000
  local synced, serr = client:sync_time()
  if not synced then return nil, tostring(serr) end
  local cols, err
  if after then
    local behind = (client:server_now() - after) // step
    if behind > M.MAX_CATCHUP then
      return nil, string.format("the journal's last candle (%s) is %d candles ago, more than the %d a "
        .. "restart catches up: start a new --journal", iso(after), behind, M.MAX_CATCHUP)
    end
    cols, err = client:candles(s.symbol, s.interval, nil, { since = after })
  else
    cols, err = client:candles(s.symbol, s.interval, math.max(1000, s.history))
    if cols and cols.n == 0 then err = "bybit: no confirmed " .. s.symbol .. " " .. s.interval .. " candles" end
  end
  if not cols or err then return nil, tostring(err) end
  local f = { cols = cols, client = client, name = "bybit", polls = 0, errors = 0, gaps = 0 }
  local last = cols.n > 0 and cols.time[cols.n] or after
  local tries, timer, late_warned = 0, nil, nil

  -- instrument rules from the exchange itself
  function f.rules()
    local res, rerr = client:instruments(s.symbol)
    if not res then return nil, tostring(rerr) end
    return require("nomade.instruments").from_list(res.list, s.symbol)
  end

  -- seconds until the next poll: the settle time after the next close, or
  -- when that is past (the candle is late), a growing retry
  local function next_poll()
    local due = last + 2 * step + M.SETTLE_MS - client:server_now()
    if due > 0 then
      tries = 0
      return due / 1000
    end
    tries = tries + 1
    if due < -step and late_warned ~= last then
      late_warned = last
      log.event("warn", "feed_late", { since = iso(last + 2 * step), seconds = -due // 1000 },
        string.format("  warn  feed: no confirmed candle for %d s past the %s close", -due // 1000,
          iso(last + 2 * step)))
    end
    return math.min(M.MAX_RETRY, 0.5 * 2 ^ tries)
  end

  local deliver
  local function poll()
    f.polls, f.last_poll = f.polls + 1, os.date("!%Y-%m-%dT%H:%M:%SZ")
    local got, perr = client:candles(s.symbol, s.interval, nil, { since = last })
    if not got then
      f.errors, f.last_error = f.errors + 1, tostring(perr)
      log.event("warn", "feed_error", { error = tostring(perr), kind = perr.kind },
        "  warn  feed: " .. tostring(perr))
    else
      for k = 1, got.n do
        local t = got.time[k]
        if t ~= last + step then
          f.gaps = f.gaps + 1
          log.event("warn", "feed_gap", { from = iso(last + step), to = iso(t - step), missing = (t - last) // step - 1 },
            string.format("  warn  feed: the exchange has no candle from %s to %s (%d missing)",
              iso(last + step), iso(t - step), (t - last) // step - 1))
        end
        for _, col in ipairs(COLUMNS) do cols[col][cols.n + 1] = got[col][k] end
        cols.n, last = cols.n + 1, t
        deliver(cols.n, k == got.n)
      end
      f.open_candle = got.open_candle
    end
    if f.on_poll then f.on_poll(got ~= nil, perr, client.offset) end
    timer = loop.timer(next_poll(), 0, poll)
  end

  -- the exchange's clock (ms), for the shield's staleness check
  function f.clock() return client:server_now() end

  -- the candles from `from` to `to` (ms, both included) the exchange has,
  -- as rows {time, open, ...}; or nil, why
  function f.backfill(from, to)
    local got, berr = client:candles(s.symbol, s.interval, nil, { since = from - 1, ["end"] = to })
    if not got then return nil, tostring(berr) end
    local rows = {}
    for k = 1, got.n do
      local row = {}
      for _, col in ipairs(COLUMNS) do row[col] = got[col][k] end
      rows[k] = row
    end
    return rows, got.n == 0 and "the exchange has no candles there (a halt?)" or nil
  end

  function f.start(_, fn)
    deliver = fn
    f.history = cols.n
    for k = 1, cols.n do deliver(k, false) end
    timer = loop.timer(next_poll(), 0, poll)
  end
  function f.stop() if timer then timer:stop() end end
  function f.status()
    return { source = "bybit", base = client.base, candles = cols.n, last = last and iso(last),
      polls = f.polls, last_poll = f.last_poll, errors = f.errors, last_error = f.last_error, gaps = f.gaps,
      open_candle = f.open_candle }
  end
  function f.describe()
    return string.format("Bybit %s klines from %s (%d candles %s), polled %.1f s after each close",
      s.interval, client.base, cols.n, after and "caught up since the journal" or "of history",
      M.SETTLE_MS / 1000)
  end
  return f
end

-- M.open(opts, settings, after) -> feed or nil, err, from --feed
function M.open(opts, s, after)
  if opts.feed == "bybit" then return M.bybit(opts, s, after) end
  local path = opts.feed and opts.feed:match("^replay:(.+)$")
  if not path then return nil, "--feed must be replay:FILE or bybit" end
  return M.replay(path, s, opts.speed)
end

return M
