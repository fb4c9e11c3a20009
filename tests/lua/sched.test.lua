-- nomade.sched, the one way into Lua: every event runs in a coroutine of
-- the sched (each entry from C, one test per path), a call that waits
-- where it cannot raises exactly "<api>: cannot wait here", and a waiting
-- coroutine's wait can be cancelled (a reload, a shutdown): its timer,
-- transfer or connection never fires afterwards.
local t = require "testlib"
local loop = require "nomade.loop"
local http = require "nomade.http"
local httpd = require "nomade.httpd"
local ws = require "nomade.ws"
local sched = require "nomade.sched"

-- the message without the "file:line: " position luaL_error puts first
local function bare(err)
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

-- runs fn in a handler (a timer's coroutine) until it returns, the loop
-- running meanwhile; returns what fn returned
local function in_handler(fn)
  local got
  loop.timer(0, 0, function() got = table.pack(fn()); loop.stop() end)
  loop.run()
  return table.unpack(got or {}, 1, got and got.n or 0)
end

-- 1. where a call cannot wait, it says so, exactly, whatever the API
local WAITS = {
  ["loop.sleep"] = function() return loop.sleep(0) end,
  ["http.request"] = function() return http.request { url = "http://127.0.0.1:1/" } end,
  ["ws.connect"] = function() return ws.connect("ws://127.0.0.1:1/x", {}) end,
}
local PLACES = {
  ["a table.sort comparator"] = function(f)
    return pcall(table.sort, { 2, 1 }, function(a, b) f(); return a < b end)
  end,
  ["a __tostring metamethod (called from C)"] = function(f)
    return pcall(tostring, setmetatable({}, { __tostring = function() f(); return "x" end }))
  end,
  ["a coroutine of one's own"] = function(f)
    return coroutine.resume(coroutine.create(f))
  end,
}
for api, f in pairs(WAITS) do
  for place, call in pairs(PLACES) do
    local ok, err = in_handler(function() return call(f) end)
    t.eq(not ok and bare(err), api .. ": cannot wait here", api .. " in " .. place .. " on the loop")
  end
end
t.eq(sched.waiting(), 0, "none of them left a wait behind")
t.ok(pcall(loop.sleep, 0), "the blocking form: a command's main thread, outside loop.run, may wait")
do
  local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) loop.sleep(0); return a < b end)
  t.ok(ok, "and on the main thread, a comparator of the command's own may too", err)
end
t.eq(select(2, in_handler(function() return pcall(loop.sleep, 0) end)), nil, "in a handler, a wait yields")

-- 2. every entry from C runs in a coroutine of the sched, where waiting works
local seen = {}
local function probe(name)
  local ours, tag = sched.current()
  local ok = pcall(loop.sleep, 0)
  seen[name] = { ours = ours, tag = tag, waited = ok }
end
t.eq(sched.current(), false, "the main thread is not one of the sched's coroutines")

local tm = loop.timer(0, 0, function() probe("loop.timer") end)
loop.run()
tm:stop()

local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local watched = dir .. "/file"
local w = loop.watch(watched, function() probe("loop.watch"); loop.stop() end)
loop.timer(0.05, 0, function() local f = io.open(watched, "w"); f:write("x"); f:close() end)
local guard = loop.timer(3, 0, function() loop.stop() end)
loop.run()
w:stop()
guard:stop()

-- loop.watch: two files in one folder (one inotify watch): stopping one
-- leaves the other seen; a save by rename and a same-size save are seen
do
  local a, b = dir .. "/a", dir .. "/b"
  local fired = { a = 0, b = 0 }
  local function save(path, text) local f = io.open(path, "w"); f:write(text); f:close() end
  save(a, "1") save(b, "1")
  local wa = loop.watch(a, function() fired.a = fired.a + 1 end, 0.01)
  local wb = loop.watch(b, function() fired.b = fired.b + 1 end, 0.01)
  wa:stop()
  local steps = {
    function() save(b, "2") end,                                  -- same size
    function() save(dir .. "/b.tmp", "33") os.rename(dir .. "/b.tmp", b) end,  -- an editor's rename
    function() save(a, "22") end,                                 -- not watched any more
    function() loop.stop() end,
  }
  for k, step in ipairs(steps) do loop.timer(0.3 * k, 0, step) end
  loop.run()
  wb:stop()
  t.ok(fired.a == 0 and fired.b == 2, "loop.watch: a same-size save and a rename, each seen once; a stopped "
    .. "watcher in the same folder hears nothing", fired.a .. " " .. fired.b)
