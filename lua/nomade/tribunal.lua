-- nomade.tribunal: where verdicts come from. A judge takes a prompt and
-- returns {signal = "BUY"|"WAIT", score = 0..100, reasoning, source, ...}.
--   off    every candidate passes: BUY, score 100, labelled "off" in
--          every output, so no report can pass it off as a real tribunal
--   cache  verdicts recorded earlier (a live run, a --tribunal live
--          backtest), replayed by (model, prompt sha256), failures
--          included, so the replay is exact; a prompt never judged is a
--          WAIT, counted as a miss
--   live   an LLM asked now (nomade.gemini, or nomade.openai for any
--          OpenAI-compatible server). Fail-closed: anything but a reply
--          that is exactly the verdict schema is a WAIT with its cause.
--          With --cache FILE every verdict is appended there, and one
--          already there is not asked again (a live backtest resumes).
local cjson = require "cjson.safe"
local crypto = require "nomade.crypto"
local secrets = require "nomade.secrets"

local M = {}

-- what the LLM must answer; the only thing the runtime adds to the prompt
M.SCHEMA = {
  type = "object",
  properties = {
    signal = { type = "string", enum = { "BUY", "WAIT" } },
    score = { type = "integer", minimum = 0, maximum = 100 },
    reasoning = { type = "string" },
  },
  required = { "signal", "score", "reasoning" },
  additionalProperties = false,
  propertyOrdering = { "signal", "score", "reasoning" },
}

-- --llm settings and their defaults (README, "The tribunal")
-- a retry waits at least this long (s), whatever the server's RetryInfo
-- says, and one decision makes at most this many requests
M.MIN_PAUSE = 0.5
M.MAX_ATTEMPTS = 4

M.LLM = { temperature = 0.2, max_tokens = 1024, thinking_budget = 0, deadline = false,
  daily_calls = 2000, daily_tokens = 5000000 }

-- "temperature=0,deadline=10" -> table, or nil, err
function M.parse_llm(text)
  local out = {}
  for k, v in pairs(M.LLM) do out[k] = v end
  for item in (text or ""):gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    local n = tonumber(v)
    if not k or M.LLM[k] == nil or not n or n ~= n or n < 0 or n == math.huge
        or (k ~= "temperature" and k ~= "deadline" and math.type(math.tointeger(n)) ~= "integer") then
      return nil, string.format("--llm: '%s' is not NAME=number with NAME one of daily_calls, daily_tokens, "
        .. "deadline, max_tokens, temperature, thinking_budget", item)
    end
    out[k] = math.tointeger(n) or n
  end
  if out.temperature > 2 then return nil, "--llm: temperature must be in 0..2" end
  if out.max_tokens < 1 then return nil, "--llm: max_tokens must be >= 1" end
  return out
end

local function off()
  return function()
    return { signal = "BUY", score = 100, reasoning = "tribunal off: every candidate passes", source = "off" }
  end
end

-- the cache key: the model and the prompt's sha256 (the system text, when
-- there is one, is part of what was asked)
local function key(model, hash) return (model or "") .. "\0" .. hash end

-- a cache file holds one JSON object a line: {"prompt_sha256", "model",
-- "signal", "score", "reasoning", "cause"?, "latency_ms"?, "tokens"?}
local function read_cache(path, must_exist)
  local verdicts, models = {}, {}
  local f, err = io.open(path, "rb")
  if not f then
    if must_exist then return nil, "tribunal cache: " .. err end
    return verdicts, models
  end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local v = cjson.decode(line)
      -- cjson reads every number as a float: 80.0 is the integer 80
      local score = type(v) == "table" and math.tointeger(v.score)
      local ok = score and type(v.prompt_sha256) == "string"
        and (v.signal == "BUY" or v.signal == "WAIT") and score >= 0 and score <= 100
        and (v.model == nil or type(v.model) == "string")
      if not ok then
        f:close()
        return nil, string.format("%s:%d: not a verdict ({prompt_sha256, signal BUY|WAIT, score 0..100})", path, n)
      end
      v.score = score
      if v.cause == cjson.null then v.cause = nil end
      verdicts[key(v.model, v.prompt_sha256)] = v
      if v.model then models[v.model] = true end
    end
  end
  f:close()
  return verdicts, models
end

