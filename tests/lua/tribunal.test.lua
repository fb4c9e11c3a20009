-- The live tribunal against the Gemini stand-in (tests/stand-ins/gemini):
-- the request's shape and where the key goes; every real fixture and every
-- failure becomes a WAIT with the right cause; retries on 429/5xx inside
-- the deadline, RetryInfo honoured; the daily budget; the cache (resume,
-- exact replay, a cached backtest equal to the live one); the OpenAI-
-- compatible provider; nomade tribunal ask and nomade run --tribunal live.
local t = require "testlib"
local bt = require "btlib"
local tribunal = require "nomade.tribunal"

local KEY = "test-gemini-key"
local base, stop = t.serve("tests/stand-ins/gemini/server.py")
t.ok(base, "the stand-in started")

local control = t.control(base)
local function log() return (control() or {}).log or {} end
local messages = {}
local function judge(extra)
  local o = { key = KEY, ["llm-url"] = base, interval = 3600, llm = tribunal.parse_llm(extra and extra.llm) }
  for k, v in pairs(extra or {}) do if k ~= "llm" then o[k] = v end end
  local j, err = tribunal.live(o)
  assert(j, err)
  return function(prompt)
    local v = j(prompt)
    messages[#messages + 1] = tostring(v.detail)
    return v
  end
end

-- 1. the request, and a good answer
control { reset = true }
local v = judge()("Should we buy? close 100")
local req = log()[1]
local gc = req and req.body and req.body.generationConfig or {}
t.ok(v.signal == "BUY" and v.score == 80 and v.source == "live" and v.model == "gemini-3.5-flash" and not v.cause
  and v.tokens.total > 0 and v.latency_ms >= 0 and #v.prompt_sha256 == 64, "a good answer: BUY 80, with its costs")
t.ok(req and req.path == "/v1beta/models/gemini-3.5-flash:generateContent" and req.headers["x-goog-api-key"] == KEY
  and not req.key_in_url and not (req.query or ""):find(KEY, 1, true),
  "POST .../models/gemini-3.5-flash:generateContent, the key in x-goog-api-key and nowhere else")
t.ok(gc.responseMimeType == "application/json" and gc.responseJsonSchema
  and #gc.responseJsonSchema.required == 3 and gc.thinkingConfig.thinkingBudget == 0 and gc.temperature == 0.2
  and req.body.contents[1].parts[1].text == "Should we buy? close 100" and req.body.systemInstruction == nil,
  "the prompt as the strategy wrote it, the schema and the settings; nothing hidden added")

-- 2. every fixture that is not a verdict, and every failure: WAIT, cause
local CASES = {
  { { fixture = "response_success_basic.json" }, "not_json" },
  { { fixture = "response_success_json_output.json" }, "schema" },
  { { fixture = "response_success_json_array_text.json" }, "not_json" },
  { { fixture = "response_success_thinking_parts.json" }, "not_json" },
  { { fixture = "response_finish_max_tokens.json" }, "max_tokens" },
  { { fixture = "response_finish_other_no_content.json" }, "finish_other" },
  { { fixture = "response_finish_reason_safety.json" }, "safety" },
  { { fixture = "response_prompt_blocked_safety.json" }, "blocked" },
  { { fixture = "response_empty_content.json" }, "empty" },
  { { fixture = "error_400_api_key_invalid.json" }, "http_400" },
  { { fixture = "error_404_model_not_found.json" }, "http_404" },
  { { fixture = "error_429_resource_exhausted_retryinfo.json" }, "http_429" },
  { { text = 'Sure! {"signal":"BUY","score":90,"reasoning":"x"}' }, "not_json" },
  { { text = '```json\n{"signal":"BUY","score":90,"reasoning":"x"}\n```' }, "not_json" },
  { { text = '{"signal":"HOLD","score":90,"reasoning":"x"}' }, "schema" },
  { { text = '{"signal":"BUY","score":101,"reasoning":"x"}' }, "schema" },
  { { text = '{"signal":"BUY","score":90.5,"reasoning":"x"}' }, "schema" },
  { { text = '{"signal":"BUY","score":90,"reasoning":"x","extra":1}' }, "schema" },
  { { fault = "reset", times = 20 }, "network" },
  { { fault = "garbage", times = 20 }, "network" },
  { { fault = "no_answer", hold_ms = 5000 }, "timeout" },
  { { fault = "slow", ms = 4000 }, "timeout" },
  { { status = 503, body = "<html>overloaded</html>", content_type = "text/html", times = 20 }, "http_5xx" },
}
-- fail-open edges of the reply's shape: a BUY behind each, and none taken
local BUY = '{"signal":"BUY","score":90,"reasoning":"x"}'
local function reply(cands, extra)
  local doc = { candidates = cands, usageMetadata = { totalTokenCount = 1 } }
  for k, val in pairs(extra or {}) do doc[k] = val end
  return { body = doc }
end
local function cand(parts, index) return { index = index, finishReason = "STOP", content = { role = "model", parts = parts } } end
for _, case in ipairs {
  { reply({ cand { { text = BUY } } }, { promptFeedback = { blockReason = "SAFETY" } }), "blocked", "blockReason beside a candidate" },
  { reply({ cand { { text = BUY } } }, { promptFeedback = { blockReason = 1 } }), "blocked", "a blockReason that is no string" },
  { reply { cand { { text = BUY, thought = "true" } } }, "empty", "a part whose thought is the string \"true\"" },
  { reply { cand { { text = BUY, thought = 1 } } }, "empty", "a part whose thought is 1" },
  { reply { cand({ { text = BUY } }, 1) }, "bad_response", "the only candidate has index 1" },
  { reply { cand({ { text = BUY } }, "0") }, "bad_response", "a candidate index that is a string" },
} do
  CASES[#CASES + 1] = { case[1], case[2], case[3] }
end
for k, case in ipairs(CASES) do
  control { reset = true, queue = { case[1] } }
  local got = judge { llm = "deadline=1.5" } ("case " .. k)
  t.ok(got.signal == "WAIT" and got.score == 0 and got.cause == case[2],
    string.format("%s -> WAIT, cause %s", case[3] or case[1].fixture or case[1].fault
      or (case[1].text and (case[1].text:gsub("\n", "\\n"))) or case[1].status, case[2]),
    tostring(got.cause) .. ": " .. tostring(got.detail))
end

-- 3. retries inside the deadline
control { reset = true, queue = { { status = 429, body = { error = { code = 429, status = "RESOURCE_EXHAUSTED",
  message = "slow down", details = { { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", retryDelay = "0.3s" } } } } } } }
local t0 = require("nomade.loop").time()
v = judge { llm = "deadline=5" } ("retry me")
t.ok(v.signal == "BUY" and #log() == 2 and require("nomade.loop").time() - t0 >= 0.3,
  "a 429 with RetryInfo 0.3s: waited that long, asked again, got the verdict")
control { reset = true, queue = { { status = 503, body = "{}", times = 2 } } }
v = judge { llm = "deadline=5" } ("retry me twice")
t.ok(v.signal == "BUY" and #log() == 3, "two 503s: retried with backoff, third time answered")
control { reset = true, queue = { { fixture = "error_429_resource_exhausted_retryinfo.json" } } }
v = judge { llm = "deadline=3" } ("too long a wait")
t.ok(v.cause == "http_429" and #log() == 1 and v.detail:find("would pass the 3.0 s deadline", 1, true),
  "a RetryInfo of 56 s past the deadline: no retry, WAIT now", v.detail)
control { reset = true, queue = { { fixture = "error_400_api_key_invalid.json" } } }
v = judge { llm = "deadline=3" } ("bad key")
t.ok(v.cause == "http_400" and #log() == 1, "a 400 is not retried")

-- a 429 that says "retry in 0s", again and again: every pause at least
-- MIN_PAUSE, at most MAX_ATTEMPTS requests, each one counted as a call
do
  local loop = require "nomade.loop"
  control { reset = true, queue = { { status = 429, times = 50, body = { error = { code = 429,
    status = "RESOURCE_EXHAUSTED", message = "again", details = { { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo",
    retryDelay = "0s" } } } } } } }
  local sj, sstate = tribunal.live { key = KEY, ["llm-url"] = base, interval = 3600, llm = tribunal.parse_llm("deadline=20") }
  local s0 = loop.time()
  local sv = sj("storm")
  local pauses = tribunal.MIN_PAUSE * (1 + 2 + 4)
  t.ok(sv.cause == "http_429" and #log() == tribunal.MAX_ATTEMPTS and sstate.totals.calls == tribunal.MAX_ATTEMPTS
    and loop.time() - s0 >= pauses - 0.05 and sv.detail:find("(4 attempts)", 1, true),
    "a 429 storm with retryDelay 0s: 4 requests, backed off from 0.5 s, each counted as a call",
    #log() .. " requests, " .. sstate.totals.calls .. " calls, " .. (loop.time() - s0) .. " s")
end

-- token counts from the reply are the server's word: only 0..10^7 counts
do
  local gemini = require "nomade.gemini"
  local bad = {}
  for _, c in ipairs { { -1, 0 }, { 1e308, 0 }, { 0 / 0, 0 }, { math.huge, 0 }, { 2.5, 0 }, { "12", 0 }, { true, 0 },
    { 12, 12 }, { 12.0, 12 }, { 10000000, 10000000 }, { 10000001, 0 }, { math.mininteger, 0 } } do
    if gemini.count(c[1]) ~= c[2] then bad[#bad + 1] = tostring(c[1]) end
  end
  t.eq(#bad, 0, "a token count is a whole number from 0 to 10^7, anything else counts 0", table.concat(bad, " "))
  control { reset = true, queue = { { body = { candidates = { { index = 0, finishReason = "STOP", content = { role = "model",
    parts = { { text = '{"signal":"BUY","score":80,"reasoning":"x"}' } } } } },
    usageMetadata = { promptTokenCount = -1000000, candidatesTokenCount = 1e308, totalTokenCount = -5 } } } } }
  local uj, ustate = tribunal.live { key = KEY, ["llm-url"] = base, interval = 3600, llm = tribunal.parse_llm() }
  local uv = uj("usage")
  t.ok(uv.signal == "BUY" and uv.tokens.total == 0 and uv.tokens.prompt == 0 and uv.tokens.output == 0
    and ustate.totals.tokens == 0, "negative and absurd usageMetadata neither give back nor spend the budget",
    ustate.totals.tokens)
end

-- 4. the daily budget
control { reset = true }
local j = judge { llm = "daily_calls=1" }
local first, second = j("one"), j("two")
t.ok(first.signal == "BUY" and second.cause == "budget" and #log() == 1, "over the daily budget: WAIT, cause budget, "
  .. "nothing sent")

-- 5. the cache: written, resumed, replayed exactly
local cache = os.tmpname()
control { reset = true, queue = { { text = '{"signal":"WAIT","score":30,"reasoning":"meh"}' },
  { fault = "reset", times = 20 } } }
j = judge { cache = cache, llm = "deadline=1" }
local a1, a2 = j("prompt A"), j("prompt B")
t.ok(a1.signal == "WAIT" and a1.score == 30 and a2.cause == "network", "two verdicts, one of them a failure")
control { reset = true }
local j2 = judge { cache = cache }
local a1b, a2b = j2("prompt A"), j2("prompt B")
t.ok(a1b.source == "cache" and a1b.score == 30 and a2b.source == "live" and a2b.signal == "BUY" and #log() == 1,
  "resumed: the recorded verdict is not asked again, the failed one is")
local replay = assert(tribunal.judge("cache", { cache = cache }))
local r1 = replay("prompt A")
t.ok(r1.source == "cache" and r1.signal == "WAIT" and r1.score == 30, "--tribunal cache replays the verdict")

-- 6. a live backtest, then the same from its cache: identical
do
  local rows = {}
  for i = 1, 60 do
    local p = 100 + 10 * math.sin(i / 4)
    rows[i] = { p, p * 1.004, p * 0.996, p * (1 + 0.002 * math.cos(i)), 5 }
  end
  local data = bt.csv(rows)
  local strat = bt.file([[
settings = { interval = "1h", history = 5, stop_loss = 0.02, take_profit = 0.02 }
indicators = { e = ta.ema(5) }
function regime(m) return m.close > m.ind.e and "UP" or "DOWN" end
function entry(m, r, v) return true end
function exit(m, p) return m.regime == "DOWN" and "flip" end
function prompt(m, r) return string.format("close %.4f regime %s", m.close, r) end
]])
  local bcache = os.tmpname()
  control { reset = true, queue = { { text = '{"signal":"BUY","score":90,"reasoning":"go"}', times = 3 },
    { text = '{"signal":"WAIT","score":10,"reasoning":"no"}', times = 2 }, { text = "prose", times = 1 },
    { status = 500, body = "{}", times = 3 }, { text = '{"signal":"BUY","score":50,"reasoning":"weak"}', times = 2 } } }
  local live = assert(bt.run { strategy = strat, data = data, tribunal = "live", cache = bcache, key = KEY,
    ["llm-url"] = base, llm = tribunal.parse_llm("deadline=2") })
  local cached = assert(bt.run { strategy = strat, data = data, tribunal = "cache", cache = bcache })
  local function trades(r)
    local out = {}
    for _, tr in ipairs(r.book.trades) do out[#out + 1] = tr.entry_time .. ":" .. tr.exit_time .. ":" .. tr.pnl end
    return table.concat(out, ",")
  end
  t.ok(live.tribunal.calls > 5 and trades(live) == trades(cached) and live.equity[#live.equity]
    == cached.equity[#cached.equity] and live.tribunal.buy == cached.tribunal.buy and live.tribunal.wait
    == cached.tribunal.wait, string.format("a cached backtest reproduces the live one exactly (%d calls, %d trades)",
      live.tribunal.calls, #live.book.trades))
end

-- 7. the OpenAI-compatible provider
control { reset = true }
v = judge { provider = "openai", model = "llama-3-8b" } ("open question")
req = log()[1]
t.ok(v.signal == "BUY" and req.path == "/v1/chat/completions" and req.headers.authorization == "Bearer " .. KEY
  and req.body.response_format.type == "json_schema" and req.body.messages[1].content == "open question",
  "openai: chat completions with a JSON-schema response format, the same verdict")
control { reset = true, queue = { { text = '{"signal":"BUY","score":90,"reasoning":"x"}', finish_reason = "length" } } }
v = judge { provider = "openai", model = "m" } ("cut")
t.ok(v.cause == "max_tokens", "openai: a 'length' finish is max_tokens", tostring(v.cause))
v = judge { provider = "openai", model = "m", key = "wrong" } ("who")
t.ok(v.cause == "http_401", "openai: a wrong key is http_401", tostring(v.cause))

local leaked = false
for _, m in ipairs(messages) do if m:find(KEY, 1, true) then leaked = true end end
t.ok(not leaked and #messages > 30, "the key is in no verdict's detail (" .. #messages .. " looked at)")

-- 8. the CLI: nomade tribunal ask
control { reset = true, queue = { { text = '{"signal":"WAIT","score":42,"reasoning":"the \\"why\\""}' } } }
local env = "GEMINI_API_KEY=" .. KEY
local rc, out, err = t.run("tribunal ask --data data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
  .. "--at 2023-03-24T10:00 --llm-url " .. base, env)
t.ok(rc == 0 and out:find("candle  2023-03-24 10:00", 1, true) and out:find("-- prompt (sha256 ", 1, true)
  and out:find('{"signal":"WAIT","score":42', 1, true) and out:find("-- verdict\nWAIT 42\n", 1, true)
  and not (out .. err):find(KEY, 1, true), "nomade tribunal ask prints the prompt, the raw reply, the verdict", out .. err)

-- what a server echoes is scrubbed and made printable: a 403 that quotes
-- the key, a reply with terminal control bytes
control { reset = true, queue = { { status = 403, body = { error = { code = 403, status = "PERMISSION_DENIED",
  message = "API key " .. KEY .. " is not valid for this project" } } } } }
rc, out, err = t.run("tribunal ask --data data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
  .. "--at 2023-03-24T10:00 --llm-url " .. base, env)
t.ok(rc ~= nil and not (out .. err):find(KEY, 1, true) and (out .. err):find("API key <secret> is not valid", 1, true),
  "a Gemini 403 quoting the key: printed with <secret> in its place", out .. err)
local CONTROLS = '"a\\u001b[2Jb\\u0000c\\u0007d\\re\\u202ef\\u0085g"'
control { reset = true, queue = { { text = '{"signal":"WAIT","score":1,"reasoning":' .. CONTROLS .. '}' } } }
rc, out, err = t.run("tribunal ask --data data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
  .. "--at 2023-03-24T10:00 --llm-url " .. base, env)
t.ok(rc == 0 and not (out .. err):find("[%z\1-\8\11-\31\127]") and not (out .. err):find("\226\128\174", 1, true)
  and not (out .. err):find("\194\133", 1, true) and out:find("a<1b>[2Jb<00>c<07>d<0d>e<U+202E>f<U+0085>g", 1, true),
  "a reply's ESC, NUL, BEL, CR, U+202E and C1 bytes are printed as marks, never raw", out)

-- 9. nomade run --tribunal live: verdicts journaled; an unavailable
-- tribunal turns the shield AMBER
do
  local jpath = os.tmpname() .. ".journal"
  local strat = bt.file([[
settings = { interval = "1h", history = 5 }
indicators = { e = ta.ema(5) }
function regime(m) return "ANY" end
function entry(m, r, v) return true end
function exit(m, p) return "out" end
function prompt(m, r) return "close " .. m.close end
]])
  control { reset = true, queue = { { text = '{"signal":"WAIT","score":5,"reasoning":"no"}', times = 3 },
    { fault = "reset", times = 1000 } } }
  rc, out = t.run("run " .. strat .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --tribunal live --llm deadline=0.3 --llm-url " .. base .. " --log-format json --journal " .. jpath, env)
  local amber = out:find('"check":"tribunal"', 1, true) and out:find('"to":"AMBER"', 1, true)
  local db = assert(require("nomade.store").open(jpath))
  local rows = db:run("SELECT count(*) FROM events WHERE kind = 'verdict'")
  db:close()
  t.ok(rc == 0 and rows[1][1] >= 4 and amber, "live verdicts are journaled, and the shield turns AMBER while the "
    .. "tribunal is unavailable", out:sub(1, 1500))
  -- the same run with a server that quotes the key back: in no log line,
  -- no journal row
  os.remove(jpath)
  control { reset = true, queue = { { status = 403, times = 1000, body = { error = { code = 403,
    status = "PERMISSION_DENIED", message = "API key " .. KEY .. " is not valid" } } } } }
  rc, out = t.run("run " .. strat .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --tribunal live --llm deadline=0.3 --llm-url " .. base .. " --log-format json --journal " .. jpath, env)
  db = assert(require("nomade.store").open(jpath))
  local in_rows = db:run("SELECT count(*) FROM events WHERE instr(detail, ?) > 0", KEY)[1][1]
  local scrubbed = db:run("SELECT count(*) FROM events WHERE instr(detail, '<secret>') > 0")[1][1]
  db:close()
  t.ok(rc == 0 and not out:find(KEY, 1, true) and out:find("<secret>", 1, true) and in_rows == 0 and scrubbed > 0,
    "a key the server quotes reaches no log line and no journal row", out:sub(1, 800))
end

-- 10. a reload cancels a tribunal call still waiting (nomade.sched): the
-- turn ends as a WAIT with cause cancelled, and the run goes on
do
  local jpath = os.tmpname() .. ".journal"
  local strat = bt.file([[
settings = { interval = "1h", history = 5 }
function regime(m) return "ANY" end
function entry(m, r, v) return true end
function prompt(m, r) return "close " .. m.close end
]])
  control { reset = true, queue = { { fault = "slow", ms = 20000 },
    { text = '{"signal":"WAIT","score":5,"reasoning":"no"}', times = 1000 } } }
  local outf, pidf = os.tmpname(), os.tmpname()
  os.execute(string.format("env %s %s run %s --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --tribunal live --llm deadline=60 --llm-url %s --log-format json --journal %s --http off "
    .. "> %s 2>&1 & echo $! > %s", env, t.bin, strat, base, jpath, outf, pidf))
  local f = assert(io.open(pidf)); local pid = f:read("a"):match("%d+"); f:close()
  local function text() local g = io.open(outf); local s = g and g:read("a") or ""; if g then g:close() end return s end
  local asked = false
  for _ = 1, 200 do  -- the first call has reached the stand-in, which holds it
    if #log() > 0 then asked = true break end
    os.execute("sleep 0.05")
  end
  os.execute("kill -HUP " .. pid)
  local cancelled = false
  for _ = 1, 200 do
    if text():find('"cause":"cancelled"', 1, true) then cancelled = true break end
    os.execute("sleep 0.05")
  end
  local s = text()
  t.ok(asked and cancelled and s:find('"event":"reload"', 1, true) and not s:find('"to":"AMBER"', 1, true),
    "a reload cancels the tribunal call in flight: a WAIT with cause cancelled, the shield untouched", s:sub(1, 2000))
  os.execute("kill -INT " .. pid .. " 2>/dev/null")
  for _ = 1, 200 do
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    os.execute("sleep 0.05")
  end
  t.ok(not os.execute("kill -0 " .. pid .. " 2>/dev/null"), "and the run still ends on SIGINT")
end

stop()
t.done()