end

local sig = loop.signal("USR1", function() probe("loop.signal"); loop.stop() end)
loop.timer(0, 0, function() os.execute("kill -USR1 $PPID") end)  -- sh's parent: this process
guard = loop.timer(3, 0, function() loop.stop() end)
loop.run()
sig:stop()
guard:stop()

local sock = dir .. "/s"
local server = assert(loop.listen(sock, {
  open = function() probe("loop.listen open") end,
  data = function() probe("loop.listen data") end,
  close = function() probe("loop.listen close"); loop.stop() end,
}))
os.execute("/usr/bin/python3 -c \"import socket,time; s = socket.socket(socket.AF_UNIX); s.connect('" .. sock
  .. "'); s.sendall(b'hi'); time.sleep(0.2); s.close()\" &")
guard = loop.timer(5, 0, function() loop.stop() end)
loop.run()
server:close()
guard:stop()

local web = assert(httpd.listen { port = 0, handler = function(req)
  probe("httpd handler")
  if req.path == "/stream" then
    return { status = 200, stream = function(st)
      probe("httpd stream")
      st:send("data: 1\n\n")
      st:close()
    end, on_close = function() probe("httpd on_close") end }
  end
  if req.path == "/slow" then loop.sleep(0.3) end
  return { status = 200, body = string.rep("b", 10) }
end })
local url = "http://127.0.0.1:" .. web.port
in_handler(function()
  http.request { url = url .. "/stream", on_data = function() probe("http on_data") end }
  loop.sleep(0.1)  -- on_close's turn
end)

local wsbase, wsstop, line = t.serve("tests/stand-ins/ws_echo.py")
local silent = line and "ws://127.0.0.1:" .. line:match("SILENT (%d+)") .. "/"
in_handler(function()
  local c = assert(ws.connect(wsbase:gsub("^http", "ws") .. "/", {
    on_message = function(conn) probe("ws on_message"); conn:send("close") end,
    on_close = function() probe("ws on_close"); loop.stop() end,
  }))
  c:send("hello")
end)
loop.run()

for _, path in ipairs({ "loop.timer", "loop.watch", "loop.signal", "loop.listen open", "loop.listen data",
  "loop.listen close", "httpd handler", "httpd stream", "httpd on_close", "http on_data", "ws on_message",
  "ws on_close" }) do
  local s = seen[path]
  t.ok(s and s.ours == true and s.waited, path .. ": in a coroutine of the sched, which may wait",
    s and string.format("ours %s, waited %s", tostring(s.ours), tostring(s.waited)) or "never ran")
end

-- 3. cleanup: a reload cancels the strategy's waits, a shutdown all
local log = {}
local function note(k, ...) log[k] = log[k] or {}; table.insert(log[k], table.pack(...)) end
loop.timer(0, 0, function()
  sched.tag("strategy")
  note("sleep", loop.sleep(0.3))
end)
loop.timer(0, 0, function()
  sched.tag("strategy")
  note("http", http.request { url = url .. "/slow" })
end)
loop.timer(0, 0, function()
  sched.tag("strategy")
  note("ws", ws.connect(silent, { timeout = 0.4 }))
end)
loop.timer(0, 0, function() note("other", loop.sleep(0.15)) end)  -- not the strategy's
loop.timer(0.05, 0, function()
  note("waiting", sched.waiting("strategy"), sched.waiting())
  note("cancelled", sched.cancel_all("strategy"))
  note("after", sched.waiting("strategy"), sched.waiting())
end)
loop.timer(0.8, 0, function() loop.stop() end)  -- past the sleep, the answer and the timeout
loop.run()
t.ok(log.waiting and log.waiting[1][1] == 3 and log.waiting[1][2] >= 5,
  "three waits are the strategy's, among the others (the handler's, the loop's)",
  log.waiting and log.waiting[1][1] .. " " .. log.waiting[1][2])
