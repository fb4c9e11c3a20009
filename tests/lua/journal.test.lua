-- nomade.journal's orders: each written before it is sent as a line of
-- PATH.intents, filed into SQLite at the journal's next call. A process
-- killed (-9) between the two leaves the line, and the next open (or a
-- read-only look, as nomade audit's) has the order; a line cut short is
-- no order; an order that cannot be written raises, so it is not sent.
local t = require "testlib"
local journal = require "nomade.journal"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local path = dir .. "/j.journal"
local ID = { strategy = "s.lua", symbol = "BTCUSDT", interval = "1m" }
local function exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end

-- a child that writes two orders, files the first, and is killed -9
local child = dir .. "/child.lua"
local f = assert(io.open(child, "w"))
f:write(string.format([[
local j = assert(require("nomade.journal").open(%q, { strategy = "s.lua", symbol = "BTCUSDT", interval = "1m" }))
j:order { link = "a-b", time = 1000, side = "Buy", qty = "0.001", candle = 60000, idx = 7, reason = "entry", status = "intent" }
j:order_status("a-b", "Filled", "id-1")
j:order { link = "b-s", time = 2000, side = "Sell", qty = "0.001", candle = 120000, idx = 8, reason = "tp", status = "intent" }
local stat = io.open("/proc/self/stat"):read("l")
os.execute("kill -9 " .. stat:match("^(%%d+)"))
]], path))
f:close()
local code = t.run("script " .. child)
t.eq(code, 137, "the child is killed -9 after writing its orders")
t.ok(exists(path .. ".intents"), "it left PATH.intents")

local r = assert(journal.read(path))
local seen = r:orders()
r:close()
t.eq(#seen, 2, "read-only, the journal has both orders")
t.eq(seen[1] and seen[1].status, "Filled", "the filed one as SQLite has it")
t.eq(seen[2] and seen[2].link, "b-s", "the unfiled one from PATH.intents")
t.ok(exists(path .. ".intents"), "a read-only look files nothing")

local j = assert(journal.open(path, ID))
t.eq(#t.slurp(path .. ".intents"), 0, "filed on open: PATH.intents is empty")
local got = j:orders()
t.eq(#got, 2, "reopened: both orders")
local o = got[2] or {}
t.ok(o.link == "b-s" and o.time == 2000 and o.side == "Sell" and o.qty == "0.001" and o.candle == 120000
  and o.idx == 8 and o.reason == "tp" and o.status == "intent", "the killed run's last order, every column")
j:order_status("b-s", "not_placed")
t.eq(j:orders()[2].status, "not_placed", "and its status can move on")

-- a line cut short by the disk: the order was never sent
j:order { link = "c-b", time = 3000, side = "Buy", qty = "0.002", status = "intent" }
j.log:write('{"link":"d-b","time":40')
j:close()
t.ok(not exists(path .. ".intents"), "closed: PATH.intents is gone once filed")
j = assert(journal.open(path, ID))
local links = {}
for _, x in ipairs(j:orders()) do links[#links + 1] = x.link end
t.eq(table.concat(links, " "), "a-b b-s c-b", "the order filed at close kept; the cut line is no order")

-- lines that are no order (a column of the wrong type, or missing) are
-- left out; the whole one beside them is kept
local p2 = dir .. "/k.journal"
local raw = assert(io.open(p2 .. ".intents", "w"))
raw:write('{"link":"x-b","time":"late","side":"Buy","qty":"1","status":"intent"}\n',
  '{"link":"y-b","time":3500,"qty":"1","status":"intent"}\n', '[1,2]\n',
  '{"link":"z-b","time":3600,"side":"Buy","qty":"1","status":"intent"}\n')
raw:close()
local k = assert(journal.open(p2, ID))
local kept = {}
for _, x in ipairs(k:orders()) do kept[#kept + 1] = x.link end
t.eq(table.concat(kept, " "), "z-b", "only the whole order of PATH.intents is filed")
k:close()

-- a write that fails raises (the order must not be sent)
j.log:close()
j.log = assert(io.open("/dev/full", "a"))
j.log:setvbuf("no")
t.raises(function() j:order { link = "e-b", time = 5000, side = "Buy", qty = "0.001", status = "intent" } end,
  path .. ".intents: No space left on device", "an order that cannot be written raises")
t.eq(#j:orders(), 3, "and is no order")
j.log = assert(io.open(path .. ".intents", "a"))
j:close()

os.execute("rm -rf " .. dir)
t.done()
