-- nomade.live: `nomade run`, the runtime that stays up. A feed hands it
-- candles on the event loop; each candle runs in its own coroutine through
-- the same engine as the backtester (nomade.engine) with paper execution;
-- the strategy file is watched and reloaded in place, keeping `state` and
-- the book. Feeds (nomade.feed): a replay of a candle file X times faster
-- than real time, or Bybit's REST klines polled after each close.
local ta = require "nomade.ta"
local loop = require "nomade.loop"
local host = require "nomade.host"
local feeds = require "nomade.feed"
local strategy = require "nomade.strategy"
local instruments = require "nomade.instruments"
local tribunal = require "nomade.tribunal"
local engine = require "nomade.engine"
local shield_mod = require "nomade.shield"
local repl = require "nomade.repl"
local journal_mod = require "nomade.journal"
local log_mod = require "nomade.log"
local cli = require "nomade.cli"

local M = {}

-- VM instructions one candle's strategy calls may take
M.CANDLE_BUDGET = 50000000

M.USAGE = [[
usage: nomade run [STRATEGY.lua] --feed replay:FILE|bybit [options]
  STRATEGY.lua       the strategy file, watched and reloaded when it changes
                     (default: the bundled default strategy, not watched)
  --feed replay:FILE play a candle file (CSV or Bybit kline JSON): the first
                     `history` candles at once, then one candle per
                     interval / speed seconds
  --feed bybit       Bybit spot klines of the strategy's symbol and interval:
                     max(1000, history) candles at start over REST, then the
                     kline stream (WebSocket; REST again for any candle it
                     missed); no keys needed
  --stream-timeout S --feed bybit: a stream silent this long is dead, closed and
                     reconnected (default 30; Bybit is pinged every 20 s)
  --feed bybit-rest  the same, each candle polled over REST right after it closes
  --base-url URL     for the bybit feeds: mainnet (default), testnet, demo or
                     http(s)://host:port
  --ws-url URL       the stream for --feed bybit (default: the base's public
                     spot stream; needed with a custom --base-url)
  --speed X          replay: how much faster than real time (default 3600: a
                     1h candle a second); max: as fast as possible
  --exec paper       execution (paper is the only one so far)
  --socket PATH      the REPL's socket (default $XDG_RUNTIME_DIR/nomade/nomade.sock,
                     else /tmp/nomade-$UID/nomade.sock)
  --journal PATH     the SQLite journal; a restart with it resumes where the
                     run stopped (default $XDG_STATE_HOME/nomade/SYMBOL-INTERVAL.journal,
                     else ~/.local/state/nomade/...)
  --adopt-journal    continue a journal written for another strategy or symbol
  --log-format F     text (default: lines for a person) or json (an object a line)
  --log-level L      debug, info (default: a line per candle), warn or error
  --shield K=V,...   Integrity Shield thresholds (nomade backtest --help, README)
  --tribunal off|cache|live, --cache FILE, --provider, --model, --llm-url, --llm
                     as for nomade backtest; live verdicts are journaled, and
                     the shield goes AMBER while the tribunal is unavailable
  --cash N, --fee RATE, --instrument FILE
                     as for nomade backtest (with --feed bybit the instrument
                     rules come from the exchange unless --instrument is given)
]]