t.ok(log.cancelled and log.cancelled[1][1] == 3 and log.after[1][1] == 0, "cancel_all(tag) cancels those three")
for _, what in ipairs({ "sleep", "http", "ws" }) do
  local l = log[what]
  t.ok(l and #l == 1 and l[1][1] == nil and l[1][2] == "cancelled",
    what .. ": resumed once, with nil, cancelled; its timer or transfer never fired after",
    l and #l .. " resumes, " .. tostring(l[1][1]) .. " " .. tostring(l[1][2]))
end
t.ok(log.other and #log.other == 1 and log.other[1].n == 0, "a wait of another coroutine went on as it was")
t.eq(sched.waiting(), 0, "nothing waits once it is all over")

-- a shutdown: cancel_all() with no tag ends every wait, tagged or not
local ends = {}
loop.timer(0, 0, function() ends[1] = table.pack(loop.sleep(5)) end)
loop.timer(0, 0, function() sched.tag("x"); ends[2] = table.pack(http.request { url = url .. "/slow" }) end)
loop.timer(0.05, 0, function() ends.n = sched.cancel_all(); loop.stop() end)
loop.run()
t.ok(ends.n == 3 and ends[1][2] == "cancelled" and ends[2][2] == "cancelled" and sched.waiting() == 0,
  "cancel_all() cancels every wait (the two, and the server's handler's own sleep)", ends.n)

-- a waiting coroutine resumed by Lua code (coroutine.running() handed
-- over) is refused, and its wait undone: the timer never resumes it
local stolen, steal, woke = nil, nil, 0
loop.timer(0, 0, function()
  stolen = coroutine.running()
  loop.sleep(0.1)
  woke = woke + 1
end)
loop.timer(0.02, 0, function() steal = table.pack(coroutine.resume(stolen)) end)
loop.timer(0.3, 0, function() loop.stop() end)
loop.run()
t.ok(steal and steal[1] == false and bare(steal[2]) == "loop.sleep: resumed by Lua code before its wait was over"
  and woke == 0 and sched.waiting() == 0, "a wait resumed by Lua code: an error, and the timer is undone",
  steal and tostring(steal[2]))

-- a handler that yields with nothing to wait for is aborted, not left hanging
local rc, _, err = t.run("eval " .. t.q([[
  local loop = require "nomade.loop"
  loop.timer(0, 0, function() coroutine.yield() end)
  loop.run()
  print(require("nomade.sched").waiting())]]))
t.ok(rc == 0 and err:find("callback aborted: timer: a coroutine of the sched yielded with nothing to wait for", 1, true),
  "a bare coroutine.yield in a handler: the handler is aborted and reported", err)

-- tags belong to coroutines of the sched
t.raises(function() sched.tag("x") end, "sched.tag: not in a coroutine of the sched", "the main thread has no tag")
t.eq(select(2, in_handler(function() sched.tag("a"); return sched.current() end)), "a", "current() tells the tag")

-- and in the source: Lua is entered from C only by lib_sched.c (coroutines,
-- and the budgets' protected calls: host.limit, host.guard and book:run's
-- turns), host.c (start-up, the scrub of a report) and main.c (a command's
-- entry), and the main thread is found one way, host_main
local WHO = {
  ["lua_resume"] = { ["lib_sched.c"] = true }, ["lua_newthread"] = { ["lib_sched.c"] = true },
  ["lua_pcall%f[^%w_]"] = { ["host.c"] = true, ["lib_sched.c"] = true }, ["host_pcall%("] = { ["host.c"] = true, ["main.c"] = true },
  ["LUA_RIDX_MAINTHREAD"] = { ["host.c"] = true },
}
local offenders = {}
local files = io.popen("ls runtime/*.c runtime/ta/*.c")
for path in files:lines() do
  local f = assert(io.open(path))
  local src, name = f:read("a"), path:match("[^/]+$")
  f:close()
  for what, allowed in pairs(WHO) do
    offenders[what] = offenders[what] or {}
    if not allowed[name] and src:find(what) then table.insert(offenders[what], name) end
  end
end
files:close()
for what, found in pairs(offenders) do
  t.ok(#found == 0, (what:gsub("%%.*", "")) .. " only in the sched's way in", table.concat(found, ", "))
end

web:close()
wsstop()
os.execute("rm -rf " .. dir)
t.done()
