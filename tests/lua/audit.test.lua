-- nomade audit: a paper `nomade run` whose strategy file is saved twice
-- mid-run (other rules: other decisions) replays to the same decisions,
-- order intents and fills; a journal changed afterwards (a decision, a
-- fill, a strategy version's source) is caught at exactly that candle.
-- The candles are the test's own (hours from 2020-01-01), the reloads
-- follow the journal, not the clock.
local t = require "testlib"

local function write(p, text)
  local f = assert(io.open(p, "w")); f:write(text); f:close()
end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function sql(journal, query) return (sh("sqlite3 " .. journal .. " " .. t.q(query) .. " 2>/dev/null"):gsub("%s+$", "")) end

local dir = os.tmpname() .. ".audit"
os.execute("mkdir -p " .. dir)

-- a long, deterministic walk of hourly candles: the run is still going
-- when the second reload lands, and is stopped then
local START, HOUR, N = 1577836800000, 3600000, 60000
local data = dir .. "/walk.csv"
do
  local f = assert(io.open(data, "w"))
  f:write("open_time_ms,open,high,low,close,volume\n")
  local seed, price = 12345, 100.0
  for k = 0, N - 1 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local move = (seed / 2147483648 - 0.5) * 0.03 + math.sin(k / 40) * 0.004
    local open, close = price, price * (1 + move)
    f:write(string.format("%d,%.4f,%.4f,%.4f,%.4f,%.2f\n", START + k * HOUR, open, math.max(open, close) * 1.004,
      math.min(open, close) * 0.996, close, 10 + seed % 100))
    price = close
  end
  f:close()
end
os.execute(string.format("head -n 301 %s > %s", data, dir .. "/walk300.csv"))

-- three versions: other indicators, entries (market, limit), exits and sizes
local function version(n)
  local rules = {
    [[
settings = { interval = "1h", history = 20, position_size = 0.5, stop_loss = 0.02, take_profit = 0.03 }
indicators = { fast = ta.ema(10) }
function regime(m) state.n = (state.n or 0) + 1 return m.close > m.ind.fast and "UP" or "DOWN" end
function entry(m, r, v) if v then return { type = "market" } end return r == "UP" end
function exit(m) if m.regime == "DOWN" then return "flip" end return false end
]],
    [[
settings = { interval = "1h", history = 20, position_size = 0.8, stop_loss = 0.05, take_profit = 0.01 }
indicators = { slow = ta.sma(15), rsi = ta.rsi(7) }
function regime(m) state.n = (state.n or 0) + 1 return m.close > m.ind.slow and "UP" or "DOWN" end
function entry(m, r, v)
  if v then return { type = "limit", price = m.close * 0.998, ttl = 2 } end
  return m.ind.rsi < 45
end
function exit(m) if m.ind.rsi > 70 then return "hot" end return false end
]],
    [[
settings = { interval = "1h", history = 20, position_size = 0.3 }
indicators = { fast = ta.ema(5) }
function regime(m) state.n = (state.n or 0) + 1 return m.close < m.ind.fast and "DIP" or "FLAT" end
function entry(m, r, v)
  if v then return state.n % 2 == 0 and { type = "market" } or nil end  -- nil: the candidate passes
  return r == "DIP" and state.n % 3 == 0
end
function exit(m, p) if m.close > p.price * 1.004 then return "gain" end return false end
]],
  }
  return rules[n] .. string.format([[
function prompt(m) return "v%d " .. m.time end
function on_reload(st) st.reloads = (st.reloads or 0) + 1 end
]], n)
end

local function wait_for(journal, query, want)
  for _ = 1, 400 do
    local got = tonumber(sql(journal, query))
    if got and got >= want then return true end
    os.execute("sleep 0.05")
  end
end

local strat, journal = dir .. "/s.lua", dir .. "/run.journal"
local out, pidf = dir .. "/run.out", dir .. "/run.pid"

-- a paper run on the journal, in the background: its pid
local function start()
  os.execute(string.format("%s run %s --feed replay:%s --speed max --http off --socket %s/sock --journal %s "
    .. "--cash 5000 --fee 0.002 > %s 2>&1 & echo $! > %s", t.bin, strat, data, dir, journal, out, pidf))
  return t.slurp(pidf):match("%d+")
end

-- SIGINT: it stops after the candle; its log
local function stop(pid)
  os.execute("kill -INT " .. pid)
  for _ = 1, 200 do
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    os.execute("sleep 0.05")
  end
  return t.slurp(out)
end

write(strat, version(1))
local pid = start()
local started = wait_for(journal, "SELECT count(*) FROM candles", 300)
local busy_rc, _, busy_err = t.run("audit " .. journal)
write(strat, version(2))
local second = wait_for(journal, "SELECT count(*) FROM strategies", 2)
  and wait_for(journal, "SELECT count(*) FROM candles WHERE time > (SELECT max(time) FROM strategies)", 300)
write(strat, version(3))
local third = wait_for(journal, "SELECT count(*) FROM strategies", 3)
  and wait_for(journal, "SELECT count(*) FROM candles WHERE time > (SELECT max(time) FROM strategies)", 300)
local log = stop(pid)
t.ok(started and second and third and log:find("nomade run: stopped after", 1, true),
  "the run reloads twice mid-run and is stopped", log:sub(-600))

t.ok(busy_rc == 2 and busy_err:find("is in use by pid " .. pid .. ": a run still writes it", 1, true),
  "a journal a run still writes is not audited (exit 2, naming the pid)", busy_err)

-- the journal keeps each version's source, its sha256 and where it applies from
local versions = sql(journal, "SELECT count(*), count(DISTINCT sha256), min(time) FROM strategies")
t.eq(versions, "3|3|0", "three strategy versions, the first from the start")
t.eq(sql(journal, "SELECT source FROM strategies WHERE id = 2") .. "\n", version(2), "the source as it was saved")
local kinds = sql(journal, "SELECT count(DISTINCT json_extract(detail, '$.what')) FROM events WHERE kind = 'decision'")
t.ok(tonumber(kinds) >= 3, "the versions made decisions of several kinds (" .. kinds .. ")")
local per = sql(journal, "SELECT count(*) FROM events e WHERE kind = 'decision' AND time >= "
  .. "(SELECT time FROM strategies WHERE id = 3)")
t.ok(tonumber(per) > 0, "the third version decided (" .. per .. " decisions)")

-- the replay matches
local rc, stdout, stderr = t.run("audit " .. journal)
t.ok(rc == 0 and stdout:find("all match: %d+ candles, %d+ decisions, %d+ fills %(3 strategy versions, 1 start%)"),
  "nomade audit: all match", stdout .. stderr)
t.ok(tonumber(stdout:match(", (%d+) fills")) > 0, "with fills compared", stdout)

-- a copy of the journal, changed by one SQL statement
local function tampered(name, statement)
  local copy = dir .. "/" .. name .. ".journal"
  os.execute("sqlite3 " .. journal .. " " .. t.q(".backup " .. copy))
  sh("sqlite3 " .. copy .. " " .. t.q(statement))
  return copy
end

local function iso(ms) return os.date("!%Y-%m-%d %H:%M", ms // 1000) end

-- a decision made in the third version's time, changed
do
  local id, time = sql(journal, "SELECT id, time FROM events WHERE kind = 'decision' AND json_extract(detail, '$.what')"
    .. " = 'buy' AND time > (SELECT time FROM strategies WHERE id = 3) ORDER BY id LIMIT 1"):match("(%d+)|(%d+)")
  local copy = tampered("decision", "UPDATE events SET detail = json_set(detail, '$.what', 'wait') WHERE id = " .. id)
  local rc2, o2 = t.run("audit " .. copy)
  t.ok(rc2 == 1 and o2:find("MISMATCH at the candle of " .. iso(tonumber(time)) .. " (time " .. time, 1, true)
    and o2:find("strategy version 3", 1, true), "a changed decision is found at its candle", o2)
  t.ok(o2:find('journaled: decision {.-what = "wait"') and o2:find('replayed:  decision {.-what = "buy"'),
    "saying what was journaled and what the replay did", o2)
end

-- a limit order's price (an order intent of the second version), changed
do
  local id, time = sql(journal, "SELECT id, time FROM events WHERE kind = 'decision' AND "
    .. "json_extract(detail, '$.intent.type') = 'limit' ORDER BY id LIMIT 1 OFFSET 2"):match("(%d+)|(%d+)")
  t.ok(id, "the journal keeps the order intents (a limit buy's)")
  local copy = tampered("intent", "UPDATE events SET detail = json_set(detail, '$.intent.price', "
    .. "json_extract(detail, '$.intent.price') * 0.99) WHERE id = " .. tostring(id))
  local rc2, o2 = t.run("audit " .. copy)
  t.ok(rc2 == 1 and o2:find("MISMATCH at the candle of " .. iso(tonumber(time)) .. " (time " .. time, 1, true)
    and o2:find("strategy version 2", 1, true) and o2:find('intent = {price = ', 1, true),
    "a changed order intent is found at its candle", o2)
end

-- a fill's price, changed
do
  local id, time = sql(journal, "SELECT id, time FROM events WHERE kind = 'fill' ORDER BY id LIMIT 1 OFFSET 5")
    :match("(%d+)|(%d+)")
  local copy = tampered("fill", "UPDATE events SET detail = json_set(detail, '$.price', "
    .. "json_extract(detail, '$.price') + 1) WHERE id = " .. id)
  local rc2, o2 = t.run("audit " .. copy)
  t.ok(rc2 == 1 and o2:find("MISMATCH at the candle of " .. iso(tonumber(time)) .. " (time " .. time, 1, true)
    and o2:find("journaled: fill", 1, true), "a changed fill is found at its candle", o2)
end

-- a version's source, changed (its sha256 no longer matches)
do
  local copy = tampered("source", "UPDATE strategies SET source = replace(source, 'rsi < 45', 'rsi < 99') WHERE id = 2")
  local rc2, o2, e2 = t.run("audit " .. copy)
  local from = tonumber(sql(journal, "SELECT time FROM strategies WHERE id = 2"))
  t.ok(rc2 == 1 and o2:find("MISMATCH at the candle of " .. iso(from), 1, true)
    and o2:find("strategy version 2 (" .. strat .. ", from " .. iso(from) .. "): its source is not the one journaled",
      1, true), "an altered source is caught where it would have applied", o2 .. e2)
end

-- and changed with its sha256: the replay decides otherwise, at a candle
-- of that version
do
  local copy = tampered("rehashed", "UPDATE strategies SET source = replace(source, 'rsi < 45', 'rsi < 99') WHERE id = 2")
  local fixed = sh(string.format("%s eval %s", t.bin, t.q(string.format([[
local db = require("nomade.store").open(%q)
local src = db:run("SELECT source FROM strategies WHERE id = 2")[1][1]
db:run("UPDATE strategies SET sha256 = ? WHERE id = 2", require("nomade.crypto").sha256(src))
db:close()]], copy))))
  local rc2, o2 = t.run("audit " .. copy)
  local from, to = tonumber(sql(journal, "SELECT time FROM strategies WHERE id = 2")),
    tonumber(sql(journal, "SELECT time FROM strategies WHERE id = 3"))
  local at = tonumber(o2:match("%(time (%d+),"))
  t.ok(rc2 == 1 and at and at >= from and at < to and o2:find("strategy version 2", 1, true),
    "an altered source with its hash changes a decision of that version", o2 .. fixed)
end

-- a restart on the journal, with the file changed meanwhile: resumed from
-- the journal, replayed as the run resumed it
do
  write(strat, version(1))
  local before = tonumber(sql(journal, "SELECT count(*) FROM candles"))
  local pid2 = start()
  local resumed = wait_for(journal, "SELECT count(*) FROM candles", before + 300)
  local log2 = stop(pid2)
  t.ok(resumed and log2:find("resume from " .. journal, 1, true), "the run resumes from its journal", log2:sub(1, 800))
  t.eq(sql(journal, "SELECT count(*) FROM starts"), "2", "a second start journaled")
  local rc2, o2, e2 = t.run("audit " .. journal)
  t.ok(rc2 == 0 and o2:find("(4 strategy versions, 2 starts)", 1, true), "the resumed journal replays: all match",
    o2 .. e2)
end

-- candles the shield refused (journaled with their prices) and a strategy
-- that reads m.shield: the replay's shield moves as the run's did
do
  local spiky, sj, ss = dir .. "/spiky.csv", dir .. "/spiky.journal", dir .. "/spiky.lua"
  local f = assert(io.open(spiky, "w"))
  f:write("open_time_ms,open,high,low,close,volume\n")
  for k = 0, 59 do
    local c = 100 + (k % 4) * 0.1
    f:write(string.format("%d,%.2f,%.2f,%.2f,%.2f,5\n", START + k * HOUR, c - 0.05, (k == 20 or k == 35) and 1e6 * c
      or c + 0.2, c - 0.25, c))
  end
  f:close()
  write(ss, [[
settings = { interval = "1h", history = 5 }
function regime(m) return m.shield end
function entry(m, r, v) if v then return { type = "market" } end return true end
function exit() return "out" end
function prompt() return "p" end
]])
  local rc2, o2 = t.run(string.format("run %s --feed replay:%s --speed max --http off --socket %s/sock2 --journal %s",
    ss, spiky, dir, sj))
  t.ok(rc2 == 0 and o2:find("the shield refused a candle", 1, true) and o2:find("RED ", 1, true),
    "a run whose shield refuses two candles and goes RED", o2:sub(1, 600))
  local rc3, o3 = t.run("audit " .. sj)
  t.ok(rc3 == 0 and o3:find("all match: 58 candles", 1, true), "its journal replays: all match", o3)
  local copy = dir .. "/spiky-quiet.journal"
  os.execute("sqlite3 " .. sj .. " " .. t.q(".backup " .. copy))
  local time = sql(copy, "SELECT time FROM events WHERE kind = 'refused' ORDER BY id LIMIT 1")
  sh("sqlite3 " .. copy .. " " .. t.q("UPDATE events SET detail = json_set(detail, '$.candle[1]', 100.3) "
    .. "WHERE kind = 'refused' AND time = " .. time))
  local rc4, o4 = t.run("audit " .. copy)
  t.ok(rc4 == 1 and o4:find("MISMATCH at the candle of " .. iso(tonumber(time)), 1, true)
    and o4:find("journaled: refused", 1, true), "a refused candle made plausible is found where it came", o4)
end

-- --tribunal cache: the journaled verdicts are the judge, by prompt hash
do
  local cs, cache, cj = dir .. "/cached.lua", dir .. "/verdicts.jsonl", dir .. "/cached.journal"
  write(cs, [[
settings = { interval = "1h", history = 5, min_score = 50 }
function regime() return "ANY" end
function entry(m, r, v) if v then return { type = "market" } end return m.index % 2 == 0 end
function exit(m) if m.index % 5 == 0 then return "out" end return false end
function prompt(m) return "p " .. m.time end
]])
  local f = assert(io.open(cache, "w"))
  for k = 1, 299, 4 do  -- every other candidate's prompt (odd k) has a verdict; the rest are misses
    f:write(string.format('{"prompt_sha256":"%s","signal":"%s","score":%d,"reasoning":"r"}\n',
      require("nomade.crypto").sha256("p " .. (START + k * HOUR + 0.0)), k % 3 == 0 and "WAIT" or "BUY", k * 7 % 100))
  end
  f:close()
  local rc2, o2 = t.run(string.format("run %s --feed replay:%s --speed max --http off --socket %s/sock3 --journal %s "
    .. "--tribunal cache --cache %s", cs, data:gsub("walk", "walk300"), dir, cj, cache))
  local sources = sql(cj, "SELECT group_concat(DISTINCT json_extract(detail, '$.verdict.source')) FROM events "
    .. "WHERE kind = 'decision' AND json_extract(detail, '$.what') IN ('buy', 'wait')")
  t.ok(rc2 == 0 and sources:find("cache", 1, true) and sources:find("miss", 1, true),
    "a cached run: verdicts from the cache and misses (" .. sources .. ")", o2:sub(-300))
  local rc3, o3 = t.run("audit " .. cj)
  t.ok(rc3 == 0 and o3:find("all match: 300 candles", 1, true), "its journal replays with the journaled verdicts", o3)
  local copy = dir .. "/cached-flipped.journal"
  os.execute("sqlite3 " .. cj .. " " .. t.q(".backup " .. copy))
  local time = sql(copy, "SELECT time FROM events WHERE kind = 'verdict' AND json_extract(detail, '$.signal') = 'BUY' "
    .. "AND json_extract(detail, '$.score') >= 50 ORDER BY id LIMIT 1 OFFSET 3")
  sh("sqlite3 " .. copy .. " " .. t.q("UPDATE events SET detail = json_set(detail, '$.signal', 'WAIT') "
    .. "WHERE kind = 'verdict' AND time = " .. time))
  local rc4, o4 = t.run("audit " .. copy)
  t.ok(rc4 == 1 and o4:find("MISMATCH at the candle of " .. iso(tonumber(time)), 1, true)
    and o4:find('journaled: decision {.-what = "buy"') and o4:find('replayed:  decision {.-what = "wait"'),
    "a journaled verdict flipped: the replay waits where the run bought", o4)
end

-- bad input: exit 2
do
  local rc2, _, e2 = t.run("audit " .. dir .. "/none.journal")
  t.ok(rc2 == 2 and e2:find("no such journal", 1, true), "a missing journal: exit 2", e2)
  local rc3, o3 = t.run("audit --help")
  t.ok(rc3 == 0 and o3:find("usage: nomade audit JOURNAL", 1, true), "--help prints the usage")
  local rc4 = t.run("audit")
  t.eq(rc4, 2, "no journal: exit 2")
end

os.execute("rm -rf " .. dir)
t.done()
