-- nomade.backtest: runs a strategy over historical candles through the
-- same path the live runtime takes: candles -> Integrity Shield ->
-- indicators -> regime -> entry -> tribunal -> order intent -> the gate ->
-- paper execution. Every input of a backtest's shield is a candle, so it
-- scans them all first: the candles it refuses never reach the indicators,
-- and each candle carries the state the gate reads on it. Decisions are taken on a candle's close and can only fill on
-- later candles (see nomade.paper), and the strategy sees the candles up
-- to the current one and nothing after: its views stop at a cursor.
local ta = require "nomade.ta"
local candles_mod = require "nomade.candles"
local strategy = require "nomade.strategy"
local instruments = require "nomade.instruments"
local tribunal = require "nomade.tribunal"
local engine = require "nomade.engine"
local shield = require "nomade.shield"
local cli = require "nomade.cli"

local M = {}

-- the indicators the strategy declared, computed in batch over all candles
-- (the same C code as the streams; tests hold the two forms equal)
function M.indicator_series(decl, c)
  local out = {}
  for _, d in ipairs(decl) do
    local spec, results = d.spec
    if spec.inputs == 3 then
      results = { ta[spec.name](c.high, c.low, c.close, table.unpack(spec.params)) }
    else
      results = { ta[spec.name](c[d.field], table.unpack(spec.params)) }
    end
    local suffixes = engine.SUFFIXES[spec.name] or { "" }
    for k, s in ipairs(results) do out[#out + 1] = { name = d.name .. suffixes[k], series = s } end
  end
  return out
end

-- the data's spacing must be the strategy's interval (gaps are allowed)
function M.check_interval(c, interval)
  local want = strategy.INTERVALS[interval] * 1000
  local smallest = math.huge
  for i = 2, math.min(c.n, 1000) do smallest = math.min(smallest, c.time[i] - c.time[i - 1]) end
  if c.n >= 2 and smallest ~= want then
    return nil, string.format("%s: candles are %d s apart but the strategy's interval is %s",
      c.path, smallest // 1000, interval)
  end
  return true
end

-- first index with time >= t, or n + 1
local function lower_bound(times, n, t)
  local lo, hi = 1, n + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if times[mid] < t then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- the candle span to trade: decisions need `history` candles first
local function span(c, s, opts)
  local from = opts.from and lower_bound(c.time, c.n, opts.from) or 1
  local last = opts.to and lower_bound(c.time, c.n, opts.to) - 1 or c.n
  local first = math.max(from, s.history)
  if first >= last then
    return nil, string.format("%s: nothing to backtest: %d candles in range, the strategy needs %d of history first",
      c.path, last - from + 1, s.history)
  end
  return first, last
end

-- M.prepare(opts) -> run state, or nil, err. opts: strategy (path or nil
-- for the default), data, from, to (ms), cash, fee, tribunal, cache,
-- instrument, shield (--shield thresholds)
function M.prepare(opts)
  local c = opts.candles
  if not c then
    local err
    c, err = candles_mod.load(opts.data)
    if not c then return nil, err end
  end
  local strat, serr = strategy.load_file(opts.strategy, {}, opts.log)
  if not strat then return nil, serr end
  local s = strat.settings
  local ok, ierr = M.check_interval(c, s.interval)
  if not ok then return nil, ierr end
  local sh, sherr = shield.new(strat, opts.shield)
  if not sh then return nil, sherr end
  local scan = sh:scan(c)
  scan.path = c.path
  c = scan
  local rules, rerr = instruments.load(opts.instrument, s.symbol)
  if not rules then return nil, rerr end
  opts.interval = strategy.INTERVALS[s.interval]
  local judge, jerr = tribunal.judge(opts.tribunal or "off", opts)
  if not judge then return nil, jerr end
  local first, last = span(c, s, opts)
  if not first then return nil, last end
  return { c = c, strat = strat, rules = rules, judge = judge, first = first, last = last, opts = opts, shield = sh }
end

-- runs the strategy over the span; returns the result for nomade.report.
-- run.on_turn(i, what, detail), if set, hears what each turn did (as
-- engine.decide returns it)
function M.execute(run, progress)
  local c, strat, s = run.c, run.strat, run.strat.settings
  local opts, rules = run.opts, run.rules
  local book = engine.paper_book(s, rules, opts)
  local indicators = {}
  for _, d in ipairs(M.indicator_series(strat.indicators, c)) do indicators[d.name] = d.series end
  local first, last = run.first, run.last
  local e = engine.new { strategy = strat, book = book, judge = run.judge, columns = c,
    indicators = indicators, mode = opts.tribunal or "off", rules = rules,
    progress = progress and function(i)
      if (i - first) % 65536 == 0 then progress(i - first, last - first) end
    end }
  local equity = ta.series()
  -- per-candle garbage (prompts, verdicts) dies young: the generational
  -- collector keeps it from piling up to twice the live heap
  local gc = collectgarbage("generational")
  local on_turn = run.on_turn
  local function decide(i)
    local ok, what, detail = e.turn(i)
    if not ok then error(what, 0) end
    if on_turn then on_turn(i, what, detail) end
  end
  local ok, err = pcall(book.run, book, { first = first, last = last, candles = c, view = e.inner,
    ind = e.ivals, indicators = indicators, cursor = e.cursor, equity = equity, decide = decide,
    changed = e.changed, state = c.state })
  collectgarbage(gc)
  if not ok then
    error(string.format("strategy failed in %s on the candle of %s: %s", e.phase(), M.iso(c.time[book.current]),
      tostring(err)), 0)
  end
  return { c = c, first = first, last = last, equity = equity, held = book.held, book = book,
    tribunal = e.stats, strategy = strat, rules = rules, cash = opts.cash or 10000,
    fee = opts.fee or 0.001, shield = M.shield_summary(run, book) }
end

-- the shield over the span: candles in each state, what the gate refused,
-- the transitions and refused candles (a backtest cannot backfill a gap)
function M.shield_summary(run, book)
  local c = run.c
  return { candles = book.in_state, blocked_entries = book.blocked_entries, blocked_exits = book.blocked_exits,
    transitions = c.transitions, refused = c.refused, gaps_unfilled = run.shield:stats().gaps }
end

-- UTC time in ms -> "2023-03-24 12:00"
function M.iso(ms)
  return os.date("!%Y-%m-%d %H:%M", ms // 1000)
end

-- days since 1970-01-01 of a proleptic Gregorian UTC date
local function days_from_civil(y, mo, d)
  y = mo <= 2 and y - 1 or y
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

-- "2023-03-24" or "2023-03-24T12:00[:00][Z]" (UTC) -> ms, and whether a
-- time of day was given; nil, err when it is not such a date
function M.parse_date(text)
  local y, mo, d, rest = tostring(text):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  local h, mi, sec = 0, 0, 0
  if rest and rest ~= "" then
    h, mi, sec = rest:match("^[T ](%d%d):(%d%d):?(%d?%d?)Z?$")
    if not h then y = nil end
    sec = (sec == nil or sec == "") and 0 or sec
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  local days = y and days_from_civil(y, mo, d)
  if not y or mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or sec > 59
      or os.date("!%d", days * 86400) ~= string.format("%02d", d) then
    return nil, string.format("not a date: '%s' (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)", tostring(text))
  end
  return ((days * 24 + h) * 60 + mi) * 60000 + sec * 1000, rest ~= ""
end

M.USAGE = [[
usage: nomade backtest [STRATEGY.lua] --data FILE [options]
  STRATEGY.lua       the strategy (default: nomade's bundled default strategy)
  --data FILE        candles: CSV (open_time_ms,open,high,low,close,volume; .gz too)
                     or a Bybit kline JSON response (.json)
  --from DATE        first candle to trade (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC);
                     earlier candles still serve as history
  --to DATE          last day to trade (a date includes that whole day; a time
                     stops before it)
  --cash N           starting quote balance (default 10000)
  --fee RATE         fee per fill, both sides (default 0.001, Bybit spot)
  --tribunal MODE    off (every candidate is a BUY, labelled), cache (recorded
                     verdicts) or live (asks an LLM now; default off)
  --cache FILE       verdicts: read by cache; with live, appended to, and a
                     verdict already there is not asked again
  --provider P       live: gemini (default; GEMINI_API_KEY) or openai (any
                     OpenAI-compatible server; OPENAI_API_KEY if it needs one)
  --model NAME       live: the model (gemini: default gemini-3.5-flash); cache:
                     whose verdicts to replay
  --llm-url URL      live: the provider's base URL (gemini: Google's)
  --llm K=V,...      live: temperature, max_tokens, thinking_budget, deadline (s),
                     daily_calls, daily_tokens (README, "The tribunal")
  --instrument FILE  a Bybit instruments-info response with the symbol's rules
                     (default: Bybit's documented BTCUSDT record)
  --shield K=V,...   Integrity Shield thresholds (grace, jump_atr, jump_pct,
                     zero_volume_run, flat_run, atr_period, recovery, ...; README)
  --out DIR          also write trades.csv, equity.csv, report.json, report.html
]]

local OPTIONS = { data = true, from = true, to = true, cash = true, fee = true, tribunal = true,
  cache = true, instrument = true, out = true, shield = true, provider = true, model = true, ["llm-url"] = true,
  llm = true }

local function parse_args(args)
  local opts, err = cli.parse(args, OPTIONS)
  if not opts then return nil, err end
  if not opts.data then return nil, "--data FILE is required" end
  for _, k in ipairs({ "from", "to" }) do
    if opts[k] then
      local ms, timed = M.parse_date(opts[k])
      if not ms then return nil, "--" .. k .. ": " .. timed end
      if k == "to" and not timed then ms = ms + 86400000 end  -- the whole day
      opts[k] = ms
    end
  end
  if opts.from and opts.to and opts.from >= opts.to then return nil, "--from must be before --to" end
  local shielded, sherr = shield.check(opts.shield)
  if not shielded then return nil, sherr end
  local llm, lerr = tribunal.parse_llm(opts.llm)
  if not llm then return nil, lerr end
  opts.llm = llm
  opts.tribunal = opts.tribunal or "off"
  return opts
end

-- nomade backtest ...: returns the exit code
function M.main(...)
  local opts, err = parse_args({ ... })
  if not opts then return cli.refuse("backtest", err, M.USAGE) end
  local run, perr = M.prepare(opts)
  if not run then
    io.stderr:write("nomade backtest: ", perr, "\n")
    return 1
  end
  local progress
  if require("nomade.host").isatty(2) then
    progress = function(done, total)
      cli.raw(io.stderr, string.format("\rbacktest %3d%%", done * 100 // math.max(total, 1)))
    end
  end
  local ok, result = pcall(M.execute, run, progress)
  if progress then cli.raw(io.stderr, "\r              \r") end
  if not ok then
    io.stderr:write("nomade backtest: ", tostring(result), "\n")
    return 1
  end
  local report = require "nomade.report"
  local figures = report.figures(result)
  io.stdout:write(report.summary(figures))
  if opts.out then
    local wrote, werr = report.write(opts.out, result, figures)
    if not wrote then
      io.stderr:write("nomade backtest: --out: ", werr, "\n")
      return 1
    end
    io.stdout:write("wrote     ", opts.out, "/{trades.csv,equity.csv,report.json,report.html}\n")
  end
  return 0
end

return M
