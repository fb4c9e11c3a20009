-- nomade.engine: a strategy's turn on a candle, and the read-only market
-- view m it sees. The backtester and the live runtime both go through
-- here: the risk limits -> regime -> exit or entry -> tribunal -> order
-- intent -> the book, whose gate (in C) refuses what the Integrity Shield
-- forbids.
local ta = require "nomade.ta"
local paper = require "nomade.paper"
local host = require "nomade.host"
local risk = require "nomade.risk"

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

-- engine.new{strategy =, book =, judge =, columns = {time = series, ...},
--            indicators = {name = series}, mode = tribunal mode, progress = fn(i),
--            rules = the instrument's, shield = a live shield (its `risk` check)}
-- -> an engine: e.m, e.inner (the table behind m), e.ivals (behind m.ind),
-- e.cursor, e.stats, e.risk (nomade.risk), e.decide(i), e.turn(i),
-- e.changed(), e.phase(), e.set_strategy(s), e.set_indicators(map)
function M.new(o)
  local book, judge = o.book, o.judge
  local strat = o.strategy
  local cursor = ta.cursor(0)
  local views, ivals = {}, {}
  for _, k in ipairs({ "time", "open", "high", "low", "close", "volume" }) do views[k] = cursor:view(o.columns[k]) end
  local bal = { quote = book.quote, base = book.base }
  local s = strat.settings
  local inner = {
    symbol = s.symbol, interval = s.interval, shield = "GREEN",
    candles = readonly(views, "m.candles"), ind = readonly(ivals, "m.ind"),
    balance = readonly(bal, "m.balance"), settings = readonly(s, "m.settings"),
  }
  local m = readonly(inner, "m")
  local stats = { candidates = 0, calls = 0, buy = 0, wait = 0, misses = 0, below_min = 0,
    blocked = 0, refused = 0, mode = o.mode or "off" }
  local sh = o.shield
  local rk = risk.new(s, o.rules, sh and function(on, why, time) sh:signal("risk", on, why, time) end)
  local e = { m = m, inner = inner, ivals = ivals, cursor = cursor, stats = stats, risk = rk }

  function e.set_indicators(map)
    local iviews = {}
    for k in pairs(ivals) do ivals[k] = nil end
    for name, series in pairs(map) do iviews[name] = cursor:view(series) end
    inner.series = readonly(iviews, "m.series")
    e.indicators = map
  end
  e.set_indicators(o.indicators)

  local regime_fn, entry_fn, exit_fn, min_score
  function e.set_strategy(new)
    strat = new
    regime_fn, entry_fn, exit_fn = new.env.regime, new.env.entry, new.env.exit
    min_score = new.settings.min_score
    inner.settings = readonly(new.settings, "m.settings")
    rk:configure(new.settings)
  end
  e.set_strategy(strat)

  -- after a fill or a cancellation: show the book (inner.pending mirrors
  -- it, so that decide need not ask the book on every candle)
  function e.changed()
    bal.quote, bal.base = book.quote, book.base
    local p = book.position
    inner.position = p and readonly(p, "m.position")
    inner.pending = book.pending
  end

  local phase = "regime(m)"
  function e.phase() return phase end

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

  local progress = o.progress
  -- the strategy's turn on the close of candle i; returns what it did:
  -- nil, "buy" or "sell" (and the verdict, for a candidate), "blocked"
  -- and the shield's state when the gate refused the order, or "refused"
  -- and why when the risk limits or the book did. A breach of the day's
  -- loss stops entries (and with on_daily_loss = "flatten" sells)
  function e.decide(i)
    if progress then progress(i) end
    local time, equity = inner.time, inner.equity
    if time >= rk.next_day or equity < rk.floor then rk:candle(time, equity) end  -- (most candles: neither)
    phase = "regime(m)"
    local reg = regime_fn(m)
    if type(reg) ~= "string" or reg == "" then reg = strat:regime(m) end  -- raises, naming it
    inner.regime = reg
    if inner.pending then return end
    if inner.position then
      local reason = rk.day_breached and rk:flatten() and "daily_loss"
      if not reason then
        if not exit_fn then return end
        phase = "exit(m, position)"
        reason = strat:exit(m, inner.position)
        if not reason then return end
      end
      local sent, state, why = book:sell(reason, i)
      if not sent then return blocked(state, why) end
      rk:sent(inner.time)
      inner.pending = true
      return "sell", reason
    end
    if e.paused then return end  -- entries paused (from the REPL); exits go on
    phase = "entry(m, regime, nil)"
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
    phase = "prompt(m, regime)"
    local verdict = judge(strat:prompt(m, reg))
    stats.calls = stats.calls + 1
    if verdict.source == "miss" then stats.misses = stats.misses + 1 end
    if verdict.signal ~= "BUY" then stats.wait = stats.wait + 1 return "wait", verdict end
    stats.buy = stats.buy + 1
    if verdict.score < min_score then stats.below_min = stats.below_min + 1 return "wait", verdict end
    phase = "entry(m, regime, verdict)"
    local intent = strat:entry(m, reg, readonly(verdict, "verdict"))
    if not intent then return "pass", verdict end
    local sent, now_state, refusal = book:buy(intent, i, cap)
    if not sent then return blocked(now_state, refusal) end
    rk:sent(inner.time)
    inner.pending = true
    return "buy", verdict
  end

  -- decide(i) under the candle's instruction budget: true and what it
  -- did, or false and the error (file:line of the strategy)
  function e.turn(i) return host.limit(M.CANDLE_BUDGET, e.decide, i) end

  return e
end

return M
