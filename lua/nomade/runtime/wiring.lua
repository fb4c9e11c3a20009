-- nomade.runtime.wiring: what a run is made of, opened in order (the
-- strategy, its shield, the journal, the feed and the instrument's rules,
-- the tribunal, the book, the engine, the dashboard's tree), then wired
-- together: the feed's clock and requests into the shield, the tribunal's
-- verdicts into the journal, the exchange's book reconciled and streamed.
-- Methods of the runtime object (nomade.runtime).
local loop = require "nomade.loop"
local sched = require "nomade.sched"
local feeds = require "nomade.feed"
local strategy = require "nomade.strategy"
local instruments = require "nomade.bybit.instruments"
local tribunal = require "nomade.tribunal"
local engine = require "nomade.engine"
local shield_mod = require "nomade.shield"
local journal_mod = require "nomade.journal"
local exchange = require "nomade.bybit.book"
local bybit = require "nomade.bybit.rest"
local tree_mod = require "nomade.tree"
local board_mod = require "nomade.board"
local options = require "nomade.runtime.options"
local events = require "nomade.runtime.events"

local emit = events.emit

local R = {}

-- --exec bybit: the exchange's book, with keys
local function live_book(opts, s, rules, sh, journal)
  local key, secret, kerr = bybit.keys()
  if kerr then return nil, "--exec bybit: " .. tostring(kerr) end
  if not key or not secret then
    return nil, "--exec bybit needs BYBIT_API_KEY and BYBIT_API_SECRET (in the environment, or in the 0600 file "
      .. "NOMADE_SECRETS names)"
  end
  local client = bybit.new { base = opts.exec_base, key = key, secret = secret }
  return exchange.new { client = client, shield = sh, journal = journal, settings = s, rules = rules,
    fee = opts.fee, emit = emit }
end

function R:open_journal()
  local opts, s = self.opts, self.s
  local jpath, jperr = opts.journal, nil
  if not jpath then jpath, jperr = options.default_journal(s, opts) end
  if jpath then
    self.journal, jperr = journal_mod.open(jpath, { strategy = self.path or "default", symbol = s.symbol,
      interval = s.interval, exec = opts.exec or "paper" }, opts.adopt)
  end
  self.jpath = jpath
  if not self.journal then return nil, tostring(jperr) end
  return true
end

-- a live judge whose calls are tagged "tribunal" while they wait, so
-- that a reload or the end of the run cancels one in flight (its verdict:
-- a WAIT with cause cancelled) and never an order the turn sends after it
local function tagged(judge)
  return function(prompt)
    local was = sched.tag("tribunal")
    local ok, v = pcall(judge, prompt)
    sched.tag(was)
    if not ok then error(v, 0) end
    return v
  end
end

-- the feed (going on after a resumed journal's last candle), the rules,
-- the judge (a live one comes with its state: daily totals, causes)
function R:open_market()
  local opts, s = self.opts, self.s
  local feed, ferr = feeds.open(opts, s, self.resumed and self.resumed.time)
  local rules, rerr
  if feed and not opts.instrument and feed.rules then
    rules, rerr = feed.rules()
  elseif feed then
    rules, rerr = instruments.load(opts.instrument, s.symbol)
  end
  opts.interval = strategy.INTERVALS[s.interval]
  local judge, jerr = tribunal.judge(opts.tribunal or "off", opts)
  if not feed or not rules or not judge then return nil, tostring(ferr or rerr or (not judge and jerr)) end
  if jerr then judge = tagged(judge) end  -- a live one
  self.feed, self.rules, self.judge, self.live_tribunal = feed, rules, judge, jerr
  return true
end

function R:open_book()
  local opts = self.opts
  if opts.exec == "bybit" then
    local book, berr = live_book(opts, self.s, self.rules, self.sh, self.journal)
    if not book then return nil, tostring(berr) end
    self.book = book
  else
    self.book = engine.paper_book(self.s, self.rules, opts)
    self.book:guard(self.sh)  -- every order of this run passes the shield's gate, in C
  end
  self.caps = self.book.capabilities
  return true
end

-- everything the run needs before its first candle; false and why
function R:open()
  local opts = self.opts
  local strat, serr = strategy.load_file(self.path, self.state, function(line) self:print(line) end)
  if not strat then return nil, serr end
  self.strat, self.s = strat, strat.settings
  self.step_ms = strategy.INTERVALS[self.s.interval] * 1000
  self.sh = assert(shield_mod.new(strat, opts.shield))  -- --shield was checked
  local ok, err = self:open_journal()
  if not ok then return nil, err end
  self.resumed = self.journal:resume()  -- a journal to resume: the feed goes on after its last candle
  ok, err = self:open_market()
  if ok then ok, err = self:open_book() end
  if not ok then
    self.journal:close()
    return nil, err
  end
  -- the engine keeps the candles seen so far, growing as the feed delivers them
  self.e = engine.new { strategy = strat, book = self.book, judge = self.judge, shield = self.sh,
    mode = opts.tribunal or "off", rules = self.rules }
  self.inner = self.e.inner
  self.e.on_shield = function() self:report_shield() end
  self.tree = tree_mod.new()
  self.board = board_mod.new(self.tree, self.s.symbol, self.step_ms)
  return true
end

-- the run's one clock (ms), for the shield and the tree: the exchange's
-- with a live feed, the replay's own (its last candle's close) on a replay
function R:clock()
  local feed = self.feed
  if feed.clock then return feed.clock() end
  return (self.inner.time or feed.cols.time[1]) + self.step_ms
end

-- live verdicts: journaled; an unavailable tribunal turns the shield AMBER
function R:wire_tribunal()
  local opts, journal = self.opts, self.journal
  opts.on_verdict = function(v)
    journal:event("verdict", { source = v.source, model = v.model, prompt_sha256 = v.prompt_sha256, signal = v.signal,
      score = v.score, cause = v.cause, detail = v.detail, latency_ms = v.latency_ms, tokens = v.tokens, reasoning = v.reasoning })
  end
  opts.on_available = function(ok, why)
    self.sh:signal("tribunal", not ok, why or "", self:clock())
    self:report_shield()
  end
end

-- a live feed: the shield watches its clock and its requests
function R:wire_feed()
  local feed, sh = self.feed, self.sh
  if not feed.clock then return end
  feed.on_poll = function(ok, why, offset)
    local now = feed.clock()
    sh:api(ok, why and tostring(why) or nil, now)
    sh:skew(offset or 0, now)
    self:report_shield()
  end
  feed.on_link = function(up, why)
    sh:signal("disconnected", not up, why or "", feed.clock())
    self:report_shield()
  end
  feed.on_beat = function()  -- any frame from the stream (--shield heartbeat=): said when it moved the shield
    if sh:heartbeat(feed.clock()) ~= self.seen_seq then self:report_shield() end
  end
  self.timers[#self.timers + 1] = loop.timer(5, 5, function()
    sh:tick(feed.clock())
    self:report_shield()
  end)
end

-- an exchange's book: reconciled before anything trades, its private
-- stream, and a retry while it disagrees
function R:wire_exchange()
  local book, caps = self.book, self.caps
  if not caps.reconcile then return end
  book.on_change = function()
    self.e.changed()
    self:publish_book()
  end
  book.on_shield = function() self:report_shield() end  -- a reconciliation or a refusal that moves the shield, said at once
  book.price = self.inner.close
  book:reconcile("start")
  self:report_shield()
  if caps.private_stream then
    local _, perr = book:stream { url = self.opts["private-url"], timeout = tonumber(self.opts["stream-timeout"]),
      on_ready = function() self:report_shield() end }
    if perr then
      emit("error", "private_stream", { error = tostring(perr) }, "  error private stream: %s", tostring(perr))
    end
  end
  self.timers[#self.timers + 1] = loop.timer(30, 30, function()
    if book.problem then
      book:reconcile("retry")
      self:report_shield()
    end
  end)
end

return { methods = R }
