-- nomade.audit: `nomade audit JOURNAL`, the proof that a run's decisions
-- are reproducible. The journal of a `nomade run` keeps its candles, every
-- strategy version's source, each start's options and book, the verdicts
-- and what the run decided and filled; the audit replays the candles
-- through the same engine step (nomade.engine) with the version that
-- applied to each, the journaled verdicts as the judge and a paper book
-- of the run's cash, fee and rules, and reports the first candle where
-- the replay does not do what the journal says was done.
local cjson = require "cjson.safe"
local crypto = require "nomade.crypto"
local journal_mod = require "nomade.journal"
local strategy = require "nomade.strategy"
local shield_mod = require "nomade.shield"
local tribunal = require "nomade.tribunal"
local engine = require "nomade.engine"
local pretty = require "nomade.pretty"
local cli = require "nomade.cli"
local host = require "nomade.host"

local M = {}

M.USAGE = [[
usage: nomade audit JOURNAL
  replays the journal of a `nomade run` (its candles, through the same
  engine step, with the strategy version that applied to each candle, the
  journaled verdicts as the tribunal, and a paper book with the run's
  --cash, --fee and instrument rules) and checks that every decision,
  order intent and fill is what the journal says the run did
  --exec bybit journals are refused (exit 2) for now: their fills, wallet
  and risk checks came from the exchange, and replaying decisions against
  the journaled fills is not written yet
  exit 0: all match; 1: the first candle that does not (its time, what was
  journaled, what the replay did); 2: a bad command line or journal, or a
  journal a run is still writing (the audit takes the journal's lock)
]]

local iso = require("nomade.time").iso

-- a value as the journal keeps it: through JSON, integral numbers integers
local function as_journaled(v) return journal_mod.decode(cjson.encode(v)) end

local KEPT = { decision = true, fill = true, error = true, verdict = true, halt = true, unhalt = true, refused = true }

-- what the run journaled: its candles, starts, versions and, by candle
-- time, the events an audit compares (and the verdicts, by prompt hash)
local function read(j)
  local db = j.db
  local rec = { by_time = {}, verdicts = {}, candles = db:run("SELECT time, open, high, low, close, volume FROM "
    .. "candles ORDER BY time") }
  rec.versions, rec.starts = j:strategy_versions(), j:starts()
  for _, r in ipairs(db:run("SELECT time, kind, detail, id FROM events ORDER BY id")) do
    local kind = r[2]
    if KEPT[kind] then
      local detail = journal_mod.decode(r[3])
      if detail == nil then detail = r[3] end
      if kind == "verdict" then
        if type(detail) ~= "table" or type(detail.prompt_sha256) ~= "string" then
          error(string.format("%s: event %d: a verdict without its prompt's sha256", j.path, r[4]), 0)
        end
        local queue = rec.verdicts[detail.prompt_sha256] or {}
        queue[#queue + 1] = detail
        rec.verdicts[detail.prompt_sha256] = queue
      else
        local list = rec.by_time[r[1]] or {}
        list[#list + 1] = { kind = kind, detail = detail, id = r[4] }
        rec.by_time[r[1]] = list
      end
    end
  end
  local interval = db:run("SELECT value FROM meta WHERE key = 'interval'")[1]
  rec.interval = interval and interval[1]
  local snap = db:run("SELECT book, state FROM snapshot WHERE id = 1")[1]
  if snap then
    rec.snapshot = { book = journal_mod.decode(snap[1]), state = journal_mod.decode(snap[2]), trades = {} }
    for _, row in ipairs(db:run("SELECT detail FROM trades ORDER BY id")) do
      rec.snapshot.trades[#rec.snapshot.trades + 1] = journal_mod.decode(row[1])
    end
  end
  return rec
end

-- a version of the strategy as journaled: its source checked against its
-- sha256 (a mismatch: true as the third result), loaded with the run's `state`
local function load_version(v, state)
  if crypto.sha256(v.source) ~= v.sha256 then
    return nil, string.format("strategy version %d (%s, from %s): its source is not the one journaled (sha256 %s, "
      .. "the source's is %s)", v.id, v.path, v.time == 0 and "the start" or iso(v.time), v.sha256,
      crypto.sha256(v.source)), true
  end
  local chunk = v.path == "default" and "=lua/strategy.lua (bundled)" or "=" .. v.path
  local strat, err = strategy.load(v.source, chunk, state, function() end)
  if not strat then return nil, string.format("strategy version %d (%s) does not load: %s", v.id, v.path, err) end
  return strat
end

-- the journaled verdicts as the judge: by prompt hash, in the order the
-- run got them; a prompt the run never had judged is a mismatch, said to
-- on_unknown (the judge is called inside the strategy's protected turn)
local function journaled_judge(rec, mode, on_live, on_unknown)
  if mode == "off" then return tribunal.judge("off") end
  return function(prompt)
    local hash = crypto.sha256(prompt)
    local queue = rec.verdicts[hash]
    local v = queue and table.remove(queue, 1)
    if not v then
      on_unknown("the replay asked the tribunal a prompt the run never had judged (sha256 " .. hash .. ")")
      return { signal = "WAIT", score = 0, reasoning = "", source = "unjournaled" }
    end
    v.source = v.source or (mode == "live" and "live" or "cache")
    if v.source == "live" then on_live(v) end
    return v
  end
end

-- what the run journals of a candle's step (nomade.live): its fills, its
-- decision, or the strategy's failure
local function replayed(out, e)
  local list = {}
  for _, f in ipairs(out.fills or {}) do
    list[#list + 1] = { kind = "fill", detail = { side = f.side, qty = f.qty, price = f.price, reason = f.reason } }
  end
  if not out.decided then return list end
  if not out.ok then
    list[#list + 1] = { kind = "error", detail = string.format("strategy failed in %s: %s", e.phase(),
      tostring(out.what)) }
  elseif out.what then
    list[#list + 1] = { kind = "decision", detail = journal_mod.decision(out.what, e.inner.regime, out.detail,
      out.intent) }
  end
  return as_journaled(list)
end

-- the journaled events of a candle the audit compares: fills, decisions
-- and the strategy's failures, in the order they were written
local function journaled(rec, time)
  local list = {}
  for _, ev in ipairs(rec.by_time[time] or {}) do
    if ev.kind == "fill" or ev.kind == "decision"
        or (ev.kind == "error" and type(ev.detail) == "string" and ev.detail:match("^strategy failed")) then
      list[#list + 1] = { kind = ev.kind, detail = ev.detail }
    end
  end
  return list
end

-- the first difference of two journaled records' lists, or nil
local function differ(want, got)
  for k = 1, math.max(#want, #got) do
    local a, b = want[k], got[k]
    if not (a and b and a.kind == b.kind and journal_mod.same(a.detail, b.detail)) then return k end
  end
end

local function show(r)
  if not r then return "nothing" end
  return r.kind .. " " .. pretty.format(r.detail, { depth = 4, items = 20, width = 400 })
end

-- m.shield after the shield heard something, as the run shows it
local function shield_seen(run) run.e.show_shield() end

-- an engine as the run had it at a start: the shield of the run's --shield
-- for the strategy it started with, a paper book of its --cash, --fee and
-- rules (guarded by the shield), the judge
local function build(start, strat, judge)
  local s = start.settings
  local sh, err = shield_mod.new(strat, s.shield)
  if not sh then return nil, "the journaled --shield: " .. tostring(err) end
  local book = engine.paper_book(strat.settings, s.rules, s)
  book:guard(sh)
  local e = engine.new { strategy = strat, book = book, judge = judge, shield = sh, mode = s.tribunal or "off",
    rules = s.rules }
  local run = { e = e, sh = sh, book = book }
  e.on_shield = function() shield_seen(run) end
  return run
end

-- the replay's state: the run's strategy `state`, the versions and starts
-- still to come, the engine of the current start
local function replay_new(rec)
  local r = { rec = rec, state = {}, version = 0, start = 0, k = 0, decisions = 0, fills = 0 }
  r.step = strategy.INTERVALS[rec.interval] * 1000
  r.judge = journaled_judge(rec, rec.starts[1].settings.tribunal or "off", function(v)
    r.run.sh:signal("tribunal", tribunal.UNAVAILABLE[v.cause] or false,
      v.cause and (v.cause .. ": " .. tostring(v.detail)) or "", r.run.e.inner.time + r.step)
    shield_seen(r.run)
  end, function(why) r.unknown = r.unknown or why end)
  return r
end

-- the strategy version that applies from candle time t, loaded afresh
-- (as the run loads it, at a start or a reload); nil when none is due
local function due_version(r, t, restart)
  local versions = r.rec.versions
  local nextv = versions[r.version + 1]
  if nextv and nextv.time <= t then
    r.version = r.version + 1
  elseif not restart then
    return nil
  end
  local strat, err, altered = load_version(versions[r.version], r.state)
  if not strat then error({ audit = err, bad = not altered }) end
  return strat
end

-- the versions a restart before candle time t finds: the last one due
local function skip_versions(r, t)
  local versions = r.rec.versions
  while versions[r.version + 2] and versions[r.version + 2].time <= t do r.version = r.version + 1 end
end

-- a start of the run before candle k (time t): the book and state as the
-- run restored them from the journal, a fresh shield and engine
local function restart(r, start, k)
  skip_versions(r, r.rec.candles[k][1])
  local strat = due_version(r, r.rec.candles[k][1], true)
  local run = assert(build(start, strat, r.judge))
  if k > 1 then
    local snap = r.run.e.snapshot()
    if not journal_mod.same(as_journaled(snap), start.book) then
      return { kind = "book at the restart", detail = start.book }, { kind = "book at the restart", detail = snap }
    end
    local book = as_journaled(start.book)
    book.trades = r.run.book.trades
    local rows = table.move(r.rec.candles, 1, k - 1, 1, {})
    run.e.resume(rows, book)
    run.e.restore_risk(book)
    local state = as_journaled(r.state)
    for key in pairs(r.state) do r.state[key] = nil end
    for key, v in pairs(state) do r.state[key] = v end
  else
    run.book:restore(start.book)
    run.e.changed()
  end
  r.run = run
end

-- a reload in the run before candle time t: the new version decides from t
local function reload(r, t)
  local strat = due_version(r, t)
  while strat do
    local run = r.run
    run.e.reload(strat)
    if strat.env.on_reload then host.limit(engine.CANDLE_BUDGET, strat.env.on_reload, r.state) end
    strat = due_version(r, t)
  end
end

-- the halts and unhalts the run noted after candle time t
local function controls(r, t)
  for _, ev in ipairs(r.rec.by_time[t] or {}) do
    if ev.kind == "halt" then r.run.sh:signal("halted", true, ev.detail.why, t + r.step) end
    if ev.kind == "unhalt" then r.run.sh:signal("halted", false, "", t + r.step) end
  end
  shield_seen(r.run)
end

-- the candles the shield refused before candle time t (journaled with
-- it): through the step again, where they must be refused again
local function refused(r, t)
  for _, ev in ipairs(r.rec.by_time[t] or {}) do
    if ev.kind == "refused" then
      local c = ev.detail.candle or {}
      local out = r.run.e.step({ time = ev.detail.time + 0.0, open = c[1], high = c[2], low = c[3], close = c[4],
        volume = c[5] }, true)
      shield_seen(r.run)
      if out.accepted then
        return { kind = "refused", detail = ev.detail }, { kind = "accepted", detail = { time = ev.detail.time } }
      end
    end
  end
end

-- candle k through the engine step, as the run stepped it: nil when it
-- did what was journaled, else the journaled and the replayed record
local function candle(r, k)
  local row = r.rec.candles[k]
  local t = row[1]
  local starts = r.rec.starts
  if starts[r.start + 1] and starts[r.start + 1].time < t then
    while starts[r.start + 2] and starts[r.start + 2].time < t do r.start = r.start + 1 end
    r.start = r.start + 1
    local want, got = restart(r, starts[r.start], k)
    if want then return want, got end
  end
  reload(r, t)
  local want, got = refused(r, t)
  if want then return want, got end
  local run = r.run
  -- the time as the run's feed handed it: a float, as a series holds it
  local out = run.e.step({ time = t + 0.0, open = row[2], high = row[3], low = row[4], close = row[5],
    volume = row[6] }, true)
  if r.unknown then error({ audit = r.unknown }) end
  if out.decided then
    run.sh:strategy(out.ok, not out.ok and string.format("in %s: %s", run.e.phase(), tostring(out.what)) or nil,
      t + r.step)
    shield_seen(run)
  end
  want, got = journaled(r.rec, t), replayed(out, run.e)
  controls(r, t)
  local at = differ(want, got)
  if at then return want[at] or { kind = "nothing" }, got[at] or { kind = "nothing" } end
  for _, ev in ipairs(got) do
    if ev.kind == "fill" then r.fills = r.fills + 1 elseif ev.kind == "decision" then r.decisions = r.decisions + 1 end
  end
end

-- after the last candle: the book, its trades and `state` as the journal
-- left them
local function final(r)
  local snap = r.rec.snapshot
  if not snap then return end
  local book = as_journaled(r.run.e.snapshot())
  if not journal_mod.same(book, snap.book) then
    return { kind = "book", detail = snap.book }, { kind = "book", detail = book }
  end
  local trades = as_journaled(r.run.book.trades)
  if not journal_mod.same(trades, snap.trades) then
    return { kind = "trades", detail = snap.trades }, { kind = "trades", detail = trades }
  end
  local state = as_journaled(r.state)
  if not journal_mod.same(state, snap.state) then
    return { kind = "state", detail = snap.state }, { kind = "state", detail = state }
  end
end

-- the whole replay: nil when all matched, else where it did not
local function replay(rec)
  local r = replay_new(rec)
  for k = 1, #rec.candles do
    local ok, want, got = pcall(candle, r, k)
    if not ok then
      if type(want) ~= "table" or not want.audit then
        return r, { bad = "the journal cannot be replayed at candle " .. k .. ": " .. tostring(want) }
      end
      if want.bad then return r, { bad = want.audit } end
      return r, { k = k, why = want.audit }
    end
    if want then return r, { k = k, want = want, got = got } end
  end
  local want, got = final(r)
  if want then return r, { k = #rec.candles + 1, want = want, got = got } end
  return r
end

local function count(n, what) return string.format("%d %s%s", n, what, n == 1 and "" or "s") end

-- the report of a mismatch, on stdout
local function report(path, rec, r, miss)
  local row = rec.candles[miss.k]
  local where = row and string.format("the candle of %s (time %d, candle %d of %d, strategy version %d)",
    iso(row[1]), row[1], miss.k, #rec.candles, r.version) or "the end of the journal"
  io.stdout:write(string.format("nomade audit: %s: MISMATCH at %s\n", path, where))
  if miss.why then
    io.stdout:write("  ", miss.why, "\n")
  else
    io.stdout:write("  journaled: ", show(miss.want), "\n  replayed:  ", show(miss.got), "\n")
  end
end

-- the journal at path, read and checked for what a replay needs: rec, or
-- nil and why
local function load(path)
  local j, err = journal_mod.read(path)
  if not j then return nil, err end
  local ok, rec = pcall(read, j)
  j:close()
  if not ok then return nil, tostring(rec) end
  if #rec.starts == 0 or #rec.versions == 0 then return nil, path .. ": the run never started" end
  if not strategy.INTERVALS[rec.interval] then return nil, path .. ": no interval in its meta table" end
  if rec.starts[1].settings.exec == "bybit" then
    return nil, path .. ": an --exec bybit journal: its fills, wallet and risk checks came from the exchange; "
      .. "the audit replays paper runs only (nomade audit --help)"
  end
  return rec
end

function M.main(...)
  local opts, err = cli.parse({ ... }, {})
  if opts and not opts.strategy then opts, err = nil, "the journal to audit is needed" end
  if not opts then return cli.refuse("audit", err, M.USAGE) end
  local path = opts.strategy
  local rec, lerr = load(path)
  if not rec then
    io.stderr:write("nomade audit: ", lerr, "\n")
    return 2
  end
  local r, miss = replay(rec)
  if miss and miss.bad then
    io.stderr:write("nomade audit: ", path, ": ", miss.bad, "\n")
    return 2
  end
  if miss then
    report(path, rec, r, miss)
    return 1
  end
  io.stdout:write(string.format("nomade audit: %s: all match: %d candles, %d decisions, %d fills (%s, %s)\n", path,
    #rec.candles, r.decisions, r.fills, count(#rec.versions, "strategy version"), count(#rec.starts, "start")))
  return 0
end

return M
