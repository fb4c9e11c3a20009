-- The nomade command and the host: CLI commands and exit codes, errors
-- that name file:line, the embedded library, the instruction budget, the
-- memory and time limits and the watchdog.
local t = require "testlib"
local q = t.q

local function tmpfile(text)
  local p = os.tmpname()
  local f = assert(io.open(p, "w")); f:write(text); f:close()
  return p
end

local _
local rc, out, err = t.run("version")
t.ok(rc == 0 and out:match("^nomade %d+%.%d+%.%d+ %(Lua 5%.4"), "version prints nomade and Lua versions", out .. err)
rc, out = t.run("help")
t.ok(rc == 0 and out:find("script FILE", 1, true) and out:find("exit codes", 1, true), "help lists commands and exit codes")
rc, _, err = t.run("")
t.ok(rc == 2 and err:find("usage", 1, true), "no command is a usage error (2)")
rc, _, err = t.run("frobnicate")
t.ok(rc == 2 and err:find("unknown command 'frobnicate'", 1, true), "an unknown command is a usage error (2)")

rc, out = t.run("eval " .. q("1 + 1, {a = 1}"))
t.ok(rc == 0 and out == "2\n{a = 1}\n", "eval prints each value of an expression", out)
rc, out = t.run("eval " .. q("x = 3; print(x * 2)"))
t.ok(rc == 0 and out == "6\n", "eval runs a statement", out)
rc, _, err = t.run("eval " .. q("error('boom')"))
t.ok(rc == 1 and err:find("eval:1: boom", 1, true) and err:find("stack traceback", 1, true),
  "an error in eval exits 1 with position and traceback", err)
rc, _, err = t.run("eval " .. q("x ="))
t.ok(rc == 3 and err:find("eval:1:", 1, true), "a syntax error in eval exits 3", err)
rc = t.run("eval")
t.ok(rc == 2, "eval without code is a usage error")

local script = tmpfile("local a, b = ...\nassert(arg[0] and arg[1] == a)\nprint(a .. b)\nreturn tonumber(b)\n")
rc, out = t.run("script " .. script .. " x 7")
t.ok(rc == 7 and out == "x7\n", "script gets arg and ..., and its return value is the exit code", out)
script = tmpfile("local x = 1\n\nlocal y = nil + x\n")
rc, _, err = t.run("script " .. script)
t.ok(rc == 1 and err:find(script .. ":3: attempt to perform arithmetic on a nil value", 1, true),
  "a runtime error names file:line and exits 1", err)
script = tmpfile("return false\n")
t.eq(t.run("script " .. script), 1, "a script returning false exits 1")
script = tmpfile("os.exit(5)\n")
t.eq(t.run("script " .. script), 5, "os.exit(n) exits n")
script = tmpfile("local = 1\n")
rc, _, err = t.run("script " .. script)
t.ok(rc == 3 and err:find(script .. ":1:", 1, true), "a syntax error exits 3 naming file:line", err)
rc, _, err = t.run("script /nonexistent/x.lua")
t.ok(rc == 3 and err:find("cannot open /nonexistent/x.lua", 1, true), "a missing script exits 3", err)
rc = t.run("script")
t.ok(rc == 2, "script without FILE is a usage error")

