-- nomade.live: `nomade run`, the runtime that stays up. A feed hands it
-- candles on the event loop; each candle runs in its own coroutine through
-- the same engine as the backtester (nomade.engine) with paper execution;
-- the strategy file is watched and reloaded in place, keeping `state` and
-- the book. Feeds (nomade.feed): a replay of a candle file X times faster
-- than real time, or Bybit's klines. Execution: the paper book, or Bybit
-- itself (nomade.exchange) behind the shield, the risk limits and the
-- kill switch.
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
local exchange = require "nomade.exchange"
local tree_mod = require "nomade.tree"
local board_mod = require "nomade.board"
local dashboard = require "nomade.dashboard"
local bybit = require "nomade.bybit"

local M = {}

-- VM instructions one candle's strategy calls may take (nomade backtest's too)
M.CANDLE_BUDGET = engine.CANDLE_BUDGET

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
  --exec paper|bybit paper (default): simulated fills at the next open;
                     bybit: real orders on Bybit spot (README, "Going live"),
                     with one of --testnet, --demo or --live (mainnet), or a
                     custom --base-url; keys from BYBIT_API_KEY/SECRET
  --testnet, --demo, --live
                     where --exec bybit trades; --live is real money
  --private-url URL  the private stream (default: the base's; needed with a
                     custom --base-url)
  --halt-file PATH   the kill switch as a file: while it exists, no entries
                     and open orders cancelled (default JOURNAL.halt)
  --http HOST:PORT   the dashboard (README, "The dashboard"; default
                     127.0.0.1:8080), or off; its controls need the token
                     printed at start (or NOMADE_DASHBOARD_TOKEN)
  --firebase URL     also publish the dashboard's tree to this Firebase
                     Realtime Database (https://<name>.firebaseio.com), with
                     the secret or token in FIREBASE_AUTH
  --firebase-commands
                     also take pause, resume and halt from the database's
                     /commands (what the pages write there); off unless given
  --web DIR          the dashboard's pages (default: web/ beside the binary's
                     build/ directory, else /usr/local/share/nomade/web)
  --socket PATH      the REPL's socket (default $XDG_RUNTIME_DIR/nomade/nomade.sock,
                     else /tmp/nomade-$UID/nomade.sock)
  --journal PATH     the SQLite journal; a restart with it resumes where the
                     run stopped; one process at a time (default
                     $XDG_STATE_HOME/nomade/SYMBOL-INTERVAL-MARKET-EXEC.journal,
                     else ~/.local/state/nomade/...; MARKET: replay-FILE,
                     mainnet, testnet or demo; EXEC: paper or bybit)
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

-- where a control came from, in the log's words
local FROM = { repl = "the REPL", dashboard = "the dashboard", firebase = "Firebase" }

local COLUMNS = { "time", "open", "high", "low", "close", "volume" }

-- an event: its level, name and fields (for json), and its text line
local function emit(level, event, fields, fmt, ...)
  log_mod.event(level, event, fields, string.format(fmt, ...))
end

local OPTIONS = { feed = true, speed = true, exec = true, cash = true, fee = true, tribunal = true,
  cache = true, instrument = true, socket = true, journal = true, ["log-format"] = true, ["log-level"] = true,
  ["base-url"] = true, ["ws-url"] = true, ["stream-timeout"] = true, shield = true, provider = true, model = true,
  ["llm-url"] = true, llm = true, ["halt-file"] = true, ["private-url"] = true,
  http = true, web = true, firebase = true }

