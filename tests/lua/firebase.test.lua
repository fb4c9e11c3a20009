-- nomade run --firebase against the Firebase stand-in
-- (tests/stand-ins/firebase): the tree arrives as multi-location PATCHes,
-- at most about one a second, and equals what nomade serves itself; a
-- refused credential and a 503 are retried while trading goes on; the
-- credential appears in no log line; no credential is a clear refusal.
local t = require "testlib"
local http = require "nomade.http"
local cjson = require "cjson"

local function slurp(p)
  local f = io.open(p, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local base, stop = t.serve("tests/stand-ins/firebase/server.py")
t.ok(base, "the stand-in started")
local control = t.control(base)
local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)

local function start(name, auth, extra)
  local out = dir .. "/" .. name
  os.execute(string.format("FIREBASE_AUTH=%s %s run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv "
    .. "--speed 1800 --journal %s/%s.j --socket %s/%s.sock --http 127.0.0.1:0 --firebase %s --log-format json %s "
    .. "> %s 2>&1 & echo $! > %s.pid", auth, t.bin, dir, name, dir, name, base, extra or "", out, out))
  return { out = out, pid = slurp(out .. ".pid"):match("%d+") }
end

local function get(url)
  local s, _, b = http.request { url = url }
  return s == 200 and cjson.decode(b) or nil
end

local function equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- 1. published
local p = start("a", "test-db-secret")
os.execute("sleep 3")
local status = get(base .. "/bot/status.json")
t.ok(status and status.mode == "paper" and status.symbol == "BTCUSDT", "bot/status reaches the database",
  slurp(p.out):sub(-600))
local own = slurp(p.out):match('"url":"(http:[^"]+)"')
own = own and own:gsub("\\/", "/")
-- a candle every 2 s, a PATCH every second: between them the trees agree
local same = false
for _ = 1, 60 do
  local mine = own and get(own .. "market/BTCUSDT/candles.json")
  local theirs = get(base .. "/market/BTCUSDT/candles.json")
  if mine and theirs and equal(mine, theirs) then same = true break end
  os.execute("sleep 0.1")
end
t.ok(same, "the database's candles equal nomade's own tree")
local patches, puts, first, last = 0, 0, nil, nil
for _, r in ipairs(control().log or {}) do
  if r.method == "PATCH" then
    patches = patches + 1
    first, last = first or r.time, r.time
  elseif r.method == "PUT" or r.method == "POST" then
    puts = puts + 1
  end
end
t.ok(patches >= 2 and puts == 0, "multi-location PATCHes only (" .. patches .. ")")
t.ok(first and (last - first) / 1000 >= (patches - 1) * 0.8, "about one a second at most")
os.execute("kill -TERM " .. p.pid)
t.ok(not slurp(p.out):find("test-db-secret", 1, true), "the credential is in no log line")

-- 2. refused, then unavailable: retried, and trading goes on
control { reset = true }
p = start("b", "wrong-secret")
os.execute("sleep 2.5")
local log = slurp(p.out)
t.ok(log:find('"event":"firebase"', 1, true) and log:find("HTTP 401", 1, true), "a refused credential: said", log:sub(-400))
t.ok(not log:find("wrong-secret", 1, true), "without the credential")
local candles = 0
for _ in log:gmatch('"event":"candle"') do candles = candles + 1 end
t.ok(candles >= 2, "trading goes on meanwhile (" .. candles .. " candles)")
os.execute("kill -TERM " .. p.pid)

control { reset = true }
control { faults = { { fault = 503, count = 2 } } }
p = start("c", "test-db-secret")
os.execute("sleep 4.5")
log = slurp(p.out)
t.ok(log:find("HTTP 503", 1, true) and get(base .. "/bot/status.json"), "503 twice: retried, then published",
  log:sub(-400))
os.execute("kill -TERM " .. p.pid)

-- 3. no credential
local rc, _, err = t.run("run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --journal " .. dir
  .. "/d.j --socket " .. dir .. "/d.sock --http off --firebase " .. base, "FIREBASE_AUTH=")
t.ok(rc ~= 0 and err:find("FIREBASE_AUTH", 1, true), "no credential: refused, naming it", err)
rc, _, err = t.run("run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --journal " .. dir
  .. "/e.j --socket " .. dir .. "/e.sock --http off --firebase " .. base .. "/path", "FIREBASE_AUTH=x")
t.ok(rc ~= 0 and err:find("no path", 1, true), "a URL with a path: refused", err)
stop()
t.done()
