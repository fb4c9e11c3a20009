-- nomade.journal: what a running strategy did, in SQLite (WAL), one
-- transaction per candle: the candle, its events (decisions, verdicts,
-- orders, fills, errors), new trades, and a snapshot of the paper book and
-- of the strategy's `state`. A process killed at any moment leaves the
-- journal at the end of the last candle it finished; a restart resumes
-- from there, and the candle's time being the primary key means no candle
-- can be applied twice. Live execution adds the orders (each written,
-- durably, before it is sent) and the exchange's fills, committed as they
-- happen: they are the truth a restart reconciles with the exchange.
-- An order is written before it is sent as one line of PATH.intents (a
-- write(2): microseconds, where SQLite's commit takes tens, on the path
-- from the closing candle to the request), and into SQLite at the
-- journal's next call, after the request. The line survives a killed
-- process as a committed transaction does (neither is synced to the disk
-- by then); opening the journal files what a killed run left there.
-- Every strategy version the run used is kept, source and all, with the
-- run's settings at each start: what `nomade audit` replays.
local store = require "nomade.store"
local cjson = require "cjson.safe"
local scrub = require("nomade.secrets").scrub
local crypto = require "nomade.crypto"

local M = {}
M.__index = M

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candles (time INTEGER PRIMARY KEY, open REAL, high REAL, low REAL,
  close REAL, volume REAL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, time INTEGER, kind TEXT NOT NULL,
  detail TEXT);
CREATE TABLE IF NOT EXISTS trades (id INTEGER PRIMARY KEY, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), time INTEGER NOT NULL,
  book TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (link TEXT PRIMARY KEY, time INTEGER NOT NULL, side TEXT NOT NULL,
  qty TEXT NOT NULL, candle INTEGER, idx INTEGER, reason TEXT, status TEXT NOT NULL, order_id TEXT);
CREATE TABLE IF NOT EXISTS fills (exec_id TEXT PRIMARY KEY, link TEXT NOT NULL, side TEXT NOT NULL,
  qty REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, fee_coin TEXT NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS strategies (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, path TEXT NOT NULL,
  sha256 TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS starts (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, settings TEXT NOT NULL,
  book TEXT NOT NULL);
]]

-- JSON has one number type: integral values come back as integers
local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
    return v
  end
  if math.type(v) == "float" then return math.tointeger(v) or v end
  return v
end

-- a decision as journaled: what the strategy's turn did, the regime, the
-- verdict (or the reason: an exit's, a refusal's) and, for a buy, the
-- order intent the book took
function M.decision(what, regime, detail, intent)
  return { what = what, regime = regime, verdict = type(detail) == "table"
    and { signal = detail.signal, score = detail.score, source = detail.source } or detail,
    intent = intent and { type = intent.type, price = intent.price, ttl = intent.ttl } }
end

-- a journaled JSON text as a value (integral numbers integers), or nil
function M.decode(text)
  if type(text) ~= "string" then return nil end
  return integers(cjson.decode(text))
end

