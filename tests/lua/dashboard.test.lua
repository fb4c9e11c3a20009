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

local function slurp(p)
  local f = io.open(p, "rb")
  if not f then return "" end  -- a background shell may not have made it yet
  local s = f:read("a")
  f:close()
  return s
end

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
local srv = assert(dashboard.serve { port = 0, tree = tree, web = dir, token = "tok", keepalive = 0.3,
  on_command = function(action) commands[#commands + 1] = action return "done " .. action end })
local base = "http://127.0.0.1:" .. srv.port
local results = {}
local function get(path, o)
  o = o or {}
  local s, h, b = http.request { url = base .. path, method = o.method or "GET", body = o.body, headers = o.headers }
  return s, b, h
end

loop.timer(0, 0, function()
  local s, b, h = get("/market/BTCUSDT/current.json")
  results.get = { s, b, h and h["content-type"] }
  results.root = { get("/.json") }
  results.missing = { get("/nothing/here.json") }
  results.badkey = { get("/a$b.json") }
  results.put = { get("/market.json", { method = "PUT", body = "{}" }) }
  results.noauth = { get("/commands.json", { method = "POST", body = '{"action":"pause"}' }) }
  results.wrong = { get("/commands.json?auth=nope", { method = "POST", body = '{"action":"pause"}' }) }
  results.auth = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"pause"}' }) }
  results.bearer = { get("/commands.json", { method = "POST", body = '{"action":"halt"}',
    headers = { Authorization = "Bearer tok" } }) }
  results.badaction = { get("/commands.json?auth=tok", { method = "POST", body = '{"action":"sell all"}' }) }
  results.page = { get("/trading.html") }
  results.traversal = { get("/../etc/passwd.html") }
  results.nofile = { get("/market.html") }
  results.big = { get("/commands.json?auth=tok", { method = "POST", body = string.rep("x", 100000) }) }
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
t.eq(table.concat(commands, ","), "pause,halt,resume", "the controls reached the runtime, once each")
t.ok(results.badaction[1] == 400, "an unknown action: 400")
local recorded = tree:get("/commands")
local n, one = 0, nil
for _, c in pairs(recorded or {}) do n = n + 1 one = c end
t.ok(n == 3 and one.result:match("^done "), "each command is in the tree with its result")
t.ok(results.page[1] == 200 and results.page[2]:find("<title>t</title>", 1, true), "the pages are served")
t.ok(results.traversal[1] == 404 and results.nofile[1] == 404, "no file outside web/, and 404 for a missing one")
t.eq(results.big[1], 413, "a body over the limit: 413")
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
local log = slurp(out)
t.ok(not log:find("secret-token", 1, true), "a configured token is not printed")
os.execute("kill -TERM $(cat " .. out .. ".pid)")
t.done()
