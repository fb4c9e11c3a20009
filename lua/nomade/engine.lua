-- nomade.engine: a strategy's turn on a candle, and the read-only market
-- view m it sees. The backtester and the live runtime both go through
-- here: the risk limits -> regime -> exit or entry -> tribunal -> order
-- intent -> the book, whose gate (in C) refuses what the Integrity Shield
-- forbids.
local ta = require "nomade.ta"
local paper = require "nomade.paper"
local host = require "nomade.host"
local contract = require "nomade.book"
local risk = require "nomade.risk"
local COLUMNS = require "nomade.columns"

local M = {}

-- VM instructions one candle's strategy calls may take, in a backtest as
-- in a run: a runaway loop fails the candle, it cannot hang the command
M.CANDLE_BUDGET = 50000000

function M.readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k)
      error(string.format("%s is read-only (tried to set %s)", name, tostring(k)), 2)
    end,
    __len = function() return #t end,
    __pairs = function() return function(_, k) return next(t, k) end, nil, nil end,  -- (next, t would hand t out)
    __metatable = false,  -- getmetatable(m).__index would be the table behind it
  })
end
local readonly = M.readonly

-- multi-output indicators appear in m.ind under suffixed names
M.SUFFIXES = {
  bbands = { "_upper", "_middle", "_lower" },
  macd = { "", "_signal", "_hist" },
}

-- the paper book for a strategy's settings, an instrument's rules and
-- the command's --cash and --fee
function M.paper_book(settings, rules, opts)
  return paper.new { cash = opts.cash or 10000, fee = opts.fee or 0.001,
    position_size = settings.position_size, stop_loss = settings.stop_loss,
    take_profit = settings.take_profit, qty_scale = rules.qty_step.scale,
    tick_scale = rules.tick.scale, min_qty = rules.min_qty, min_amt = rules.min_amt }
end


