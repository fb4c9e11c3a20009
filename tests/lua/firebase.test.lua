-- nomade run --firebase against the Firebase stand-in
-- (tests/stand-ins/firebase): the tree arrives as multi-location PATCHes,
-- at most about one a second, and equals what nomade serves itself; a
-- refused credential and a 503 are retried while trading goes on; the
-- credential appears in no log line; no credential is a clear refusal;
-- with --firebase-commands, the database's /commands are obeyed once, and
-- one that waits does not hold the loop.
local t = require "testlib"
local http = require "nomade.http"
local cjson = require "cjson"

local slurp = t.slurp

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
  if mine and theirs and t.equal(mine, theirs) then same = true break end
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

-- 3. commands from the database (--firebase-commands): a new one is
-- carried out and answered; an old one is not; without the flag, none
control { reset = true }
local function post(action, time)
  local s, _, b = http.request { url = base .. "/commands.json?auth=test-db-secret", method = "POST",
    body = cjson.encode({ action = action, time = time or { [".sv"] = "timestamp" } }) }
  return s == 200 and cjson.decode(b).name
end
local stale = post("halt", 1000)
p = start("f", "test-db-secret", "--firebase-commands")
os.execute("sleep 1.5")
local fresh = post("pause")
local done
for _ = 1, 50 do
  done = get(base .. "/commands/" .. tostring(fresh) .. ".json")
  if done and done.result then break end
  os.execute("sleep 0.1")
end
t.ok(done and done.result == "entries paused", "a new command is carried out and answered in the database",
  done and cjson.encode(done))
local old = get(base .. "/commands/" .. tostring(stale) .. ".json")
t.ok(old and old.result == "expired: not carried out", "an old one found unhandled is not carried out",
  old and cjson.encode(old))
log = slurp(p.out)
t.ok(log:find('"from":"firebase"', 1, true) and not log:find("HALT", 1, true), "paused, not halted")
local own2 = log:match('"url":"(http:[^"]+)"')
own2 = own2 and own2:gsub("\\/", "/")
local mine_status
for _ = 1, 30 do  -- bot/status is synced once a second
  mine_status = own2 and get(own2 .. "bot/status.json")
  if mine_status and mine_status.paused then break end
  os.execute("sleep 0.1")
end
t.ok(mine_status and mine_status.paused == true, "the run is paused")
local pub = get(base .. "/commands.json")
local kept = 0
for _ in pairs(pub or {}) do kept = kept + 1 end
t.eq(kept, 2, "the publisher leaves the database's /commands alone")
os.execute("kill -TERM " .. p.pid)
p = start("g", "test-db-secret")
os.execute("sleep 1.5")
local ignored = post("halt")
os.execute("sleep 1.5")
local left = get(base .. "/commands/" .. tostring(ignored) .. ".json")
t.ok(left and left.result == nil and not slurp(p.out):find('"from":"firebase"', 1, true),
  "without --firebase-commands a command is left alone")
os.execute("kill -TERM " .. p.pid)

-- 3b. a command that waits (a halt on a slow exchange) runs in a coroutine
-- of its own: the loop goes on meanwhile, and its answer follows
control { reset = true }
local loop = require "nomade.loop"
local pub_direct = assert(require("nomade.firebase").new { url = base, auth = "test-db-secret",
  tree = require("nomade.tree").new() })
local ticks, during, source = 0, nil, nil
local ticker = loop.timer(0.02, 0.02, function() ticks = ticks + 1 end)
pub_direct:listen(function(action, from)
  source = from
  local before = ticks
  loop.sleep(0.3)
  during = ticks - before
  return "done " .. action
end)
local waited
loop.timer(0.5, 0, function()
  local name = post("halt")
  for _ = 1, 50 do
    waited = get(base .. "/commands/" .. tostring(name) .. ".json")
    if waited and waited.result then break end
    loop.sleep(0.1)
  end
  loop.stop()
end)
loop.run()
ticker:stop()
pub_direct:stop()
t.ok(during and during > 0, "while a Firebase command waits, the loop goes on (" .. tostring(during) .. " ticks)")
t.ok(waited and waited.result == "done halt" and source == "firebase",
  "and it is answered in the database once done, credited to Firebase", waited and cjson.encode(waited))

-- 4. no credential
local rc, _, err = t.run("run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --journal " .. dir
  .. "/d.j --socket " .. dir .. "/d.sock --http off --firebase " .. base, "FIREBASE_AUTH=")
t.ok(rc ~= 0 and err:find("FIREBASE_AUTH", 1, true), "no credential: refused, naming it", err)
rc, _, err = t.run("run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --journal " .. dir
  .. "/e.j --socket " .. dir .. "/e.sock --http off --firebase " .. base .. "/path", "FIREBASE_AUTH=x")
t.ok(rc ~= 0 and err:find("no path", 1, true), "a URL with a path: refused", err)
stop()
t.done()
