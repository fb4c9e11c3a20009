-- The dashboard's server side: nomade.tree's events against the Firebase
-- docs' stream (tests/fixtures/firebase), nomade.httpd with the dashboard
-- handler over real sockets (GET .json, the SSE stream with put, patch and
-- keep-alive, the controls' token, static files and what is refused), and
-- `nomade run --http` serving a replay's tree.
local t = require "testlib"
local tree_mod = require "nomade.tree"
local dashboard = require "nomade.dashboard"
local loop = require "nomade.loop"
local http = require "nomade.http"
local cjson = require "cjson"

local slurp = t.slurp

-- 1. the docs' example, event for event
local tree = tree_mod.new()
local events = {}
tree:subscribe("/", function(kind, path, data) events[#events + 1] = tree_mod.event(kind, path, data) end)
tree:put("/", { a = 1, b = 2 })
tree:put("/c", { foo = true, bar = false })
tree:patch("/c", { foo = 3, baz = 4 })
local want = {}
for block in slurp("tests/fixtures/firebase/sse_stream_docs_example.txt"):gmatch("(event: [^\n]+\ndata: [^\n]+)\n\n") do
  want[#want + 1] = block
end
t.eq(#events, #want, "three events, as the docs' stream")
for k, block in ipairs(want) do
  local wk, wd = block:match("^event: (%S+)\ndata: (.*)$")
  local gk, gd = (events[k] or ""):match("^event: (%S+)\ndata: (.-)\n\n$")
  t.ok(wk == gk and t.equal(cjson.decode(wd), cjson.decode(gd or "null")),
    "event " .. k .. " (" .. wk .. ") equals the docs' " .. (gd or "?"), wd)
end
t.ok(events[1]:match('^event: put\ndata: {"path":"/","data":'), "compact, \"path\" first, '/' unescaped", events[1])
t.ok(t.equal(tree:get("/"), cjson.decode('{"a":1,"b":2,"c":{"foo":3,"bar":false,"baz":4}}')), "the tree after them")
-- a listener below a write sees a put of its whole location
local below = {}
tree:subscribe("/c", function(kind, path, data) below[#below + 1] = { kind, path, data } end)
tree:put("/", { c = { x = 1 } })
t.ok(below[1] and below[1][1] == "put" and below[1][2] == "/" and below[1][3].x == 1,
  "a write above a listener: a put at its '/' of what is there now")
tree:patch("/c", { x = cjson.null })
t.ok(tree:get("/") == nil, "a patch with null removes, and empty parents go too (null, as Firebase)")
t.ok(not tree_mod.split("/a.b") and not tree_mod.split("/a$") and not tree_mod.split("/a[0]"),
  "keys with . $ [ ] are refused")

-- 2. the server
tree = tree_mod.new()
tree:put("/market/BTCUSDT/current", { price = 100, time = 1 })
local commands = {}
local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local f = assert(io.open(dir .. "/trading.html", "w")); f:write("<!doctype html><title>t</title>"); f:close()
-- the controls run in the request's coroutine: a halt that waits (on a
-- slow exchange) holds its answer while the loop's timers go on
local ticks, during, sources = 0, nil, {}
local ticker = loop.timer(0.02, 0.02, function() ticks = ticks + 1 end)
local srv = assert(dashboard.serve { port = 0, tree = tree, web = dir, token = "tok", keepalive = 0.3,
  on_command = function(action, source)
    commands[#commands + 1] = action
    sources[source] = true
    if action == "halt" then
      local before = ticks
      loop.sleep(0.3)
      during = ticks - before
    end
    if action == "unhalt" then return nil, "the halt file is there" end
    return "done " .. action
  end })
local base = "http://127.0.0.1:" .. srv.port
local results = {}
local function get(path, o)
  o = o or {}
  local s, h, b = http.request { url = base .. path, method = o.method or "GET", body = o.body, headers = o.headers }
  return s, b, h
end

loop.timer(0, 0, function()
  local s, b, h = get("/market/BTCUSDT/current.json")
  results.get = { s, b, h and h["content-type"], h }
  results.root = { get("/.json") }
  results.missing = { get("/nothing/here.json") }
  results.badkey = { get("/a$b.json") }
  results.put = { get("/market.json", { method = "PUT", body = "{}" }) }
  results.noauth = { get("/commands.json", { method = "POST", body = '{"action":"pause"}' }) }
  results.wrong = { get("/commands.json?auth=nope", { method = "POST", body = '{"action":"pause"}' }) }
  results.auth = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"pause"}' }) }
  results.bearer = { get("/commands.json", { method = "POST", body = '{"action":"halt"}',
    headers = { Authorization = "Bearer tok" } }) }
  results.unhalt = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"unhalt"}' }) }
  results.badaction = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"sell all"}' }) }
  results.page = { get("/trading.html") }
  results.traversal = { get("/../etc/passwd.html") }
  results.nofile = { get("/market.html") }
  results.big = { get("/commands.json?auth=tok", { method = "POST", body = string.rep("x", 100000) }) }
  results.rebound = { get("/market.json", { headers = { Host = "rebind.example:" .. srv.port } }) }
  results.cross = { get("/market.json", { headers = { Origin = "http://evil.example" } }) }
  results.cross_post = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"pause"}',
    headers = { Origin = "http://evil.example" } }) }
  results.own_origin = { get("/market.json", { headers = { Origin = base } }) }
  results.twice = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"pause","action":"halt"}' }) }
  -- a stream: curl in the background, while the tree changes
  os.execute("curl -sN -m 1.2 -H 'Accept: text/event-stream' " .. base .. "/market/BTCUSDT.json > " .. dir
    .. "/sse.out 2>&1 &")
  loop.sleep(0.2)
  tree:put("/market/BTCUSDT/current", { price = 101, time = 2 })
  tree:patch("/market/BTCUSDT/candles", { ["60000"] = { c = 5 } })
  tree:put("/shield", { state = "RED" })  -- elsewhere: not on this stream
  loop.sleep(1.4)
  results.after = { get("/market/BTCUSDT/current.json") }
  -- a stream of the root while a control is posted: the control's own
  -- write reaches it from inside the request, and later writes still flow
  os.execute("curl -sN -m 1.5 -H 'Accept: text/event-stream' " .. base .. "/.json > " .. dir .. "/root.out 2>&1 &")
  loop.sleep(0.3)
  get("/commands.json?auth=tok", { method = "POST", body = '{"action":"resume"}' })
  for k = 1, 5 do
    loop.sleep(0.1)
    tree:put("/market/BTCUSDT/current", { price = 200 + k, time = 3 + k })
  end
  loop.sleep(1.2)
  loop.stop()