-- two journaled values are the same: equal scalars, or tables with the
-- same keys holding the same values
function M.same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- the orders of PATH.intents: what a killed run wrote before sending them.
-- A line cut short by the disk was not sent: it is no order; nor is a
-- line without the columns an order has (one the exchange holds anyway
-- is adopted by the reconciliation, by its link's tag)
local function intents(path)
  local out, f = {}, io.open(path .. ".intents", "rb")
  if not f then return out end
  for line in f:lines() do
    local o = M.decode(line)
    if type(o) == "table" and type(o.link) == "string" and math.type(o.time) == "integer"
      and type(o.side) == "string" and type(o.qty) == "string" and type(o.status) == "string" then
      out[#out + 1] = o
    end
  end
  f:close()
  return out
end

local ORDER_COLUMNS = { "link", "time", "side", "qty", "candle", "idx", "reason", "status", "order_id" }
local INSERT_ORDER = "INSERT OR IGNORE INTO orders (" .. table.concat(ORDER_COLUMNS, ", ") .. ") VALUES "
  .. "(?, ?, ?, ?, ?, ?, ?, ?, ?)"

-- the orders written since the last call, into SQLite, and PATH.intents
-- emptied (a crash between the two files them again: once, by link)
function M:file()
  local list = self.unfiled
  if not list[1] or self.reading then return end
  for _, o in ipairs(list) do
    self.db:run(INSERT_ORDER, o.link, o.time, o.side, o.qty, o.candle, o.idx, o.reason, o.status, o.order_id)
  end
  self.unfiled = {}
  local f = assert(io.open(self.path .. ".intents", "w"))
  f:close()
end

-- journal.open(path, identity {strategy, symbol, interval}, adopt) -> j or nil, err
-- One process per journal: PATH.lock is taken before anything is written
-- and held until close (or the process's end), so a second run on the
-- same journal is refused, naming the pid that has it. A journal written
-- for another strategy, symbol or interval is refused unless adopt is true.
function M.open(path, identity, adopt)
  local lock, lerr, pid = store.lock(path .. ".lock")
  if not lock then
    return nil, pid > 0 and string.format("journal %s is in use by pid %d", path, pid) or "journal: " .. lerr
  end
  local db, err = store.open(path)
  if not db then
    lock:close()
    return nil, "journal: " .. err
  end
  local function refuse(why)
    db:close()
    lock:close()
    return nil, why
  end
  local ok, serr = pcall(db.exec, db, SCHEMA)
  if not ok then return refuse("journal: " .. path .. ": " .. tostring(serr)) end
  local j = setmetatable({ db = db, lock = lock, path = path, events = {}, unfiled = intents(path) }, M)
  local filed, ferr = pcall(M.file, j)
  if not filed then return refuse("journal: " .. path .. ": " .. tostring(ferr)) end
  local log, lgerr = io.open(path .. ".intents", "a")
  if not log then return refuse("journal: " .. tostring(lgerr)) end
  log:setvbuf("no")  -- a line is in the kernel when write returns
  j.log = log
  for _, key in ipairs({ "strategy", "symbol", "interval" }) do
    local rows = db:run("SELECT value FROM meta WHERE key = ?", key)
    local was = rows[1] and rows[1][1]
    if was and was ~= identity[key] and not adopt then
      return refuse(string.format("journal: %s was written for %s %s, not %s (pass --adopt-journal to "
        .. "continue it anyway, or use another --journal)", path, key, was, identity[key]))
    end
    db:run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, identity[key])
  end
  return j
end

-- journal.read(path) -> j or nil, err: a journal to read (nomade audit),
-- opened read-only under its lock, so that no run writes it meanwhile
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil, path .. ": no such journal" end
  f:close()
  local lock, lerr, pid = store.lock(path .. ".lock")
  if not lock then
    return nil, pid > 0 and string.format("%s is in use by pid %d: a run still writes it (stop it, or read a "
      .. "copy: sqlite3 %s '.backup COPY')", path, pid, path) or "journal: " .. lerr
  end
  local db, err = store.open(path, "read")
  if not db then
    lock:close()
    return nil, "journal: " .. err
  end
  local ok, has = pcall(db.run, db, "SELECT count(*) FROM sqlite_master WHERE name IN ('strategies', 'starts')")
  if not ok or has[1][1] < 2 then
    db:close()
    lock:close()
    return nil, path .. ": not a journal that keeps its strategy versions (from an older nomade, or no journal)"
  end
  return setmetatable({ db = db, lock = lock, path = path, events = {}, unfiled = intents(path), reading = true }, M)
end

-- what a restart needs, or nil for a new journal: {candles = {{t,o,h,l,c,v}...},
-- book = snapshot (with .trades), state = table, time = last candle}
function M:resume()
  local snap = self.db:run("SELECT time, book, state FROM snapshot WHERE id = 1")[1]
  if not snap then return nil end
  local book, state = integers(cjson.decode(snap[2])), integers(cjson.decode(snap[3]))
  if type(book) ~= "table" or type(state) ~= "table" then
    error("journal: " .. self.path .. ": the snapshot is not readable JSON", 0)
  end
  book.trades = {}
  for _, row in ipairs(self.db:run("SELECT detail FROM trades ORDER BY id")) do
    book.trades[#book.trades + 1] = integers(cjson.decode(row[1]))
  end
  return {
    candles = self.db:run("SELECT time, open, high, low, close, volume FROM candles ORDER BY time"),
    book = book, state = state, time = snap[1],
  }
end

-- an event of the candle being handled (written with it)
-- an event's detail as stored: JSON for a table, scrubbed of secrets
local function detail_text(detail)
  return scrub(type(detail) == "table" and cjson.encode(detail) or detail)
end

function M:event(kind, detail)
  self.events[#self.events + 1] = { kind, detail }
end

-- an event outside any candle (a reload, an error), written now
function M:note(time, kind, detail)
  self.db:run("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", time, kind, detail_text(detail))
end

-- the candle and all it caused, in one transaction; returns true, or
-- false and why the state could not be written (the rest still is)
function M:candle(c, snapshot, new_trades, state)
  local state_json, why = cjson.encode(state)
  local serialised = state_json ~= nil
  local db = self.db
  db:exec("BEGIN")
  local ok, err = pcall(function()
    db:run("INSERT INTO candles (time, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?)",
      c.time, c.open, c.high, c.low, c.close, c.volume)
    for _, e in ipairs(self.events) do
      db:run("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", c.time, e[1], detail_text(e[2]))
    end
    for _, tr in ipairs(new_trades) do db:run("INSERT INTO trades (detail) VALUES (?)", detail_text(tr)) end
    if not state_json then
      db:run("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", c.time, "error",
        "state is not JSON-serialisable (" .. tostring(why) .. "); the last good state is kept")
      local last = db:run("SELECT state FROM snapshot WHERE id = 1")[1]
      state_json = last and last[1] or "{}"
    end
    db:run("INSERT OR REPLACE INTO snapshot (id, time, book, state) VALUES (1, ?, ?, ?)", c.time,
      cjson.encode(snapshot), state_json)
  end)
  self.events = {}
  if not ok then
    db:exec("ROLLBACK")
    error(err, 0)
  end
  db:exec("COMMIT")
  return serialised, why
end

-- a strategy version: its source (and the source's sha256), applying to
-- the candles from `time` on (0: from the first); a restart with an
-- unchanged file adds no row
function M:strategy_version(path, source, time)
  local hash = crypto.sha256(source)
  local last = self.db:run("SELECT path, sha256 FROM strategies ORDER BY id DESC LIMIT 1")[1]
  if last and last[1] == path and last[2] == hash then return end
  self.db:run("INSERT INTO strategies (time, path, sha256, source) VALUES (?, ?, ?, ?)", time, path, hash, source)
end

-- every strategy version, oldest first: {id, time, path, sha256, source}
function M:strategy_versions()
  local out = {}
  for _, r in ipairs(self.db:run("SELECT id, time, path, sha256, source FROM strategies ORDER BY id")) do
    out[#out + 1] = { id = r[1], time = r[2], path = r[3], sha256 = r[4], source = r[5] }
  end
  return out
end

-- what a replay needs of a run's options (nomade run's), besides the
-- instrument's rules
local SETTINGS = { "exec", "feed", "cash", "fee", "shield", "tribunal", "cache", "provider", "model" }

-- a start of the run, after the journal's candle `time` (0: none yet):
-- its options, the instrument's rules and the book it starts with
function M:start(time, opts, rules, book)
  local settings = { rules = { qty_step = rules.qty_step, tick = rules.tick, min_qty = rules.min_qty,
    min_amt = rules.min_amt, symbol = rules.symbol } }
  for _, k in ipairs(SETTINGS) do settings[k] = opts[k] end
  self.db:run("INSERT INTO starts (time, settings, book) VALUES (?, ?, ?)", time, detail_text(settings),
    cjson.encode(book))
end

-- every start, oldest first: {time, settings, book}
function M:starts()
  local out = {}
  for _, r in ipairs(self.db:run("SELECT time, settings, book FROM starts ORDER BY id")) do
    out[#out + 1] = { time = r[1], settings = integers(cjson.decode(r[2])), book = integers(cjson.decode(r[3])) }
  end
  return out
end

-- a lasting flag of the run (the kill switch): its value, or nil
function M:flag(key, value)
  if value == nil then
    local row = self.db:run("SELECT value FROM meta WHERE key = ?", "flag." .. key)[1]
    return row and row[1]
  end
  if value == false then
    self.db:run("DELETE FROM meta WHERE key = ?", "flag." .. key)
  else
    self.db:run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "flag." .. key, value)
  end
end

-- this journal's own mark, in every orderLinkId it sends: its orders are
-- told from anyone else's on the account
function M:tag()
  local row = self.db:run("SELECT value FROM meta WHERE key = 'tag'")[1]
  if row then return row[1] end
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(4)
  f:close()
  local tag = string.format("%08x", string.unpack(">I4", bytes))
  self.db:run("INSERT INTO meta (key, value) VALUES ('tag', ?)", tag)
  return tag
end

-- an order: written now, before it is sent (raises when it cannot be)
function M:order(o)
  local line = {}
  for _, col in ipairs(ORDER_COLUMNS) do line[col] = o[col] end
  local ok, err = self.log:write(cjson.encode(line), "\n")
  if not ok then error("journal: " .. self.path .. ".intents: " .. tostring(err), 0) end
  self.unfiled[#self.unfiled + 1] = line
end

function M:order_status(link, status, order_id)
  self.db:run("UPDATE orders SET status = ?, order_id = coalesce(?, order_id) WHERE link = ?", status,
    order_id, link)
end

-- every order, oldest first, as tables (read-only, with those a killed
-- run left unfiled)
function M:orders()
  local out, seen = {}, {}
  for _, r in ipairs(self.db:run("SELECT " .. table.concat(ORDER_COLUMNS, ", ") .. " FROM orders ORDER BY time, link")) do
    local o = {}
    for k, col in ipairs(ORDER_COLUMNS) do o[col] = r[k] end
    out[#out + 1], seen[o.link] = o, true
  end
  local n = #out
  for _, o in ipairs(self.unfiled) do
    if not seen[o.link] then out[#out + 1] = o end
  end
  if #out > n then
    table.sort(out, function(a, b)
      if a.time ~= b.time then return a.time < b.time end
      return a.link < b.link
    end)
  end
  return out
end

local FILL_COLUMNS = { "exec_id", "link", "side", "qty", "price", "fee", "fee_coin", "time" }

-- a fill from the exchange: true if it is new (an exec_id is applied once)
function M:fill(f)
  if self.db:run("SELECT 1 FROM fills WHERE exec_id = ?", f.exec_id)[1] then return false end
  self.db:run("INSERT INTO fills (exec_id, link, side, qty, price, fee, fee_coin, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    f.exec_id, f.link, f.side, f.qty, f.price, f.fee, f.fee_coin, f.time)
  return true
end

function M:fills()
  local out = {}
  for _, r in ipairs(self.db:run("SELECT " .. table.concat(FILL_COLUMNS, ", ") .. " FROM fills ORDER BY time, exec_id")) do
    local f = {}
    for k, col in ipairs(FILL_COLUMNS) do f[col] = r[k] end
    out[#out + 1] = f
  end
  return out
end

-- closed: PATH.intents goes once its orders are filed
function M:close()
  if not self.reading then
    self.log:close()
    if pcall(M.file, self) then os.remove(self.path .. ".intents") end
  end
  self.db:close()
  self.lock:close()
end

-- every call that reads or writes SQLite files the orders written before it
for _, name in ipairs({ "resume", "note", "candle", "strategy_version", "strategy_versions", "start", "starts",
  "flag", "tag", "order_status", "orders", "fill", "fills" }) do
  local call = M[name]
  M[name] = function(self, ...)
    self:file()
    return call(self, ...)
  end
end

return M
