-- nomade.bybit.book: live execution on Bybit spot, the book `nomade run
-- --exec bybit` trades through. The engine cannot tell it from the paper
-- book (buy, sell, gate, position, pending, trades), but here the exchange
-- is the truth: every order is written to the journal before it is sent,
-- with an orderLinkId that carries the journal's tag; fills come from the
-- private stream (REST when it is late) and are journaled by execId, so
-- none is applied twice; the position is folded from those fills and the
-- balances are the wallet's. Reconciliation (at start and after every
-- reconnect) matches the journal with the exchange and turns the shield
-- RED when they cannot be made to agree. Orders pass the shield's gate
-- (in C: an order is signed only when the shield allows it); the
-- strategy's risk limits are the engine's (nomade.risk), whose cap an
-- entry is sent within.
local loop = require "nomade.loop"
local instruments = require "nomade.instruments"
local book = require "nomade.book"

local M = {}
local B = {}
B.__index = B
-- the contract (nomade.book): fills come from the exchange, between candles
B.capabilities = book.capabilities { exchange = "bybit", fills_at = "market", private_stream = true, reconcile = true,
  stop = true, cancel = true }

-- statuses after which an order changes no more
local FINAL = { Filled = true, Cancelled = true, PartiallyFilledCanceled = true, Rejected = true,
  Deactivated = true, not_placed = true }
M.FINAL = FINAL

-- how often an order the stream has not settled is looked up over REST
M.REFRESH = 5
-- beyond the recv_window, how long an order not found may still arrive
M.GRACE_MS = 2000

local function now_ms() return math.floor(loop.time() * 1000) end

local function base36(n)
  local digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
  repeat
    local d = n % 36
    out = digits:sub(d + 1, d + 1) .. out
    n = n // 36
  until n == 0
  return out
end

-- a quantity, price or balance from the exchange: a finite number >= 0,
-- or nil (a push is outside input: "1e999" or "-1" must not reach the book)
local function amount(v)
  local n = tonumber(v)
  if n and n >= 0 and n < math.huge then return n end
end

-- executions as the exchange lists them (newest first), oldest first
local function by_time(list)
  table.sort(list, function(a, b) return (tonumber(a.execTime) or 0) < (tonumber(b.execTime) or 0) end)
  return list
end

local function decimals(unit) return math.floor(math.log(unit.scale, 10) + 0.5) end

-- exchange.new{client, shield, journal, settings, rules, fee, emit} -> book
-- emit(level, event, fields, fmt, ...) reports what the book does
function M.new(o)
  local r = o.rules
  if not r.base or not r.quote then return nil, "exchange: the instrument rules name no base and quote coin" end
  local b = setmetatable({ client = o.client, sh = o.shield, journal = o.journal, s = o.settings, rules = r,
    fee = o.fee or 0.001, emit = o.emit, symbol = o.settings.symbol, tag = o.journal:tag(),
    quote = 0, base = 0, locked = 0, trades = {}, fees = 0, refused = 0, orders = 0, risk_refused = 0,
    blocked_entries = 0, blocked_exits = 0, candle_index = 0, candle_time = 0, price = nil,
    exchange = true }, B)
  b:load()
  return b
end

