-- nomade run, end to end with real processes, files and signals: a replay
-- gives the backtest's trades; saving the strategy reloads it with state
-- intact; a broken save keeps the old logic deciding; SIGHUP reloads;
-- SIGINT stops cleanly; a strategy error skips one candle, not the run.
local t = require "testlib"
local bt = require "btlib"

local function slurp(p)
  local f = assert(io.open(p)); local s = f:read("a"); f:close(); return s
end

local function write(p, text)
  local f = assert(io.open(p, "w")); f:write(text); f:close()
end

-- starts nomade run in the background; returns a handle
local function start(args)
  local out, pidf = os.tmpname(), os.tmpname()
  os.execute(string.format("%s run %s > %s 2>&1 & echo $! > %s", t.bin, args, out, pidf))
  return { out = out, pid = slurp(pidf):match("%d+") }
end

-- a journal of its own for each run
local function J() return " --journal " .. os.tmpname() .. ".journal" end

local function alive(p) return os.execute("kill -0 " .. p.pid .. " 2>/dev/null") end

local function wait(p, seconds)
  for _ = 1, seconds * 20 do
    if not alive(p) then return true end
    os.execute("sleep 0.05")
  end
  return false
end

-- 1. a replay at max speed makes the backtest's trades
do
  local rc, out = t.run("run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed max" .. J())
  t.ok(rc == 0 and out:find("replay done after 17519 candles: equity 10044.80, 142 trades, flat", 1, true),
    "replaying the bundled year gives the backtest's 142 trades and equity", out:sub(-300))
  t.ok(out:find("2023-12-31 23:00  close 42283.58", 1, true), "a line per candle")
end

-- 2. hot reload: new logic on the next candles, state kept; a broken save
-- leaves the old logic deciding and says why
do
  local dir = os.tmpname() .. ".d"
  os.execute("mkdir -p " .. dir)
  local path = dir .. "/s.lua"
  local function version(tag, extra)
    return string.format([[
settings = { interval = "1h", history = 3 }
function regime(m)
  state.n = (state.n or 0) + 1
  return "%s-" .. state.n
end
function entry(m, r, v) return false end
function prompt() return "p" end
function on_reload(st) st.reloads = (st.reloads or 0) + 1 end
%s
]], tag, extra or "")
  end
  write(path, version("V1"))
  local p = start(path .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed 180000" .. J())
  os.execute("sleep 0.6")
  write(path, version("V2"))
  os.execute("sleep 0.6")
  write(path, version("V3") .. "this is not lua\n")
  os.execute("sleep 0.6")
  os.execute("kill -HUP " .. p.pid)
  os.execute("sleep 0.3")
  local done = wait(p, 10)
  local out = slurp(p.out)
  t.ok(done, "the replay ends by itself")
  local v1 = tonumber(out:match(".*%sV1%-(%d+)"))
  local v2 = tonumber(out:match("%sV2%-(%d+)"))
  t.ok(v1 and v2 and v2 == v1 + 1, "after the save, the next candle is decided by V2 and state.n goes on ("
    .. tostring(v1) .. " -> " .. tostring(v2) .. ")", out:sub(1, 2000))
  local reload_at = out:find("reload " .. path .. " (file changed)", 1, true)
  t.ok(reload_at and reload_at < out:find("V2-", 1, true), "the reload is announced before V2 decides")
    t.ok(out:find("error reload (file changed) failed, the previous strategy keeps running: "
    .. path .. ":10: syntax error near 'is'", 1, true), "a broken save is reported with file:line", out:sub(1, 3000))
  local after = out:sub((out:find("failed, the previous strategy", 1, true)))
  t.ok(after:find("V2-", 1, true) and not after:find("V3-", 1, true), "and V2 keeps deciding after it")
  t.ok(out:find("(SIGHUP) failed", 1, true), "SIGHUP forces a reload (of the still broken file)")
  t.ok(not out:find("callback aborted", 1, true), "no handler was aborted")
end

-- 2b. a module the strategy requires is watched too
do
  local dir = os.tmpname() .. ".m"
  os.execute("mkdir -p " .. dir)
  write(dir .. "/helper.lua", "local M = {}\nfunction M.tag() return 'H1' end\nreturn M\n")
  write(dir .. "/s.lua", [[
settings = { interval = "1h", history = 3 }
local helper = require "helper"
function regime(m) return helper.tag() end
function entry() return false end
function prompt() return "p" end
]])
  local p = start(dir .. "/s.lua --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed 180000" .. J())
  os.execute("sleep 0.6")
  write(dir .. "/helper.lua", "local M = {}\nfunction M.tag() return 'H2' end\nreturn M\n")
  wait(p, 10)
  local out = slurp(p.out)
  t.ok(out:find("(" .. dir .. "/helper.lua changed)", 1, true) and out:find(" H2 ", 1, true),
    "saving a required module reloads the strategy", out:sub(1, 1200))
end

-- 3. SIGINT finishes the candle, stops, exits 0
do
  local out, pidf = os.tmpname(), os.tmpname()
  local ok = os.execute(string.format(
    "%s run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed 36000" .. J() .. " > %s 2>&1 & "
      .. "pid=$!; echo $pid > %s; sleep 0.5; kill -INT $pid; wait $pid", t.bin, out, pidf))
  local text = slurp(out)
  t.ok(ok and text:find("stop  SIGINT: stopping after this candle", 1, true)
    and text:find("nomade run: stopped after", 1, true), "SIGINT stops cleanly with exit 0", text:sub(-400))
end

-- 4. a strategy error on one candle is reported; the run goes on
do
  local s = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m)
  if m.index == 10 then error("bad candle") end
  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  local rc, out = t.run("run " .. s .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed max" .. J())
  t.ok(rc == 0 and out:find("error strategy failed in regime(m): " .. s .. ":3: bad candle (the candle of 2023-03-20 09:00 "
    .. "is skipped)", 1, true)
    and out:find("replay done after 191 candles", 1, true), "one failing candle is reported and skipped", out:sub(1, 1500))
  local loop = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m) if m.index == 5 then while true do end end return "R" end
