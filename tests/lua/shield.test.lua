-- The Integrity Shield from Lua: the real Binance halt of 2023-03-24
-- (1m: 72 flat zero-volume minutes from 11:28, then 80 missing; 1h: a
-- flat zero-volume 12:00 and no 13:00) trips it on the right candle and it
-- turns GREEN only after the hysteresis; a strategy that wants in and out
-- on every candle gets no order past the gate unless GREEN (AMBER: exits
-- only); a property test at the book's gate; nomade run and --shield.
local t = require "testlib"
local bt = require "btlib"
local core = require "nomade._shield"
local paper = require "nomade.paper"
local cjson = require "cjson"

local function iso(ms) return os.date("!%Y-%m-%d %H:%M", ms // 1000) end

-- wants to enter on every flat candle and to leave on every candle after
local EAGER = bt.file([[
settings = { interval = "%s", history = 5 }
indicators = { e = ta.ema(5) }
function regime(m) return "ANY" end
function entry(m, r, v) return true end
function exit(m, p) return "out" end
function prompt() return "p" end
]])
local function eager(interval)
  local f = assert(io.open(EAGER)); local src = f:read("a"); f:close()
  return bt.file(src:format(interval))
end

-- every order went out in a state that allowed it: entries decided on a
-- GREEN candle, exits (but stops and takes) on a GREEN or AMBER one
local function orders_allowed(r)
  local c, at = r.c, {}
  for i = 1, c.n do at[c.time[i]] = i end
  local function state(i) return core.state_at(c.state, i) end
  for _, tr in ipairs(r.book.trades) do
    local entry_state = state(at[tr.entry_time] - 1)
    if entry_state ~= "GREEN" then return false, "an entry decided while " .. entry_state .. " at " .. iso(tr.entry_time) end
    if tr.reason == "out" then
      local exit_state = state(at[tr.exit_time] - 1)
      if exit_state == "RED" then return false, "an exit decided while RED at " .. iso(tr.exit_time) end
    end
  end
  return true
end

local function transitions(r)
  local out = {}
  for _, tr in ipairs(r.shield.transitions) do
    out[#out + 1] = string.format("%s %s->%s %s", iso(tr.time), tr.from, tr.to, tr.check)
  end
  return out
end

-- 1. the 1m halt
do
  local r, err = bt.run { strategy = eager("1m"), data = "data/binance-spot-btcusdt-1m-2023-03-24-outage.csv" }
  t.ok(r, "a backtest over the 1m halt runs", err)
  local tr = transitions(r)
  local text = table.concat(tr, "\n")
  t.ok(text:find("2023-03-24 11:29 GREEN->RED zero_volume", 1, true),
    "RED at the close of 11:28, the first flat zero-volume minute", text)
  t.ok(text:find("2023-03-24 14:04 RED->GREEN clean", 1, true) and not text:find("11:29 GREEN->RED.-14:0[0-3] RED->"),
    "GREEN again at 14:04: the gap candle of 14:00, then three clean ones", text)
  local ok, why = orders_allowed(r)
  t.ok(ok and #r.book.trades > 100, "no entry unless GREEN, no exit while RED (" .. #r.book.trades .. " trades)", why)
  t.ok(r.shield.blocked_entries > 0 and r.shield.candles.RED >= 72 + 3 and r.shield.gaps_unfilled == 1,
    "entries were blocked; the RED candles and the one gap are counted", cjson.encode(r.shield.candles))
end

-- 2. the 1h halt
do
  local r = assert(bt.run { strategy = eager("1h"), data = "data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv" })
  local text = table.concat(transitions(r), "\n")
  t.ok(text:find("2023-03-24 13:00 GREEN->RED zero_volume", 1, true), "1h: RED at the close of the 12:00 candle", text)
  t.ok(text:find("2023-03-24 18:00 RED->GREEN", 1, true), "1h: GREEN at 18:00: the 14:00 candle after the gap, then "
    .. "three clean ones", text)
  t.ok((orders_allowed(r)), "1h: no order past the gate unless allowed")
  local report = require "nomade.report"
  local f = report.figures(r)
  t.ok(f.shield and f.shield.blocked_entries == r.shield.blocked_entries and #f.shield.history >= 3
    and report.summary(f):find("shield    GREEN", 1, true), "the report has the shield: states, blocks, history")
end

-- 3. refused candles never reach the indicators; the report says so
do
  local rows = {}
  for i = 1, 40 do rows[i] = { 100 + i % 3, 101 + i % 3, 99 + i % 3, 100.5 + i % 3, 5 } end
  rows[20] = { 100, 90, 99, 100, 5 }   -- high under low
  rows[25] = { 100, 101, 99, 105, 5 }  -- a close above the high
  local r = assert(bt.run { strategy = eager("1h"), data = bt.csv(rows) })
  t.ok(r.c.n == 38 and #r.shield.refused == 2 and r.shield.refused[1].detail:find("OHLC inconsistent", 1, true),
    "two bad candles refused, named, and left out of the series", r.shield.refused[1] and r.shield.refused[1].detail)
  t.ok((orders_allowed(r)), "and no order went out on them or in the hysteresis after")
end

-- 4. a property test at the gate: random corruptions, random intents
do
  local sh = core.new { interval = 60, recovery = 2 }
  local book = paper.new { cash = 1e6, qty_scale = 1e6, tick_scale = 100 }
  book:guard(sh)
  local rng, tm, price, bad = 12345, 1672531200000, 100, 0
  local function rand(n)
    rng = (rng * 1103515245 + 12345) % 2147483648
    return rng % n
  end
  local violations, tried, passed, k = 0, 0, 0, 0
  for _ = 1, 20000 do
    local kind = rand(12)
    tm = tm + 60000 * (kind == 0 and 3 or 1)
    local o, h, l, c, v = price, price * 1.001, price * 0.999, price, 1 + rand(5)
    if kind == 1 then h = 0 / 0 elseif kind == 2 then l = -1 elseif kind == 3 then v = 0
    elseif kind == 4 then h = l * 0.5 elseif kind == 5 then o, h, l, c = price, price, price, price
    elseif kind == 6 then tm = tm - 180000 elseif kind == 7 then h, c = price * 1.4, price * 1.3 end
    local res = sh:candle(tm, o, h, l, c, v)
    if res == "accepted" then
      price = c
      k = k + 1
      book:open_candle(k, tm, o, h, l)
    else
      bad = bad + 1
    end
    local state = sh:state()
    if not book.pending then
      tried = tried + 1
      local sent
      if book.position then
        sent = book:sell("test", k)
        if sent and state == "RED" then violations = violations + 1 end
        if not sent and state ~= "RED" then violations = violations + 1 end
      else
        sent = book:buy({ type = "market" }, k)
        if sent and state ~= "GREEN" then violations = violations + 1 end
        if not sent and state == "GREEN" then violations = violations + 1 end
      end
      if sent then passed = passed + 1 end
    end
  end
  t.ok(violations == 0 and passed > 100 and bad > 1000 and book.blocked_entries > 100,
    string.format("20000 random candles (%d refused) and %d intents: %d passed, %d entries blocked, no violation",
      bad, tried, passed, book.blocked_entries), violations .. " violations")
end

-- 5. nomade run: the halt replayed live; --shield is checked
do
  local jpath = os.tmpname() .. ".journal"
  local rc, text = t.run("run " .. eager("1h") .. " --feed replay:data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv"
    .. " --speed max --log-format json --journal " .. jpath)
  local bad_order, shield_lines, blocked = false, 0, 0
  local state = "GREEN"
  for line in text:gmatch("[^\n]+") do
    local ok, doc = pcall(cjson.decode, line)
    if ok and type(doc) == "table" then
      if doc.event == "shield" then state, shield_lines = doc.to, shield_lines + 1 end
      if doc.event == "decision" and doc.outcome == "buy" and state ~= "GREEN" then bad_order = true end
      if doc.event == "blocked" then blocked = blocked + 1 end
    end
  end
  t.ok(rc == 0 and shield_lines >= 3 and blocked > 0 and not bad_order,
    "nomade run over the halt: transitions logged, entries blocked with the reason, no buy unless GREEN", text:sub(1, 1500))
  local store = require "nomade.store"
  local db = assert(store.open(jpath))
  local rows = db:run("SELECT count(*) FROM events WHERE kind = 'shield'")
  local blocks = db:run("SELECT count(*) FROM events WHERE kind = 'blocked'")
  db:close()
  t.ok(rows[1][1] == shield_lines and blocks[1][1] == blocked, "every transition and block is journaled")
  local _, err
  rc, _, err = t.run("run " .. eager("1h") .. " --feed replay:data/x.csv --shield recovery=0")
  t.ok(rc == 2 and err:find("recovery must be a number in [1", 1, true), "--shield cannot switch hysteresis off", err)
  rc, _, err = t.run("backtest --data data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv --shield off=1")
  t.ok(rc == 2 and err:find("'off=1' is not NAME=number", 1, true), "--shield names what it takes", err)
end

-- 6. nomade run: a refused candle is logged and journaled with why; the
-- REPL's shield.status() and shield.explain() while it runs
do
  local rows = {}
  for i = 1, 60 do rows[i] = { 100 + i % 3, 101 + i % 3, 99 + i % 3, 100.5 + i % 3, 5 } end
  rows[10] = { 100, 90, 99, 100, 5 }  -- high under low
  local data, jpath, sock = bt.csv(rows), os.tmpname() .. ".journal", os.tmpname() .. ".sock"
  local out = os.tmpname()
  os.execute(string.format("%s run %s --feed replay:%s --speed 36000 --log-format json --journal %s --socket %s"
    .. " > %s 2>&1 &", t.bin, eager("1h"), data, jpath, sock, out))
  os.execute("sleep 2")
  local rc1, status = t.run("repl --socket " .. sock .. " -e 'shield.status().state'")
  local rc2, explained = t.run("repl --socket " .. sock .. " -e 'shield.explain()'")
  os.execute("sleep 5")
  local f = assert(io.open(out))
  local text = f:read("a")
  f:close()
  local refused
  for line in text:gmatch("[^\n]+") do
    local ok, doc = pcall(cjson.decode, line)
    if ok and type(doc) == "table" and doc.event == "refused" then refused = doc end
  end
  t.ok(refused and tostring(refused.why):find("OHLC inconsistent", 1, true), "a refused candle is logged with why",
    text:sub(1, 1500))
  t.ok(rc1 == 0 and (status:find('"value":"GREEN"', 1, true) or status:find('"value":"RED"', 1, true)
    or status:find('"value":"AMBER"', 1, true)), "shield.status() answers the state in the REPL", status)
  t.ok(rc2 == 0 and explained:find("state ", 1, true) and explained:find("bad_candle", 1, true)
    and explained:find("transitions", 1, true), "shield.explain() names the reasons and transitions", explained)
end

-- sh:heartbeat returns the transitions so far: a stream's frame is said
-- (the transitions read) only when it moved the shield
do
  local sh = core.new { interval = 60, heartbeat = 20, recovery = 1 }
  for k = 1, 30 do sh:candle(k * 60000, 100, 101, 99, 100, 10) end
  local before = sh:stats().transitions
  t.eq(sh:heartbeat(1800000), before, "a frame on a live stream: no transition")
  sh:tick(1800000 + 21000)
  t.eq(sh:state(), "RED", "(silent past heartbeat: RED)")
  local red = sh:stats().transitions
  t.ok(red > before, "(a transition)")
  t.eq(sh:heartbeat(1800000 + 22000), red, "the next frame: the count as it is (RED until the next candle)")
  sh:candle(31 * 60000, 100, 101, 99, 100, 10)
  t.eq(sh:heartbeat(1800000 + 23000), red + 1, "a candle cleared it: the count moved")
end

t.done()
