-- The book contract (nomade.book), one set of checks run against both
-- books: the paper book (nomade.paper) and the Bybit book
-- (nomade.bybit.book, its REST client against the Bybit stand-in, with
-- the stand-in's matching engine). A buy and a sell through the gate, the
-- gate refusing under a RED shield (nothing reaches the exchange), fills
-- reported, equity, a snapshot -> JSON -> restore round trip, and the
-- capabilities' shape. Where the two books differ, it is one capability,
-- and the test names it.
local t = require "testlib"
local cjson = require "cjson"
local contract = require "nomade.book"
local engine = require "nomade.engine"
local exchange = require "nomade.bybit.book"
local bybit = require "nomade.bybit.rest"
local instruments = require "nomade.bybit.instruments"
local core = require "nomade._shield"

local T0, STEP = 1796066640000, 60000  -- candle i opens at T0 + i * STEP: the test's clock, not the wall's
local PRICE, BID = 20518, 20517.9  -- the stand-in's ask and bid: where its market orders fill

local base, stop = t.serve("tests/stand-ins/bybit/server.py")
t.ok(base, "the Bybit stand-in started")
local control = t.control(base)
control { rate_limits = false }
local client = bybit.new { base = base, key = "test-key", secret = "test-secret-0123456789", max_wait = 3 }
client:sync_time()
local rules = assert(instruments.from_list(assert(client:instruments("BTCUSDT")).list, "BTCUSDT"))
local settings = { symbol = "BTCUSDT", interval = "1m", position_size = 0.5, max_position_value = 1e9,
  max_orders_per_hour = 100, max_daily_loss = 1 }

local function exchange_orders() return #(control().orders or {}) end

-- each subject: a new book and its shield, and how its fills come
local subjects = {}

subjects[1] = { name = "paper",
  want = { exchange = "paper", fills_at = "next_open", private_stream = false, reconcile = false, stop = false,
    cancel = false },
  make = function(sh)
    local b = engine.paper_book(settings, rules, { cash = 10000, fee = 0.001 })
    b:guard(sh)
    return b
  end }

local journal_path = os.tmpname() .. ".journal"
subjects[2] = { name = "bybit",
  want = { exchange = "bybit", fills_at = "market", private_stream = true, reconcile = true, stop = true,
    cancel = true },
  make = function(sh, events)
    local journal = assert(require("nomade.journal").open(journal_path, { strategy = "s", symbol = "BTCUSDT",
      interval = "1m", exec = "bybit" }))
    local b = assert(exchange.new { client = client, shield = sh, journal = journal, settings = settings,
      rules = rules, fee = 0.001, emit = function(_, event, fields) events[#events + 1] = { event, fields } end })
    assert(b:reconcile("book.test"))  -- the wallet's balances
    return b
  end }

-- candle i of a quiet market at PRICE: the shield first, then the book
-- (as the runtime hands it only the candles the shield accepted)
local function candle(sh, b, i)
  local time = T0 + i * STEP
  assert(sh:candle(time, PRICE, PRICE + 2, PRICE - 2, PRICE, 5) == "accepted")
  return b:open_candle(i, time, PRICE, PRICE + 2, PRICE - 2, PRICE, true)
end

-- the fills of the order just sent: on paper at the next candle's open,
-- which open_candle says; on the exchange when it reports them (here its
-- REST answer; the private stream is the same path), which on_change says
local function fills(s, sh, b, i)
  if s.want.fills_at == "next_open" then return candle(sh, b, i + 1) == true, i + 1 end
  local changed = false
  b.on_change = function() changed = true end
  assert(b:refresh(b.open))
  b.on_change = nil
  return changed, i
end

-- the shield RED (a reconciliation's check), then clean candles until GREEN
local function red(sh, i)
  sh:signal("reconcile", true, "book.test", T0 + i * STEP)
  return sh:state()
end
local function green(sh, b, i)
  sh:signal("reconcile", false, "", T0 + i * STEP)
  while sh:state() ~= "GREEN" do
    i = i + 1
    candle(sh, b, i)
  end
  return i
end

local function conforms(s)
  local sh, events = core.new { interval = 60 }, {}
  local b = s.make(sh, events)
  local who = s.name .. ": "
  t.ok(pcall(contract.check, b), who .. "book.check accepts it", select(2, pcall(contract.check, b)))

  -- capabilities: the shape, read-only, and each value (where the books differ)
  local caps = b.capabilities
  local keys = {}
  for k in pairs(caps) do keys[#keys + 1] = k end
  table.sort(keys)
  t.eq(table.concat(keys, " "), "cancel exchange fills_at private_stream reconcile stop", who .. "capabilities: "
    .. "exactly the contract's fields")
  for _, k in ipairs(keys) do
    t.eq(caps[k], s.want[k], who .. "capabilities." .. k .. " = " .. tostring(s.want[k])
      .. (subjects[1].want[k] ~= subjects[2].want[k] and " (the books differ here)" or ""))
  end
  t.raises(function() caps.stop = not caps.stop end, "read-only", who .. "capabilities cannot be changed")
  t.eq(caps.stop, s.want.stop, who .. "(still as it was)")

  local i = 0
  for _ = 1, 20 do i = i + 1 candle(sh, b, i) end
  t.ok(sh:state() == "GREEN" and b.quote == 10000 and b.base == 0 and not b.position and b.pending == false,
    who .. "(GREEN, flat, 10000 USDT)", sh:state() .. " " .. b.quote)

  -- the gate: RED refuses the entry, before anything is sent
  local orders = exchange_orders()
  t.eq(red(sh, i), "RED", who .. "(the shield RED)")
  local open, state = b:gate(true)
  t.ok(not open and state == "RED", who .. "gate(true) under RED: refused, and the state", state)
  local sent, bstate = b:buy({ type = "market" }, i)
  t.ok(not sent and bstate == "RED" and not b.pending, who .. "buy under RED: false and RED, no order open", bstate)
  t.ok(b.blocked_entries == 2 and exchange_orders() == orders, who .. "both refusals counted, nothing reached the "
    .. "exchange", b.blocked_entries)
  i = green(sh, b, i)

  -- a buy through the gate, and its fill
  sent = b:buy({ type = "market" }, i)
  t.ok(sent == true and b.pending, who .. "buy under GREEN: sent, an order open")
  local said
  said, i = fills(s, sh, b, i)
  local p = b.position
  local qty = p and p.qty  -- (the Bybit book's position is a live table)
  t.ok(said, who .. (s.want.fills_at == "next_open" and "the fill is said by open_candle's true"
    or "the fill is said by on_change (fills_at = market: the books differ here)"))
  t.ok(p and p.qty > 0 and math.abs(p.price - PRICE) < 1e-9 and not b.pending and b.base >= p.qty
    and b.quote < 10000 * 0.51, who .. "the buy filled: a position at the price, half the cash spent",
    p and string.format("qty %.8g price %.8g quote %.8g base %.8g", p.qty, p.price, b.quote, b.base))
  t.close(b:equity(PRICE + 100), b.quote + b.base * (PRICE + 100), 1e-12, who .. "equity(price): quote + base * price")

  -- snapshot -> JSON (the journal's form) -> restore into a new book
  local snap = cjson.decode(cjson.encode(b:snapshot()))
  local b2 = s.make(sh, {})
  b2:restore(snap)
  local p2 = b2.position
  t.ok(p2 and p2.qty == qty and p2.price == p.price and p2.index == p.index and b2.quote == b.quote
    and b2.base == b.base and b2.pending == b.pending and b2.fees == b.fees,
    who .. "snapshot -> restore: the same position, balances and fees"
      .. (s.want.reconcile and " (the journal's orders and fills, and the exchange's wallet)" or ""),
    p2 and string.format("qty %.8g/%.8g quote %.8g/%.8g", p2.qty, qty, b2.quote, b.quote))
  t.ok(pcall(contract.check, b2), who .. "the restored book conforms")

  -- RED refuses the exit too
  orders = exchange_orders()
  red(sh, i)
  sent, bstate = b:sell("test", i)
  t.ok(not sent and bstate == "RED" and b.blocked_exits == 1 and exchange_orders() == orders and b.position,
    who .. "sell under RED: false and RED, counted, nothing sent, the position kept", bstate)
  i = green(sh, b, i)

  -- the sell through the gate, and the trade it closes
  sent = b:sell("test", i)
  t.ok(sent == true and b.pending, who .. "sell under GREEN: sent")
  said = fills(s, sh, b, i)
  local tr = b.trades[#b.trades]
  t.ok(said and #b.trades == 1 and not b.position and not b.pending, who .. "the sell filled: flat, one trade")
  t.ok(tr and tr.reason == "test" and math.abs(tr.qty - qty) <= rules.qty_step.value and math.abs(tr.entry_price - PRICE) < 1e-9
    and tr.exit_price >= BID and tr.exit_price <= PRICE and tr.pnl < 0 and type(tr.entry_time) == "number"
    and type(tr.exit_time) == "number", who .. "the trade: reason, qty, prices, the fees' loss",
    tr and cjson.encode(tr))
  if s.want.fills_at == "market" then
    local n = 0
    for _, e in ipairs(events) do if e[1] == "fill" then n = n + 1 end end
    t.ok(n >= 2, who .. "each fill is also emitted as it is reported (fills_at = market)", n)
  end
  return b
end

for _, s in ipairs(subjects) do conforms(s) end

-- the engine refuses a book that breaks the contract, naming what it lacks
local b = engine.paper_book(settings, rules, {})
local function without(name, extra)
  return setmetatable(extra or {}, { __index = function(_, k)
    if k == name then return nil end
    local v = b[k]
    if type(v) == "function" then return function(_, ...) return v(b, ...) end end
    return v
  end })
end
t.raises(function() engine.new { book = without("snapshot") } end, "engine.new: the book lacks the method snapshot",
  "engine.new: a book without snapshot is refused, naming it")
t.raises(function() engine.new { book = without("quote") } end, "lacks the number quote",
  "a book without quote is refused, naming it")
local caps = { exchange = "x", fills_at = "market", private_stream = false, reconcile = true, stop = false,
  cancel = false }
t.raises(function() engine.new { book = without("none", { capabilities = caps }) } end,
  "capabilities.reconcile is true and the book lacks the method reconcile",
  "a capability without its method is refused, naming both")
caps.fills_at = "later"
t.raises(function() contract.check(without("none", { capabilities = caps })) end, "fills_at must be next_open or market",
  "a capability out of the contract is refused")

stop()
os.remove(journal_path)
t.done()
