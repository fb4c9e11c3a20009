-- nomade.runtime.console: what the REPL sees of a run (README, "The
-- REPL"), in the strategy's sandbox (nomade.repl), and the run's status
-- (the REPL's status(), the dashboard's /bot/status). Methods of the
-- runtime object (nomade.runtime).
local repl = require "nomade.repl"
local shield_mod = require "nomade.shield"

local R = {}

local HELP = [[
m                 the market view the strategy sees (m.close, m.ind.x, m.candles.close, ...)
candles()         the candle series so far (m.candles); ind(): indicator values
state             the strategy's persistent state table
book()            balances, equity, position, pending order, counts
trades(n)         the last n closed trades; verdicts(n): the last n tribunal verdicts
status()          strategy, feed progress, shield state, paused, reloads, tribunal counts
shield.status()   the Integrity Shield: state, reasons, counts
shield.explain()  its reasons and last transitions, in words
pause(), resume() stop / restart new entries (exits go on)
halt(), unhalt()  the kill switch: no entries, open orders cancelled; lasts
                  across restarts until unhalt()
orders(n)         --exec bybit: the last n orders; reconcile(): match the
                  journal with the exchange now
reload()          reload the strategy file now
ta, math, string, table, utf8, os.time/date/clock/difftime, print, load
                  what a strategy has; no io, os.exit, os.getenv, debug,
                  package or require (asking for them says so)]]

function R:status()
  local book, strat, lt = self.book, self.strat, self.live_tribunal
  return { strategy = self.path or "the default strategy", symbol = strat.settings.symbol,
    interval = strat.settings.interval, candles = self.e.n, feed = self.feed.status(), shield = self.sh:state(),
    paused = self.e.paused or false, halted = self.journal:flag("halted"), exec = self.caps.exchange,
    firebase = self.publisher and self.publisher:status(),
    private_stream = self.caps.private_stream and (book.stream_up or false) or nil,
    regime = self.inner.regime, reloads = self.reloads, tribunal = self.e.stats, errors = self:failed_calls(),
    llm = lt and { provider = lt.provider, model = lt.model, today = lt.totals, causes = lt.causes,
      deadline = lt.deadline } }
end

function R:book_view()
  local book = self.book
  return { exec = self.caps.exchange, quote = book.quote, base = book.base,
    equity = book:equity(self.inner.close or 0), position = book.position, pending = book.pending,
    open = book.open, held = book.held, trades = #book.trades, fees = book.fees, refused = book.refused,
    risk_refused = book.risk_refused }
end

-- the first k of list (all: newest first), or of its last k (oldest first)
local function first(list, k)
  local out = {}
  for t = 1, math.min(k or 10, #list) do out[t] = list[t] end
  return out
end
local function last(list, k)
  local out = {}
  for t = math.max(1, #list - (k or 10) + 1), #list do out[#out + 1] = list[t] end
  return out
end

-- --exec bybit: the orders the book knows, newest first
function R:orders(k)
  if self.caps.exchange == "paper" then return nil, "paper execution: see book()" end
  local all = {}
  for _, o in pairs(self.book.known) do all[#all + 1] = o end
  table.sort(all, function(a, b) return a.time > b.time end)
  return first(all, k)
end

function R:reconcile_now()
  if not self.caps.reconcile then return nil, "paper execution has nothing to reconcile" end
  local ok, problem, notes = self.book:reconcile("REPL")
  return { ok = ok, problem = problem, notes = notes }
end

-- the REPL's environment: the run's api and the strategy's state
function R:console()
  local env
  local e, sh = self.e, self.sh
  local api = {
    m = e.m,
    candles = function() return e.m.candles end,
    ind = function() return e.m.ind end,
    book = function() return self:book_view() end,
    trades = function(k) return last(self.book.trades, k) end,
    verdicts = function(k) return first(self.verdicts, k) end,
    shield = {
      status = function() return { state = sh:state(), reasons = sh:reasons(), stats = sh:stats() } end,
      explain = function(k) env.print(shield_mod.explain(sh, k)) end,
    },
    status = function() return self:status() end,
    halt = function(why)
      return self:command("halt", "repl", type(why) == "string" and why or "halt() from the REPL")
    end,
    unhalt = function() return self:command("unhalt", "repl") end,
    reconcile = function() return self:reconcile_now() end,
    orders = function(k) return self:orders(k) end,
    pause = function() return self:command("pause", "repl") end,
    resume = function() return self:command("resume", "repl") end,
    reload = function() return self:command("reload", "repl", "REPL") end,
    help = function() env.print(HELP) end,
  }
  env = repl.environment(api, self.state)
  self.env = env
  return env
end

return { methods = R }
