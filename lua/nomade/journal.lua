-- nomade.journal: what a running strategy did, in SQLite (WAL), one
-- transaction per candle: the candle, its events (decisions, verdicts,
-- orders, fills, errors), new trades, and a snapshot of the paper book and
-- of the strategy's `state`. A process killed at any moment leaves the
-- journal at the end of the last candle it finished; a restart resumes
-- from there, and the candle's time being the primary key means no candle
-- can be applied twice.
local store = require "nomade.store"
local cjson = require "cjson.safe"

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

-- journal.open(path, identity {strategy, symbol, interval}, adopt) -> j or nil, err
-- A journal written for another strategy, symbol or interval is refused
-- unless adopt is true.
function M.open(path, identity, adopt)
  local db, err = store.open(path)
  if not db then return nil, "journal: " .. err end
  local ok, serr = pcall(db.exec, db, SCHEMA)
  if not ok then
    db:close()
    return nil, "journal: " .. path .. ": " .. tostring(serr)
  end
  for _, key in ipairs({ "strategy", "symbol", "interval" }) do
    local rows = db:run("SELECT value FROM meta WHERE key = ?", key)
    local was = rows[1] and rows[1][1]
    if was and was ~= identity[key] and not adopt then
      db:close()
      return nil, string.format("journal: %s was written for %s %s, not %s (pass --adopt-journal to "
        .. "continue it anyway, or use another --journal)", path, key, was, identity[key])
    end
    db:run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, identity[key])
  end
  return setmetatable({ db = db, path = path, events = {} }, M)
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
function M:event(kind, detail)
  self.events[#self.events + 1] = { kind, detail }
end

-- an event outside any candle (a reload, an error), written now
function M:note(time, kind, detail)
  self.db:run("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", time, kind,
    type(detail) == "table" and cjson.encode(detail) or detail)
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
      db:run("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", c.time, e[1],
        type(e[2]) == "table" and cjson.encode(e[2]) or e[2])
    end
    for _, tr in ipairs(new_trades) do db:run("INSERT INTO trades (detail) VALUES (?)", cjson.encode(tr)) end
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

function M:close() self.db:close() end

return M