-- the indicators as streams: one per declared indicator and a series per
-- output, caught up on the first n candles of `columns` (as one chunk)
-- -> the streams, and the series by output name
function M.build_indicators(decl, columns, n)
  local list, map = {}, {}
  for _, d in ipairs(decl) do
    local stream = ta[d.spec.name](table.unpack(d.spec.params))
    local inputs = d.spec.inputs == 3 and { "high", "low", "close" } or { d.field }
    local names = {}
    for k, suffix in ipairs(M.SUFFIXES[d.spec.name] or { "" }) do
      names[k] = d.name .. suffix
      map[names[k]] = ta.series()
    end
    if n > 0 then
      local chunk = {}
      for k, col in ipairs(inputs) do chunk[k] = columns[col]:slice(1, n) end
      local outs = { stream:update(table.unpack(chunk)) }
      for k, s in ipairs(outs) do map[names[k]] = s end
    end
    list[#list + 1] = { stream = stream, inputs = inputs, names = names }
  end
  return list, map
end

-- a candle into an engine with its own columns: appended, the indicator
-- streams pushed, m moved to it
local function append(e, streams, row)
  local n, inner, ivals = e.n + 1, e.inner, e.ivals
  e.n = n
  for _, col in ipairs(COLUMNS) do
    local v = row[col]
    e.columns[col]:push(v)
    inner[col] = v
  end
  local series = e.indicators
  for _, d in ipairs(streams) do
    local i, names = d.inputs, d.names  -- a stream reads as many inputs as it takes
    if names[2] then  -- several outputs (macd, bbands)
      local o = { d.stream:update(inner[i[1]], inner[i[2]], inner[i[3]]) }
      for k, name in ipairs(names) do
        series[name]:push(o[k])
        ivals[name] = o[k]
      end
    else  -- one output: no table a candle
      local v = d.stream:update(inner[i[1]], inner[i[2]], inner[i[3]])
      series[names[1]]:push(v)
      ivals[names[1]] = v
    end
  end
  e.cursor:set(n)
  inner.index = n
end

-- the fills candle n made: the trades closed since the last look, and a
-- position opened on it
local function fills(e, book, n)
  local out, done = {}, book.trades
  for t = e.filled + 1, #done do
    local tr = done[t]
    out[#out + 1] = { side = "sell", qty = tr.qty, price = tr.exit_price, reason = tr.reason, pnl = tr.pnl }
  end
  e.filled = #done
  local p = book.position
  if p and p.index == n then out[#out + 1] = { side = "buy", qty = p.qty, price = p.price } end
  return out
end

-- the per-candle methods of an engine that keeps its own columns
local function stepper(e, sh, book, streams)
  if not sh then error("engine.new: an engine without o.columns takes candles through a shield (o.shield)", 3) end
  e.filled, e.streams = #book.trades, streams

  -- a candle {time=, open=, high=, low=, close=, volume=}: the shield,
  -- then the columns and indicators, the fills at its prices, the book
  -- shown, then the strategy's turn when live and history is reached.
  -- Returns what happened, for the runtime to say: accepted (false: the
  -- shield's verdict and refusal), fills ({side=, qty=, price=, reason=,
  -- pnl=}), decided, and e.turn's ok, what, detail (and intent: a buy's order)
  function e.step(row, live)
    local verdict, refusal = sh:candle(row.time, row.open, row.high, row.low, row.close, row.volume)
    if verdict ~= "accepted" then return { accepted = false, verdict = verdict, refusal = refusal } end
    if e.on_shield then e.on_shield() end  -- said before the book moves
    append(e, e.streams, row)
    local n, inner = e.n, e.inner
    local out = { accepted = true, verdict = verdict }
    if book:open_candle(n, inner.time, inner.open, inner.high, inner.low, inner.close, live) and n > 1 then
      out.fills = fills(e, book, n)
    else
      out.fills = {}
    end
    e.changed()
    inner.equity = book:equity(inner.close)
    if live and n >= e.strategy.settings.history then
      out.decided = true
      out.ok, out.what, out.detail, out.intent = e.turn(n)
    end
    return out
  end

  -- m.shield: the shield's state now (after it heard something)
  function e.show_shield() e.inner.shield = sh:state() end
end

-- what such an engine does beside the candles: a journal's resume, the
-- snapshot it journals, a reload
local function keeper(e, sh, book)
  -- a resumed journal: its candles through the shield (no fills, no
  -- turns: they were had), the book as it was, the streams caught up
  -- (then e.restore_risk(snapshot): its signal is news, to be said)
  function e.resume(rows, snapshot)
    for _, row in ipairs(rows) do
      for c, col in ipairs(COLUMNS) do e.columns[col]:push(row[c]) end
      sh:candle(table.unpack(row, 1, 6))
    end
    local n, inner = e.n + #rows, e.inner
    e.n = n
    e.show_shield()
    for _, col in ipairs(COLUMNS) do inner[col] = e.columns[col][n] end
    book:restore(snapshot)
    e.rebuild(e.strategy.indicators)
    e.cursor:set(n)
    inner.index = n
    e.changed()
    e.filled = #book.trades
  end

  -- what the journal keeps of the book and the risk limits, for e.resume
  function e.snapshot()
    local snap = book:snapshot()
    snap.risk = e.risk:snapshot()
    return snap
  end

  -- the risk limits' state from such a snapshot (journals before the
  -- limits were the engine's kept its fields in the book's snapshot)
  function e.restore_risk(snapshot) e.risk:restore(snapshot.risk or snapshot) end

  -- the declared indicators decl (a strategy's), caught up on the candles so far
  function e.rebuild(decl)
    local list, map = M.build_indicators(decl, e.columns, e.n)
    e.streams = list
    e.set_indicators(map)
    for name, series in pairs(map) do e.ivals[name] = series[e.n] end
  end

  -- a reloaded strategy: the book's sizing, stop and take from its
  -- settings, its indicators from the candles so far; it decides from the
  -- next candle
  function e.reload(new)
    local s = new.settings
    book:configure { position_size = s.position_size, stop_loss = s.stop_loss, take_profit = s.take_profit }
    e.rebuild(new.indicators)
    e.set_strategy(new)
  end
end

-- the columns and indicators an engine reads: the backtest's batch series
-- (o.columns, o.indicators), or its own, growing, and the indicator streams
local function sources(o)
  if o.columns then return o.columns, o.indicators end
  local columns = {}
  for _, k in ipairs(COLUMNS) do columns[k] = ta.series() end
  local streams, map = M.build_indicators(o.strategy.indicators, columns, 0)
  return columns, map, streams
end

-- m.ind and m.series read the indicators in map (name -> series)
local function set_indicators(e, map)
  local iviews, ivals = {}, e.ivals
  for k in pairs(ivals) do ivals[k] = nil end
  for name, series in pairs(map) do iviews[name] = e.cursor:view(series) end
  e.inner.series = readonly(iviews, "m.series")
  e.indicators = map
end

-- the market view m over the columns, the table behind it, the indicator
-- values behind m.ind and the balance behind m.balance
local function market(s, book, cursor, columns)
  local views, ivals = {}, {}
  for _, k in ipairs(COLUMNS) do views[k] = cursor:view(columns[k]) end
  local bal = { quote = book.quote, base = book.base }
  local inner = {
    symbol = s.symbol, interval = s.interval, shield = "GREEN",
    candles = readonly(views, "m.candles"), ind = readonly(ivals, "m.ind"),
    balance = readonly(bal, "m.balance"), settings = readonly(s, "m.settings"),
  }
  return readonly(inner, "m"), inner, ivals, bal
end

-- after a fill or a cancellation: show the book (inner.pending mirrors
-- it, so that decide need not ask the book on every candle)
local function show_book(book, bal, inner)
  bal.quote, bal.base = book.quote, book.base
  local p = book.position
  inner.position = p and readonly(p, "m.position")
  inner.pending = book.pending
end

-- the strategy's turn, as closures over what it reads on every candle
-- (upvalues: a backtest takes it 525,600 times a year of 1m candles):
-- decide(i), set(strategy) for a reload, and phase()
local function turns(e, o, book, judge, rk)
  local m, inner, stats, progress = e.m, e.inner, e.stats, o.progress
  local strat, regime_fn, entry_fn, exit_fn, min_score
  local at = "regime(m)"  -- the function the turn is in, for its errors

  -- the gate said no: counted, and the state it was in; or the risk
  -- limits or the book (the exchange) refused: why
  local function blocked(state, why)
    if why then
      stats.refused = stats.refused + 1
      return "refused", why
    end
    stats.blocked = stats.blocked + 1
    return "blocked", state
  end

  -- an order the book took: counted by the risk limits, pending until it fills
  local function sent(what, detail, intent)
    rk:sent(inner.time)
    inner.pending = true
    return what, detail, intent
  end

  local function decide(i)
    if progress then progress(i) end
    local time, equity = inner.time, inner.equity
    if time >= rk.next_day or equity < rk.floor then rk:candle(time, equity) end  -- (most candles: neither)
    at = "regime(m)"
    local reg = regime_fn(m)
    if type(reg) ~= "string" or reg == "" then reg = strat:regime(m) end  -- raises, naming it
    inner.regime = reg
    if inner.pending then return end
    if inner.position then
      local reason = rk.day_breached and rk:flatten() and "daily_loss"
      if not reason then
        if not exit_fn then return end
        at = "exit(m, position)"
        reason = strat:exit(m, inner.position)
        if not reason then return end
      end
      local ok, state, why = book:sell(reason, i)
      if not ok then return blocked(state, why) end
      return sent("sell", reason)
    end
    if e.paused then return end  -- entries paused (from the REPL); exits go on
    at = "entry(m, regime, nil)"
    local cand = entry_fn(m, reg, nil)
    if cand ~= true then
      if cand == nil or cand == false then return end
      strat:candidate(m, reg)  -- raises, naming the wrong type
    end
    stats.candidates = stats.candidates + 1
    -- shut for entries: refused here, before the tribunal is paid for
    local open, state = book:gate(true)
    if not open then return blocked(state) end
    local cap, why = rk:entry(inner.time, inner.close)
    if not cap then return blocked(nil, "risk: " .. why) end
    at = "prompt(m, regime)"
    local verdict = judge(strat:prompt(m, reg))
    stats.calls = stats.calls + 1
    if verdict.source == "miss" then stats.misses = stats.misses + 1 end
    if verdict.signal ~= "BUY" then stats.wait = stats.wait + 1 return "wait", verdict end
    stats.buy = stats.buy + 1
    if verdict.score < min_score then stats.below_min = stats.below_min + 1 return "wait", verdict end
    at = "entry(m, regime, verdict)"
    local intent = strat:entry(m, reg, readonly(verdict, "verdict"))
    if not intent then return "pass", verdict end
    local ok, now_state, refusal = book:buy(intent, i, cap)
    if not ok then return blocked(now_state, refusal) end
    return sent("buy", verdict, intent)
  end

  local function set(new)
    strat, regime_fn, entry_fn, exit_fn = new, new.env.regime, new.env.entry, new.env.exit
    min_score = new.settings.min_score
  end
  return decide, set, function() return at end
end

-- engine.new{strategy =, book =, judge =, columns = {time = series, ...},
--            indicators = {name = series}, mode = tribunal mode, progress = fn(i),
--            rules = the instrument's, shield = a live shield (its `risk` check)}
-- -> an engine: e.m, e.inner (the table behind m), e.ivals (behind m.ind),
-- e.cursor, e.stats, e.risk (nomade.risk), e.decide(i), e.turn(i),
-- e.changed(), e.phase(), e.set_strategy(s), e.set_indicators(map).
-- Without o.columns it keeps its own growing columns (e.columns) and
-- indicator streams, and takes candles one by one through o.shield:
-- e.step(row, live), e.snapshot(), e.resume(rows, snapshot), e.reload(s), e.n
function M.new(o)
  local book, judge = contract.check(o.book, "engine.new"), o.judge  -- a book lacking a method: said here
  local strat = o.strategy
  local cursor = ta.cursor(0)
  local columns, indicators, streams = sources(o)
  local m, inner, ivals, bal = market(strat.settings, book, cursor, columns)
  local s = strat.settings
  local stats = { candidates = 0, calls = 0, buy = 0, wait = 0, misses = 0, below_min = 0,
    blocked = 0, refused = 0, mode = o.mode or "off" }
  local sh = o.shield
  local rk = risk.new(s, o.rules, sh and function(on, why, time) sh:signal("risk", on, why, time) end)
  local e = { m = m, inner = inner, ivals = ivals, cursor = cursor, stats = stats, risk = rk, n = 0,
    columns = streams and columns }

  function e.set_indicators(map) return set_indicators(e, map) end
  e.set_indicators(indicators)

  local set
  e.decide, set, e.phase = turns(e, o, book, judge, rk)
  function e.set_strategy(new)
    e.strategy = new
    set(new)
    inner.settings = readonly(new.settings, "m.settings")
    rk:configure(new.settings)
  end
  e.set_strategy(strat)

  function e.changed() return show_book(book, bal, inner) end

  -- e.decide(i): the strategy's turn on the close of candle i; returns
  -- what it did: nil, "buy" or "sell" (and the verdict, for a candidate;
  -- a buy also the order intent the book took), "blocked" and the
  -- shield's state when the gate refused the order, or "refused" and why
  -- when the risk limits or the book did. A breach of the day's loss
  -- stops entries (and with on_daily_loss = "flatten" sells)

  -- decide(i) under the candle's instruction budget: true and what it
  -- did, or false and the error (file:line of the strategy)
  function e.turn(i) return host.guard(M.CANDLE_BUDGET, e.decide, i) end

  if streams then
    stepper(e, o.shield, book, streams)
    keeper(e, o.shield, book)
  end
  return e
end

return M
