-- nomade.store's checkpoints: the WAL is copied into the database (a
-- disk sync, milliseconds) after a db:exec outside a transaction (the
-- journal's COMMIT of a candle), never inside a db:run (the order written
-- just before it is sent), until the WAL is far too long.
local t = require "testlib"
local store = require "nomade.store"

local path = os.tmpname()
os.remove(path)
local function size(p)
  local f = io.open(p, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local db = assert(store.open(path))
db:exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
local body = string.rep("x", 3000)  -- a page of its own (4096 bytes)
for i = 1, 1500 do db:run("INSERT INTO rows (id, body) VALUES (?, ?)", i, body) end
t.ok(size(path .. "-wal") > 1500 * 4096, "1500 db:run commits: the WAL holds them", size(path .. "-wal"))
t.ok(size(path) < 100 * 1024, "and none is checkpointed into the database by a db:run", size(path))

db:exec("SELECT 1")
t.ok(size(path) > 1500 * 3000, "a db:exec outside a transaction checkpoints them", size(path))
t.eq(db:run("SELECT count(*) FROM rows")[1][1], 1500, "every row is there")

db:exec("BEGIN")
for i = 1501, 2700 do db:run("INSERT INTO rows (id, body) VALUES (?, ?)", i, body) end
local before = size(path)
db:exec("SELECT 1")
t.eq(size(path), before, "inside a transaction, no checkpoint")
db:exec("COMMIT")
t.ok(size(path) > before + 1000 * 3000, "its COMMIT is the checkpoint", size(path) - before)
db:close()

-- a db only ever written with db:run is checkpointed once its WAL is 8000 pages
db = assert(store.open(path))
local start = size(path)
for i = 2701, 2700 + 8100 do db:run("INSERT INTO rows (id, body) VALUES (?, ?)", i, body) end
t.ok(size(path) > start + 7000 * 3000, "db:run alone: checkpointed past 8000 pages", size(path) - start)
db:close()
for _, p in ipairs({ path, path .. "-wal", path .. "-shm" }) do os.remove(p) end
t.done()
