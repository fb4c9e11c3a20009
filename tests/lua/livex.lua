-- livex: live execution against the Bybit stand-in, for the tests of
-- `nomade run --exec bybit` (exec.test.lua, crash.test.lua, the soak).
-- The stand-in's clock is moved forward a minute at a time, so a 1m
-- candle closes whenever a test says so.
local t = require "testlib"
local cjson = require "cjson"

local M = {}

M.KEYS = "BYBIT_API_KEY=test-key BYBIT_API_SECRET=test-secret-0123456789"

local function slurp(p)
  local f = io.open(p)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.sleep(s) os.execute("sleep " .. s) end

-- the stand-in: {base, rest, ws, control, stop}
function M.exchange(args)
  local base, stop, line = t.serve("tests/stand-ins/bybit/server.py", args)
  if not base then return nil end
  local ws = line:match("LISTENING %d+ (%d+)")
  return { base = base, control = t.control(base), stop = stop,
    public = "ws://127.0.0.1:" .. ws .. "/v5/public/spot", private = "ws://127.0.0.1:" .. ws .. "/v5/private" }
end

-- the stand-in's clock to just past the close of its current minute: one
-- 1m candle closes (and is pushed, confirm: true)
function M.close_candle(ex)
  local st = ex.control()
  local now = st.server_time
  local boundary = (now // 60000 + 1) * 60000
  ex.control { clock_offset_ms = st.clock_offset_ms + boundary + 150 - now }
  return boundary
end

-- the minute whose prices the stand-in's series shows while pinned: its
-- closes lie about 5% under the book's fixed ask (20518), so a position
-- bought there shows a loss at the next close
M.PRICES_AT = 1796066640000  -- 2026-11-30 19:24 UTC

-- the stand-in pinned, whatever the wall clock: its series shows the
-- prices of M.PRICES_AT from its current minute on, and when fewer than
-- `minutes` (10) are left in its UTC day its clock moves past midnight,
-- so the candles a test closes next fall in one UTC day
function M.pin(ex, minutes)
  local st = ex.control()
  local offset, now = st.clock_offset_ms, st.server_time
  local left = 86400000 - now % 86400000
  if left < (minutes or 10) * 60000 then offset, now = offset + left + 1000, now + left + 1000 end
  ex.control { clock_offset_ms = offset, series_offset_ms = M.PRICES_AT - now // 60000 * 60000 }
end

-- a strategy file in dir: enters on every candle it may, exits one candle
-- later; `extra` adds settings, `exit` replaces the exit function
function M.strategy(dir, extra, exit)
  local path = dir .. "/s.lua"
  local f = assert(io.open(path, "w"))
  f:write(string.format([[
settings = { symbol = "BTCUSDT", interval = "1m", history = 20, position_size = 0.5%s }
indicators = { ema5 = ta.ema(5) }
function regime(m) return "any" end
function entry(m, r, v) if v then return { type = "market" } end return true end
%s
function prompt() return "p" end
]], extra and ", " .. extra or "", exit or 'function exit(m, p) if m.index > p.index then return "one candle" end end'))
  f:close()
  return path
end

function M.tmpdir()
  local dir = os.tmpname() .. ".d"
  os.execute("mkdir -p " .. dir)
  return dir
end

-- nomade run --exec bybit against ex, in the background: a handle
function M.start(ex, dir, extra, env)
  local out = dir .. "/out." .. tostring(math.random(1, 1e9))
  os.execute(string.format("%s %s run %s --feed bybit --exec bybit --base-url %s --ws-url %s --private-url %s "
    .. "--journal %s/j.journal --socket %s/sock --log-format json %s %s > %s 2>&1 & "
    .. "echo $! > %s.pid", env or M.KEYS, t.bin, dir .. "/s.lua", ex.base, ex.public, ex.private, dir, dir,
    (extra or ""):find("--shield", 1, true) and "" or "--shield max_skew=3600,recovery=1", extra or "", out, out))
  local p = { out = out, pid = slurp(out .. ".pid"):match("%d+"), dir = dir }
  p.ready = M.wait(p, 15, "start") ~= nil and M.subscribed(ex)
  return p
end

-- until the stand-in sees the run subscribed to its kline topic and its
-- private topics: before that, a candle closing would not reach it
function M.subscribed(ex, seconds)
  for _ = 1, (seconds or 10) * 20 do
    local public, private = false, false
    for _, c in ipairs(ex.control().ws.clients or {}) do
      local topics = table.concat(c.topics or {}, " ")
      if c.path:find("public", 1, true) and topics:find("kline", 1, true) then public = true end
      if c.path:find("private", 1, true) and c.authenticated and topics:find("execution", 1, true) then private = true end
    end
    if public and private then return true end
    M.sleep(0.05)
  end
  return false
end

function M.events(p)
  local list = {}
  for line in slurp(p.out):gmatch("[^\n]+") do
    local ok, doc = pcall(cjson.decode, line)
    if ok and type(doc) == "table" then list[#list + 1] = doc end
  end
  return list
end

-- every event named event (and matching pred)
function M.all(p, event, pred)
  local out = {}
  for _, e in ipairs(M.events(p)) do
    if e.event == event and (not pred or pred(e)) then out[#out + 1] = e end
  end
  return out
end

function M.wait(p, seconds, event, pred, count)
  for _ = 1, seconds * 20 do
    local got = M.all(p, event, pred)
    if #got >= (count or 1) then return got[count or 1] end
    M.sleep(0.05)
  end
end

function M.alive(p) return os.execute("kill -0 " .. p.pid .. " 2>/dev/null") end

function M.stop(p, signal)
  os.execute("kill -" .. (signal or "TERM") .. " " .. p.pid .. " 2>/dev/null")
  for _ = 1, 200 do
    if not M.alive(p) then return true end
    M.sleep(0.05)
  end
  os.execute("kill -9 " .. p.pid)
  return false
end

-- an expression in the running process's REPL -> its value, or nil, error
function M.repl(p, expr)
  local rc, out = t.run("repl --socket " .. p.dir .. "/sock -e " .. t.q(expr))
  local ok, doc = pcall(cjson.decode, out)
  if rc ~= 0 or not ok or type(doc) ~= "table" then return nil, out end
  if not doc.ok then return nil, doc.error end
  return doc.value
end

-- the exchange's side: orders whose orderLinkId starts with prefix (all
-- nomade's: "nmd"), oldest first, and the wallet
function M.orders(ex, prefix)
  local out = {}
  for _, o in ipairs(ex.control().orders or {}) do
    if o.orderLinkId:sub(1, #(prefix or "nmd")) == (prefix or "nmd") then out[#out + 1] = o end
  end
  table.sort(out, function(a, b) return tonumber(a.createdTime) < tonumber(b.createdTime) end)
  return out
end

function M.wallet(ex)
  local b = ex.control().balances
  return tonumber(b.BTC and b.BTC.walletBalance or 0), tonumber(b.USDT and b.USDT.walletBalance or 0)
end

-- waits until the process's book equals the exchange's wallet: true, or
-- false and what differed
function M.agrees(p, ex, seconds)
  local why
  for _ = 1, (seconds or 5) * 10 do
    local b, err = M.repl(p, "book()")
    local base, quote = M.wallet(ex)
    if b and math.abs(b.base - base) < 1e-9 and math.abs(b.quote - quote) < 1e-6 and not b.pending then
      -- the coins the journal's fills put on the account (the position,
      -- and the dust each sell leaves below the qty step) are the account's
      local pos = b.position and b.position.qty or 0
      if math.abs(b.held - base) < 1e-12 and base - pos >= -1e-12 then return true end
      why = string.format("position %.9g, held %.9g, exchange BTC %.9g", pos, b.held, base)
    else
      why = b and string.format("book base %s quote %s pending %s; exchange BTC %s USDT %s", b.base, b.quote,
        tostring(b.pending), base, quote) or tostring(err)
    end
    M.sleep(0.1)
  end
  return false, why
end

return M
