-- nomade.board: a running strategy's state as the dashboard's data tree
-- (nomade.tree; the layout is in README, "The dashboard"). Candles,
-- equity and verdicts are appended as they happen, keeping the recent
-- ones; the rest (status, shield, positions, orders, trades) is written
-- again where it has changed, so a page sees only what moved.
local null = require("cjson.safe").null

local M = {}

M.CANDLES = 300   -- candles (and equity points) the tree keeps
M.VERDICTS = 50
M.TRADES = 100

local B = {}
B.__index = B

-- board.new(tree, symbol, interval_ms) -> board
function M.new(tree, symbol, step)
  return setmetatable({ tree = tree, base = "/market/" .. symbol, step = step, candles = {}, equity = {},
    verdicts = {}, seen = {} }, B)
end

local function finite(x) return type(x) == "number" and x == x and math.abs(x) ~= math.huge end

-- key appended to a window of at most max keys: the key that falls out
-- leaves, by a null in the same patch
local function window(keys, key, max, patch)
  keys[#keys + 1] = key
  if #keys > max then patch[table.remove(keys, 1)] = null end
  return patch
end

-- a closed candle, its indicators (name -> value), regime and the equity
function B:candle(c, ind, regime, equity)
  local key = string.format("%d", c.time)
  local values = {}
  for name, v in pairs(ind) do if finite(v) then values[name] = v end end
  self.tree:patch(self.base .. "/candles", window(self.candles, key, M.CANDLES, { [key] = { t = c.time,
    o = c.open, h = c.high, l = c.low, c = c.close, v = c.volume, regime = regime, ind = values } }))
  self:price(c.close, c.time + self.step)
  if finite(equity) then
    self.tree:patch("/equity", window(self.equity, key, M.CANDLES, { [key] = equity }))
  end
end

-- the live price (the last close, or the ticker's between closes)
function B:price(price, time)
  if not finite(price) then return end
  local cur = self.seen.current
  if cur and cur.price == price and cur.time == time then return end
  self.seen.current = { price = price, time = time }
  self.tree:put(self.base .. "/current", self.seen.current)
end

-- a tribunal verdict (signal, score, reasoning, latency_ms, cause, ...)
function B:verdict(v, time)
  local key = string.format("%d", time)
  local rec = { time = time, signal = v.signal, score = v.score, reasoning = v.reasoning,
    latency_ms = v.latency_ms, cause = v.cause, source = v.source, model = v.model, outcome = v.outcome }
  self.tree:put("/tribunal/last", rec)
  self.tree:patch("/tribunal/verdicts", window(self.verdicts, key, M.VERDICTS, { [key] = rec }))
end

-- the key a table's key k is in the tree
local function key_of(k) return type(k) == "string" and k or tostring(k) end

-- v (as given) the same as n (as the tree keeps it: string keys, no
-- nulls, no empty tables)? When unsure (a table of nothing but nulls), no:
-- at worst a write too many, never one missed
local function same(v, n)
  if v == null or (type(v) == "table" and next(v) == nil) then v = nil end
  if type(v) ~= "table" or type(n) ~= "table" then return v == n end
  local count = 0
  for k, x in pairs(v) do
    if x ~= null then
      local y = n[key_of(k)]
      if x ~= y and not (type(x) == "table" and same(x, y)) then return false end
      count = count + 1
    end
  end
  for _ in pairs(n) do count = count - 1 end
  return count == 0
end

-- a node written again only where it differs from the tree: a table's
-- changed children as one patch (a thousand orders, one new: one child
-- sent, none encoded to find it), anything else put whole
function B:sync(path, value)
  local node = self.tree:get(path)
  if type(value) ~= "table" or type(node) ~= "table" then
    if not same(value, node) then self.tree:put(path, value) end
    return
  end
  local changes, keys = {}, {}
  for k, v in pairs(value) do
    local key = key_of(k)
    keys[key] = true
    if v ~= node[key] and not (type(v) == "table" and same(v, node[key])) then changes[key] = v end
  end
  for key in pairs(node) do
    if not keys[key] then changes[key] = null end
  end
  if next(changes) then self.tree:patch(path, changes) end
end

-- the last trades, keyed by their number
function M.trades(all)
  local out = {}
  for k = math.max(1, #all - M.TRADES + 1), #all do
    local tr = all[k]
    out[string.format("%d", k)] = { entry_time = tr.entry_time, exit_time = tr.exit_time,
      entry_price = tr.entry_price, exit_price = tr.exit_price, qty = tr.qty, pnl = tr.pnl, reason = tr.reason }
  end
  return out
end

return M
