-- nomade.runtime: `nomade run` as an object. runtime.new(opts) (the
-- options of nomade.runtime.options) -> rt; rt:main() starts it, runs the
-- loop and tears it down. Its methods come from one module a concern:
-- wiring (what a run is made of), events (what happens, said and
-- journaled), control (command(action, source): the REPL, the dashboard,
-- Firebase, the halt file, signals), reload, console (the REPL, status()),
-- publish (the dashboard's tree) and teardown. Here: the start, the
-- candles (rt:on_candle) and the resume from the journal.
local loop = require "nomade.loop"
local host = require "nomade.host"
local repl = require "nomade.repl"
local board_mod = require "nomade.board"
local events = require "nomade.runtime.events"

local emit, iso = events.emit, events.iso
local COLUMNS = require "nomade.columns"

local M = {}
local R = {}
R.__index = R
for _, part in ipairs({ "events", "wiring", "control", "reload", "console", "publish", "teardown" }) do
  for name, fn in pairs(require("nomade.runtime." .. part).methods) do R[name] = fn end
end

function M.new(opts, path)
  return setmetatable({ opts = opts, path = path, state = {}, verdicts = {}, reloads = { count = 0 },
    failures = { count = 0, in_a_row = 0, repeats = 0 }, seen_seq = 0, journaled = 0, timers = {},
    watchers = {}, watched = {}, finished = false }, R)
end

-- a candle through the engine (the shield, the indicators, the fills,
-- the strategy's turn when live), then said, published and journaled
function R:ingest(row, live)
  local out = self.e.step(row, live)
  if not out.accepted then return self:say_unaccepted(row, out) end
  local inner, book = self.inner, self.book
  self:say_fills(out.fills)
  if out.fills[1] then self:publish_book() end
  self:report_dust()
  if out.decided then self:decided(out.ok, out.what, out.detail, out.intent) end
  self.board:candle(inner, self.e.ivals, inner.regime, inner.equity)
  local all = book.trades
  local fresh = {}
  for t = self.journaled + 1, #all do fresh[#fresh + 1] = all[t] end
  self.journaled = #all
  local ok_state, why = self.journal:candle(inner, self.e.snapshot(), fresh, self.state)
  if not ok_state then
    emit("error", "state", { error = why }, "  error state is not JSON-serialisable (%s): the journal keeps the last good one", why)
  end
  -- the collector's young collection now, a candle's work done: the next
  -- closing push starts with no debt, and its path to the order is not
  -- where the collector runs
  if live then collectgarbage("step") end
end

-- candle k of the feed, through the shield first: a gap is backfilled
-- when the feed can; a candle it refuses goes no further
function R:on_candle(k, live)
  local feed, inner, step = self.feed, self.inner, self.step_ms
  local row = {}
  for _, col in ipairs(COLUMNS) do row[col] = feed.cols[col][k] end
  if self.e.n > 0 and row.time > inner.time + step then
    local from, to = inner.time + step, row.time - step
    local rows, why
    if feed.backfill then rows, why = feed.backfill(from, to) else why = "a replay cannot backfill" end
    for _, r in ipairs(rows or {}) do
      if r.time > inner.time and r.time < row.time then self:ingest(r, false) end
    end
    if row.time > inner.time + step then
      emit("warn", "gap", { from = iso(from), to = iso(to), why = why },
        "  gap   candles %s .. %s missing: %s", iso(from), iso(to), why or "the exchange has none")
    end
  end
  if self.caps.fills_at == "market" then self.book.trigger = live and feed.arrived end  -- the order latency's start
  self:ingest(row, live)
end

-- a resumed journal: its candles, book and state, the board's recent candles
function R:resume()
  local resumed, e, book = self.resumed, self.e, self.book
  e.resume(resumed.candles, resumed.book)
  self.seen_seq = self.sh:stats().transitions  -- journaled when they happened
  e.restore_risk(resumed.book)  -- a breach before the restart: said again
  for k, v in pairs(resumed.state) do self.state[k] = v end
  self.journaled = #resumed.book.trades
  local n = e.n
  for k = math.max(1, n - board_mod.CANDLES + 1), n do
    local c, values = {}, {}
    for _, col in ipairs(COLUMNS) do c[col] = e.columns[col][k] end
    for name, series in pairs(e.indicators) do values[name] = series[k] end
    self.board:candle(c, values)
  end
  emit("info", "journal_resume", { journal = self.jpath, candles = n, last = iso(resumed.time) },
    "  resume from %s: %d candles, last %s, %s%s", self.jpath, n, iso(resumed.time),
    book.position and "a position open" or "flat", self.caps.exchange ~= "paper"
      and " (balances: the exchange's, next)" or string.format(", equity %.2f", book:equity(self.inner.close)))
end

-- the REPL's socket; false when it cannot listen
function R:serve_repl()
  local socket, sockerr = self.opts.socket, nil
  if not socket then socket, sockerr = repl.default_socket() end
  if socket then self.server, sockerr = repl.serve(socket, self.env) end
  if not self.server then
    io.stderr:write("nomade run: the REPL cannot listen: ", tostring(sockerr), "\n")
    return false
  end
  self.socket = socket
  return true
end

-- the lines that open a run: what trades where, and where to look
function R:say_start()
  local opts, s, path, feed = self.opts, self.s, self.path, self.feed
  if self.caps.exchange ~= "paper" then
    emit("warn", "exec", { base = self.book.client.base, max_position_value = s.max_position_value,
      max_orders_per_hour = s.max_orders_per_hour, max_daily_loss = s.max_daily_loss },
      "nomade run: REAL ORDERS on %s; risk: max_position_value %g, max_orders_per_hour %d, max_daily_loss %g",
      self.book.client.base, s.max_position_value, s.max_orders_per_hour, s.max_daily_loss)
  end
  emit("info", "start", { strategy = path or "default", symbol = s.symbol, interval = s.interval,
    feed = feed.name, history = feed.history, tribunal = opts.tribunal or "off", exec = opts.exec or "paper" },
    "nomade run: %s on %s %s, %s; tribunal %s%s", path or "the default strategy", s.symbol, s.interval,
    feed.describe(), opts.tribunal or "off",
    (opts.tribunal or "off") == "off" and " (every candidate passes as BUY)" or "")
  if path then emit("info", "hint", {}, "  edit %s while this runs: it reloads on save", path) end
  emit("info", "hint", { socket = self.socket }, "  attach: %s repl%s   (in another terminal)", host.argv0(),
    opts.socket and (" --socket " .. self.socket) or "")
  emit("info", "hint", { journal = self.jpath }, "  journal %s", self.jpath)
end

-- everything opened and wired, the feed started; false and the exit status
function R:start()
  local ok, err = self:open()
  if not ok then
    io.stderr:write("nomade run: ", tostring(err), "\n")
    return false, 1
  end
  self:wire_tribunal()
  self:console()
  if self.resumed then self:resume() end
  self:wire_feed()
  self:arm_kill_switch()
  self:wire_exchange()
  -- what nomade audit replays: the options, the book and the strategy from here on
  local resumed = self.resumed
  self.journal:start(resumed and resumed.time or 0, self.opts, self.rules, self.e.snapshot())
  self.journal:strategy_version(self.path or "default", self.strat.source, resumed and resumed.time + self.step_ms or 0)
  self.feed.start(resumed and resumed.time, function(k, live) self:on_candle(k, live) end, function()
    self.finished = true
    loop.stop()
  end)
  self:listen_signals()
  if not self:serve_repl() or not self:publish() then return false, 1 end
  self:say_start()
  return true
end

-- the run, start to end -> the exit status
function R:main()
  local ok, code = self:start()
  if not ok then return code end
  loop.run()
  return self:teardown()
end

return M