end)
loop.run()
srv:close()
ticker:stop()

t.ok(results.get[1] == 200 and cjson.decode(results.get[2]).price == 100
  and results.get[3]:find("application/json", 1, true), "GET /path.json: the node, as JSON")
t.ok(results.root[1] == 200 and cjson.decode(results.root[2]).market, "GET /.json: the whole tree")
t.ok(results.missing[1] == 200 and results.missing[2] == "null", "nothing there: null, as Firebase")
t.ok(results.badkey[1] == 400 and cjson.decode(results.badkey[2]).error, "an invalid key: 400 with {error}")
t.ok(results.put[1] == 401 and cjson.decode(results.put[2]).error == "Permission denied",
  "writes other than the controls: 401 Permission denied (the tree is the runtime's)")
t.ok(results.noauth[1] == 401 and results.wrong[1] == 401, "a control without the token, or with a wrong one: 401")
t.ok(results.auth[1] == 200 and cjson.decode(results.auth[2]).name:match("^%-[%w_%-]+$")
  and #cjson.decode(results.auth[2]).name == 20, "with ?auth=token: done, answered {name: a push id}",
  results.auth[2])
t.ok(results.bearer[1] == 200, "or with Authorization: Bearer")
t.ok(during and during > 0, "while a control waits, the loop goes on (timer ticks meanwhile: "
  .. tostring(during) .. ")")
t.eq(results.bearer[2] and cjson.decode(results.bearer[2]).result, "done halt",
  "a control that waited is answered with its result once done")
t.eq(results.unhalt[2] and cjson.decode(results.unhalt[2]).result, "refused: the halt file is there",
  "unhalt is a control; its refusal is the answer")