local function iso(ms) return os.date("!%Y-%m-%d %H:%M", ms // 1000) end

-- an event: its level, name and fields (for json), and its text line
local function emit(level, event, fields, fmt, ...)
  log_mod.event(level, event, fields, string.format(fmt, ...))
end

local OPTIONS = { feed = true, speed = true, exec = true, cash = true, fee = true, tribunal = true,
  cache = true, instrument = true, socket = true, journal = true, ["log-format"] = true, ["log-level"] = true,
  ["base-url"] = true, ["ws-url"] = true, ["stream-timeout"] = true, shield = true, provider = true, model = true,
  ["llm-url"] = true, llm = true }

local function parse_args(args)
  local opts, err = cli.parse(args, OPTIONS, { ["adopt-journal"] = true })
  if not opts then return nil, err end
  opts.adopt = opts["adopt-journal"]
  local bybit = opts.feed == "bybit" or opts.feed == "bybit-rest"
  if not bybit and not (opts.feed or ""):match("^replay:.") then
    return nil, "--feed replay:FILE, --feed bybit or --feed bybit-rest is required"
  end
  if opts["base-url"] and not bybit then return nil, "--base-url goes with --feed bybit or bybit-rest" end
  if (opts["ws-url"] or opts["stream-timeout"]) and opts.feed ~= "bybit" then
    return nil, "--ws-url and --stream-timeout go with --feed bybit"
  end
  local st = opts["stream-timeout"] and tonumber(opts["stream-timeout"])
  if opts["stream-timeout"] and not (st and st >= 1 and st <= 3600) then
    return nil, "--stream-timeout must be seconds in 1..3600"
  end
  if opts.exec and opts.exec ~= "paper" then return nil, "--exec must be paper (the only execution so far)" end
  local shielded, sherr = shield_mod.check(opts.shield)
  if not shielded then return nil, sherr end
  local llm, llm_err = tribunal.parse_llm(opts.llm)
  if not llm then return nil, llm_err end
  opts.llm = llm
  local logged, lerr = log_mod.configure(opts["log-format"] or "text", opts["log-level"] or "info")
  if not logged then return nil, lerr end
  if opts.speed == nil or opts.speed == "max" then
    opts.speed = opts.speed == "max" and math.huge or 3600
  else
    local v = tonumber(opts.speed)
    if not v or v ~= v or v <= 0 then return nil, "--speed must be a number > 0 or max, got '" .. opts.speed .. "'" end
    opts.speed = v
  end
  return opts
end

local function default_journal(s)
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    if not home then return nil, "no --journal, and neither XDG_STATE_HOME nor HOME is set" end
    base = home .. "/.local/state"
  end
  local ok, err = host.mkdir(base .. "/nomade")
  if not ok then return nil, err end
  return string.format("%s/nomade/%s-%s.journal", base, s.symbol, s.interval)
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local pwd = os.getenv("PWD")
  if not pwd then return nil end
  return pwd .. "/" .. path:gsub("^%./", "")
end

-- the live indicators: a stream per declared indicator and a series per
-- output, fed with the first n candles of `columns`

local function build_indicators(decl, columns, n)
  local list, map = {}, {}
  for _, d in ipairs(decl) do
    local stream = ta[d.spec.name](table.unpack(d.spec.params))
    local inputs = d.spec.inputs == 3 and { "high", "low", "close" } or { d.field }
    local names = {}
    for k, suffix in ipairs(engine.SUFFIXES[d.spec.name] or { "" }) do
      names[k] = d.name .. suffix
      map[names[k]] = ta.series()
    end
    if n > 0 then  -- catch up on the history, as one chunk
      local chunk = {}
      for k, col in ipairs(inputs) do chunk[k] = columns[col]:slice(1, n) end
      local outs = { stream:update(table.unpack(chunk)) }
      for k, s in ipairs(outs) do map[names[k]] = s end
    end
    list[#list + 1] = { stream = stream, inputs = inputs, names = names }
  end
  return list, map
end

function M.main(...)
  local opts, err = parse_args({ ... })
  if not opts then return cli.refuse("run", err, M.USAGE) end
  local path = opts.strategy and absolute(opts.strategy)
  local state = {}
  local function log(line) emit("info", "print", { text = line }, "  log   %s", line) end
  local strat, serr = strategy.load_file(path, state, log)
  if not strat then
    io.stderr:write("nomade run: ", serr, "\n")
    return 1
  end
  local s = strat.settings
  local sh = assert(shield_mod.new(strat, opts.shield))  -- --shield was checked
  local jpath, jperr = opts.journal, nil
  if not jpath then jpath, jperr = default_journal(s) end
  local journal
  if jpath then
    journal, jperr = journal_mod.open(jpath, { strategy = path or "default", symbol = s.symbol,
      interval = s.interval }, opts.adopt)
  end
  if not journal then
    io.stderr:write("nomade run: ", tostring(jperr), "\n")
    return 1
  end
  -- a journal to resume: the feed goes on after its last candle
  local resumed = journal:resume()
  local feed, ferr = feeds.open(opts, s, resumed and resumed.time)
  local rules, rerr
  if feed and not opts.instrument and feed.rules then
    rules, rerr = feed.rules()
  elseif feed then
    rules, rerr = instruments.load(opts.instrument, s.symbol)
  end
  opts.interval = strategy.INTERVALS[s.interval]
  -- a live judge comes with its state (daily totals, causes, last verdict)
  local judge, jerr = tribunal.judge(opts.tribunal or "off", opts)
  local live_tribunal = judge and jerr
  if not feed or not rules or not judge then
    journal:close()
    io.stderr:write("nomade run: ", tostring(ferr or rerr or (not judge and jerr)), "\n")
    return 1
  end
  local book = engine.paper_book(s, rules, opts)
  book:guard(sh)  -- every order of this run passes the shield's gate, in C

  -- the candles seen so far, growing as the feed delivers them
  local columns = {}
  for _, k in ipairs({ "time", "open", "high", "low", "close", "volume" }) do columns[k] = ta.series() end
  local ind, map = build_indicators(strat.indicators, columns, 0)
  local e = engine.new { strategy = strat, book = book, judge = judge, columns = columns,
    indicators = map, mode = opts.tribunal or "off" }
  local inner, ivals = e.inner, e.ivals
  local n, trades, journaled = 0, 0, 0
  local verdicts, reloads = {}, { count = 0 }
  local decide, rewatch

  -- the shield's transitions since the last look: logged and journaled
  local seen_seq = 0
  local LEVEL = { GREEN = "info", AMBER = "warn", RED = "error" }
  local function report_shield()
    inner.shield = sh:state()
    for _, tr in ipairs(sh:transitions(seen_seq)) do
      seen_seq = tr.seq
      emit(LEVEL[tr.to], "shield", tr, "  shield %s -> %s  %s: %s", tr.from, tr.to, tr.check, tr.detail)
      journal:event("shield", tr)
    end
  end

  -- live verdicts: journaled; an unavailable tribunal turns the shield AMBER
  opts.on_verdict = function(v)
    journal:event("verdict", { model = v.model, prompt_sha256 = v.prompt_sha256, signal = v.signal, score = v.score,
      cause = v.cause, detail = v.detail, latency_ms = v.latency_ms, tokens = v.tokens, reasoning = v.reasoning })
  end
  opts.on_available = function(ok, why)
    sh:signal("tribunal", not ok, why or "", loop.time() * 1000)
    report_shield()
  end

  local step = strategy.INTERVALS[s.interval] * 1000
  local ingest
  -- candle k of the feed, through the shield first: a gap is backfilled
  -- when the feed can; a candle it refuses goes no further
  local function candle(k, live)
    local row = {}
    for _, col in ipairs({ "time", "open", "high", "low", "close", "volume" }) do row[col] = feed.cols[col][k] end
    if n > 0 and row.time > inner.time + step then
      local from, to = inner.time + step, row.time - step
      local rows, why
      if feed.backfill then rows, why = feed.backfill(from, to) else why = "a replay cannot backfill" end
      for _, r in ipairs(rows or {}) do
        if r.time > inner.time and r.time < row.time then ingest(r, false) end
      end
      if row.time > inner.time + step then
        emit("warn", "gap", { from = iso(from), to = iso(to), why = why },
          "  gap   candles %s .. %s missing: %s", iso(from), iso(to), why or "the exchange has none")
      end
    end
    ingest(row, live)
  end

  -- a candle: the shield, then append it, update the indicators, fill,
  -- then decide (when live: it has just closed)
  function ingest(row, live)
    local verdict, refusal = sh:candle(row.time, row.open, row.high, row.low, row.close, row.volume)
    if verdict ~= "accepted" then
      if verdict == "refused" then
        emit("error", "refused", { time = iso(row.time), why = refusal }, "  error the shield refused a candle: %s",
          refusal)
        journal:event("refused", { time = row.time, why = refusal })
      end
      report_shield()
      return
    end
    report_shield()
    n = n + 1
    for _, col in ipairs({ "time", "open", "high", "low", "close", "volume" }) do
      local v = row[col]
      columns[col]:push(v)
      inner[col] = v
    end
    for _, d in ipairs(ind) do
      local args = {}
      for a, col in ipairs(d.inputs) do args[a] = inner[col] end
      local outs = { d.stream:update(table.unpack(args)) }
      for o, name in ipairs(d.names) do
        e.indicators[name]:push(outs[o])
        ivals[name] = outs[o]
      end
    end
    e.cursor:set(n)
    inner.index = n
    if n > 1 and book:open_candle(n, inner.time, inner.open, inner.high, inner.low) then
      e.changed()
      local done = book.trades
      for t = trades + 1, #done do
        local tr = done[t]
        emit("info", "fill", { side = "sell", qty = tr.qty, price = tr.exit_price, reason = tr.reason, pnl = tr.pnl },
          "  sell  %.6f at %.2f (%s), pnl %.2f", tr.qty, tr.exit_price, tr.reason, tr.pnl)
        journal:event("fill", { side = "sell", qty = tr.qty, price = tr.exit_price, reason = tr.reason })
      end
      trades = #done
      if book.position and book.position.index == n then
        emit("info", "fill", { side = "buy", qty = book.position.qty, price = book.position.price },
          "  buy   %.6f at %.2f", book.position.qty, book.position.price)
        journal:event("fill", { side = "buy", qty = book.position.qty, price = book.position.price })
      end
    end
    inner.equity = book:equity(inner.close)
    if live and n >= strat.settings.history then decide(n) end
    local all = book.trades
    local fresh = {}
    for t = journaled + 1, #all do fresh[#fresh + 1] = all[t] end
    journaled = #all
    local ok_state, why = journal:candle(inner, book:snapshot(), fresh, state)
    if not ok_state then
      emit("error", "state", { error = why }, "  error state is not JSON-serialisable (%s): the journal keeps the last good one", why)
    end
  end

  -- the strategy's turn on candle k, reported and journaled
  function decide(k)
    local ok, what, detail = host.limit(M.CANDLE_BUDGET, e.decide, k)
    if ok and type(detail) == "table" then
      table.insert(verdicts, 1, { time = iso(inner.time), signal = detail.signal, score = detail.score,
        source = detail.source, reasoning = detail.reasoning, outcome = what, cause = detail.cause,
        latency_ms = detail.latency_ms, tokens = detail.tokens and detail.tokens.total, model = detail.model })
      verdicts[51] = nil
    end
    if not ok then
      emit("error", "strategy_error", { ["function"] = e.phase(), error = tostring(what) },
        "  error strategy failed in %s: %s (the candle is skipped)", e.phase(), tostring(what))
      journal:event("error", string.format("strategy failed in %s: %s", e.phase(), tostring(what)))
    elseif what then
      journal:event("decision", { what = what, regime = inner.regime, verdict = type(detail) == "table"
        and { signal = detail.signal, score = detail.score, source = detail.source } or detail })
    end
    if not ok then
      return
    elseif what == "blocked" then
      local why = shield_mod.why(sh)
      emit("warn", "blocked", { shield = detail, why = why }, "  block %s refused by the shield: %s",
        inner.position and "the exit" or "the entry", why)
      journal:event("blocked", { shield = detail, why = why })
    elseif what == "buy" or what == "sell" or what == "wait" or what == "pass" then
      local v = type(detail) == "table" and string.format(" (tribunal %s: %s %d%s)", detail.source,
        detail.signal, detail.score, detail.cause and ", cause " .. detail.cause or "")
        or (detail and " (" .. detail .. ")" or "")
      emit("info", "decision", { outcome = what, regime = inner.regime, verdict = type(detail) == "table"
        and { signal = detail.signal, score = detail.score, source = detail.source, cause = detail.cause,
          reasoning = detail.reasoning, latency_ms = detail.latency_ms } or nil },
        "  %-5s %s%s", what == "buy" and "order" or what, what == "buy" and "market buy at the next open"
        or what == "sell" and "sell at the next open" or "no entry", v)
    end
    emit("info", "candle", { time = iso(inner.time), close = inner.close, regime = inner.regime,
      position = book.position and "long" or "flat", equity = inner.equity, shield = inner.shield },
      "%s  close %.2f  %-10s %-4s equity %.2f%s", iso(inner.time), inner.close, tostring(inner.regime),
      book.position and "long" or "flat", inner.equity, inner.shield == "GREEN" and "" or "  shield " .. inner.shield)
  end

  -- a reload is a transaction: load and check the new file, or keep the old
  local function reload(why)
    local new, lerr
    local f, oerr = io.open(path, "rb")
    if f then
      local src = f:read("a")
      f:close()
      new, lerr = strategy.load(src, "@" .. path, state, log)
    else
      lerr = oerr
    end
    reloads.count, reloads.last, reloads.why = reloads.count + 1, os.date("!%Y-%m-%dT%H:%M:%SZ"), why
    journal:note(inner.time, "reload", { ok = new ~= nil, why = why, error = lerr and tostring(lerr) })
    if not new then
      reloads.ok, reloads.error = false, tostring(lerr)
      emit("error", "reload", { ok = false, why = why, error = tostring(lerr) },
        "  error reload (%s) failed, the previous strategy keeps running: %s", why, tostring(lerr))
      return false, tostring(lerr)
    end
    if new.settings.symbol ~= strat.settings.symbol or new.settings.interval ~= strat.settings.interval then
      emit("error", "reload", { ok = false, why = why, error = "symbol or interval changed" },
        "  error reload (%s) refused: symbol and interval cannot change while running (%s %s)",
        why, strat.settings.symbol, strat.settings.interval)
      return
    end
    local nind, nmap = build_indicators(new.indicators, columns, n)
    book:configure { position_size = new.settings.position_size, stop_loss = new.settings.stop_loss,
      take_profit = new.settings.take_profit }
    strat, ind = new, nind
    e.set_strategy(new)
    e.set_indicators(nmap)
    for name, series in pairs(nmap) do ivals[name] = series[n] end
    if new.env.on_reload then
      local ok, rerr2 = host.limit(M.CANDLE_BUDGET, new.env.on_reload, state)
      if not ok then
        emit("error", "on_reload", { error = tostring(rerr2) }, "  error on_reload(state) failed: %s", tostring(rerr2))
      end
    end
    reloads.ok, reloads.error = true, nil
    rewatch()
    emit("info", "reload", { ok = true, why = why, path = path },
      "  reload %s (%s): the new strategy decides from the next candle", path, why)
    return true
  end

  -- what the REPL sees (README, "The REPL")
  local env
  local api = {
    m = e.m, state = state, ta = ta,
    candles = function() return e.m.candles end,
    ind = function() return e.m.ind end,
    book = function()
      return { quote = book.quote, base = book.base, equity = book:equity(inner.close or 0),
        position = book.position, pending = book.pending, trades = #book.trades, fees = book.fees,
        refused = book.refused }
    end,
    trades = function(k)
      local all, out = book.trades, {}
      for t = math.max(1, #all - (k or 10) + 1), #all do out[#out + 1] = all[t] end
      return out
    end,
    verdicts = function(k)
      local out = {}
      for t = 1, math.min(k or 10, #verdicts) do out[t] = verdicts[t] end
      return out
    end,
    shield = {
      status = function() return { state = sh:state(), reasons = sh:reasons(), stats = sh:stats() } end,
      explain = function(k) env.print(shield_mod.explain(sh, k)) end,
    },
    status = function()
      return { strategy = path or "the default strategy", symbol = strat.settings.symbol,
        interval = strat.settings.interval, candles = n, feed = feed.status(), shield = sh:state(),
        paused = e.paused or false, regime = inner.regime, reloads = reloads, tribunal = e.stats,
        llm = live_tribunal and { provider = live_tribunal.provider, model = live_tribunal.model,
          today = live_tribunal.totals, causes = live_tribunal.causes, deadline = live_tribunal.deadline } }
    end,
    pause = function()
      e.paused = true
      emit("warn", "pause", {}, "  pause entries paused from the REPL")
      return "entries paused"
    end,
    resume = function()
      e.paused = false
      emit("info", "resume", {}, "  resume entries resumed from the REPL")
      return "entries resumed"
    end,
    reload = function()
      if not path then return nil, "the default strategy has no file to reload" end
      return reload("REPL")
    end,
    help = function()
      env.print([[
m                 the market view the strategy sees (m.close, m.ind.x, m.candles.close, ...)
candles()         the candle series so far (m.candles); ind(): indicator values
state             the strategy's persistent state table
book()            balances, equity, position, pending order, counts
trades(n)         the last n closed trades; verdicts(n): the last n tribunal verdicts
status()          strategy, feed progress, shield state, paused, reloads, tribunal counts
shield.status()   the Integrity Shield: state, reasons, counts
shield.explain()  its reasons and last transitions, in words
pause(), resume() stop / restart new entries (exits go on)
reload()          reload the strategy file now
ta, nomade        the indicator library and every nomade module]])
    end,
  }
  env = setmetatable({}, { __index = function(_, k) if api[k] ~= nil then return api[k] end return _G[k] end })

  -- a resumed journal: its candles, book and state
  if resumed then
    for _, row in ipairs(resumed.candles) do
      n = n + 1
      for c, col in ipairs({ "time", "open", "high", "low", "close", "volume" }) do columns[col]:push(row[c]) end
      sh:candle(table.unpack(row, 1, 6))
    end
    seen_seq = sh:stats().transitions  -- journaled when they happened
    inner.shield = sh:state()
    for _, col in ipairs({ "time", "open", "high", "low", "close", "volume" }) do inner[col] = columns[col][n] end
    book:restore(resumed.book)
    for k, v in pairs(resumed.state) do state[k] = v end
    ind, map = build_indicators(strat.indicators, columns, n)
    e.set_indicators(map)
    for name, series in pairs(map) do ivals[name] = series[n] end
    e.cursor:set(n)
    inner.index = n
    e.changed()
    trades, journaled = #book.trades, #book.trades
    emit("info", "journal_resume", { journal = jpath, candles = n, last = iso(resumed.time) },
      "  resume from %s: %d candles, last %s, %s, equity %.2f", jpath, n, iso(resumed.time),
      book.position and "a position open" or "flat", book:equity(inner.close))
  end
  -- a live feed: the shield watches its clock and its requests
  local ticker
  if feed.clock then
    feed.on_poll = function(ok, why, offset)
      local now = feed.clock()
      sh:api(ok, why and tostring(why) or nil, now)
      sh:skew(offset or 0, now)
      report_shield()
    end
    feed.on_link = function(up, why)
      sh:signal("disconnected", not up, why or "", feed.clock())
      report_shield()
    end
    ticker = loop.timer(5, 5, function()
      sh:tick(feed.clock())
      report_shield()
    end)
  end
  local finished = false
  feed.start(resumed and resumed.time, candle, function()
    finished = true
    loop.stop()
  end)
  local watchers = {}
  -- the strategy file and the modules it requires: watched, and rewatched
  -- after each reload (a reload may require other modules)
  local watched = {}
  local function watch_files()
    for _, w in pairs(watched) do w:stop() end
    watched = {}
    for _, f in ipairs(strat.files or {}) do
      watched[f] = loop.watch(f, function(changed) reload(changed == path and "file changed" or (changed .. " changed")) end)
    end
  end
  rewatch = watch_files
  if path then
    watch_files()
    watchers[#watchers + 1] = loop.signal("HUP", function() reload("SIGHUP") end)
  end
  for _, sig in ipairs({ "INT", "TERM" }) do
    watchers[#watchers + 1] = loop.signal(sig, function()
      emit("info", "stop", { signal = "SIG" .. sig }, "  stop  SIG%s: stopping after this candle", sig)
      loop.stop()
    end)
  end
  local socket, sockerr = opts.socket, nil
  if not socket then socket, sockerr = repl.default_socket() end
  local server
  if socket then server, sockerr = repl.serve(socket, env) end
  if not server then
    io.stderr:write("nomade run: the REPL cannot listen: ", tostring(sockerr), "\n")
    return 1
  end
  emit("info", "start", { strategy = path or "default", symbol = s.symbol, interval = s.interval,
    feed = feed.name, history = feed.history, tribunal = opts.tribunal or "off" },
    "nomade run: %s on %s %s, %s; tribunal %s%s", path or "the default strategy", s.symbol, s.interval,
    feed.describe(), opts.tribunal or "off",
    (opts.tribunal or "off") == "off" and " (every candidate passes as BUY)" or "")
  if path then emit("info", "hint", {}, "  edit %s while this runs: it reloads on save", path) end
  emit("info", "hint", { socket = socket }, "  attach: %s repl%s   (in another terminal)", host.argv0(),
    opts.socket and (" --socket " .. socket) or "")
  emit("info", "hint", { journal = jpath }, "  journal %s", jpath)
  loop.run()
  feed.stop()
  if ticker then ticker:stop() end
  for _, w in ipairs(watchers) do w:stop() end
  for _, w in pairs(watched) do w:stop() end
  server:close()
  journal:close()
  emit("info", "end", { finished = finished, candles = n, equity = book:equity(inner.close or 0),
    trades = #book.trades }, "nomade run: %s after %d candles: equity %.2f, %d trades, %s",
    finished and "replay done" or "stopped",
    n, book:equity(inner.close or 0), #book.trades, book.position and "a position open" or "flat")
  return 0
end

return M
