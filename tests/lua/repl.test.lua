-- The REPL of a running `nomade run` is the strategy's sandbox plus the
-- runtime's entry points: os.exit, io.popen, os.getenv, debug, package,
-- require and binary chunks are errors that say so and the process goes
-- on; a walk of every table REPL code can reach (through pairs,
-- metatables, the entry points' results, and the registry and upvalues
-- if debug were there) finds none of the secrets the process was given;
-- reload() works from it. For a paper run on a replay and for live
-- execution against the Bybit stand-in. And an evaluation while a
-- strategy turn waits on the tribunal leaves the turn its own budget.
local t = require "testlib"
local x = require "livex"

local MARKS = { BYBIT_API_KEY = "nmdmark7c1fkey", BYBIT_API_SECRET = "nmd-mark-93ab5e-secret",
  GEMINI_API_KEY = "nmd-mark-1d2e-gemini", OPENAI_API_KEY = "nmd-mark-77f0-openai",
  FIREBASE_AUTH = "nmd-mark-55aa-firebase", NOMADE_DASHBOARD_TOKEN = "nmd-mark-0b0b-token" }
local ENV, LIST = {}, {}
for k, v in pairs(MARKS) do
  ENV[#ENV + 1] = k .. "=" .. v
  LIST[#LIST + 1] = string.format("%q", v)
end
ENV = table.concat(ENV, " ")

-- REPL code: the walk (one line once sent: no comments)
local WALK = ([[
local marks = { LIST }
local seen, found, count = {}, {}, 0
local function look(s, where)
  for _, mk in ipairs(marks) do
    if s:find(mk, 1, true) then found[#found + 1] = where end
  end
end
local dbg = pcall(function() return debug.getregistry end) and debug or nil
local walk
local function upvalues(f, where)
  if not dbg or seen[f] then return end
  seen[f] = true
  for i = 1, 255 do
    local name, v = dbg.getupvalue(f, i)
    if not name then break end
    walk(v, where .. "^" .. name)
  end
end
function walk(v, where)
  local tv = type(v)
  if tv == "string" then look(v, where) return end
  if tv == "function" then upvalues(v, where) return end
  if tv ~= "table" or seen[v] then return end
  seen[v] = true
  count = count + 1
  for k, e in pairs(v) do
    walk(k, where .. "[key]")
    walk(e, where .. "." .. tostring(k))
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then walk(mt, where .. "<mt>") end
end
walk(_ENV, "_ENV")
if dbg then walk(dbg.getregistry(), "registry") end
for _, name in ipairs({ "status", "book", "candles", "ind" }) do walk(_ENV[name](), name .. "()") end
walk(trades(1000), "trades()")
walk(verdicts(1000), "verdicts()")
walk({ orders(1000) }, "orders()")
walk({ reconcile() }, "reconcile()")
walk(shield.status(), "shield.status()")
return { tables = count, found = table.concat(found, " ") }
]]):gsub("LIST", table.concat(LIST, ", "))

local REFUSED = {
  { "os.exit(1)", "os.exit is not available in the REPL" },
  { "os.execute('true')", "os.execute is not available in the REPL" },
  { "io.popen('id')", "io is not available in the REPL" },
  { "os.getenv('BYBIT_API_SECRET')", "os.getenv is not available in the REPL" },
  { "debug.getregistry()", "debug is not available in the REPL" },
  { "package.loaded", "package is not available in the REPL" },
  { "require('nomade.secrets')", "require is not available in the REPL" },
  { "nomade.secrets", "nomade is not available in the REPL" },
  { "load(string.dump(function() return 1 end))", "load: binary chunks are not available in the REPL" },
  { "getmetatable(m).__index", "attempt to index a boolean value" },
  { "setmetatable({}, { __gc = print })", "__gc is not allowed" },
  -- what the instruction budget cannot see fails with the limit named
  { "setmetatable({}, { __gc = function() while true do end end })", "__gc is not allowed here" },
  { "(function() local x <close> = setmetatable({}, { __close = function() while true do end end }) end)()",
    "instruction budget exceeded" },
  { 'collectgarbage("stop")', "collectgarbage is not available in the REPL" },
  { '#("x"):rep(1 << 30)', "memory limit exceeded (a call may use 64 MB)" },
  { '#string.rep("x", 1 << 30)', "memory limit exceeded (a call may use 64 MB)" },
  { '(function() local s = "x" while true do s = s .. s end end)()', "memory limit exceeded" },
  { '(function() local s = "" for i = 1, 1e9 do s = s .. ("x"):rep(64) end end)()',
    "time limit exceeded (a call may run 5 s)" },
  { "(function() local t = {} for i = 1, 1e9 do t[i] = i end end)()", "memory limit exceeded" },
  { "(function() local t = {} for i = 1, 1e9 do t[i] = {} end end)()", "memory limit exceeded" },
}

local function sandboxed(p, what)
  for _, r in ipairs(REFUSED) do
    local v, err = x.repl(p, r[1])
    t.ok(v == nil and tostring(err):find(r[2], 1, true), what .. ": " .. r[1] .. " is an error that says so", err)
  end
  t.ok(x.alive(p) and x.repl(p, "status().candles"), what .. ": the process keeps running and answering")
  t.eq(x.repl(p, "load('return 40 + 2')()"), 42, what .. ": load takes text")
  t.eq(x.repl(p, "select(2, pairs(m)) == nil and select(2, pairs(m.candles)) == nil"), true,
    what .. ": pairs(m) does not hand out the table behind m")
  t.eq(x.repl(p, "(function() local b = book(); b.quote = -1; return book().quote end)() ~= -1"), true,
    what .. ": what book() returned is a copy")
  local walked, err = x.repl(p, WALK)
  t.ok(walked and walked.tables > 20 and walked.found == "", what .. ": no secret in any table the REPL reaches ("
    .. string.format("%d", walked and walked.tables or 0) .. " tables)", walked and walked.found or err)
  local log = x.slurp(p.out)
  local leaked
  for name, v in pairs(MARKS) do if log:find(v, 1, true) then leaked = name end end
  t.ok(not leaked, what .. ": and none in the log", leaked)
end

-- 1. paper execution on a replay; reload() from the REPL
do
  local dir = x.tmpdir()
  local out = dir .. "/out"
  os.execute(string.format("%s %s run %s/lua/strategy.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv "
    .. "--speed 3600 --journal %s/j.journal --socket %s/sock --http off --log-format json > %s 2>&1 & echo $! > %s.pid",
    ENV, t.bin, os.getenv("PWD"), dir, dir, out, out))
  local p = { out = out, pid = x.slurp(out .. ".pid"):match("%d+"), dir = dir }
  t.ok(x.wait(p, 15, "start"), "a paper run starts", x.slurp(out):sub(1, 1000))
  sandboxed(p, "paper")
  t.eq(x.repl(p, "reload()"), true, "reload() from the REPL reloads the strategy")
  local reloads = x.repl(p, "status().reloads")
  t.ok(reloads and reloads.count == 1 and reloads.ok == true and reloads.why == "REPL", "status() counts it",
    reloads and reloads.error)
  x.stop(p)
end

-- 1b. a REPL line stuck in C code (a backtracking pattern): the last
-- resort, the process exits 4 and says why
do
  local dir = x.tmpdir()
  local out = dir .. "/out"
  os.execute(string.format("(sh -c 'echo $$ > %s.pid; exec %s run %s/lua/strategy.lua --feed "
    .. "replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed 3600 --journal %s/j.journal --socket %s/sock "
    .. "--http off --log-format json' "
    .. "> %s 2>&1; echo $? > %s.rc) &", out, t.bin, os.getenv("PWD"), dir, dir, out, out))
  for _ = 1, 100 do
    if x.slurp(out .. ".pid") ~= "" then break end
    x.sleep(0.05)
  end
  local p = { out = out, pid = x.slurp(out .. ".pid"):match("%d+"), dir = dir }
  t.ok(x.wait(p, 15, "start"), "a paper run starts", x.slurp(out):sub(1, 1000))
  local v = x.repl(p, 'string.find(("a"):rep(30000), ("a*"):rep(30) .. "b")')
  for _ = 1, 600 do
    if x.slurp(out .. ".rc") ~= "" then break end
    x.sleep(0.05)
  end
  t.ok(v == nil and tonumber(x.slurp(out .. ".rc")) == 4 and x.slurp(out):find(
    "nomade: watchdog: a strategy or REPL call is stuck in C code past 10 s; exiting (code 4)", 1, true),
    "a REPL line stuck in C: the process exits 4, saying why", x.slurp(out .. ".rc") .. x.slurp(out):sub(-500))
  if x.alive(p) then x.stop(p, "KILL") end
end

-- 2. live execution against the stand-in, with an order on the books
do
  local ex = x.exchange("--key " .. MARKS.BYBIT_API_KEY .. " --secret " .. MARKS.BYBIT_API_SECRET)
  t.ok(ex, "the stand-in started")
  ex.control { rate_limits = false }
  local dir = x.tmpdir()
  x.strategy(dir)
  local p = x.start(ex, dir, "--http off", ENV)
  t.ok(p.ready, "a live run starts and subscribes", x.slurp(p.out):sub(1, 1500))
  x.close_candle(ex)
  t.ok(x.wait(p, 10, "fill", function(e) return e.side == "buy" end), "it buys with the keys it was given",
    x.slurp(p.out):sub(-1500))
  sandboxed(p, "live")
  x.stop(p)
  ex.stop()
end

-- 3. budgets are per coroutine: the strategy's turn waits on the tribunal
-- (the stand-in answers BUY late), an evaluation runs meanwhile under the
-- REPL's budget, and the turn, resumed, is still stopped by its own
do
  local base, stop = t.serve("tests/stand-ins/gemini/server.py", "--key " .. MARKS.GEMINI_API_KEY)
  local control = t.control(base)
  control { reset = true, queue = { { fault = "slow", ms = 5000 } } }
  local dir = x.tmpdir()
  local f = assert(io.open(dir .. "/s.lua", "w"))
  f:write([[
settings = { interval = "1h", history = 5 }
function regime(m) return "ANY" end
function prompt(m, r) return "close " .. m.close end
function entry(m, r, v)
  if v then while true do end end
  local first = not state.asked
  state.asked = true
  return first
end
]])
  f:close()
  local out = dir .. "/out"
  os.execute(string.format("%s %s run %s/s.lua --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed 3600 "
    .. "--tribunal live --llm-url %s --journal %s/j.journal --socket %s/sock --http off --log-format json "
    .. "> %s 2>&1 & echo $! > %s.pid", ENV, t.bin, dir, base, dir, dir, out, out))
  local p = { out = out, pid = x.slurp(out .. ".pid"):match("%d+"), dir = dir }
  local asked
  for _ = 1, 200 do
    asked = #((control() or {}).log or {}) > 0
    if asked then break end
    x.sleep(0.05)
  end
  t.ok(asked, "the strategy's turn asks the tribunal", x.slurp(out):sub(1, 1500))
  t.eq(x.repl(p, "status().tribunal.calls"), 0, "an evaluation runs while the turn waits for the verdict")
  local failed = x.wait(p, 20, "strategy_error")
  t.ok(failed and tostring(failed.error):find("instruction budget exceeded", 1, true)
    and failed["function"] == "entry(m, regime, verdict)",
    "resumed, the turn is still stopped by its budget", x.slurp(out):sub(-1500))
  t.ok(failed and x.repl(p, "status().candles"), "and the runtime goes on")  -- (a turn unbounded: it would never answer)
  x.stop(p, "KILL")
  stop()
end

t.done()