-- ours: an orderLinkId this journal made
function B:ours(link) return type(link) == "string" and link:sub(1, #self.tag + 4) == "nmd" .. self.tag .. "-" end

-- the smallest position that can still be sold: below it, what is left is dust
function B:dust(qty)
  return instruments.floor(qty, self.rules.qty_step) < math.max(self.rules.min_qty, self.rules.qty_step.value)
end

-- one fill into what is filled, the position and the trades (in time order)
function B:fold(f)
  local ord = self.known[f.link] or {}
  self.filled[f.link] = (self.filled[f.link] or 0) + f.qty
  local fee_quote = f.fee_coin == self.rules.quote and f.fee or f.fee * f.price
  self.fees = self.fees + fee_quote
  local p = self.position
  if f.side == "Buy" then
    local net = f.qty - (f.fee_coin == self.rules.base and f.fee or 0)  -- a buy's fee may be paid in the coin
    self.held = self.held + net
    if not p then
      p = { qty = 0, gross = 0, value = 0, cost = 0, time = f.time, index = ord.idx or self.candle_index,
        proceeds = 0, sold = 0, sold_value = 0 }
      self.position = p
    end
    p.qty = p.qty + net
    p.gross, p.value = p.gross + f.qty, p.value + f.qty * f.price
    p.cost = p.cost + f.qty * f.price + (f.fee_coin == self.rules.quote and f.fee or 0)
    p.price = p.value / p.gross
    p.stop = self.s.stop_loss and p.price * (1 - self.s.stop_loss) or nil
    p.take = self.s.take_profit and p.price * (1 + self.s.take_profit) or nil
    return
  end
  self.held = self.held - f.qty
  if not p then return end  -- a sell of coins this journal never bought: not its position
  p.qty = math.max(0, p.qty - f.qty)
  p.sold, p.sold_value = p.sold + f.qty, p.sold_value + f.qty * f.price
  p.proceeds = p.proceeds + f.qty * f.price - (f.fee_coin == self.rules.quote and f.fee or 0)
  if self:dust(p.qty) then
    local sold_share = p.sold / math.max(p.sold + p.qty, 1e-300)
    self.trades[#self.trades + 1] = { entry_time = p.time, exit_time = f.time, entry_price = p.price,
      exit_price = p.sold_value / p.sold, qty = p.sold, pnl = p.proceeds - p.cost * sold_share,
      reason = ord.reason or "exit", link = f.link }
    self.position = nil
  end
end

-- the book from the journal: its orders and its fills, folded
function B:load()
  local before = self.known or {}  -- the same tables again: a watched order stays watched
  self.known, self.open, self.position, self.trades, self.fees = {}, nil, nil, {}, 0
  self.held = 0  -- the base coin this journal's fills put on the account
  for _, row in ipairs(self.journal:orders()) do
    local ord = before[row.link] or row
    for k, v in pairs(row) do ord[k] = v end
    self.known[ord.link] = ord
    if not FINAL[ord.status] then self.open = ord end
  end
  self.filled = {}
  for _, f in ipairs(self.journal:fills()) do self:fold(f) end
  self.pending = self.open ~= nil
end

function B:changed() if self.on_change then self.on_change() end end

-- an order is settled once final and all its fills are in
function B:settle(ord)
  if not FINAL[ord.status] or (self.filled[ord.link] or 0) + 1e-12 < (ord.cum or 0) then return false end
  if self.open == ord then
    self.open, self.pending = nil, false
    self:changed()
  end
  return true
end

-- an execution of the exchange (stream or REST) -> a fill, applied once
function B:execution(e)
  if type(e) ~= "table" or e.symbol ~= self.symbol or not self.known[e.orderLinkId] then return end
  if e.execType and e.execType ~= "Trade" or (type(e.execId) ~= "string" and math.type(e.execId) ~= "integer") then
    return
  end
  local f = { exec_id = tostring(e.execId), link = e.orderLinkId, side = e.side, qty = amount(e.execQty),
    price = amount(e.execPrice), fee = amount(e.execFee) or 0, fee_coin = tostring(e.feeCurrency or ""),
    time = math.tointeger(tonumber(e.execTime)) or now_ms() }
  if not f.qty or f.qty == 0 or not f.price or f.price == 0 or (f.side ~= "Buy" and f.side ~= "Sell") then return end
  if not self.journal:fill(f) then return end
  local trades = #self.trades
  self:fold(f)
  self.emit("info", "fill", { side = f.side:lower(), qty = f.qty, price = f.price, fee = f.fee,
    fee_coin = f.fee_coin, link = f.link, exec_id = f.exec_id },
    "  %-5s %.6f at %.2f (fill %s of %s)", f.side:lower(), f.qty, f.price, f.exec_id, f.link)
  if #self.trades > trades then
    local tr = self.trades[#self.trades]
    self.emit("info", "trade", tr, "  trade closed: %.6f, %.2f -> %.2f (%s), pnl %.2f", tr.qty, tr.entry_price,
      tr.exit_price, tr.reason, tr.pnl)
  end
  self:settle(self.known[f.link])
  self:changed()
end

-- an order's state from the exchange (stream or REST)
function B:order_update(x)
  local ord = type(x) == "table" and x.symbol == self.symbol and self.known[x.orderLinkId]
  if not ord or type(x.orderStatus) ~= "string" then return end
  ord.cum = amount(x.cumExecQty) or ord.cum
  if ord.status == "not_placed" then  -- the exchange is the truth, even about this
    self.emit("error", "order", { link = ord.link, status = x.orderStatus }, "  error order %s was judged "
      .. "not placed, and the exchange has it (%s): taken as the exchange says", ord.link, x.orderStatus)
    ord.status = "late"
  end
  if ord.status ~= x.orderStatus and not FINAL[ord.status] then
    ord.status, ord.order_id = x.orderStatus, x.orderId or ord.order_id
    self.journal:order_status(ord.link, ord.status, ord.order_id)
    self.emit(FINAL[ord.status] and ord.status ~= "Filled" and "warn" or "info", "order",
      { link = ord.link, status = ord.status, filled = ord.cum, reject = x.rejectReason },
      "  order %s %s (%s filled)", ord.link, ord.status, tostring(ord.cum))
  end
  self:settle(ord)
end

-- balances from a wallet account (stream or REST)
function B:wallet(accounts)
  for _, acct in ipairs(type(accounts) == "table" and accounts or {}) do
    for _, c in ipairs(type(acct) == "table" and type(acct.coin) == "table" and acct.coin or {}) do
      local bal = type(c) == "table" and amount(c.walletBalance)
      if bal and c.coin == self.rules.base then self.base = bal end
      if bal and c.coin == self.rules.quote then
        self.quote, self.locked = bal, amount(c.locked) or 0
      end
    end
  end
  self:changed()
end

function B:equity(price) return self.quote + self.base * (price or self.price or 0) end

-- one order, to the exchange: journaled first, then sent (the shield's
-- gate signs it or not, in C); its fills come later
function B:send(side, qty, reason, i)
  local qtext = string.format("%." .. decimals(self.rules.qty_step) .. "f", qty)
  local r = self.refusal
  if r and r.side == side and r.qty == qtext and r.base == self.base and r.quote == self.quote then
    self.risk_refused = self.risk_refused + 1
    return false, nil, string.format("the exchange refused this very order (%s %s: %s) and the account has not "
      .. "changed since: not sent again", side:lower(), qtext, r.why)
  end
  self.refusal = nil
  local first = string.format("nmd%s-%s-%s", self.tag, base36(self.candle_time // 1000), side == "Buy" and "b" or "s")
  local link, k = first, 1
  while self.known[link] do  -- the candle's id taken (an order not placed): the next
    k = k + 1
    link = first .. "-" .. k
  end
  local ord = { link = link, time = now_ms(), side = side, qty = qtext, candle = self.candle_time, reason = reason,
    status = "intent", idx = i }
  self.journal:order(ord)
  self.known[link], self.open, self.pending = ord, ord, true
  self.orders = self.orders + 1
  local res, err = self.client:create_order { symbol = self.symbol, side = side, type = "Market", qty = ord.qty,
    market_unit = "baseCoin", link_id = link, shield = self.sh, trigger = self.trigger }
  -- logged once answered: the line is not worth its time before the request
  self.emit("info", "order", { link = link, side = side:lower(), qty = ord.qty, reason = reason, status = "sent" },
    "  order %s market %s %s%s", link, side:lower(), ord.qty, reason and " (" .. reason .. ")" or "")
  if self.trigger and self.client.latency then  -- the closing push to this request: nomade's share
    self.emit("debug", "latency", { us = self.client.latency, link = link },
      "  debug candle close to order request: %.0f us", self.client.latency)
  end
  if res or (err and err.unknown) then
    if res then
      ord.order_id = res.orderId
      if ord.status == "intent" then ord.status = res.status or "New" end
      self.journal:order_status(link, ord.status, ord.order_id)
    else
      ord.status = "unknown"
      self.journal:order_status(link, "unknown")
      self.emit("warn", "order", { link = link, status = "unknown", error = tostring(err) },
        "  warn  order %s: %s; it is looked up until known", link, tostring(err))
    end
    self:watch(ord)
    return true
  end
  ord.status = "not_placed"
  self.journal:order_status(link, "not_placed")
  self.emit("error", "order", { link = link, status = "not_placed", error = tostring(err) },
    "  error order %s not placed: %s", link, tostring(err))
  if self.open == ord then self.open, self.pending = nil, false end
  if err and err.kind == "insufficient_balance" then
    self.refusal = { side = side, qty = qtext, base = self.base, quote = self.quote, why = tostring(err) }
    self:contradicted(string.format("the exchange refused %s (%s %s): %s", link, side:lower(), qtext, tostring(err)))
  end
  return false, nil, "the exchange refused the order: " .. tostring(err)
end

-- an answer that says the account is not what the journal says (an
-- order refused for want of balance, a wallet under the position): an
-- order judged not placed that the exchange holds, coins moved behind
-- nomade's back. The shield turns RED (reconcile) at once, a
-- reconciliation starts (and is retried while it disagrees), and a
-- refused order is not sent again while the account is unchanged (B:send).
-- Returns why
function B:contradicted(why)
  self.problem = why
  self.sh:signal("reconcile", true, why, self.candle_time > 0 and self.candle_time or now_ms())
  self.emit("error", "contradiction", { why = why }, "  error %s: the account is not what the journal says; "
    .. "reconciling", why)
  if self.on_shield then self.on_shield() end
  if not self.reconciling then
    self.reconciling = true  -- no order until it has run
    loop.timer(0, 0, function() self:reconcile("the exchange contradicts the journal") end)
  end
  return why
end

-- REST behind the stream: until the order is settled, it is looked up
function B:watch(ord)
  if ord.watched then return end
  ord.watched = true
  loop.timer(M.REFRESH, M.REFRESH, function(t)
    if self:settle(ord) then return t:stop() end
    self:refresh(ord)
    if self:settle(ord) then t:stop() end
  end)
end

-- one order and its fills, over REST
function B:refresh(ord)
  local found, err = self.client:open_orders(self.symbol, ord.link)
  if not found then return nil, err end
  local x = found.list[1]
  if not x then
    if ord.status ~= "unknown" and ord.status ~= "intent" then return true end
    -- a request still on its way would be refused once recv_window has
    -- passed: until then, not finding it proves nothing
    if now_ms() - ord.time <= self.client.recv_window + M.GRACE_MS then
      ord.status = "unknown"
      self.journal:order_status(ord.link, "unknown")
      return true
    end
    ord.status = "not_placed"
    self.journal:order_status(ord.link, "not_placed")
    self.emit("warn", "order", { link = ord.link, status = "not_placed" },
      "  warn  order %s never reached the exchange", ord.link)
    self:settle(ord)
    return true
  end
  local ex, eerr = self.client:executions(self.symbol, ord.link)
  if not ex then return nil, eerr end
  for _, e in ipairs(by_time(ex.list)) do self:execution(e) end
  self:order_update(x)
  if #ex.list > 0 then return self:balances() end  -- the wallet stream may be as late as the fills
  return true
end

-- book:gate(entry): the shield's rule and the book's own state
function B:gate(entry)
  if self.sh:allows(entry) then return true, self.sh:state() end
  if entry then self.blocked_entries = self.blocked_entries + 1 else self.blocked_exits = self.blocked_exits + 1 end
  return false, self.sh:state()
end

local function refuse(self, why)
  self.risk_refused = self.risk_refused + 1
  return false, nil, why
end

-- book:buy({type = "market"}, i, max_qty): a market buy of position_size
-- of the quote balance, at most max_qty (the risk limits' cap: logged
-- when it bites)
function B:buy(intent, i, max_qty)
  if self.position or self.open then error("exchange: a buy while a position or an order is open", 2) end
  if type(intent) ~= "table" or intent.type ~= "market" then
    error("exchange: live execution sends market entries only (entry returned a "
      .. tostring(type(intent) == "table" and intent.type) .. " order)", 2)
  end
  local open, state = self:gate(true)
  if not open then return false, state end
  if self.reconciling then return refuse(self, "the account is being reconciled") end
  local price = self.price
  if not price then return refuse(self, "no price yet") end
  local qty = instruments.floor((self.quote - self.locked) * self.s.position_size / (price * (1 + self.fee)),
    self.rules.qty_step)
  local allowed = qty
  if max_qty and qty > max_qty then
    allowed = max_qty
    self.emit("info", "risk", { capped = allowed, qty = qty, value = allowed * price,
      max_position_value = self.s.max_position_value },
      "  risk  entry capped to %.6f (max_position_value = %g)", allowed, self.s.max_position_value)
  end
  if allowed < self.rules.min_qty or allowed * price < self.rules.min_amt then
    self.refused = self.refused + 1
    return refuse(self, string.format("%.8g at %.2f is below the exchange's minimum order", allowed, price))
  end
  return self:send("Buy", allowed, nil, i)
end

-- book:sell(reason, i): the whole position, at market. Under the
-- exchange's minimums (minOrderQty, minOrderAmt at the last price) it is
-- not sent, as the paper book refuses it: the position is kept, as dust
function B:sell(reason, i)
  local p = self.position
  if not p or self.open then error("exchange: a sell without a position, or with an order open", 2) end
  local open, state = self:gate(false)
  if not open then return false, state end
  if self.reconciling then return refuse(self, "the account is being reconciled") end
  if self.base + self.rules.qty_step.value < p.qty and not self:dust(p.qty) then
    return refuse(self, self:contradicted(string.format("the wallet holds %.8g %s, less than the position of %.8g",
      self.base, self.rules.base, p.qty)))
  end
  local qty = instruments.floor(math.min(p.qty, self.base), self.rules.qty_step)
  local under = self:dust(qty) and "minOrderQty" or self.price and qty * self.price < self.rules.min_amt and "minOrderAmt"
  if under then
    p.dust = true
    self.refused = self.refused + 1
    return refuse(self, string.format("the position is dust: %.14g at %.14g is under the exchange's %s", qty,
      self.price or 0, under))
  end
  return self:send("Sell", qty, reason, i)
end

-- each closed candle: its price, the stop and take
-- (only a live candle, not one caught up after a restart, can trade; and
-- only at the prices of a candle the shield accepted as clean: a jump's
-- low triggers no stop, its close sizes no order)
function B:open_candle(i, time, _, high, low, close, live)
  self.candle_index, self.candle_time = i, time
  if not self.sh:clean(time) then return false end
  self.price = close or self.price
  if not live then return false end
  local p = self.position
  if p and not self.open then
    local why = p.stop and low <= p.stop and "stop_loss" or p.take and high >= p.take and "take_profit"
    if why then self:sell(why, i) end
  end
  return false
end

-- the kill switch: the open order cancelled (the shield stops entries)
function B:cancel_open()
  local ord = self.open
  if not ord or not ord.order_id and ord.status == "intent" then return true end
  local ok, err = self.client:cancel(self.symbol, ord.link)
  if not ok and err.kind ~= "not_found" then return nil, err end
  self:refresh(ord)
  return true
end

-- what the journal's snapshot keeps of this book: nothing but its kind
-- (the rest is in its orders and fills)
function B.snapshot() return { exchange = true } end
function B.restore() end
function B.configure() end  -- sizing and stops are read from the settings at each order

-- the account's balances, over REST
function B:balances()
  local w, err = self.client:wallet(self.rules.base .. "," .. self.rules.quote)
  if not w then return nil, err end
  self:wallet(w.list)
  return true
end

-- reconciliation: the exchange is the truth. Balances; every order of
-- ours not settled, looked up; the last 7 days of executions, those the
-- journal lacks applied (an order of ours it lacks is adopted); open
-- orders of others reported and left alone. If the account cannot hold
-- the journal's position, or the exchange cannot be asked, the shield
-- stays RED (reconcile) with the reason.
local function match(self)
  local notes, problem = {}, nil
  local function step(what, ok, err)
    if not ok and not problem then problem = what .. ": " .. tostring(err) end
    return ok
  end
  step("wallet balance", self:balances())
  local ex, eerr = self.client:executions(self.symbol)
  if step("executions", ex, eerr) then
    for _, e in ipairs(by_time(ex.list)) do
      if self:ours(e.orderLinkId) and not self.known[e.orderLinkId] then
        self:adopt(e.orderLinkId, e.side, e.orderQty, math.tointeger(tonumber(e.execTime)) or now_ms())
        notes[#notes + 1] = "adopted " .. e.orderLinkId .. " (on the account, not in the journal)"
      end
      if self.known[e.orderLinkId] and e.symbol == self.symbol then
        local before = self.filled[e.orderLinkId] or 0
        self:execution(e)
        if (self.filled[e.orderLinkId] or 0) > before then
          notes[#notes + 1] = "fill " .. tostring(e.execId) .. " of " .. e.orderLinkId .. " applied (missed)"
        end
      end
    end
  end
  for _, ord in pairs(self.known) do
    if not FINAL[ord.status] then
      local before = ord.status
      step("order " .. ord.link, self:refresh(ord))
      if ord.status ~= before then notes[#notes + 1] = ord.link .. ": " .. before .. " -> " .. ord.status end
      if not FINAL[ord.status] then self:watch(ord) end
    end
  end
  local open, oerr = self.client:open_orders(self.symbol)
  if step("open orders", open, oerr) then
    for _, x in ipairs(open.list) do
      if self:ours(x.orderLinkId) and not self.known[x.orderLinkId] then
        self:adopt(x.orderLinkId, x.side, x.qty, math.tointeger(tonumber(x.createdTime)) or now_ms())
        self:order_update(x)
        notes[#notes + 1] = "adopted open order " .. x.orderLinkId
      elseif not self:ours(x.orderLinkId) then
        notes[#notes + 1] = string.format("an open %s order %s not placed by this journal: left alone",
          tostring(x.side), tostring(x.orderId))
      end
    end
  end
  self:load()
  local p = self.position
  if not problem and p and self.base + self.rules.qty_step.value < p.qty then
    problem = string.format("the account holds %.8g %s, less than the journal's position of %.8g (sold or moved "
      .. "outside nomade?)", self.base, self.rules.base, p.qty)
  end
  return problem, notes
end

function B:reconcile(why)
  self.reconciling = true  -- no order meanwhile
  local ok, problem, notes = pcall(match, self)
  if not ok then problem, notes = "reconciliation failed: " .. tostring(problem), {} end
  self.reconciling, self.problem = false, problem
  local p = self.position
  local t = self.candle_time > 0 and self.candle_time or now_ms()
  self.sh:signal("reconcile", problem ~= nil, problem or "", t)
  self.emit(problem and "error" or "info", "reconcile", { ok = problem == nil, why = why, notes = notes,
    problem = problem, position = p and p.qty or 0, base = self.base, quote = self.quote },
    "  reconcile (%s): %s; %s %s, %s %s%s", why, problem or "the journal agrees with the exchange",
    self.rules.base, tostring(self.base), self.rules.quote, tostring(self.quote),
    #notes > 0 and "; " .. table.concat(notes, "; ") or "")
  self:changed()
  if self.on_shield then self.on_shield() end
  return problem == nil, problem, notes
end

-- an order of ours the journal lacks (written, then lost with a crash of
-- the disk): recorded from the exchange
function B:adopt(link, side, qty, time)
  local ord = { link = link, time = time, side = side, qty = tostring(qty), status = "New", reason = "adopted" }
  self.journal:order(ord)
  self.known[link] = ord
end

-- one private push's data (a list, as the exchange sent it, unchecked):
-- what tests/fuzz/fuzz_exchange.c throws arbitrary JSON at
function B:push(topic, list)
  if type(list) ~= "table" then return end
  if topic == "wallet" then return self:wallet(list) end
  for _, item in ipairs(list) do
    if topic == "order" then self:order_update(item) elseif topic == "execution" then self:execution(item) end
  end
end

-- the private stream: fills, orders and balances as they happen, and a
-- reconciliation after every reconnect
function B:stream(o)
  local st, err = self.client:private_stream { url = o.url, timeout = o.timeout,
    on_order = function(list) self:push("order", list) end,
    on_execution = function(list) self:push("execution", list) end,
    on_wallet = function(list) self:push("wallet", list) end,
    on_ready = function(up, why)
      self.stream_up = up
      if up then self:reconcile("private stream connected") end
      if o.on_ready then o.on_ready(up, why) end
    end }
  self.private = st
  return st, err
end

function B:stop() if self.private then self.private:stop() end end

return M
