-- nomade.board's sync: a node is written again only where it differs from
-- the tree; a table's changed children go as one patch of those children
-- (a thousand orders and one new: one child sent), the tree ending as a
-- put of the whole value would leave it.
local t = require "testlib"
local tree_mod = require "nomade.tree"
local board_mod = require "nomade.board"
local null = require("cjson.safe").null

local tree = tree_mod.new()
local board = board_mod.new(tree, "BTCUSDT", 60000)
local events = {}
tree:subscribe("/", function(kind, path, data) events[#events + 1] = { kind = kind, path = path, data = data } end)
local function take()
  local e = events
  events = {}
  return e
end

local function orders(n)
  local out = {}
  for i = 1, n do out["o" .. i] = { link = "o" .. i, side = "Buy", qty = "0.1", status = "Filled", time = i } end
  return out
end

board:sync("/orders", orders(1000))
local e = take()
t.ok(#e == 1 and e[1].kind == "put" and e[1].path == "/orders", "the first sync puts the node", #e)
board:sync("/orders", orders(1000))
t.eq(#take(), 0, "the same value again: no event")

local more = orders(1001)
more.o7.status = "Cancelled"
board:sync("/orders", more)
e = take()
local sent = 0
for _ in pairs(e[1] and e[1].data or {}) do sent = sent + 1 end
t.ok(#e == 1 and e[1].kind == "patch" and e[1].path == "/orders" and sent == 2 and e[1].data.o1001
  and e[1].data.o7.status == "Cancelled", "one new and one changed: one patch of those two children", #e)
t.eq(tree:get("/orders/o7/status"), "Cancelled", "the tree has the change")
t.eq(tree:get("/orders/o1001/link"), "o1001", "and the new child")

local fewer = orders(1001)
fewer.o7.status = "Cancelled"
fewer.o3 = nil
board:sync("/orders", fewer)
e = take()
t.ok(#e == 1 and e[1].kind == "patch" and e[1].data.o3 == null, "a child gone: patched to null", #e)
t.eq(tree:get("/orders/o3"), nil, "and gone from the tree")

board:sync("/shield", { state = "GREEN", reasons = {} })
take()
board:sync("/shield", { state = "GREEN", reasons = {} })
t.eq(#take(), 0, "an empty table is nothing, as in the tree: no event")
board:sync("/positions", { BTCUSDT = { qty = 1 } })
take()
board:sync("/positions", nil)
e = take()
t.ok(#e == 1 and e[1].kind == "put" and tree:get("/positions") == nil, "nil puts the node away", #e)
board:sync("/bot/status", "x")
board:sync("/bot/status", "x")
t.eq(#take(), 1, "a scalar: put once while it stays the same")
t.done()