-- --exec bybit: where it trades, and where the feed reads (demo trading
-- has no market data of its own: mainnet's)
local EXEC_BASES = { testnet = "testnet", demo = "demo", live = "mainnet" }
local FEED_BASES = { testnet = "testnet", demo = "mainnet", live = "mainnet" }

local function exec_args(opts)
  local chosen = {}
  for flag in pairs(EXEC_BASES) do if opts[flag] then chosen[#chosen + 1] = "--" .. flag end end
  if opts.exec ~= "bybit" then
    if #chosen > 0 or opts["private-url"] then return nil, "--testnet, --demo, --live and --private-url go with --exec bybit" end
    return true
  end
  if opts.feed ~= "bybit" and opts.feed ~= "bybit-rest" then
    return nil, "--exec bybit trades on live data: it needs --feed bybit (or bybit-rest)"
  end
  local custom = opts["base-url"] and opts["base-url"]:match("^https?://")
  if #chosen > 1 then return nil, "one of --testnet, --demo or --live, not " .. table.concat(chosen, " and ") end
  if #chosen == 0 and not custom then
    return nil, "--exec bybit needs --testnet, --demo or --live (real money), or a custom --base-url"
  end
  if #chosen == 1 and custom then return nil, chosen[1] .. " and a custom --base-url exclude each other" end
  if custom then
    if not opts["private-url"] then return nil, "--exec bybit with a custom --base-url needs --private-url" end
    opts.exec_base = opts["base-url"]
  else
    local which = chosen[1]:sub(3)
    if opts["base-url"] and opts["base-url"] ~= FEED_BASES[which] then
      return nil, "--base-url " .. opts["base-url"] .. " does not go with " .. chosen[1]
    end
    opts.exec_base, opts["base-url"] = EXEC_BASES[which], FEED_BASES[which]
  end
  return true
end

local function parse_args(args)
  local opts, err = cli.parse(args, OPTIONS, { ["adopt-journal"] = true, testnet = true, demo = true, live = true,
    ["firebase-commands"] = true })
  if not opts then return nil, err end
  opts.adopt = opts["adopt-journal"]
  local streamed = opts.feed == "bybit" or opts.feed == "bybit-rest"
  if not streamed and not (opts.feed or ""):match("^replay:.") then
    return nil, "--feed replay:FILE, --feed bybit or --feed bybit-rest is required"
  end
  if opts["base-url"] and not streamed then return nil, "--base-url goes with --feed bybit or bybit-rest" end
  if opts.exec and opts.exec ~= "paper" and opts.exec ~= "bybit" then
    return nil, "--exec must be paper or bybit, got '" .. opts.exec .. "'"
  end
  local exec_ok, exec_err = exec_args(opts)
  if not exec_ok then return nil, exec_err end
  if opts["firebase-commands"] and not opts.firebase then return nil, "--firebase-commands goes with --firebase URL" end
  if opts.http ~= "off" then
    local h, port = (opts.http or "127.0.0.1:8080"):match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
    if not h or tonumber(port) > 65535 then return nil, "--http must be HOST:PORT (an IPv4 address) or off" end
    opts.http_host, opts.http_port = h, tonumber(port)
  end
  if (opts["ws-url"] or opts["stream-timeout"]) and opts.feed ~= "bybit" then
    return nil, "--ws-url and --stream-timeout go with --feed bybit"
  end
  local st = opts["stream-timeout"] and tonumber(opts["stream-timeout"])
  if opts["stream-timeout"] and not (st and st >= 1 and st <= 3600) then
    return nil, "--stream-timeout must be seconds in 1..3600"
  end
  local shielded, sherr = shield_mod.check(opts.shield, opts.feed == "bybit")
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

-- the market a run trades on and how, for the default journal's name:
-- replay-FILE, mainnet, testnet, demo (or a custom base's host), then
-- paper or bybit; so a replay never resumes into a live run, nor paper
-- into real orders
local function journal_name(s, opts)
  local file = opts.feed:match("^replay:(.*)$")
  local where = file and "replay-" .. (file:match("([^/]+)$") or file)
    or (opts.exec == "bybit" and opts.exec_base or opts["base-url"] or "mainnet"):gsub("^https?://", "")
  return string.format("%s-%s-%s-%s.journal", s.symbol, s.interval, where:gsub("[^%w%.%-_]", "_"), opts.exec or "paper")
end

local function default_journal(s, opts)
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    if not home then return nil, "no --journal, and neither XDG_STATE_HOME nor HOME is set" end
    base = home .. "/.local/state"
  end
  local ok, err = host.mkdir(base .. "/nomade")
  if not ok then return nil, err end
  return base .. "/nomade/" .. journal_name(s, opts)
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

-- 16 random bytes in hex: the dashboard's controls token
local function random_token()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function has_pages(dir)
  local f = io.open(dir .. "/trading.html", "rb")
  if f then f:close() end
  return f ~= nil
end

-- where the pages are: web/ of the source tree the binary was built in
-- (build/nomade, build/asan/nomade), else where an install puts them;
-- nil when there are none
function M.web_dir()
  local dir = host.argv0():match("^(.*)/[^/]+$") or "."
  for _, cand in ipairs({ dir .. "/../web", dir .. "/../../web", "/usr/local/share/nomade/web" }) do
    if has_pages(cand) then return cand end
  end
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
  if not jpath then jpath, jperr = default_journal(s, opts) end
  local journal
  if jpath then
    journal, jperr = journal_mod.open(jpath, { strategy = path or "default", symbol = s.symbol,
      interval = s.interval, exec = opts.exec or "paper" }, opts.adopt)
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
  local book
  if opts.exec == "bybit" then
    local berr
    book, berr = live_book(opts, s, rules, sh, journal)
    if not book then
      journal:close()
      io.stderr:write("nomade run: ", tostring(berr), "\n")
      return 1
    end
  else
    book = engine.paper_book(s, rules, opts)
    book:guard(sh)  -- every order of this run passes the shield's gate, in C
  end

  -- the candles seen so far, growing as the feed delivers them
  local columns = {}
  for _, k in ipairs(COLUMNS) do columns[k] = ta.series() end
  local ind, map = build_indicators(strat.indicators, columns, 0)
  local e = engine.new { strategy = strat, book = book, judge = judge, columns = columns,
    indicators = map, mode = opts.tribunal or "off", rules = rules, shield = sh }
  local inner, ivals = e.inner, e.ivals
  local tree = tree_mod.new()
  local board = board_mod.new(tree, s.symbol, strategy.INTERVALS[s.interval] * 1000)
  local n, trades, journaled = 0, 0, 0
  local verdicts, reloads = {}, { count = 0 }
  local decide, rewatch

  -- the run's one clock (ms), for the shield and the tree: the exchange's
  -- with a live feed, the replay's own (its last candle's close) on a replay
  local function clock()
    if feed.clock then return feed.clock() end
    return (inner.time or feed.cols.time[1]) + strategy.INTERVALS[s.interval] * 1000
  end

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

  -- a position whose sell the exchange's minimums refuse: kept, flagged
  -- dust by the book, and said once (its later refusals are only counted)
  local dust_said
  local function report_dust()
    local p = book.position
    if not (p and p.dust) then return false end
    if dust_said ~= p.time then
      dust_said = p.time
      emit("warn", "dust", { qty = p.qty, price = inner.close, min_qty = rules.min_qty, min_amt = rules.min_amt },
        "  dust  the position (%.8g at %.2f) is under the exchange's minimum order (minOrderQty %g, minOrderAmt %g): "
        .. "kept as dust, not sold", p.qty, inner.close, rules.min_qty, rules.min_amt)
      journal:event("dust", { qty = p.qty, price = inner.close })
    end
    return true
  end

  -- live verdicts: journaled; an unavailable tribunal turns the shield AMBER
  opts.on_verdict = function(v)
    journal:event("verdict", { model = v.model, prompt_sha256 = v.prompt_sha256, signal = v.signal, score = v.score,
      cause = v.cause, detail = v.detail, latency_ms = v.latency_ms, tokens = v.tokens, reasoning = v.reasoning })
  end
  opts.on_available = function(ok, why)
    sh:signal("tribunal", not ok, why or "", clock())
    report_shield()
  end

  local step = strategy.INTERVALS[s.interval] * 1000
  local ingest
  -- candle k of the feed, through the shield first: a gap is backfilled
  -- when the feed can; a candle it refuses goes no further
  local function candle(k, live)
    local row = {}
    for _, col in ipairs(COLUMNS) do row[col] = feed.cols[col][k] end
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
    if book.exchange then book.trigger = live and feed.arrived end  -- the order latency's start
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
    for _, col in ipairs(COLUMNS) do
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
    if book:open_candle(n, inner.time, inner.open, inner.high, inner.low, inner.close, live) and n > 1 then
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
    report_dust()
    e.changed()
    inner.equity = book:equity(inner.close)
    if live and n >= strat.settings.history then decide(n) end
    board:candle(inner, ivals, inner.regime, inner.equity)
    local all = book.trades
    local fresh = {}
    for t = journaled + 1, #all do fresh[#fresh + 1] = all[t] end
    journaled = #all
    local snap = book:snapshot()
    snap.risk = e.risk:snapshot()
    local ok_state, why = journal:candle(inner, snap, fresh, state)
    if not ok_state then
      emit("error", "state", { error = why }, "  error state is not JSON-serialisable (%s): the journal keeps the last good one", why)
    end
  end

  -- the strategy's failed turns: counted, the last kept (status(), the
  -- dashboard, the end line), a run of identical ones logged once and
  -- then counted; strategy_errors of them in a row turn the shield AMBER
  local failures = { count = 0, in_a_row = 0, repeats = 0 }
  local function failed_calls()
    if failures.count == 0 then return nil end
    return { count = failures.count, in_a_row = failures.in_a_row, last = failures.last, candle = failures.candle }
  end
  local function flush_repeats()
    if failures.repeats == 0 then return end
    emit("error", "strategy_error_repeated", { count = failures.repeats, error = failures.last },
      "  error ... repeated %d times", failures.repeats)
    failures.repeats = 0
  end
  local function strategy_turn(ok, why)
    local close = inner.time + step
    if ok then
      failures.in_a_row = 0
      flush_repeats()
      sh:strategy(true, nil, close)
      return report_shield()
    end
    local text = string.format("strategy failed in %s: %s", e.phase(), tostring(why))
    failures.count, failures.in_a_row = failures.count + 1, failures.in_a_row + 1
    if text == failures.last then
      failures.repeats = failures.repeats + 1
    else
      flush_repeats()
      emit("error", "strategy_error", { ["function"] = e.phase(), error = tostring(why), time = iso(inner.time) },
        "  error %s (the candle of %s is skipped)", text, iso(inner.time))
    end
    failures.last, failures.candle = text, iso(inner.time)
    journal:event("error", text)
    sh:strategy(false, string.format("in %s: %s", e.phase(), tostring(why)), close)
    report_shield()
  end

  -- the strategy's turn on candle k, reported and journaled
  function decide(k)
    local ok, what, detail = e.turn(k)
    if ok and type(detail) == "table" then
      table.insert(verdicts, 1, { time = iso(inner.time), signal = detail.signal, score = detail.score,
        source = detail.source, reasoning = detail.reasoning, outcome = what, cause = detail.cause,
        latency_ms = detail.latency_ms, tokens = detail.tokens and detail.tokens.total, model = detail.model })
      verdicts[51] = nil
      board:verdict(verdicts[1], inner.time)
    end
    strategy_turn(ok, what)
    if ok and what then
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
    elseif what == "refused" and not report_dust() then  -- a dust position's exits: said once
      emit("warn", "refused_order", { why = detail }, "  refuse %s: %s", inner.position and "the exit" or "the entry",
        detail)
      journal:event("refused_order", { why = detail })
    elseif what == "buy" or what == "sell" or what == "wait" or what == "pass" then
      local v = type(detail) == "table" and string.format(" (tribunal %s: %s %d%s)", detail.source,
        detail.signal, detail.score, detail.cause and ", cause " .. detail.cause or "")
        or (detail and " (" .. detail .. ")" or "")
      emit("info", "decision", { outcome = what, regime = inner.regime, verdict = type(detail) == "table"
        and { signal = detail.signal, score = detail.score, source = detail.source, cause = detail.cause,
          reasoning = detail.reasoning, latency_ms = detail.latency_ms } or nil },
        "  %-5s %s%s", what == "buy" and "order" or what, what == "buy" and "market buy" .. (book.exchange and ""
        or " at the next open") or what == "sell" and "sell" .. (book.exchange and "" or " at the next open")
        or "no entry", v)
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
    if not new then
      reloads.ok, reloads.error = false, tostring(lerr)
      journal:note(inner.time, "reload", { ok = false, why = why, error = tostring(lerr) })
      emit("error", "reload", { ok = false, why = why, error = tostring(lerr) },
        "  error reload (%s) failed, the previous strategy keeps running: %s", why, tostring(lerr))
      return false, tostring(lerr)
    end
    if new.settings.symbol ~= strat.settings.symbol or new.settings.interval ~= strat.settings.interval then
      local refusal = string.format("symbol and interval cannot change while running (%s %s)",
        strat.settings.symbol, strat.settings.interval)
      reloads.ok, reloads.error = false, refusal
      journal:note(inner.time, "reload", { ok = false, why = why, error = refusal })
      emit("error", "reload", { ok = false, why = why, error = refusal }, "  error reload (%s) refused: %s", why, refusal)
      return false, refusal
    end
    journal:note(inner.time, "reload", { ok = true, why = why })
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

  local publisher  -- --firebase: nomade.firebase

  -- the kill switch (REPL halt(), SIGUSR1, the halt file): the shield
  -- stops entries (in C) and the open order is cancelled; it lasts, in the
  -- journal, until unhalt() with the file gone
  local halt_file = opts["halt-file"] or (jpath .. ".halt")
  local function halt(why)
    local was = journal:flag("halted")
    journal:flag("halted", why)
    sh:signal("halted", true, why, clock())
    report_shield()
    if not was then
      emit("error", "halt", { why = why }, "  HALT  %s: no entries; open orders cancelled", why)
      journal:note(inner.time, "halt", { why = why })
    end
    if book.cancel_open then
      local ok, cerr = book:cancel_open()
      if not ok then
        emit("error", "halt", { why = why, error = tostring(cerr) }, "  error halt: the open order could not be "
          .. "cancelled (%s); retried with the next check", tostring(cerr))
      end
    end
    return "halted: " .. why
  end
  local function unhalt(from)
    local f = io.open(halt_file, "rb")
    if f then
      f:close()
      return nil, "the halt file " .. halt_file .. " still exists: remove it first"
    end
    journal:flag("halted", false)
    sh:signal("halted", false, "", clock())
    report_shield()
    emit("warn", "unhalt", { from = from }, "  unhalt the kill switch is lifted from %s (entries resume once the "
      .. "shield is GREEN)", FROM[from])
    journal:note(inner.time, "unhalt", { from = from })
    return "unhalted"
  end
  -- the controls, from the REPL, the dashboard or Firebase: each credited
  -- to where it came from (FROM) in the log
  local controls = {
    pause = function(from)
      e.paused = true
      emit("warn", "pause", { from = from }, "  pause entries paused from %s", FROM[from])
      return "entries paused"
    end,
    resume = function(from)
      e.paused = false
      emit("info", "resume", { from = from }, "  resume entries resumed from %s", FROM[from])
      return "entries resumed"
    end,
    halt = function(from, why) return halt(why or "halt from " .. FROM[from]) end,
    unhalt = unhalt,
  }
  -- a control from the dashboard or Firebase (dashboard.ACTIONS)
  local function command(action, from)
    emit("warn", "command", { action = action, from = from }, "  control %s from %s", action, FROM[from])
    return controls[action](from)
  end
  local function check_halt_file()
    local f = io.open(halt_file, "rb")
    if f then
      f:close()
      if not journal:flag("halted") or (book.open and book.open.order_id) then halt("the halt file " .. halt_file) end
    end
  end

  -- what the REPL sees (README, "The REPL"): these, in the strategy's
  -- sandbox (nomade.repl)
  local env
  local api = {
    m = e.m,
    candles = function() return e.m.candles end,
    ind = function() return e.m.ind end,
    book = function()
      return { exec = book.exchange and "bybit" or "paper", quote = book.quote, base = book.base,
        equity = book:equity(inner.close or 0), position = book.position, pending = book.pending,
        open = book.open, held = book.held, trades = #book.trades, fees = book.fees, refused = book.refused,
        risk_refused = book.risk_refused }
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
        paused = e.paused or false, halted = journal:flag("halted"), exec = book.exchange and "bybit" or "paper",
        firebase = publisher and publisher:status(),
        private_stream = book.exchange and (book.stream_up or false) or nil,
        regime = inner.regime, reloads = reloads, tribunal = e.stats, errors = failed_calls(),
        llm = live_tribunal and { provider = live_tribunal.provider, model = live_tribunal.model,
          today = live_tribunal.totals, causes = live_tribunal.causes, deadline = live_tribunal.deadline } }
    end,
    halt = function(why) return controls.halt("repl", type(why) == "string" and why or "halt() from the REPL") end,
    unhalt = function() return unhalt("repl") end,
    reconcile = function()
      if not book.reconcile then return nil, "paper execution has nothing to reconcile" end
      local ok, problem, notes = book:reconcile("REPL")
      return { ok = ok, problem = problem, notes = notes }
    end,
    orders = function(k)
      if not book.known then return nil, "paper execution: see book()" end
      local all = {}
      for _, o in pairs(book.known) do all[#all + 1] = o end
      table.sort(all, function(a, b) return a.time > b.time end)
      local out = {}
      for i = 1, math.min(k or 10, #all) do out[i] = all[i] end
      return out
    end,
    pause = function() return controls.pause("repl") end,
    resume = function() return controls.resume("repl") end,
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
halt(), unhalt()  the kill switch: no entries, open orders cancelled; lasts
                  across restarts until unhalt()
orders(n)         --exec bybit: the last n orders; reconcile(): match the
                  journal with the exchange now
reload()          reload the strategy file now
ta, math, string, table, utf8, os.time/date/clock/difftime, print, load
                  what a strategy has; no io, os.exit, os.getenv, debug,
                  package or require (asking for them says so)]])
    end,
  }
  env = repl.environment(api, state)

  -- a resumed journal: its candles, book and state
  if resumed then
    for _, row in ipairs(resumed.candles) do
      n = n + 1
      for c, col in ipairs(COLUMNS) do columns[col]:push(row[c]) end
      sh:candle(table.unpack(row, 1, 6))
    end
    seen_seq = sh:stats().transitions  -- journaled when they happened
    inner.shield = sh:state()
    for _, col in ipairs(COLUMNS) do inner[col] = columns[col][n] end
    book:restore(resumed.book)
    e.risk:restore(resumed.book.risk or resumed.book)
    for k, v in pairs(resumed.state) do state[k] = v end
    ind, map = build_indicators(strat.indicators, columns, n)
    e.set_indicators(map)
    for name, series in pairs(map) do ivals[name] = series[n] end
    e.cursor:set(n)
    inner.index = n
    e.changed()
    trades, journaled = #book.trades, #resumed.book.trades
    for k = math.max(1, n - board_mod.CANDLES + 1), n do
      local c, values = {}, {}
      for _, col in ipairs(COLUMNS) do c[col] = columns[col][k] end
      for name, series in pairs(map) do values[name] = series[k] end
      board:candle(c, values)
    end
    emit("info", "journal_resume", { journal = jpath, candles = n, last = iso(resumed.time) },
      "  resume from %s: %d candles, last %s, %s%s", jpath, n, iso(resumed.time),
      book.position and "a position open" or "flat", book.exchange and " (balances: the exchange's, next)"
        or string.format(", equity %.2f", book:equity(inner.close)))
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
    feed.on_beat = function()  -- any frame from the stream (--shield heartbeat=)
      sh:heartbeat(feed.clock())
      report_shield()
    end
    ticker = loop.timer(5, 5, function()
      sh:tick(feed.clock())
      report_shield()
    end)
  end
  -- the kill switch as it was left, then the exchange: reconciled before
  -- anything trades, its private stream, and a retry while it disagrees
  local halted = journal:flag("halted")
  if halted then
    sh:signal("halted", true, halted, clock())
    report_shield()
    emit("error", "halt", { why = halted }, "  HALT  still halted (%s): unhalt() in the REPL lifts it", halted)
  end
  local guard = loop.timer(1, 1, check_halt_file)
  check_halt_file()
  local retry
  if book.exchange then
    book.on_change = e.changed
    book.on_shield = report_shield  -- a reconciliation or a refusal that moves the shield, said at once
    book.price = inner.close
    book:reconcile("start")
    report_shield()
    local _, perr = book:stream { url = opts["private-url"], timeout = tonumber(opts["stream-timeout"]),
      on_ready = function() report_shield() end }
    if perr then
      emit("error", "private_stream", { error = tostring(perr) }, "  error private stream: %s", tostring(perr))
    end
    retry = loop.timer(30, 30, function()
      if book.problem then
        book:reconcile("retry")
        report_shield()
      end
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
  watchers[#watchers + 1] = loop.signal("USR1", function() halt("SIGUSR1") end)
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
  -- the dashboard: the tree kept current, served over HTTP
  local started = math.floor(loop.time() * 1000)
  local function sync_board()
    local st = api.status()
    board:sync("/bot/status", { mode = st.exec, symbol = st.symbol, interval = st.interval, feed = feed.name,
      strategy = st.strategy, started = started, updated = math.floor(loop.time() * 1000), paused = st.paused,
      halted = st.halted, candles = st.candles, reload = { count = reloads.count, ok = reloads.ok,
        last = reloads.last, error = reloads.error }, errors = st.errors })
    local reasons, transitions = {}, {}
    for _, r in ipairs(sh:reasons()) do reasons[r.check] = r end
    for _, tr in ipairs(sh:transitions(math.max(0, seen_seq - 50))) do transitions[string.format("%d", tr.seq)] = tr end
    board:sync("/shield", { state = sh:state(), reasons = reasons, transitions = transitions })
    local p = book.position
    board:sync("/positions", p and { [s.symbol] = { qty = p.qty, price = p.price, time = p.time, stop = p.stop,
      take = p.take } } or nil)
    local orders = {}
    for link, o in pairs(book.known or {}) do
      orders[link] = { link = link, side = o.side, qty = o.qty, status = o.status, time = o.time, reason = o.reason }
    end
    board:sync("/orders", orders)
    board:sync("/trades", board_mod.trades(book.trades))
    local live_price = st.feed.ticker or st.feed.open_candle
    if live_price then board:price(live_price.price or live_price.close, live_price.time or clock()) end
  end
  local web, syncer = nil, nil
  if opts.http_host then
    -- a configured token is a secret, never printed; a fresh one is, once
    local token = os.getenv("NOMADE_DASHBOARD_TOKEN")
    local shown = "NOMADE_DASHBOARD_TOKEN"
    if not token or token == "" then
      token = random_token()
      shown = token
    else
      require("nomade.secrets").remember(token)
    end
    local dir = opts.web or M.web_dir()
    if not dir or not has_pages(dir) then
      emit("warn", "dashboard", { web = dir }, "  warn  no pages in %s: the dashboard serves its data only (--web DIR)",
        dir or "web/ near the binary")
    end
    local werr
    web, werr = dashboard.serve { host = opts.http_host, port = opts.http_port, tree = tree, web = dir, token = token,
      on_command = command }
    if not web and opts.http then
      io.stderr:write("nomade run: the dashboard cannot listen: ", tostring(werr), " (--http off to go without)\n")
      return 1
    elseif not web then  -- the default address is taken (another run?): said, and trading goes on
      emit("warn", "dashboard", { error = tostring(werr) }, "  warn  no dashboard: %s (give --http HOST:PORT)",
        tostring(werr))
    else
      emit("info", "hint", { url = string.format("http://%s:%d/", opts.http_host, web.port), web = dir },
        "  dashboard http://%s:%d/  (controls token: %s)", opts.http_host, web.port, shown)
    end
  end
  if opts.firebase then
    local perr
    publisher, perr = require("nomade.firebase").new { url = opts.firebase, tree = tree,
      auth = require("nomade.secrets").get("FIREBASE_AUTH") }
    if not publisher then
      io.stderr:write("nomade run: --firebase: ", tostring(perr), "\n")
      return 1
    end
    publisher:start()
    if opts["firebase-commands"] then
      publisher:listen(command)
    end
    emit("info", "hint", { firebase = opts.firebase, commands = opts["firebase-commands"] or false },
      "  firebase: the tree is published to %s%s", opts.firebase,
      opts["firebase-commands"] and "; its /commands are obeyed" or "")
  end
  if web or publisher then
    sync_board()
    syncer = loop.timer(1, 1, sync_board)
  end
  if book.exchange then
    emit("warn", "exec", { base = book.client.base, max_position_value = s.max_position_value,
      max_orders_per_hour = s.max_orders_per_hour, max_daily_loss = s.max_daily_loss },
      "nomade run: REAL ORDERS on %s; risk: max_position_value %g, max_orders_per_hour %d, max_daily_loss %g",
      book.client.base, s.max_position_value, s.max_orders_per_hour, s.max_daily_loss)
  end
  emit("info", "start", { strategy = path or "default", symbol = s.symbol, interval = s.interval,
    feed = feed.name, history = feed.history, tribunal = opts.tribunal or "off", exec = opts.exec or "paper" },
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
  guard:stop()
  if retry then retry:stop() end
  if book.exchange then book:stop() end
  for _, w in ipairs(watchers) do w:stop() end
  for _, w in pairs(watched) do w:stop() end
  server:close()
  if syncer then syncer:stop() end
  if web then web:close() end
  if publisher then publisher:stop() end
  journal:close()
  flush_repeats()
  local failed = failed_calls()
  emit(failed and "warn" or "info", "end", { finished = finished, candles = n, equity = book:equity(inner.close or 0),
    trades = #book.trades, errors = failed }, "nomade run: %s after %d candles: equity %.2f, %d trades, %s%s",
    finished and "replay done" or "stopped",
    n, book:equity(inner.close or 0), #book.trades, book.position and "a position open" or "flat",
    failed and string.format("; %d failed strategy calls, the last on the candle of %s: %s", failed.count,
      failed.candle, failed.last) or "")
  return 0
end

return M
