-- nomade run --feed bybit against the stand-in, whose clock is set a few
-- seconds before a minute closes: 1000 candles of history at start, the
-- closing candle polled right after its close and decided on, the requests
-- as the protocol wants them; a restart with the journal after five
-- missed minutes catches up on them without deciding; a dead exchange at
-- start is a clear error.
local t = require "testlib"
local loop = require "nomade.loop"
local cjson = require "cjson"

local function slurp(p)
  local f = assert(io.open(p)); local s = f:read("a"); f:close(); return s
end

local base, stop, listening = t.serve("tests/stand-ins/bybit/server.py")
local ws_url = "ws://127.0.0.1:" .. tostring(listening and listening:match("LISTENING %d+ (%d+)")) .. "/v5/public/spot"
t.ok(base, "the stand-in started")
local control = t.control(base)

local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local strat = dir .. "/s.lua"
local f = assert(io.open(strat, "w"))
f:write([[
settings = { symbol = "BTCUSDT", interval = "1m", history = 50 }
indicators = { ema20 = ta.ema(20) }
function regime(m) return m.close > m.ind.ema20 and "up" or "down" end
function entry(m, r, v) return false end
function prompt() return "p" end
]])
f:close()
local journal = dir .. "/j.journal"

-- the stand-in's clock: `lead` seconds before the close of a minute
local function before_close(lead, extra)
  local now = math.floor(loop.time() * 1000)
  local close = (now // 60000 + 2) * 60000
  control { clock_offset_ms = close - lead * 1000 - now + (extra or 0) }
  return close
end

local function start(extra, feed)
  local out = os.tmpname()
  os.execute(string.format("%s run %s --feed %s --base-url %s --journal %s --socket %s/sock --log-format json %s"
    .. " > %s 2>&1 & echo $! > %s.pid", t.bin, strat, feed or "bybit-rest", base, journal, dir, extra or "", out, out))
  return { out = out, pid = slurp(out .. ".pid"):match("%d+") }
end

local function events(p)
  local list = {}
  for line in slurp(p.out):gmatch("[^\n]+") do
    local ok, doc = pcall(cjson.decode, line)
    if ok and type(doc) == "table" then list[#list + 1] = doc end
  end
  return list
end

local function find(p, event, pred)
  for _, e in ipairs(events(p)) do
    if e.event == event and (not pred or pred(e)) then return e end
  end
end

local function wait_for(p, seconds, event, pred)
  for _ = 1, seconds * 20 do
    local e = find(p, event, pred)
    if e then return e end
    os.execute("sleep 0.05")
  end
end

local function stop_run(p)
  os.execute("kill -TERM " .. p.pid)
  for _ = 1, 100 do
    if not os.execute("kill -0 " .. p.pid .. " 2>/dev/null") then return true end
    os.execute("sleep 0.05")
  end
  os.execute("kill -9 " .. p.pid)
  return false
end

local function kline_log()
  local st, out = control(), {}
  for _, r in ipairs(st and st.log or {}) do
    if r.path == "/v5/market/kline" then out[#out + 1] = r end
  end
  return out
end

-- 1. a fresh start: history, then the next close
local close = before_close(3)
local p = start()
local s = wait_for(p, 10, "start")
local history_requests = #kline_log()
t.ok(s and s.feed == "bybit" and s.history == 1000, "1000 candles of history at start", slurp(p.out):sub(1, 600))
local iso = os.date("!%Y-%m-%d %H:%M", (close - 60000) // 1000)
local c = wait_for(p, 10, "candle", function(e) return e.time == iso end)
t.ok(c and (c.regime == "up" or c.regime == "down"), "the candle that closed at " .. os.date("!%H:%M", close // 1000)
  .. " is polled and decided on", slurp(p.out):sub(-800))
local polls = kline_log()
local first, last = polls[1], polls[#polls]
t.ok(first and first.query:find("limit=1000", 1, true) and not first.query:find("start=", 1, true),
  "history: pages of 1000 asked by end only", first and first.query)
t.ok(last and last.time >= close and last.time < close + 5000 and last.query:find("category=spot", 1, true),
  "the poll comes right after the close (" .. tostring(last and last.time - close) .. " ms)", last and last.query)
local early = 0
for k = history_requests + 1, #polls do
  if polls[k].time < close then early = early + 1 end
end
t.ok(#polls > history_requests and early == 0, "and not before it: no busy polling",
  string.format("%d requests, %d for history, %d early", #polls, history_requests, early))
t.ok(stop_run(p), "SIGTERM stops it")

-- 2. a restart five minutes later: catch-up without decisions, then live
before_close(3, 5 * 60000)
p = start()
s = wait_for(p, 10, "start")
local resumed = find(p, "journal_resume")
t.ok(resumed and s and s.history >= 4 and s.history <= 6,
  "a restart with the journal catches up the missed candles (" .. tostring(s and s.history) .. ")",
  slurp(p.out):sub(1, 800))
local decided = 0
for _, e in ipairs(events(p)) do if e.event == "candle" then decided = decided + 1 end end
t.eq(decided, 0, "and does not decide on candles that closed while it was down")
local live = wait_for(p, 10, "candle")
t.ok(live, "then the next close is decided on")
local rc, out = t.run("repl --socket " .. dir .. "/sock -e 'status().feed'")
t.ok(rc == 0 and out:find('"source":"bybit-rest"', 1, true) and out:find('"polls":1', 1, true),
  "the REPL's status() shows the feed", out)
stop_run(p)

-- 3. the exchange stops answering: the shield goes RED for stale data
-- once the next close is grace seconds overdue, and nothing is decided
os.execute("rm -f " .. journal)
control { reset = true }
before_close(4)
p = start("--shield grace=2")
s = wait_for(p, 10, "start")
control { fault = "http5xx", path = "/v5/market/kline", count = 1000 }
local red = wait_for(p, 25, "shield", function(e) return e.to == "RED" and e.check == "stale" end)
t.ok(s and red, "no candle 2 s past its close: RED, stale", slurp(p.out):sub(-1500))
local failed = wait_for(p, 15, "feed_error")
decided = false
for _, e in ipairs(events(p)) do if e.event == "candle" and e.shield ~= "RED" and failed then decided = true end end
t.ok(failed and failed.kind == "exchange" and not decided, "the failed polls are logged, and no candle decided",
  slurp(p.out):sub(-1500))
stop_run(p)

-- 4. the stream: a candle closes by its confirm push; a repeated push and a
-- malformed frame change nothing; a dropped connection turns the shield
-- RED (disconnected), reconnects and resubscribes
os.execute("rm -f " .. journal)
control { reset = true }
close = before_close(4)
control { ws_fault = "repeat_kline", count = 5 }
p = start("--ws-url " .. ws_url, "bybit")
s = wait_for(p, 10, "start")
t.ok(s and s.feed == "bybit", "--feed bybit starts on the stream", slurp(p.out):sub(1, 600))
os.execute("sleep 1")
control { ws_fault = "malformed" }
iso = os.date("!%Y-%m-%d %H:%M", (close - 60000) // 1000)
c = wait_for(p, 10, "candle", function(e) return e.time == iso end)
local kline_polls = 0
for _, r in ipairs(kline_log()) do if r.time > close - 1000 then kline_polls = kline_polls + 1 end end
t.ok(c and kline_polls == 0, "the closed candle comes by its confirm push, with no REST poll", slurp(p.out):sub(-800))
os.execute("sleep 0.5")
local twice = 0
for _, e in ipairs(events(p)) do if e.event == "candle" and e.time == iso then twice = twice + 1 end end
t.ok(twice == 1 and find(p, "stream_malformed"), "the repeated push is decided once; the malformed frame is logged")
control { ws_fault = "drop" }
local down = wait_for(p, 10, "shield", function(e) return e.to == "RED" and e.check == "disconnected" end)
local rc_up, up_out
for _ = 1, 60 do
  rc_up, up_out = t.run("repl --socket " .. dir .. "/sock -e 'status().feed'")
  if up_out:find('"connects":2', 1, true) and up_out:find('"up":true', 1, true) then break end
  os.execute("sleep 0.1")
end
t.ok(down and rc_up == 0 and up_out:find('"up":true', 1, true) and up_out:find('"connects":2', 1, true),
  "a dropped stream: RED for disconnected, then reconnected and whole again", tostring(up_out))
stop_run(p)

-- a stream that goes silent with TCP open is declared dead and reconnected
os.execute("rm -f " .. journal)
control { reset = true }
p = start("--ws-url " .. ws_url .. " --stream-timeout 2", "bybit")
wait_for(p, 10, "start")
os.execute("sleep 1")
control { ws_fault = "silent", ms = 60000 }
local dead = wait_for(p, 10, "stream_down", function(e) return tostring(e.why):find("1006", 1, true) end)
red = find(p, "shield", function(e) return e.to == "RED" and e.check == "disconnected" end)
t.ok(dead and red, "a silent stream (TCP open, no pong): declared dead after the timeout, RED, reconnecting",
  slurp(p.out):sub(-1200))
stop_run(p)

-- 5. nothing to talk to: a clear error at start
local _, err
rc, _, err = t.run("run " .. strat .. " --feed bybit-rest --base-url http://127.0.0.1:1 --journal " .. dir .. "/j2")
t.ok(rc == 1 and err:find("bybit /v5/market/time", 1, true) and err:find("attempts", 1, true),
  "an unreachable exchange at start: exit 1 and why", err)
rc, _, err = t.run("run " .. strat .. " --feed replay:data/x.csv --base-url testnet")
t.ok(rc == 2 and err:find("--base-url goes with --feed bybit or bybit-rest", 1, true), "--base-url without the bybit feed", err)

stop()
os.execute("rm -rf " .. dir)
t.done()