t.eq(table.concat(commands, ","), "pause,halt,unhalt,resume", "the controls reached the runtime, once each")
t.ok(sources.dashboard and next(sources, next(sources)) == nil, "credited to the dashboard")
t.ok(results.badaction[1] == 400, "an unknown action: 400")
local recorded = tree:get("/commands")
local n, all_told = 0, true
for _, c in pairs(recorded or {}) do
  n = n + 1
  all_told = all_told and c.source == "dashboard" and (c.result:match("^done ") or c.result:match("^refused: ")) ~= nil
end
t.ok(n == 4 and all_told, "each command is in the tree with its source and result")
t.ok(results.page[1] == 200 and results.page[2]:find("<title>t</title>", 1, true), "the pages are served")
t.ok(results.traversal[1] == 404 and results.nofile[1] == 404, "no file outside web/, and 404 for a missing one")
t.eq(results.big[1], 413, "a body over the limit: 413")
t.ok(results.get[4] and not results.get[4]["access-control-allow-origin"], "no CORS header: no other origin may read")
t.ok(results.rebound[1] == 403 and results.cross[1] == 403 and results.cross_post[1] == 403,
  "over the wire: a foreign Host (DNS rebinding), a foreign Origin, a control from one: 403",
  tostring(results.rebound[1]) .. " " .. tostring(results.cross[1]) .. " " .. tostring(results.cross_post[1]))