local function cached(opts)
  local verdicts, models = read_cache(opts.cache, true)
  if not verdicts then return nil, models end
  local model = opts.model
  if not model then
    local list = {}
    for name in pairs(models) do list[#list + 1] = name end
    if #list > 1 then
      table.sort(list)
      return nil, "the cache holds verdicts of several models (" .. table.concat(list, ", ") .. "): pass --model"
    end
    model = list[1]
  end
  -- each verdict also goes to opts.on_verdict (nomade run journals it)
  return function(prompt)
    local hash = crypto.sha256(prompt)
    local v = verdicts[key(model, hash)] or verdicts[key(nil, hash)]
    local out = v and { signal = v.signal, score = v.score, reasoning = tostring(v.reasoning or ""), source = "cache",
      model = v.model, cause = v.cause, prompt_sha256 = hash }
      or { signal = "WAIT", score = 0, reasoning = "no cached verdict", source = "miss", prompt_sha256 = hash }
    if opts.on_verdict then opts.on_verdict(out) end
    return out
  end
end

-- causes that say the tribunal is unavailable (the shield hears of them)
M.UNAVAILABLE = { timeout = true, network = true, http_5xx = true, http_429 = true, http_400 = true,
  http_401 = true, http_403 = true, http_404 = true, deadline = true, budget = true, config = true }

-- the provider's settings from the options: module, model, key, base
local function provider(opts)
  local name = opts.provider or "gemini"
  if name ~= "gemini" and name ~= "openai" then return nil, "--provider must be gemini or openai" end
  local mod = require("nomade." .. name)
  -- a script may hand the key over itself; else the environment or the file
  local secret = opts.key
  secrets.remember(secret)
  if not secret then
    local kerr
    secret, kerr = secrets.get(name == "gemini" and "GEMINI_API_KEY" or "OPENAI_API_KEY")
    if kerr then return nil, kerr end
    if not secret and name == "gemini" then
      return nil, "--tribunal live needs GEMINI_API_KEY (environment or NOMADE_SECRETS)"
    end  -- an OpenAI-compatible local server may need none
  end
  if name == "openai" then
    if not opts["llm-url"] then return nil, "--provider openai needs --llm-url (e.g. http://127.0.0.1:8080)" end
    if not opts.model then return nil, "--provider openai needs --model" end
  end
  local base = opts["llm-url"]
  if base and not base:match("^https?://[^/]+$") then return nil, "--llm-url must be http(s)://host[:port]" end
  return { mod = mod, name = name, key = secret, base = base, model = opts.model or mod.DEFAULT_MODEL }
end

local function wait_verdict(cause, why)
  return { signal = "WAIT", score = 0, reasoning = "", cause = cause, detail = why }
end

-- one question, retried on 429 and 5xx (honouring RetryInfo, but never
-- sooner than M.MIN_PAUSE) while the deadline, M.MAX_ATTEMPTS and the
-- day's budget allow; every request counts as a call. The key stays in
-- the request's header
local function ask(p, llm, state, prompt)
  local loop = require "nomade.loop"
  local deadline = state.deadline
  local t0 = loop.time()
  local until_ = t0 + deadline
  local backoff, tokens = M.MIN_PAUSE, { prompt = 0, output = 0, thoughts = 0, total = 0 }
  local reply, err
  for attempt = 1, M.MAX_ATTEMPTS do
    local left = until_ - loop.time()
    if left <= 0.05 then
      err = err or require("nomade.errors").new("deadline", "tribunal: the decision's deadline passed")
      break
    end
    if attempt > 1 and (state.totals.calls >= llm.daily_calls or state.totals.tokens >= llm.daily_tokens) then
      err.message = err.message .. " (no retry: the daily budget is spent)"
      break
    end
    state.totals.calls = state.totals.calls + 1
    reply, err = p.mod.ask { base = p.base, key = p.key, model = p.model, prompt = prompt, schema = M.SCHEMA,
      temperature = llm.temperature, max_tokens = llm.max_tokens, thinking_budget = p.name == "gemini"
      and llm.thinking_budget or nil, timeout = left }
    local usage = (reply or err).usage
    if usage then
      for k in pairs(tokens) do tokens[k] = tokens[k] + usage[k] end
      state.totals.tokens = state.totals.tokens + usage.total
    end
    if reply then break end
    if err.cause ~= "http_429" and err.cause ~= "http_5xx" and err.cause ~= "network" then break end
    if attempt == M.MAX_ATTEMPTS then
      err.message = err.message .. string.format(" (%d attempts)", attempt)
      break
    end
    local pause = math.max(backoff, err.retry_after or 0)  -- backoff starts at M.MIN_PAUSE
    backoff = backoff * 2
    if loop.time() + pause >= until_ then
      err.message = err.message .. string.format(" (a retry in %.1f s would pass the %.1f s deadline)", pause,
        deadline)
      break
    end
    local _, cancelled = loop.sleep(pause)
    if cancelled then  -- a reload or the end of the run (nomade.sched): no retry
      err = require("nomade.errors").new("cancelled", "tribunal: the call was cancelled (" .. cancelled .. ")")
      break
    end
  end
  return reply, err, math.floor((loop.time() - t0) * 1000 + 0.5), tokens
end

-- M.live(opts) -> judge, state ({totals, last}) or nil, err.
-- opts: provider, model, llm-url, llm (parsed --llm), cache, interval (s),
-- on_verdict(v) (journal), on_available(ok, why) (the shield)
function M.live(opts)
  local p, perr = provider(opts)
  if not p then return nil, perr end
  local llm = opts.llm or M.parse_llm()
  local deadline = llm.deadline or math.min(30, (opts.interval or 3600) / 4)
  local known, write = {}, nil
  if opts.cache then
    local verdicts, cerr = read_cache(opts.cache, false)
    if not verdicts then return nil, cerr end
    known = verdicts
    local f, ferr = io.open(opts.cache, "ab")
    if not f then return nil, "tribunal cache: " .. ferr end
    write = f
  end
  local core = require "nomade._gemini"
  local state = { provider = p.name, model = p.model, totals = { day = nil, calls = 0, tokens = 0 },
    deadline = deadline, causes = {} }

  local function record(v)
    if write then
      write:write(secrets.scrub(cjson.encode { prompt_sha256 = v.prompt_sha256, model = v.model, signal = v.signal,
        score = v.score, reasoning = v.reasoning, cause = v.cause, latency_ms = v.latency_ms, tokens = v.tokens }), "\n")
      write:flush()
    end
    known[key(v.model, v.prompt_sha256)] = v
    if v.cause then state.causes[v.cause] = (state.causes[v.cause] or 0) + 1 end
    state.last = v
    if opts.on_verdict then opts.on_verdict(v) end
    if opts.on_available then opts.on_available(not M.UNAVAILABLE[v.cause], v.cause and (v.cause .. ": "
      .. tostring(v.detail))) end
  end

  local function judge(prompt)
    local hash = crypto.sha256(prompt)
    local hit = known[key(p.model, hash)]
    if hit and not hit.cause then
      local v = { signal = hit.signal, score = hit.score, reasoning = hit.reasoning, source = "cache", model = p.model,
        prompt_sha256 = hash }
      if opts.on_verdict then opts.on_verdict(v) end
      return v
    end
    local day = os.date("!%Y-%m-%d")
    if state.totals.day ~= day then state.totals.day, state.totals.calls, state.totals.tokens = day, 0, 0 end
    local v
    if state.totals.calls >= llm.daily_calls or state.totals.tokens >= llm.daily_tokens then
      v = wait_verdict("budget", string.format("the daily budget is spent (%d calls, %d tokens today)",
        state.totals.calls, state.totals.tokens))
      v.latency_ms, v.tokens = 0, { prompt = 0, output = 0, thoughts = 0, total = 0 }
    else
      local reply, err, ms, tokens = ask(p, llm, state, prompt)
      if reply then
        local parsed, cause, why = core.verdict(reply.text)
        v = parsed or wait_verdict(cause, why)
        v.raw = reply.text
      else
        v = wait_verdict(err.cause, tostring(err))
        v.raw = err.text
      end
      v.latency_ms, v.tokens = ms, tokens
    end
    v.source, v.model, v.prompt_sha256 = "live", p.model, hash
    record(v)
    return v
  end
  return judge, state
end

-- M.judge(mode, opts) -> function(prompt) -> verdict [, state], or nil, err
function M.judge(mode, opts)
  if mode == "off" then return off() end
  if mode == "cache" then
    if not opts.cache then return nil, "--tribunal cache needs --cache FILE (recorded verdicts, JSON lines)" end
    return cached(opts)
  end
  if mode == "live" then return M.live(opts) end
  return nil, "--tribunal must be off, cache or live, got " .. tostring(mode)
end

M.USAGE = [[
usage: nomade tribunal ask [STRATEGY.lua] --data FILE [--at TIME] [options]
  builds the strategy's prompt for one candle (the last one, or the last one
  at or before TIME: YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC), asks the LLM once,
  and prints the prompt, the raw reply and the verdict (WAIT with its cause
  when the reply is not exactly the schema)
  --provider, --model, --llm-url, --llm   as for nomade backtest --tribunal live
]]