-- --help on a command prints its usage and runs nothing (no keys are
-- needed for bybit balance's, no network for candles')
for _, c in ipairs({ { "script --help", "usage: nomade script" }, { "eval --help", "usage: nomade eval" },
  { "eval -h", "usage: nomade eval" }, { "bybit candles --help", "usage: nomade bybit candles" },
  { "bybit candles BTCUSDT 1h -h", "usage: nomade bybit candles" },
  { "bybit balance --help", "usage: nomade bybit candles" } }) do
  local hrc, hout, herr = t.run(c[1], "BYBIT_API_KEY= BYBIT_API_SECRET= NOMADE_SECRETS=")
  t.ok(hrc == 0 and hout:sub(1, #c[2]) == c[2] and herr == "", "nomade " .. c[1] .. ": its usage, exit 0",
    hrc .. " " .. hout:sub(1, 80) .. herr)
end

-- the library is in the binary: it works from any directory
rc, out = t.run("eval " .. q("package.searchers[1] ~= nil and nomade.ta ~= nil and require('nomade.pretty') ~= nil"))
t.ok(rc == 0 and out == "true\n", "nomade.* loads without files on disk", out)
local bin = t.bin:sub(1, 1) == "/" and t.bin or (os.getenv("PWD") .. "/" .. t.bin)
local ok = os.execute("cd / && " .. bin .. " eval 'nomade.ta.ema(3)' >/dev/null 2>&1")
t.ok(ok, "the binary runs from another directory")
local embedded = require("nomade.pretty")
t.ok(debug.getinfo(embedded.format, "S").source == "@lua/nomade/pretty.lua",
  "embedded chunks keep their repository path for error messages")
t.ok(nomade.version == require("nomade.host").version, "nomade.version")
t.eq(nomade.nosuchmodule, nil, "nomade.x for a missing module is nil")

-- instruction budget
local host = require "nomade.host"
local okb, e = host.limit(100000, function() while true do end end)
t.ok(okb == false and tostring(e):find("instruction budget exceeded", 1, true), "limit stops a runaway loop")
okb, e = host.limit(100000, function() while true do pcall(error, "x") end end)
t.ok(okb == false and tostring(e):find("instruction budget exceeded", 1, true), "pcall inside cannot swallow the budget")
okb, e = host.limit(100000, function()
  local co = coroutine.wrap(function() while true do end end)
  co()
end)
t.ok(okb == false and tostring(e):find("instruction budget exceeded", 1, true), "coroutines spend from the same budget")
local r = { host.limit(100000, function(a, b) return a + b, "x" end, 2, 3) }
t.ok(r[1] == true and r[2] == 5 and r[3] == "x", "limit returns true and the results")
t.ok(select(2, host.limit(100000, error, "mine")) == "mine", "limit returns false and the error")
local n = 0
for _ = 1, 1000 do n = n + 1 end
t.eq(n, 1000, "no budget left behind after limit returns")
t.raises(function() host.limit(0, print) end, "bad argument #1 to 'limit' (budget must be > 0)", "budget must be > 0")

-- budgets nest: the inner one is at most what the outer one has left, and
-- what it spends is the outer one's
local function spin(k) local x = 0; for i = 1, k do x = x + i end return x end
okb, e = host.limit(1000000, function()
  local iok, ierr = host.limit(1000000000, function() while true do end end)
  return iok, ierr
end)
t.ok(okb == false and tostring(e):find("instruction budget exceeded", 1, true),
  "a nested limit cannot outlast the outer one (and the outer one fails too)", e)
r = { host.limit(10000000, function()
  local iok, ierr = host.limit(10000, function() while true do end end)
  return iok, tostring(ierr), spin(1000)
end) }
t.ok(r[1] == true and r[2] == false and r[3]:find("instruction budget exceeded", 1, true) and r[4] == 500500,
  "an inner budget spent: the inner call fails, the outer goes on", r[3])
r = { host.limit(1000000, function()
  local iok = host.limit(1000000000, spin, 300000)
  return iok, pcall(spin, 300000)
end) }
t.ok(r[1] == false and tostring(r[2]):find("instruction budget exceeded", 1, true),
  "what a nested call spends is charged to the outer budget", r[2])

-- host.guard, a strategy's turn on every candle: no count hook while the
-- call is short (a hook slows every VM instruction), and the same budget
-- once the watchdog has seen it run a second
do
  local hook_in_guard, hook_in_limit
  r = { host.guard(100000, function(a, b) hook_in_guard = debug.gethook() return a + b, "x" end, 2, 3) }
  host.limit(100000, function() hook_in_limit = debug.gethook() end)
  t.ok(r[1] == true and r[2] == 5 and r[3] == "x" and hook_in_guard == nil and hook_in_limit ~= nil,
    "guard: results, and no hook during a short call (limit counts with one)")
  t.ok(select(2, host.guard(100000, error, "mine")) == "mine", "guard returns false and the error")
  okb, e = host.guard(100000, function()
    while true do pcall(error, "x") end
  end)
  t.ok(okb == false and tostring(e):find("host.test.lua:%d+: instruction budget exceeded"),
    "guard: a runaway loop fails once counted, naming its line; a pcall inside cannot swallow it", e)
  okb, e = host.guard(100000, function() local s = ("x"):rep(1 << 30) return #s end)
  t.ok(okb == false and tostring(e):find("memory limit exceeded", 1, true), "guard: the memory limit holds", e)
  okb, e = host.guard(100000, function() return spin(1000) end)
  t.ok(okb == true and e == 500500, "guard: the next call starts afresh (its cell's last error gone)", e)
  r = { host.limit(100000000, function()
    local gok, gerr = host.guard(100000, function() while true do end end)
    return gok, gerr, spin(1000)
  end) }
  t.ok(r[1] == true and r[2] == false and tostring(r[3]):find("instruction budget exceeded", 1, true) and r[4] == 500500,
    "guard inside a limit: a nested budget, spent, and the outer call goes on", r[3])
  t.raises(function() host.guard(0, print) end, "bad argument #1 to 'guard' (budget must be > 0)", "guard: budget > 0")
end

-- budgets belong to coroutines: a limit run elsewhere while one waits
-- leaves it its own budget, and what it had left
do
  local co = coroutine.create(function()
    return host.limit(1000000, function()
      spin(300000)
      coroutine.yield("waiting")
      spin(300000)
      return "ran unbounded"
    end)
  end)
  local _, first = coroutine.resume(co)
  local other = { host.limit(1000, function() return "other" end) }
  local _, cok, cerr = coroutine.resume(co)
  t.ok(first == "waiting" and other[1] == true and other[2] == "other" and cok == false
    and tostring(cerr):find("instruction budget exceeded", 1, true),
    "a limit in another thread leaves a waiting coroutine's budget alone", tostring(cok) .. " " .. tostring(cerr))
end

-- a budgeted call may yield (an HTTP request in a handler) and go on
do
  local loop = require "nomade.loop"
  local got = {}
  loop.timer(0, 0, function()
    got[1] = { host.limit(1000000, function(x) loop.sleep(0.02); return x + 1, "y" end, 41) }
    got[2] = { host.limit(1000000, function() loop.sleep(0.01); error("boom", 0) end) }
    got[3] = { host.limit(1000, function() loop.sleep(0.01); while true do end end) }
    got[4] = { host.limit(1000, function() return 1 end) }
  end)
  loop.run()
  t.ok(got[1] and got[1][1] == true and got[1][2] == 42 and got[1][3] == "y", "limit: results across a yield")
  t.ok(got[2] and got[2][1] == false and got[2][2] == "boom", "limit: an error after a yield")
  t.ok(got[3] and got[3][1] == false and tostring(got[3][2]):find("instruction budget exceeded", 1, true),
    "limit: the budget still holds after a yield")
  t.ok(got[4] and got[4][1] == true, "limit: and is gone once the call is over")
end

-- a call that waits, where nothing can yield: a command (this script,
-- outside loop.run) may block on purpose; on the loop it is an error
do
  local loop = require "nomade.loop"
  local http = require "nomade.http"
  local ws = require "nomade.ws"
  local function stuck(f)  -- f where nothing can yield: inside a sort's comparator
    return select(2, pcall(table.sort, { 2, 1 }, function(a, b) f(); return a < b end))
  end
  local errs = {}
  loop.timer(0, 0, function()
    errs.sleep = stuck(function() loop.sleep(0) end)
    errs.http = stuck(function() http.request { url = "http://127.0.0.1:1/" } end)
    errs.ws = stuck(function() ws.connect("ws://127.0.0.1:1/x", {}) end)
    errs.yields = select(2, pcall(loop.sleep, 0))
  end)
  loop.run()
  for _, what in ipairs({ "sleep", "http", "ws" }) do
    local name = what == "sleep" and "loop.sleep" or what == "http" and "http.request" or "ws.connect"
    t.ok(tostring(errs[what]):find(name .. ": cannot wait here", 1, true),
      name .. " where nothing can yield on the loop: an error, not a block", errs[what])
  end
  t.eq(errs.yields, nil, "in a handler's coroutine, loop.sleep yields")
  t.ok(pcall(loop.sleep, 0), "a command outside loop.run may still block on purpose")
end

-- what the count hook cannot see: memory (one C call, one VM instruction,
-- may allocate gigabytes), time (an instruction that copies megabytes, a C
-- function that runs long) and to-be-closed variables. Each class fails
-- the budgeted call with an error that says which limit, pcall inside
-- cannot swallow it, and the runtime's own code is not limited after it
do
  local HOSTILE = {
    { "string.rep", function() return #string.rep("x", 1 << 30) end, "memory limit exceeded" },
    { "a string method", function() return #("x"):rep(1 << 28) end, "memory limit exceeded" },
    { "string.format", function() return #string.format("%s%s", ("x"):rep(40 << 20), ("y"):rep(40 << 20)) end,
      "memory limit exceeded" },
    { "table.concat", function()
      local parts = {}
      for i = 1, 10 do parts[i] = ("x"):rep(8 << 20) end
      return #table.concat(parts)
    end, "memory limit exceeded" },
    { "a doubling concatenation", function() local s = "x"; while true do s = s .. s end end, "memory limit exceeded" },
    { "table growth", function() local tt = {}; for i = 1, 1e9 do tt[i] = i end return #tt end, "memory limit exceeded" },
    { "tables of tables", function() local tt = {}; for i = 1, 1e9 do tt[i] = { i } end return #tt end, "memory limit exceeded" },
    { "pcall around each allocation", function()
      while true do pcall(string.rep, "x", 1 << 30) end
    end, "memory limit exceeded" },
    { "keeping what pcall caught", function()
      local keep = {}
      while true do keep[#keep + 1] = select(2, pcall(string.rep, "x", 1 << 24)) end
    end, "memory limit exceeded" },
    { "a concatenation in a loop (each copies the whole string)", function()
      local s = ""
      for _ = 1, 1e9 do s = s .. ("x"):rep(64) end
    end, "time limit exceeded (a call may run 5 s)" },
    { "__close that loops", function()
      local _ <close> = setmetatable({}, { __close = function() while true do end end })
    end, "instruction budget exceeded" },
    { "__close that loops, on an error", function()
      local _ <close> = setmetatable({}, { __close = function() while true do end end })
      error("first")
    end, "instruction budget exceeded" },
    { "__close that allocates", function()
      local _ <close> = setmetatable({}, { __close = function() local s = "x"; while true do s = s .. s end end })
    end, "memory limit exceeded" },
  }
  for _, h in ipairs(HOSTILE) do
    local hok, herr = host.limit(50000000, h[2])
    t.ok(hok == false and tostring(herr):find(h[3], 1, true), "host.limit: " .. h[1] .. ": " .. h[3], herr)
    t.eq(#string.rep("y", 100 << 20), 100 << 20, "host.limit: after " .. h[1] .. ", the runtime's own code is not limited")
  end
  -- (string.rep holds its buffer and the string it makes: twice the size)
  local mok, me = host.limit(50000000, function() return #string.rep("x", 30 << 20) end)
  t.ok(mok == true and me == 30 << 20, "host.limit: 30 MB in a call is fine", me)
  mok, me = host.limit(50000000, function()
    local s = ""
    for _ = 1, 200 do s = s .. ("x"):rep(100000) end  -- 2 GB of garbage, 20 MB in the end
    return #s
  end)
  t.ok(mok == true and me == 20000000, "host.limit: garbage is collected, not held against the call", me)
  collectgarbage()  -- (older garbage freed during a call would make room in it)
  local nr = { host.limit(50000000, function()
    local big = ("x"):rep(20 << 20)
    local iok, ierr = host.limit(50000000, function() return #("y"):rep(30 << 20) end)
    return #big, iok, ierr
  end) }
  t.ok(nr[1] == true and nr[2] == 20 << 20 and nr[3] == false and tostring(nr[4]):find("memory limit exceeded", 1, true),
    "host.limit: a nested call has what the outer one has left", nr[4])
  collectgarbage()
  nr = { host.limit(50000000, function()
    local kept = select(2, host.limit(50000000, function() return ("y"):rep(20 << 20) end))
    return pcall(string.rep, "z", 25 << 20), #kept
  end) }
  t.ok(nr[1] == false and tostring(nr[2]):find("memory limit exceeded", 1, true),
    "host.limit: what a nested call keeps is charged to the outer one", nr[2])
end

-- a budgeted call that waits where it may block (a command's HTTP
-- request, loop.sleep) is not running: the wait is not held against it
do
  local loop = require "nomade.loop"
  local wok, werr = host.limit(1000000, function() loop.sleep(5.5); return "slept" end)
  t.ok(wok == true and werr == "slept", "host.limit: a blocking wait longer than the time limit is not running time", werr)
end

-- the last resort: a C function that does not return (a backtracking
-- pattern) cannot be stopped by a hook; the process ends itself with
-- exit code 4 and says why, as the other classes of stuck C code would
do
  local STUCK = {
    { "a backtracking pattern", 'string.find(("a"):rep(30000), ("a*"):rep(30) .. "b")' },
    { "string.rep of an empty string", 'string.rep("", 1e15)' },
  }
  for _, s in ipairs(STUCK) do
    local file = tmpfile("local host = require 'nomade.host'\nio.stderr:write('in\\n')\n"
      .. "print(host.limit(50000000, function() return " .. s[2] .. " end))\nprint('returned')\n")
    local src, sout, serr = t.run("script " .. file, "timeout 60")
    t.ok(src == 4 and serr:find("nomade: watchdog: a strategy or REPL call is stuck in C code past 10 s; exiting (code 4)",
      1, true) and not sout:find("returned", 1, true), "stuck in C, " .. s[1] .. ": the process exits 4 with a log line",
      src .. " " .. sout .. serr)
    os.remove(file)
  end
end

-- SIGTERM (or SIGINT) while a budgeted call runs: the call ends at its next
-- instruction, so that the loop sees the signal; stuck in C, the process
-- ends 1 s later (exit 4)
do
  local function started(body)
    local file = tmpfile([[
local host, loop = require "nomade.host", require "nomade.loop"
loop.signal("TERM", function() print("TERM seen") loop.stop() end)
loop.timer(60, 60, function() end)
loop.timer(0, 0, function()
  io.stderr:write("running\n")
  print(host.limit(50000000, function() ]] .. body .. [[ end))
end)
loop.run()
print("stopped")
]])
    local log = os.tmpname()
    os.execute(string.format("(sh -c 'echo $$ > %s.pid; exec %s script %s' > %s 2> %s.err; echo $? > %s.rc) &",
      log, t.bin, file, log, log, log))
    for _ = 1, 200 do
      if t.slurp(log .. ".err"):find("running", 1, true) then break end
      os.execute("sleep 0.05")
    end
    local pid = t.slurp(log .. ".pid"):match("%d+")
    os.execute("kill -TERM " .. pid)
    for _ = 1, 600 do
      if t.slurp(log .. ".rc") ~= "" then break end
      os.execute("sleep 0.05")
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    return tonumber(t.slurp(log .. ".rc")), t.slurp(log), t.slurp(log .. ".err")
  end
  local vrc, vout, verr = started('local s = "" for _ = 1, 1e9 do s = s .. ("x"):rep(64) end')
  t.ok(vrc == 0 and vout:find("false\t[^\n]*interrupted: the process is stopping") and vout:find("TERM seen\nstopped\n"),
    "SIGTERM during a budgeted call: the call is interrupted and the loop stops as asked", vrc .. " " .. vout .. verr)
  local crc, cout, cerr = started('return string.find(("a"):rep(30000), ("a*"):rep(30) .. "b")')
  t.ok(crc == 4 and cerr:find("nomade: watchdog: a call stuck in C code does not let the process stop; exiting", 1, true)
    and not cout:find("stopped", 1, true), "SIGTERM while stuck in C: the process exits 4", crc .. " " .. cout .. cerr)
end

-- pretty
local pretty = require "nomade.pretty"
t.eq(pretty.format({ 1, "a", { x = true }, [10] = 0.1 }), '{1, "a", {x = true}, [10] = 0.1}', "pretty: tables")
local cyc = {}; cyc.self = cyc
t.eq(pretty.format(cyc), "{self = <cycle>}", "pretty: cycles")
t.eq(pretty.format({ { { { { 1 } } } } }), "{{{{{...}}}}}", "pretty: depth cap")
local big = {}; for i = 1, 100 do big[i] = i end
t.ok(pretty.format(big):find("... (50 more)", 1, true), "pretty: item cap")
t.eq(pretty.format(0 / 0), "nan", "pretty: nan")
t.eq(pretty.format(nomade.ta.series { 1, 2 }), "series(2, last 2.0)", "pretty: series print short")

t.done()
