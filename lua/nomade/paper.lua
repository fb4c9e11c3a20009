-- nomade.paper: the simulated exchange of backtests (and later paper
-- trading). One symbol, spot, long only. Every rule here is spelled out in
-- README ("How the backtester fills orders") so that anyone can check a
-- trade by hand; change one and the README changes with it.
--
-- Orders are decided on a candle's close and handled when the next
-- candles arrive (open_candle), in this order on each candle:
--   1. a pending market buy or sell fills at the candle's open;
--   2. a pending limit buy fills if the low trades through its price
--      (low < price), at min(open, price); unfilled after ttl candles, it
--      is cancelled;
--   3. with a position open: the stop-loss triggers if low <= stop and
--      fills at min(open, stop); otherwise the take-profit triggers if
--      high >= take and fills at max(open, take). Stop first when both.
-- Sizing: budget = quote * position_size; qty = floor to the instrument's
-- quantity step of budget / (price * (1 + fee)). Refused (and counted)
-- when qty < minOrderQty or qty * price < minOrderAmt. Fees are charged in
-- the quote coin on both sides: fee = qty * price * fee_rate.
local instruments = require "nomade.instruments"

local M = {}
M.__index = M

-- paper.new{cash =, fee =, rules = (nomade.instruments), position_size =,
--           stop_loss =, take_profit =}
function M.new(o)
  return setmetatable({
    quote = o.cash, base = 0, fee_rate = o.fee, rules = o.rules,
    size = o.position_size, stop_loss = o.stop_loss, take_profit = o.take_profit,
    pending = nil,      -- {side, type, price, ttl, placed}
    position = nil,     -- {qty, price, time, index, cost, fee, stop, take}
    trades = {}, fees = 0, refused = 0, cancelled = 0, orders = 0,
  }, M)
end

-- true when nothing is open and nothing waits
function M:flat() return self.position == nil and self.pending == nil end

function M:submit_buy(intent, index)
  assert(self:flat(), "paper: a buy while a position or order is open")
  self.orders = self.orders + 1
  self.pending = { side = "buy", type = intent.type, index = index,
    price = intent.price and instruments.floor(intent.price, self.rules.tick), ttl = intent.ttl }
end

function M:submit_sell(reason, index)
  assert(self.position and not self.pending, "paper: a sell without a position")
  self.orders = self.orders + 1
  self.pending = { side = "sell", type = "market", reason = reason, index = index }
end

local function buy(self, price, time, index)
  local rules = self.rules
  local qty = instruments.floor(self.quote * self.size / (price * (1 + self.fee_rate)), rules.qty_step)
  if qty < rules.min_qty or qty * price < rules.min_amt then
    self.refused = self.refused + 1
    return
  end
  local cost = qty * price
  local fee = cost * self.fee_rate
  self.quote = self.quote - cost - fee
  self.base = self.base + qty
  self.fees = self.fees + fee
  self.position = { qty = qty, price = price, time = time, index = index, cost = cost, fee = fee,
    stop = self.stop_loss and instruments.floor(price * (1 - self.stop_loss), rules.tick),
    take = self.take_profit and instruments.ceil(price * (1 + self.take_profit), rules.tick) }
end

local function sell(self, price, time, index, reason)
  local p = self.position
  local proceeds = p.qty * price
  local fee = proceeds * self.fee_rate
  self.quote = self.quote + proceeds - fee
  self.base = self.base - p.qty
  self.fees = self.fees + fee
  local pnl = proceeds - fee - p.cost - p.fee
  self.trades[#self.trades + 1] = {
    entry_time = p.time, entry_price = p.price, exit_time = time, exit_price = price,
    qty = p.qty, fees = p.fee + fee, pnl = pnl, ret = pnl / (p.cost + p.fee),
    reason = reason, candles = index - p.index + 1,
  }
  self.position = nil
end

-- the candle at index opens: fill what waits, then the protective exits
function M:open_candle(index, time, open, high, low)
  local o = self.pending
  if o then
    if o.type == "market" then
      self.pending = nil
      if o.side == "buy" then buy(self, open, time, index) else sell(self, open, time, index, o.reason) end
    elseif low < o.price then
      self.pending = nil
      buy(self, math.min(open, o.price), time, index)
    elseif index - o.index >= o.ttl then
      self.pending = nil
      self.cancelled = self.cancelled + 1
    end
  end
  local p = self.position
  if p and not self.pending then
    if p.stop and low <= p.stop then
      sell(self, math.min(open, p.stop), time, index, "stop_loss")
    elseif p.take and high >= p.take then
      sell(self, math.max(open, p.take), time, index, "take_profit")
    end
  end
end

function M:equity(price) return self.quote + self.base * price end

return M
