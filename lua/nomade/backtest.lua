-- nomade.backtest: runs a strategy over historical candles through the
-- same path the live runtime takes: candles -> Integrity Shield ->
-- indicators -> regime -> entry -> tribunal -> order intent -> the gate ->
-- paper execution. Every input of a backtest's shield is a candle, so it
-- scans them all first: the candles it refuses never reach the indicators,
-- and each candle carries the state the gate reads on it. Decisions are taken on a candle's close and can only fill on
-- later candles (see nomade.paper), and the strategy sees the candles up
-- to the current one and nothing after: its views stop at a cursor.
local time = require "nomade.time"
local candles_mod = require "nomade.candles"
local indicators_mod = require "nomade.indicators"
local strategy = require "nomade.strategy"
local instruments = require "nomade.bybit.instruments"
local tribunal = require "nomade.tribunal"
local engine = require "nomade.engine"
local paper = require "nomade.paper"
local shield = require "nomade.shield"
local cli = require "nomade.cli"

local M = {}

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
  local ok, ierr = candles_mod.check_interval(c, s.interval)
  if not ok then return nil, ierr end
  local sh, sherr = shield.new(strat, opts.shield)
  if not sh then return nil, sherr end
  local scan = sh:scan(c)
  scan.path = c.path
  c = scan
  local rules, rerr = instruments.load(opts.instrument, s.symbol)
  if not rules then return nil, rerr end
  opts.interval = time.INTERVALS[s.interval]
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
  for _, d in ipairs(indicators_mod.series(strat.indicators, c)) do indicators[d.name] = d.series end
  local first, last = run.first, run.last
  local e = engine.new { strategy = strat, book = book, judge = run.judge, columns = c,
    indicators = indicators, mode = opts.tribunal or "off", rules = rules,
    progress = progress and function(i)
      if (i - first) % 65536 == 0 then progress(i - first, last - first) end
    end }
  local equity = paper.curve(c.close, first)
  -- per-candle garbage (prompts, verdicts) dies young: the generational
  -- collector keeps it from piling up to twice the live heap
  local gc = collectgarbage("generational")
  local ok, err = pcall(book.run, book, { first = first, last = last, candles = c, view = e.inner,
    ind = e.ivals, indicators = indicators, cursor = e.cursor, equity = equity, decide = e.decide,
    budget = engine.CANDLE_BUDGET, on_turn = run.on_turn, changed = e.changed, state = c.state })
  collectgarbage(gc)
  if not ok then
    error(string.format("strategy failed in %s on the candle of %s: %s", e.phase(), time.iso(c.time[book.current]),
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

-- nomade.time's, for scripts that parse dates as the command line does
M.parse_date = time.parse_date

M.USAGE = [[
usage: nomade backtest [STRATEGY.lua] --data FILE [options]
  STRATEGY.lua       the strategy (default: nomade's bundled default strategy)
  --data FILE        candles: CSV (open_time_ms,open,high,low,close,volume; .gz too)
                     or a Bybit kline JSON response (.json)
  --from DATE        first candle to trade (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC);
                     earlier candles still serve as history
  --to DATE          last day to trade (a date includes that whole day; a time
                     stops before it)
]] .. cli.usage("money", "tribunal", "llm", "market") .. [[
  --out DIR          also write trades.csv, equity.csv, report.json, report.html
]]

local OPTIONS = cli.options({ "money", "tribunal", "llm", "market" }, { "data", "from", "to", "out" })

local function parse_args(args)
  local opts, err = cli.parse(args, OPTIONS)
  if not opts then return nil, err end
  if not opts.data then return nil, "--data FILE is required" end
  for _, k in ipairs({ "from", "to" }) do
    if opts[k] then
      local ms, timed = time.parse_date(opts[k])
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
