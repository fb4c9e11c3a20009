-- nomade.bybit.feed: the Bybit feeds of `nomade run` (nomade.feed picks
-- them for --feed bybit and bybit-rest): the kline stream (WebSocket) with
-- REST for history and gaps, or V5 REST klines polled right after each
-- close. A feed holds the candles so far (cols) and hands each new one to
-- deliver(k, live) as nomade.feed says; it also has clock() (the
-- exchange's time, ms), backfill(from, to), rules(), and calls on_poll(ok,
-- err, clock_offset) after each REST request, on_link(up, why) when the
-- stream goes down or is whole again and on_beat() for every frame it
-- brings, for the shield.
local loop = require "nomade.loop"
local log = require "nomade.log"
local time = require "nomade.time"
local COLUMNS = require "nomade.columns"

local M = {}

-- how long after a close the exchange is given to publish the candle
M.SETTLE_MS = 1500
-- overdue polls back off up to this many seconds
M.MAX_RETRY = 15
-- a restart catches up at most this many missed candles (else: a new journal)
M.MAX_CATCHUP = 50000

local iso = time.iso

-- the candles a Bybit feed starts with: max(1000, history) confirmed
-- ones, or every one since `after` (a resumed journal); or nil, why
local function first_candles(client, s, step, after)
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
  return cols
end

-- candle k of fetched columns as a row {time, open, ...}
local function row_at(got, k)
  local row = {}
  for _, col in ipairs(COLUMNS) do row[col] = got[col][k] end
  return row
end