function entry() return false end
function prompt() return "p" end
]])
  rc, out = t.run("run " .. loop .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed max" .. J())
  t.ok(rc == 0 and out:find("strategy failed in regime(m): " .. loop .. ":2: instruction budget exceeded", 1, true)
    and out:find("replay done", 1, true), "a runaway strategy is stopped by the budget, named by its file:line, "
    .. "and the run goes on", out:sub(1, 1500))
end

-- 4b. hostile strategies: each class of what the instruction budget cannot
-- see fails its candle, named, and the run goes on; code stuck in C ends
-- the process (exit 4); SIGTERM during a stuck turn still stops the run
do
  local HOSTILE = {
    { "local x <close> = setmetatable({}, { __close = function() while true do end end })", "instruction budget exceeded" },
    { 'local s = ("x"):rep(1 << 30)', "memory limit exceeded (a call may use 64 MB)" },
    { 'collectgarbage("stop")', "attempt to call a nil value (global 'collectgarbage')" },
    { 'local s = "x" while true do s = s .. s end', "memory limit exceeded" },
    { 'local s = "" for i = 1, 1e9 do s = s .. ("x"):rep(64) end', "time limit exceeded (a call may run 5 s)" },
    { "local t = {} for i = 1, 1e9 do t[i] = i end", "memory limit exceeded" },
  }
  local body = {}
  for i, h in ipairs(HOSTILE) do body[i] = string.format("if m.index == %d then %s end", 4 + i, h[1]) end
  local s = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m)
  ]] .. table.concat(body, "\n  ") .. [[

  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  local rc, out = t.run("run " .. s .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed max"
    .. J(), "timeout 120")
  t.ok(rc == 0 and out:find("replay done after 191 candles", 1, true), "hostile turns: the run goes on to the end",
    rc .. " " .. out:sub(-1500))
  -- (the log folds repeated lines: no two neighbours fail alike)
  local function lit(x) return (x:gsub("%p", "%%%0")) end
  for i, h in ipairs(HOSTILE) do  -- (candle 4 + i closes at 03:00 + i)
    t.ok(out:find("strategy failed in regime%(m%): [^\n]*" .. lit(h[2]) .. "[^\n]*%(the candle of 2023%-03%-20 "
      .. string.format("%02d", 3 + i) .. ":00 is skipped%)"),
      "in a run, a turn with " .. h[1] .. " fails: " .. h[2], out:sub(1, 3000))
  end
  local stuck = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m)
  if m.index == 5 then string.find(("a"):rep(30000), ("a*"):rep(30) .. "b") end
  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  local err
  rc, out, err = t.run("run " .. stuck .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed max"
    .. J(), "timeout 120")
  t.ok(rc == 4 and err:find("nomade: watchdog: a strategy or REPL call is stuck in C code past 10 s; exiting (code 4)", 1, true),
    "a run stuck in C code (a backtracking pattern) exits 4, saying why", rc .. " " .. out:sub(-800) .. err)
  local slow = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m)
  if m.index == 5 then
    print("stuck now")
    local s = "" for i = 1, 1e9 do s = s .. ("x"):rep(64) end
  end
  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  local p = start(slow .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed 3600" .. J())
  for _ = 1, 400 do
    if slurp(p.out):find("stuck now", 1, true) then break end
    os.execute("sleep 0.05")
  end
  os.execute("kill -TERM " .. p.pid)
  local gone = wait(p, 30)
  out = slurp(p.out)
  t.ok(gone and out:find("interrupted: the process is stopping", 1, true) and out:find("stop  SIGTERM", 1, true),
    "SIGTERM during a stuck turn: the turn is interrupted and the run stops", out:sub(-1500))
  if not gone then os.execute("kill -9 " .. p.pid) end
end

-- 5. the REPL: JSON, expressions, multi-line input, the budget, two
-- clients, a client gone mid-command, pause/resume, the socket's mode
do
  local rundir = os.tmpname() .. ".run"
  os.execute("mkdir -p " .. rundir)
  local env = "XDG_RUNTIME_DIR=" .. rundir .. " "
  local out, pidf = os.tmpname(), os.tmpname()
  os.execute(string.format("%s%s run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv "
    .. "--speed 3600" .. J() .. " > %s 2>&1 & echo $! > %s", env, t.bin, out, pidf))
  local p = { pid = slurp(pidf):match("%d+"), out = out }
  local sock = rundir .. "/nomade/nomade.sock"
  for _ = 1, 40 do
    if io.open(sock) then break end
    os.execute("sleep 0.05")
  end
  local function repl(args, input)
    local o, e = os.tmpname(), os.tmpname()
    local cmd = string.format("%s%s repl %s > %s 2> %s", env, t.bin, args, o, e)
    if input then
      local i = os.tmpname()
      write(i, input)
      cmd = cmd .. " < " .. i
    end
    local ok, _, code = os.execute(cmd)
    return ok and 0 or code, slurp(o), slurp(e)
  end
  local rc, json = repl("-e 'm.close'")
  local doc = require("cjson").decode(json)
  t.ok(rc == 0 and doc.ok and type(doc.value) == "number", "repl -e prints JSON (default socket)", json)
  rc, json = repl("-e 'error(\"x\")'")
  t.ok(rc == 1 and json:find('"ok":false', 1, true), "repl -e exits 1 on an error", json)
  local perm = io.popen("stat -c %a " .. sock):read("l")
  local dperm = io.popen("stat -c %a " .. rundir .. "/nomade"):read("l")
  t.ok(perm == "600" and dperm == "700", "the socket is 0600 in a 0700 directory (" .. perm .. ", " .. dperm .. ")")
  local _, text = repl("", "{1, 'a', {b = true}}\nfor i = 1, 2 do\n  print(i * 10)\nend\nwhile true do end\n"
    .. "state\nhelp()\n")
  t.ok(text:find('{1, "a", {b = true}}', 1, true), "an expression prints its value, pretty", text)
  t.ok(text:find("10\n20\n", 1, true), "multi-line input waits for the end of the block")
  t.ok(text:find("error: repl:1: instruction budget exceeded", 1, true),
    "an infinite loop is stopped by the budget, named by its line", text)
  t.ok(text:find("pause(), resume()", 1, true), "help() lists the entry points")
  -- two clients at once, and one that disconnects in the middle of a line
  os.execute(string.format("(printf 'while true do' ; sleep 0.3) | %s%s repl >/dev/null 2>&1 &", env, t.bin))
  local a = io.popen(env .. t.bin .. " repl -e 'book().equity'")
  local b = io.popen(env .. t.bin .. " repl -e 'status().candles'")
  local ra, rb = a:read("a"), b:read("a")
  a:close(); b:close()
  t.ok(ra:find('"ok":true', 1, true) and rb:find('"ok":true', 1, true), "two clients at once", ra .. rb)
  os.execute("sleep 0.5")
  rc, json = repl("-e 'pause()'")
  t.ok(rc == 0 and json:find("entries paused", 1, true), "pause() from the REPL")
  rc, json = repl("-e 'status().paused'")
  t.ok(rc == 0 and json:find('"value":true', 1, true), "status() shows it paused")
  repl("-e 'resume()'")
  t.ok(alive(p), "the runtime is still up after all of that")
  os.execute("kill -INT " .. p.pid)
  wait(p, 5)
  local log = slurp(p.out)
  t.ok(log:find("attach: " .. t.bin .. " repl", 1, true) and log:find("entries paused from the REPL", 1, true)
    and not log:find("callback aborted", 1, true), "the runtime logged the pause and no aborted handler")
  t.ok(not io.open(sock), "the socket is removed on exit")
  local rc2, _, err = repl("-e 1")
  t.ok(rc2 == 1 and err:find("cannot attach", 1, true), "repl with no runtime says so", err)
end

-- 6. the journal: kill -9 in the middle, restart, and nothing is lost or
-- applied twice; a journal of another strategy is refused
do
  local dir = os.tmpname() .. ".j"
  os.execute("mkdir -p " .. dir)
  local strat = dir .. "/count.lua"
  write(strat, [[
settings = { interval = "1h", history = 3, stop_loss = 0.01 }
indicators = { fast = ta.ema(3), slow = ta.ema(8) }
function regime(m)
  state.n = (state.n or 0) + 1
  state.seen = state.seen or {}
  state.seen[#state.seen + 1] = m.index
  return m.ind.fast > m.ind.slow and "UP" or "DOWN"
end
function entry(m, r, v) return r == "UP" end
function prompt() return "p" end
function exit(m, p) return m.regime == "DOWN" end
]])
  local jpath = dir .. "/run.journal"
  local feed = "--feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv"
  local args = strat .. " " .. feed .. " --socket " .. dir .. "/s.sock --journal " .. jpath
  local rc, whole = t.run("run " .. strat .. " " .. feed .. " --speed max --socket " .. dir
    .. "/w.sock --journal " .. dir .. "/whole.journal")
  local want = whole:match("replay done after 191 candles: equity ([%d.]+), (%d+) trades")
  t.ok(rc == 0 and want, "an uninterrupted run, for comparison", whole:sub(-300))
  local p = start(args .. " --speed 120000")
  os.execute("sleep 1.2")
  os.execute("kill -9 " .. p.pid)
  wait(p, 2)
  local before = slurp(p.out)
  t.ok(not before:find("replay done", 1, true), "killed with -9 in the middle of the replay")
  local out
  rc, out = t.run("run " .. args .. " --speed max")
  local resumed = tonumber(out:match("resume from [^:]+: (%d+) candles"))
  t.ok(rc == 0 and resumed and resumed > 3 and resumed < 191, "the restart resumes from the journal ("
    .. tostring(resumed) .. " candles)", out:sub(1, 600))
  local got = out:match("replay done after 191 candles: equity ([%d.]+), (%d+) trades")
  t.ok(got and got == want, "and ends exactly as the uninterrupted run (equity " .. tostring(got) .. ")", out:sub(-300))
  local _, snap = t.run("eval " .. t.q("local db = assert(require('nomade.store').open('" .. jpath .. "')); "
    .. "local s = require('cjson').decode(db:run('SELECT state FROM snapshot')[1][1]); "
    .. "local c = db:run('SELECT count(*), count(DISTINCT time) FROM candles')[1]; "
    .. "local ok = true; for k, v in ipairs(s.seen) do ok = ok and v == k + 2 end; "
    .. "return s.n, c[1], c[2], ok"))
  t.eq(snap, "189\n191\n191\ntrue\n", "state.n counted every decided candle once; 191 candles, none twice")
  local other = dir .. "/other.lua"
  write(other, slurp(strat))
  local _, _, err = t.run("run " .. other .. " " .. feed .. " --speed max --socket " .. dir .. "/o.sock --journal " .. jpath)
  t.ok(err:find("was written for strategy " .. strat .. ", not " .. other, 1, true)
    and err:find("--adopt-journal", 1, true), "a journal of another strategy is refused", err)
  rc = t.run("run " .. other .. " " .. feed .. " --speed max --socket " .. dir .. "/o.sock --journal " .. jpath
    .. " --adopt-journal")
  t.eq(rc, 0, "--adopt-journal continues it")
end

-- 7. logs: json is one object a line with ts, level and event; levels filter
do
  local rc, out = t.run("run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --log-format json" .. J())
  local cjson = require "cjson.safe"
  local all, events = true, {}
  for line in out:gmatch("[^\n]+") do
    local doc = cjson.decode(line)
    all = all and doc and doc.ts and doc.level and doc.event
    if doc then events[doc.event] = true end
  end
  t.ok(rc == 0 and all and events.start and events["end"], "--log-format json: every line an object with ts, level, event")
  local s = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m) if m.index == 10 then error("bad") end return "R" end
function entry() return false end
function prompt() return "p" end
]])
  rc, out = t.run("run " .. s .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --log-level warn" .. J())
  t.ok(rc == 0 and out:find("error strategy failed", 1, true) and not out:find("close ", 1, true),
    "--log-level warn keeps errors and drops the candle lines", out)
  rc = t.run("run lua/strategy.lua --feed replay:x.csv --log-format xml")
  t.eq(rc, 2, "an unknown log format is a usage error")
end

-- 8. the command line
do
  local rc, _, err = t.run("run lua/strategy.lua")
  t.ok(rc == 2 and err:find("--feed replay:FILE, --feed bybit or --feed bybit-rest is required", 1, true), "no feed: usage")
  rc, _, err = t.run("run lua/strategy.lua --feed replay:x.csv --speed 0")
  t.ok(rc == 2 and err:find("--speed must be a number > 0 or max", 1, true), "a speed of 0 is refused")
  rc, _, err = t.run("run lua/strategy.lua --feed replay:/nonexistent.csv")
  t.ok(rc == 1 and err:find("/nonexistent.csv", 1, true), "a missing feed file exits 1")
  rc, _, err = t.run("run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1m-2023-03-24-outage.csv")
  t.ok(rc == 1 and err:find("candles are 60 s apart but the strategy's interval is 1h", 1, true),
    "a feed at another interval is refused", err)
end

-- 9. one process per journal: a second run on it exits 1 before writing,
-- naming the first's pid; the default journal is named after the market
-- and the execution
do
  local dir = os.tmpname() .. ".lock"
  os.execute("mkdir -p " .. dir)
  local jpath = dir .. "/one.journal"
  local feed = " --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --journal " .. jpath
  local p = start("lua/strategy.lua" .. feed .. " --speed 3600 --socket " .. dir .. "/a.sock")
  for _ = 1, 100 do
    if slurp(p.out):find("close ", 1, true) then break end
    os.execute("sleep 0.05")
  end
  local count = "eval " .. t.q("return #assert(require('nomade.store').open('" .. jpath
    .. "')):run('SELECT time FROM candles')")
  local _, before = t.run(count)
  local rc, out, err = t.run("run lua/strategy.lua" .. feed .. " --speed max --socket " .. dir .. "/b.sock")
  t.ok(rc == 1 and err:find("journal " .. jpath .. " is in use by pid " .. p.pid, 1, true),
    "a second run on the journal exits 1 and names the pid that has it", err)
  t.ok(not out:find("close ", 1, true) and not err:find("UNIQUE", 1, true), "and it traded nothing", out)
  local _, after = t.run(count)
  t.ok(tonumber(after) >= tonumber(before) and not io.open(dir .. "/b.sock"),
    "the first run goes on, and the second wrote nothing", before .. " -> " .. after)
  os.execute("kill -9 " .. p.pid)
  wait(p, 2)
  rc, out = t.run("run lua/strategy.lua" .. feed .. " --speed max --socket " .. dir .. "/c.sock")
  t.ok(rc == 0 and out:find("resume from " .. jpath, 1, true),
    "the lock of a killed run does not block the next one", out:sub(1, 400))
  local state = dir .. "/state"
  rc = t.run("run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --socket " .. dir .. "/d.sock", "XDG_STATE_HOME=" .. state)
  local named = io.open(state .. "/nomade/BTCUSDT-1h-replay-binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv-paper.journal")
  t.ok(rc == 0 and named, "the default journal's name says the feed and the execution")
  if named then named:close() end
end

-- 9b. --socket names the run's own journal: refused, the journal kept
-- (the REPL's socket replaces only a stale socket: tests/lua/listen.test.lua)
do
  local jpath = os.tmpname() .. ".journal"
  local rc, _, err = t.run("run lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv "
    .. "--speed max --http off --journal " .. jpath .. " --socket " .. jpath)
  local f = io.open(jpath, "rb")
  local head = f and f:read(15)
  if f then f:close() end
  t.ok(rc == 1 and err:find(jpath .. ": something other than a socket is there", 1, true),
    "--socket at the journal: the REPL cannot listen, said why, exit 1", err)
  t.eq(head, "SQLite format 3", "and the journal is still there")
  os.remove(jpath)
end

-- 10. a reload that changes the symbol is refused, and journaled as refused
do
  local dir = os.tmpname() .. ".sym"
  os.execute("mkdir -p " .. dir)
  local path, jpath = dir .. "/s.lua", dir .. "/s.journal"
  local src = [[
settings = { interval = "1h", history = 3%s }
function regime(m) return "R" end
function entry() return false end
function prompt() return "p" end
]]
  write(path, src:format(""))
  local p = start(path .. " --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed 3600 --journal " .. jpath
    .. " --socket " .. dir .. "/s.sock")
  os.execute("sleep 0.5")
  write(path, src:format(', symbol = "ETHUSDT"'))
  for _ = 1, 100 do
    if slurp(p.out):find("reload (file changed) refused", 1, true) then break end
    os.execute("sleep 0.05")
  end
  os.execute("kill -INT " .. p.pid)
  wait(p, 5)
  t.ok(slurp(p.out):find("error reload (file changed) refused: symbol and interval cannot change while running "
    .. "(BTCUSDT 1h)", 1, true), "a reload to another symbol is refused", slurp(p.out):sub(1, 1500))
  local _, ev = t.run("eval " .. t.q("local d = require('cjson').decode(assert(require('nomade.store').open('" .. jpath
    .. "')):run(\"SELECT detail FROM events WHERE kind = 'reload'\")[1][1]); "
    .. "return d.ok, d.error:find('cannot change', 1, true) ~= nil"))
  t.eq(ev, "false\ntrue\n", "and journaled with ok = false")
end

-- 11. failed strategy calls: counted in status(), the dashboard and the end
-- line with the last error's file:line and candle; a run of identical ones
-- logged once; strategy_errors in a row turn the shield AMBER (check
-- strategy) until clean candles return
do
  local dir = os.tmpname() .. ".err"
  os.execute("mkdir -p " .. dir)
  local s = bt.file([[
settings = { interval = "1h", history = 3 }
function regime(m)
  if m.index >= 10 and m.index < 25 then error("bad candle") end
  if m.index == 30 then error("other") end
  return "R"
end
function entry() return false end
function prompt() return "p" end
]])
  local p = start(s .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --speed 36000 --journal "
    .. dir .. "/j --socket " .. dir .. "/sock --http 127.0.0.1:0")
  for _ = 1, 200 do
    if slurp(p.out):find(":4: other", 1, true) then break end
    os.execute("sleep 0.05")
  end
  local json = io.popen(t.bin .. " repl --socket " .. dir .. "/sock -e 'status().errors'"):read("a")
  local doc = (require("cjson.safe").decode(json) or {}).value or {}
  t.ok(doc.count == 16 and doc.candle == "2023-03-21 05:00" and doc.last == "strategy failed in regime(m): " .. s
    .. ":4: other", "status().errors: the count, the last error with file:line, its candle", json)
  local url = slurp(p.out):match("dashboard (http://[%d.:]+)/")
  local code, body, st
  for _ = 1, 60 do  -- the dashboard's tree is synced once a second
    code, _, body = require("nomade.http").request { url = tostring(url) .. "/bot/status.json" }
    st = require("cjson.safe").decode(body or "") or {}
    if st.errors and st.errors.count == 16 then break end
    os.execute("sleep 0.05")
  end
  t.ok(code == 200 and st.errors and st.errors.count == 16 and st.errors.last == doc.last,
    "and the dashboard's bot/status", body)
  os.execute("kill -INT " .. p.pid)
  wait(p, 10)
  local out = slurp(p.out)
  local first = "error strategy failed in regime(m): " .. s .. ":3: bad candle (the candle of 2023-03-20 09:00 is skipped)"
  local _, logged = out:gsub("bad candle", "")
  t.ok(out:find(first, 1, true) and out:find("error ... repeated 14 times", 1, true) and logged == 2,
    "15 identical errors: logged once, then '... repeated 14 times'", out:sub(1, 2500))
  t.ok(out:find("shield GREEN -> AMBER  strategy: the strategy failed on 10 candles in a row, the last in regime(m): ",
    1, true), "the 10th failing candle in a row turns the shield AMBER (strategy)")
  local amber = out:find("-> AMBER  strategy", 1, true)
  t.ok(amber and out:find("shield AMBER -> GREEN", amber, true) < out:find("error strategy failed in "
    .. "regime(m): " .. s .. ":4: other", 1, true), "and GREEN again once clean candles return")
  t.ok(out:find("nomade run: stopped after %d+ candles: equity 10000.00, 0 trades, flat; 16 failed strategy calls, "
    .. "the last on the candle of 2023%-03%-21 05:00: strategy failed in regime%(m%): .*:4: other"),
    "the end line counts them and gives the last", out:sub(-400))
end

-- 12. paper refuses what Bybit refuses: an exit under minOrderAmt is not
-- filled, the position is kept as dust, and that is said once (the drop
-- to 80 is a jump, whose prices fill nothing: jump_pct loosened)
do
  local rows = { { 100, 100, 100, 100 }, { 100, 100, 100, 100 }, { 100, 100, 100, 100 } }
  for k = 4, 9 do rows[k] = { 80, 80, 80, 80 } end
  local s = bt.file([[
settings = { interval = "1h", history = 1, position_size = 0.5 }
function regime(m) return "R" end
function entry(m, r, v) return v ~= nil or m.index == 2 end
function prompt() return "p" end
function exit(m, p) return m.index >= 4 end
]])
  local rc, out = t.run("run " .. s .. " --feed replay:" .. bt.csv(rows) .. " --speed max --cash 11 --http off"
    .. " --shield jump_pct=100" .. J())
  local _, said = out:gsub("dust  the position", "")
  t.ok(rc == 0 and said == 1 and out:find("dust  the position (0.054945 at 80.00) is under the exchange's minimum "
    .. "order (minOrderQty 1.1e-05, minOrderAmt 5): kept as dust, not sold", 1, true)
    and out:find("0 trades, a position open", 1, true) and not out:find("refuse the exit", 1, true),
    "an exit under minOrderAmt: refused, the position kept as dust, said once", out)
end

t.done()
