-- nomade.risk: the strategy's risk limits (max_position_value,
-- max_orders_per_hour, max_daily_loss, on_daily_loss), judged by the
-- engine on every candle of a backtest, a paper run and a live run alike.
-- Time is the candles' (never the wall clock), so a backtest trips a limit
-- on the candle a live run of the same strategy would. No I/O: a breach of
-- the day's loss is told to signal(active, why, time) (the live shield's
-- `risk` check), and the state goes into the journal's snapshot, so a
-- breach outlasts a restart.
local instruments = require "nomade.instruments"

local M = {}
local R = {}
R.__index = R

local HOUR, DAY = 3600000, 86400000

-- risk.new(settings, rules, signal) -> the limits; rules: the instrument's
-- (qty_step, min_qty, min_amt); signal optional
function M.new(settings, rules, signal)
  return setmetatable({ s = settings, rules = rules, signal = signal or function() end, orders = {},
    day = nil, day_equity = nil, day_breached = false, next_day = -math.huge, floor = -math.huge }, R)
end

-- the equity under which the day is breached (none once it is); with
-- next_day, what lets most candles pass in two comparisons
local function set_floor(self)
  local e = self.day_equity
  self.floor = e and not self.day_breached and e - self.s.max_daily_loss * e or -math.huge
end

-- a reloaded strategy's limits, from its next candle; the state stays
function R:configure(settings)
  self.s = settings
  set_floor(self)
end

-- the day's loss at a candle's close: the equity against the equity at
-- the first candle of the candle's UTC day. Once beyond max_daily_loss,
-- entries stop for the rest of that day, even if the equity comes back.
-- True while breached. Nothing changes while time < r.next_day and
-- equity >= r.floor: a caller on every candle may look at those first
function R:candle(time, equity)
  if time < self.next_day and equity >= self.floor then return self.day_breached end
  if time >= self.next_day then
    local day = time // DAY
    self.day, self.day_equity, self.day_breached, self.next_day = day, equity, false, (day + 1) * DAY
    set_floor(self)
    self.signal(false, "", time)
  else
    self.day_breached, self.floor = true, -math.huge
    self.signal(true, string.format("the day's loss %.2f is beyond max_daily_loss (%g of %.2f)%s",
      self.day_equity - equity, self.s.max_daily_loss, self.day_equity,
      self.s.on_daily_loss == "flatten" and "; the position is sold" or ""), time)
  end
  return self.day_breached
end

-- whether a breach sells the open position (on_daily_loss = "flatten")
function R:flatten() return self.day_breached and self.s.on_daily_loss == "flatten" end

-- an order sent on the candle of time (entries and exits alike)
function R:sent(time) self.orders[#self.orders + 1] = time end

-- the orders sent in the hour up to time; older ones are forgotten (they
-- were sent in time order)
function R:recent(time)
  local orders = self.orders
  while orders[1] and orders[1] <= time - HOUR do table.remove(orders, 1) end
  return #orders
end

-- may an entry go out on the candle of time, at price? The largest
-- quantity it may buy (max_position_value at price, floored to the
-- quantity step), or nil and why
function R:entry(time, price)
  local s, r = self.s, self.rules
  if self.day_breached then
    return nil, string.format("the day's loss is beyond max_daily_loss (%g) until the next UTC day", s.max_daily_loss)
  end
  local recent = self:recent(time)
  if recent >= s.max_orders_per_hour then
    return nil, string.format("%d orders in the last hour (max_orders_per_hour = %d)", recent, s.max_orders_per_hour)
  end
  if not r then error("risk: no instrument rules to cap an entry by", 2) end
  local cap = instruments.floor(s.max_position_value / price, r.qty_step)
  if cap <= 0 or cap < r.min_qty or cap * price < r.min_amt then
    return nil, string.format("max_position_value %g at %.2f is below the exchange's minimum order", s.max_position_value,
      price)
  end
  return cap
end

-- what the journal's snapshot keeps
function R:snapshot()
  return { day = self.day, day_equity = self.day_equity, day_breached = self.day_breached, orders = self.orders }
end

-- the state from a snapshot (journals before this module kept the day's
-- fields in the exchange book's snapshot: the same names)
function R:restore(snap)
  local day = type(snap) == "table" and math.tointeger(snap.day)
  if not day then return end
  self.day, self.day_equity, self.day_breached = day, tonumber(snap.day_equity), snap.day_breached == true
  self.next_day = (day + 1) * DAY
  set_floor(self)
  self.orders = {}
  for _, t in ipairs(type(snap.orders) == "table" and snap.orders or {}) do
    if tonumber(t) then self.orders[#self.orders + 1] = tonumber(t) end
  end
  if self.day_breached then  -- the breach lasts the day, across a restart
    self.signal(true, "the day's loss was beyond max_daily_loss before the restart", self.day * DAY)
  end
end

return M