t.eq(results.own_origin[1], 200, "the pages' own origin reads")
t.eq(results.twice[1], 400, "a control with the action twice: 400")
local sse = slurp(dir .. "/sse.out")
local kinds = {}
for kind, data in sse:gmatch("event: (%S+)\ndata: ([^\n]*)\n\n") do kinds[#kinds + 1] = kind .. " " .. data end
t.ok(kinds[1] and kinds[1]:match('^put {"path":"/","data":{"current":{'), "a stream starts with a put of all of it",
  sse)
t.ok(kinds[2] == 'put {"path":"/current","data":{"price":101,"time":2}}' or
  kinds[2] == 'put {"path":"/current","data":{"time":2,"price":101}}', "a put below: its path relative to the stream",
  kinds[2])
t.ok(kinds[3] == 'patch {"path":"/candles","data":{"60000":{"c":5}}}', "a patch, relative", kinds[3])
local alive = 0
for _, k in ipairs(kinds) do
  if k == "keep-alive null" then alive = alive + 1 end
  t.ok(not k:find("RED", 1, true), "nothing from elsewhere in the tree: " .. k:sub(1, 40))
end
t.ok(alive >= 2, "keep-alive events on a quiet stream (" .. alive .. ")")
t.ok(results.after[1] == 200, "the server goes on after a client went away")
local root = slurp(dir .. "/root.out")
t.ok(root:find('"path":"/commands/', 1, true) and root:find('"price":205', 1, true),
  "a stream gets a control's write, and every write after it", root:sub(-300))

-- 2a. who may ask, the classes, through the handler itself: a Host that
-- names this machine (localhost, an address) and no Origin but the
-- request's own; a control's body with any key twice, however spelt
local done = {}
local handle = dashboard.handler { tree = tree_mod.new(), token = "tok", web = dir,
  on_command = function(action) done[#done + 1] = action return "done" end }
local function ask(host, origin, path, body)
  return handle { method = body and "POST" or "GET", path = path or "/market.json", query = { auth = "tok" },
    headers = { host = host, origin = origin }, body = body or "" }.status
end
local bad = {}
for _, host in ipairs({ "evil.example", "evil.example:8080", "127.0.0.1.evil.example:8080", "localhost.evil.example",
  "localhost.:8080", "127.0.0.1:8080@evil.example", "evil.example#127.0.0.1", "1.2.3.4.5", "256.0.0.1", "0127.0.0.1",
  "127.0.0.1:80x", "127.0.0.1:", "[::1", "[evil.example]", "", false }) do
  for _, path in ipairs({ "/market.json", "/trading.html" }) do
    if ask(host or nil, nil, path) ~= 403 then bad[#bad + 1] = tostring(host) .. path end
  end
  if ask(host or nil, nil, "/commands.json", '{"action":"pause"}') ~= 403 then bad[#bad + 1] = tostring(host) .. " POST" end
end
t.ok(#bad == 0, "a Host that is not this machine's address or localhost: 403, pages, reads and controls",
  table.concat(bad, ", "))
bad = {}
for _, host in ipairs({ "127.0.0.1:8080", "localhost:8080", "LOCALHOST", "127.0.0.1", "10.1.2.3:8080", "[::1]:8080" }) do
  if ask(host) ~= 200 or ask(host, "http://" .. host) ~= 200 then bad[#bad + 1] = host end
end
t.ok(#bad == 0, "this machine by address or as localhost, with its own origin or none: answered", table.concat(bad, ", "))
bad = {}
for _, origin in ipairs({ "http://evil.example", "null", "http://127.0.0.1:8081", "http://localhost:8080",
  "http://127.0.0.1", "file://", "http://127.0.0.1:8080.evil.example", "" }) do
  if ask("127.0.0.1:8080", origin) ~= 403 or ask("127.0.0.1:8080", origin, "/commands.json", '{"action":"pause"}') ~= 403 then
    bad[#bad + 1] = origin
  end
end
t.ok(#bad == 0 and #done == 0, "any other Origin (another port, another name, null): 403, reads and controls",
  table.concat(bad, ", "))
bad = {}
for _, body in ipairs({ '{"action":"pause","action":"halt"}', '{"action":"halt","act\\u0069on":"pause"}',
  '{"action":"pause","time":1,"action":"pause"}', '{ "action" : "halt" , "action":"halt"}',
  '{"x":{"a":1,"a":2},"action":"pause"}', '{"action":"pause","x":[{"k":1},{"k":2,"k":3}]}' }) do
  if ask("127.0.0.1:8080", nil, "/commands.json", body) ~= 400 then bad[#bad + 1] = body end
end
t.ok(#bad == 0 and #done == 0, "a control's body with a key twice (escaped, nested, the same value): 400, nothing done",
  table.concat(bad, " "))
t.ok(ask("127.0.0.1:8080", "http://127.0.0.1:8080", "/commands.json",
  '{"action":"pause","time":{".sv":"timestamp"},"x":[{"k":1},{"k":2}],"s":"\\"action\\":"}') == 200
  and done[1] == "pause", "the same keys in different objects, or inside a string, are no duplicate")

-- 2b. nomade.httpd: a handler that waits is answered when it returns, one
-- that fails after waiting answers 500, and closing the server while one
-- waits ends its connection
local httpd = require "nomade.httpd"
local waits = assert(httpd.listen { port = 0, handler = function(req)
  loop.sleep(req.path == "/hang" and 30 or 0.05)
  if req.path == "/fail" then error("the handler broke") end
  return { status = 201, body = "late " .. req.path }
end })
local wbase = "http://127.0.0.1:" .. waits.port
local waited = {}
loop.timer(0, 0, function()
  waited.slow = { http.request { url = wbase .. "/slow" } }
  waited.fail = { http.request { url = wbase .. "/fail" } }
  loop.timer(0.2, 0, function() waits:close() end)
  waited.hang = { http.request { url = wbase .. "/hang", timeout = 5 } }
  loop.stop()
end)
loop.run()
t.ok(waited.slow[1] == 201 and waited.slow[3] == "late /slow", "a handler that yields: answered once it returns",
  tostring(waited.slow[1]))
t.eq(waited.fail[1], 500, "one that fails after a yield: 500")
t.ok(waited.hang[1] == nil and waited.hang[2] ~= "timeout", "closing the server ends a waiting handler's connection",
  tostring(waited.hang[2]))

-- 2c. hostile clients (tests/stand-ins/hostile_clients.py): more than 64
-- half-open connections held, a request never finished from one address
-- and nothing at all from five others; the server still answers, one
-- address holds no more than per_ip (16), and libmicrohttpd closes the
-- held ones once idle. Then what it never times out, the suspended
-- connections: a handler past `wait` answers 503, a client gone while its
-- handler waits or its stream is quiet is closed at once, and a stream
-- never read is dropped past max_unsent (as the REPL drops such a client)
local hdir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. hdir)
local function hold(name, port, count, from, send, secs, rcvbuf)
  os.execute(string.format("/usr/bin/python3 tests/stand-ins/hostile_clients.py hold %d %d %s %s %g %d > %s/%s 2>&1 &",
    port, count, from, t.q(send), secs, rcvbuf or 0, hdir, name))
end
local function report(name)
  local line = slurp(hdir .. "/" .. name):match("\n({[^\n]*})")
  return line and cjson.decode(line)
end
local function closed(rep)
  local count = 0
  for _, at in ipairs(rep and rep.closed or {}) do if at ~= cjson.null then count = count + 1 end end
  return count
end
local function until_(cond, secs)
  for _ = 1, secs * 20 do
    if cond() then return true end
    loop.sleep(0.05)
  end
  return cond()
end
local opened, streams_closed, sent_before_false = 0, 0, nil
local hostile = assert(httpd.listen { port = 0, idle = 1, wait = 20, max_unsent = 1 << 20, handler = function(req)
  if req.path == "/hang" then loop.sleep(30) end
  if req.path == "/stream" then
    opened = opened + 1
    return { status = 200, headers = { ["Content-Type"] = "text/event-stream" },
      on_close = function() streams_closed = streams_closed + 1 end,
      stream = function(st) if req.query.flood then
        local chunk, total = string.rep("x", 65536), 0
        while st:send(chunk) and total < 64 << 20 do
          total = total + #chunk
          loop.sleep(0.002)
        end
        sent_before_false = total
      end end }
  end
  return { status = 200, body = "ok" }
end })
local hostile_wait = assert(httpd.listen { port = 0, wait = 1, handler = function() loop.sleep(30) return {} end })
local seen = {}
loop.timer(0, 0, function()
  local port = hostile.port
  hold("one", port, 70, "127.0.0.2", "GET / HTTP/1.1\\r\\nHost: x\\r\\n", 8)
  hold("many", port, 70, "127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7", "", 8)
  seen.all_held = until_(function() return hostile.connections >= 86 end, 5)
  loop.sleep(0.3)
  seen.held = hostile.connections
  seen.get = { http.request { url = "http://127.0.0.1:" .. port .. "/x", timeout = 3 } }
  seen.released = until_(function() return report("one") and report("many") end, 10)
  seen.after = until_(function() return hostile.connections == 0 end, 3) and 0 or hostile.connections
  -- suspended: a handler past `wait`; clients gone while a handler waits
  -- and while a stream is quiet
  seen.late = { http.request { url = "http://127.0.0.1:" .. hostile_wait.port .. "/", timeout = 5 } }
  hold("gone", port, 3, "127.0.0.8", "GET /hang HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 0.3)
  hold("quiet", port, 3, "127.0.0.9", "GET /stream HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 0.3)
  seen.gone_held = until_(function() return hostile.connections == 6 end, 3)
  seen.gone = until_(function() return hostile.connections == 0 and streams_closed == 3 end, 4)
  -- a stream never read, its client's buffer small
  hold("flood", port, 1, "127.0.0.10", "GET /stream?flood=1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 10, 4096)
  seen.dropped = until_(function() return sent_before_false ~= nil and streams_closed == 4 end, 8)
  loop.stop()
end)
loop.run()
hostile:close()
hostile_wait:close()
t.ok(seen.all_held and seen.held == 86, "86 half-open connections: all of the five addresses' 70, and 16 of the one's 70",
  tostring(seen.held))
t.eq(seen.get[1], 200, "a normal GET is answered meanwhile")
t.ok(seen.released and closed(report("one")) == 70 and closed(report("many")) == 70 and seen.after == 0,
  "every held connection is closed by the server once idle (1 s here)",
  slurp(hdir .. "/one"):sub(-300) .. " / " .. tostring(seen.after))
t.ok(seen.late[1] == 503 and cjson.decode(seen.late[3] or "null"), "a handler past `wait` answers 503 (it goes on)",
  tostring(seen.late[1]) .. " " .. tostring(seen.late[2]))
t.ok(seen.gone_held and seen.gone, "clients gone while suspended (a waiting handler, a quiet stream): closed, on_close run",
  tostring(streams_closed))
-- what the kernel's buffers take comes on top of max_unsent
t.ok(seen.dropped and sent_before_false < 16 << 20, "a stream never read is dropped past max_unsent (1 MB here), "
  .. "not fed the 64 MB offered: " .. tostring(sent_before_false) .. " bytes taken")

-- 3. nomade run --http: a replay's tree
local jdir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. jdir)
local out = jdir .. "/out"
os.execute(string.format("NOMADE_DASHBOARD_TOKEN=secret-token %s run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv "
  .. "--speed 7200 --journal %s/j --socket %s/sock --http 127.0.0.1:0 --log-format json > %s 2>&1 & echo $! > %s.pid",
  t.bin, jdir, jdir, out, out))
local url
for _ = 1, 100 do
  url = slurp(out):match('"url":"(http:[^"]+)"')
  if url then break end
  os.execute("sleep 0.05")
end
url = url and url:gsub("\\/", "/")
t.ok(url, "nomade run prints the dashboard's address", slurp(out):sub(1, 500))
os.execute("sleep 1.5")
local function fetch(path)
  local s, _, b = http.request { url = url .. path:sub(2) }
  return s == 200 and cjson.decode(b)
end
local status = fetch("/bot/status.json")
t.ok(status and status.mode == "paper" and status.symbol == "BTCUSDT" and status.candles > 200,
  "bot/status: mode, symbol, candles", status and cjson.encode(status))
local candles = fetch("/market/BTCUSDT/candles.json")
local count, last = 0, nil
for _, c in pairs(candles or {}) do count = count + 1 if not last or c.t > last.t then last = c end end
t.ok(count > 100 and count <= 300 and last.ind.ema200 and last.ind.rsi and last.regime,
  "market/BTCUSDT/candles: the recent candles with indicators and regime (" .. count .. ")")
t.ok(fetch("/shield/state.json"), "shield/state")
t.ok(type(fetch("/equity.json")) == "table", "equity")
-- the controls from the dashboard: credited to it; unhalt refused while the
-- halt file exists; the shield's times on the replay's clock, as its candles
local function control(action)
  local s, _, b = http.request { url = url .. "commands.json?auth=secret-token", method = "POST",
    body = cjson.encode({ action = action }) }
  return s == 200 and cjson.decode(b).result or b
end
t.eq(control("halt"), "halted: halt from the dashboard", "halt from the dashboard: its result")
os.execute("sleep 1.2")  -- bot/status and the shield are synced once a second
local halted_status, halted_shield = fetch("/bot/status.json"), fetch("/shield.json")
os.execute("touch " .. jdir .. "/j.halt")
local refused = control("unhalt")
t.ok(refused and refused:match("^refused: the halt file .* still exists"), "unhalt refused while the halt file exists",
  refused)
os.remove(jdir .. "/j.halt")
t.eq(control("unhalt"), "unhalted", "and done once it is gone")
t.ok(halted_status and halted_status.halted == "halt from the dashboard", "bot/status says who halted",
  halted_status and tostring(halted_status.halted))
local since = halted_shield and halted_shield.reasons and halted_shield.reasons.halted
  and halted_shield.reasons.halted.since
local REPLAY_FROM, REPLAY_TO = 1640995200000, 1704067200000  -- the file's 2022 .. 2023
t.ok(since and since >= REPLAY_FROM and since < REPLAY_TO, "the halt's time is the replay's clock",
  tostring(since))
local off_clock = {}
for _, tr in pairs(halted_shield and halted_shield.transitions or {}) do
  if not (tr.time >= REPLAY_FROM and tr.time < REPLAY_TO) then off_clock[#off_clock + 1] = tr.check .. " " .. tr.time end
end
t.ok(halted_shield and next(halted_shield.transitions or {}) and #off_clock == 0,
  "every shield transition on the replay's clock", table.concat(off_clock, ", "))
local log = slurp(out)
local credited = { command = 0, halt = 0, unhalt = 0 }
for line in log:gmatch("[^\n]+") do
  local ok, ev = pcall(cjson.decode, line)
  if ok and type(ev) == "table" and credited[ev.event] and (ev.from == "dashboard" or ev.event == "halt"
    and ev.why == "halt from the dashboard") then
    credited[ev.event] = credited[ev.event] + 1
  end
end
t.ok(credited.command == 3 and credited.halt == 1 and credited.unhalt == 1,
  "the log credits the dashboard (controls, the halt, the unhalt)", cjson.encode(credited))
t.ok(not log:find("secret-token", 1, true), "a configured token is not printed")
os.execute("kill -TERM $(cat " .. out .. ".pid)")
t.done()