-- what the Bybit feeds share: the REST client, the history (the last
-- max(1000, history) confirmed candles, or with `after`, a resumed journal,
-- every candle since), the instrument's rules, the exchange's clock,
-- backfill, and f.append(got, live_newest) for candles fetched over REST.
-- Needs no keys.
local function bybit_base(opts, s, after)
  local bybit = require "nomade.bybit.rest"
  local ok, client = pcall(bybit.new, { base = opts["base-url"] or "mainnet", timeout = 10 })
  if not ok then return nil, tostring(client):gsub("^.-: ", "") end
  local step = time.INTERVALS[s.interval] * 1000
  local synced, serr = client:sync_time()
  if not synced then return nil, tostring(serr) end
  local cols, err = first_candles(client, s, step, after)
  if not cols then return nil, err end
  local f = { cols = cols, client = client, step = step, name = "bybit", errors = 0, gaps = 0,
    last = cols.n > 0 and cols.time[cols.n] or after }

  -- instrument rules from the exchange itself
  function f.rules()
    local res, rerr = client:instruments(s.symbol)
    if not res then return nil, tostring(rerr) end
    return require("nomade.bybit.instruments").from_list(res.list, s.symbol)
  end

  -- the exchange's clock (ms), for the shield's staleness check
  function f.clock() return client:server_now() end

  -- the candles from `from` to `to` (ms, both included) the exchange has,
  -- as rows {time, open, ...}; or nil, why
  function f.backfill(from, to)
    local got, berr = client:candles(s.symbol, s.interval, nil, { since = from - 1, ["end"] = to })
    if not got then return nil, tostring(berr) end
    local rows = {}
    for k = 1, got.n do rows[k] = row_at(got, k) end
    return rows, got.n == 0 and "the exchange has no candles there (a halt?)" or nil
  end

  -- one confirmed candle after the last, to the runtime
  function f.push(row, live)
    local t = row.time
    if t ~= f.last + step then
      f.gaps = f.gaps + 1
      log.event("warn", "feed_gap", { from = iso(f.last + step), to = iso(t - step), missing = (t - f.last) // step - 1 },
        string.format("  warn  feed: the exchange has no candle from %s to %s (%d missing)",
          iso(f.last + step), iso(t - step), (t - f.last) // step - 1))
    end
    for _, col in ipairs(COLUMNS) do cols[col][cols.n + 1] = row[col] end
    cols.n, f.last = cols.n + 1, t
    f.deliver(cols.n, live)
  end

  -- every confirmed candle after the last, over REST; the newest is live
  -- when live_newest. true, or nil, err (logged, counted)
  function f.catch_up(live_newest, closed)
    local got, perr = client:candles(s.symbol, s.interval, nil, { since = f.last, closed = closed })
    if f.on_poll then f.on_poll(got ~= nil, perr, client.offset) end
    if not got then
      f.errors, f.last_error = f.errors + 1, tostring(perr)
      log.event("warn", "feed_error", { error = tostring(perr), kind = perr.kind }, "  warn  feed: " .. tostring(perr))
      return nil, perr
    end
    for k = 1, got.n do f.push(row_at(got, k), live_newest and k == got.n) end
    f.open_candle = got.open_candle or f.open_candle
    return true
  end

  function f.start_history(fn)
    f.deliver = fn
    f.history = cols.n
    for k = 1, cols.n do fn(k, false) end
  end
  return f
end

-- M.bybit_rest(opts, settings, after) -> feed or nil, err: each candle
-- polled over REST right after it closes
function M.bybit_rest(opts, s, after)
  local f, err = bybit_base(opts, s, after)
  if not f then return nil, err end
  local client, step = f.client, f.step
  local tries, timer, late_warned = 0, nil, nil
  f.polls = 0

  -- seconds until the next poll: the settle time after the next close, or
  -- when that is past (the candle is late), a growing retry
  local function next_poll()
    local due = f.last + 2 * step + M.SETTLE_MS - client:server_now()
    if due > 0 then
      tries = 0
      return due / 1000
    end
    tries = tries + 1
    if due < -step and late_warned ~= f.last then
      late_warned = f.last
      log.event("warn", "feed_late", { since = iso(f.last + 2 * step), seconds = -due // 1000 },
        string.format("  warn  feed: no confirmed candle for %d s past the %s close", -due // 1000,
          iso(f.last + 2 * step)))
    end
    return math.min(M.MAX_RETRY, 0.5 * 2 ^ tries)
  end

  local function poll()
    f.polls, f.last_poll = f.polls + 1, time.stamp()
    f.catch_up(true)
    timer = loop.timer(next_poll(), 0, poll)
  end

  function f.start(_, fn)
    f.start_history(fn)
    timer = loop.timer(next_poll(), 0, poll)
  end
  function f.stop() if timer then timer:stop() end end
  function f.status()
    return { source = "bybit-rest", base = client.base, candles = f.cols.n, last = f.last and iso(f.last),
      polls = f.polls, last_poll = f.last_poll, errors = f.errors, last_error = f.last_error, gaps = f.gaps,
      open_candle = f.open_candle }
  end
  function f.describe()
    return string.format("Bybit %s klines from %s (%d candles %s), polled %.1f s after each close",
      s.interval, client.base, f.cols.n, after and "caught up since the journal" or "of history",
      M.SETTLE_MS / 1000)
  end
  return f
end

-- the public spot stream of each Bybit base (demo has none: mainnet's)
M.WS_URLS = { mainnet = "wss://stream.bybit.com/v5/public/spot",
  testnet = "wss://stream-testnet.bybit.com/v5/public/spot", demo = "wss://stream.bybit.com/v5/public/spot" }

-- M.bybit_ws(opts, settings, after) -> feed or nil, err: the kline stream
-- (nomade.bybit.stream; only confirm: true closes a candle), REST for history
-- and for every candle missed while the stream was down or skipped
function M.bybit_ws(opts, s, after)
  local url = opts["ws-url"] or M.WS_URLS[opts["base-url"] or "mainnet"]
  if not url then return nil, "--feed bybit with a custom --base-url needs --ws-url (or --feed bybit-rest)" end
  local f, err = bybit_base(opts, s, after)
  if not f then return nil, err end
  local step = f.step
  local topic = "kline." .. require("nomade.bybit.rest").INTERVALS[s.interval] .. "." .. s.symbol
  local tickers = "tickers." .. s.symbol
  local st

  -- a kline push: a confirmed candle after the last closes it
  local function on_message(stream, doc)
    if doc.op == "subscribe" and doc.success ~= true then
      log.event("error", "feed_subscribe", { topic = topic, ret_msg = doc.ret_msg },
        "  error feed: the subscription to " .. topic .. " failed: " .. tostring(doc.ret_msg))
    end
    if doc.topic == tickers and type(doc.data) == "table" then  -- the live price, between closes
      local last = tonumber(doc.data.lastPrice)
      if last then f.ticker = { price = last, time = math.tointeger(doc.ts) } end
      return
    end
    if doc.topic ~= topic or type(doc.data) ~= "table" then return end
    for _, k in ipairs(doc.data) do
      local start = type(k) == "table" and math.tointeger(k.start)
      if start and k.confirm == true and start > f.last then
        if start > f.last + step then f.catch_up(false, start) end  -- missed pushes: REST has them
        if start == f.last + step then
          local row = { time = start, open = tonumber(k.open), high = tonumber(k.high), low = tonumber(k.low),
            close = tonumber(k.close), volume = tonumber(k.volume) }
          f.arrived = stream.arrived  -- the push that closed it came in then (make bench)
          if row.open and row.high and row.low and row.close and row.volume then f.push(row, true) end
        end
      elseif start and k.confirm == false then
        f.open_candle = { time = start, close = tonumber(k.close) }
      end
    end
  end

  -- (re)connected: subscribe, then what closed while it was down
  local function on_open(stream)
    stream:send { op = "subscribe", args = { topic, tickers }, req_id = "nomade" }
    local ok, cerr = f.catch_up(false)
    if not ok then return false, "cannot catch up over REST: " .. tostring(cerr) end
    return true
  end

  function f.start(_, fn)
    f.start_history(fn)
    st = require("nomade.bybit.stream").open { url = url, name = "feed", timeout = tonumber(opts["stream-timeout"]),
      on_open = on_open, on_message = on_message,
      on_link = function(up, why) if f.on_link then f.on_link(up, why) end end,
      on_beat = function() if f.on_beat then f.on_beat() end end }
  end
  function f.stop() if st then st:stop() end end
  function f.status()
    return { source = "bybit", base = f.client.base, stream = url, up = st and st.up or false,
      connects = st and st.connects or 0, messages = st and st.messages or 0, malformed = st and st.malformed or 0,
      candles = f.cols.n, last = f.last and iso(f.last), errors = f.errors, last_error = f.last_error, gaps = f.gaps,
      open_candle = f.open_candle, ticker = f.ticker }
  end
  function f.describe()
    return string.format("Bybit %s klines streamed from %s (%d candles %s from %s)", s.interval, url, f.cols.n,
      after and "caught up since the journal" or "of history", f.client.base)
  end
  return f
end

return M