-- the engine as the run has it on the close of candle i of c: candles
-- 1..i-1 taken in as a resumed journal's, candle i through the engine step
-- (the shield, the indicators, m), without the strategy's turn
local function engine_at(strat, c, i)
  local engine = require "nomade.engine"
  local book = require("nomade.paper").new { cash = 10000 }
  local sh = assert(require("nomade.shield").new(strat))
  local e = engine.new { strategy = strat, book = book, judge = off(), shield = sh }
  local rows = {}
  for k = 1, i - 1 do rows[k] = { c.time[k], c.open[k], c.high[k], c.low[k], c.close[k], c.volume[k] } end
  e.resume(rows, book:snapshot())
  e.step({ time = c.time[i], open = c.open[i], high = c.high[i], low = c.low[i], close = c.close[i],
    volume = c.volume[i] }, false)
  return e
end

local function ask_main(args)
  local cli = require "nomade.cli"
  local opts, err = cli.parse(args, cli.options({ "llm" }, { "data", "at" }))
  if opts and not opts.data then opts, err = nil, "--data FILE is required" end
  if opts then opts.llm, err = M.parse_llm(opts.llm) end
  if not opts or not opts.llm then
    if err == cli.HELP then io.stdout:write(M.USAGE) return 0 end
    return cli.refuse("tribunal", err, M.USAGE)
  end
  local strategy, time = require "nomade.strategy", require "nomade.time"
  local strat, serr = strategy.load_file(opts.strategy, {})
  local c, cerr = require("nomade.candles").load(opts.data)
  if not strat or not c then io.stderr:write("nomade tribunal: ", serr or cerr, "\n") return 1 end
  local i = c.n
  if opts.at then
    local at, aerr = time.parse_date(opts.at)
    if not at then return cli.refuse("tribunal", "--at: " .. aerr, M.USAGE) end
    while i > 0 and c.time[i] > at do i = i - 1 end
    if i == 0 then io.stderr:write("nomade tribunal: no candle at or before ", opts.at, "\n") return 1 end
  end
  opts.interval = time.INTERVALS[strat.settings.interval]
  local judge, jerr = M.live(opts)
  if not judge then io.stderr:write("nomade tribunal: ", jerr, "\n") return 1 end
  local e = engine_at(strat, c, i)
  local reg
  local ok, prompt = pcall(function()
    reg = strat:regime(e.m)
    return strat:prompt(e.m, reg)
  end)
  if not ok then io.stderr:write("nomade tribunal: ", tostring(prompt), "\n") return 1 end
  local v = judge(prompt)
  io.stdout:write("candle  ", time.iso(e.m.time), "  regime ", tostring(reg), "\n")
  io.stdout:write("-- prompt (sha256 ", v.prompt_sha256, ")\n", prompt, "\n")
  io.stdout:write("-- reply (", v.model, ", ", v.latency_ms, " ms, ", v.tokens.total, " tokens)\n",
    v.raw or "(none)", "\n")
  io.stdout:write(string.format("-- verdict\n%s %d%s\n%s\n", v.signal, v.score,
    v.cause and ("  (cause " .. v.cause .. ": " .. tostring(v.detail) .. ")") or "", v.reasoning))
  return 0
end

function M.main(cmd, ...)
  if cmd == "ask" then return ask_main({ ... }) end
  if cmd == "--help" or cmd == "-h" then io.stdout:write(M.USAGE) return 0 end
  return require("nomade.cli").refuse("tribunal", cmd and ("unknown command '" .. cmd .. "'") or "a command is needed",
    M.USAGE)
end

return M
