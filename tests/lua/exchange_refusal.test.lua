-- An exchange answer that contradicts the journal starts a reconciliation
-- (nomade.bybit.book, B:contradicted): an exit refused with 170131 Balance
-- insufficient turns the shield RED (reconcile) at once, reconciles, and
-- the same order is not sent again while the account is unchanged; a
-- wallet under the position does the same without sending anything.
-- A fake client, so that each answer is the test's.
local t = require "testlib"
local loop = require "nomade.loop"
local bybit = require "nomade.bybit.rest"
local exchange = require "nomade.bybit.book"
local core = require "nomade._shield"

local journal = assert(require("nomade.journal").open(os.tmpname() .. ".journal", { strategy = "s", symbol = "BTCUSDT",
  interval = "1h", exec = "bybit" }))
local tag = journal:tag()
journal:order { link = "nmd" .. tag .. "-1-b", time = 1, side = "Buy", qty = "1.000", status = "Filled", idx = 1 }
journal:fill { exec_id = "e1", link = "nmd" .. tag .. "-1-b", side = "Buy", qty = 1, price = 100, fee = 0,
  fee_coin = "USDT", time = 1 }
local wallet_btc = "1"
local calls = { create = 0, wallet = 0 }
local client = { recv_window = 5000,
  create_order = function()
    calls.create = calls.create + 1
    return nil, bybit.failure("insufficient_balance", "bybit /v5/order/create: 170131 Balance insufficient",
      { retCode = 170131 })
  end,
  wallet = function()
    calls.wallet = calls.wallet + 1
    return { list = { { coin = { { coin = "BTC", walletBalance = wallet_btc }, { coin = "USDT", walletBalance = "1000" } } } } }
  end,
  executions = function() return { list = {} } end,
  open_orders = function() return { list = {} } end,
}
local sh = core.new { interval = 3600 }
for i = 1, 20 do sh:candle(i * 3600000, 100, 100.2, 99.8, 100, 5) end
local events = {}
local b = assert(exchange.new { client = client, shield = sh, journal = journal, fee = 0.001,
  settings = { symbol = "BTCUSDT", max_daily_loss = 1 },
  rules = { base = "BTC", quote = "USDT", qty_step = { value = 0.001, scale = 1000 }, min_qty = 0.001, min_amt = 1,
    tick = { value = 0.01, scale = 100 } },
  emit = function(_, event, fields) events[#events + 1] = { event = event, fields = fields } end })
b:balances()
b.price, b.candle_time = 100, 20 * 3600000
t.ok(b.position and b.position.qty == 1 and b.base == 1 and sh:state() == "GREEN", "(a position of 1 BTC, GREEN)")

local function run_loop()  -- the reconciliation runs on the loop, in its own turn
  loop.timer(0.2, 0, function() loop.stop() end)
  loop.run()
end
local function count(event)
  local n = 0
  for _, e in ipairs(events) do if e.event == event then n = n + 1 end end
  return n
end

local sent, _, why = b:sell("exit", 21)
t.ok(not sent and why:find("170131", 1, true) and calls.create == 1, "the exit is refused by the exchange (170131)", why)
t.ok(sh:state() == "RED" and count("contradiction") == 1, "the refusal turns the shield RED at once, and is said",
  sh:state())
local reasons = sh:reasons()
t.ok(#reasons == 1 and reasons[1].check == "reconcile", "the reason: reconcile", reasons[1] and reasons[1].check)
local wallets = calls.wallet
run_loop()
t.ok(count("reconcile") == 1 and calls.wallet > wallets, "a reconciliation starts by itself")
t.ok(sh:state() ~= "GREEN", "the shield is not GREEN after it (recovery candles)", sh:state())
for i = 21, 23 do sh:candle(i * 3600000, 100, 100.2, 99.8, 100, 5) end
sent, _, why = b:sell("exit", 22)
t.ok(sh:state() == "GREEN" and not sent and calls.create == 1 and why:find("not sent again", 1, true),
  "the same exit, the account unchanged: not sent again", why)
wallet_btc = "0.5"
b:balances()
sent, _, why = b:sell("exit", 23)
t.ok(not sent and calls.create == 1 and why:find("less than the position", 1, true) and count("contradiction") == 2,
  "a wallet under the position: nothing sent, a contradiction, reconciled", why)
run_loop()
t.ok(b.problem and b.problem:find("less than the journal's position", 1, true) and sh:state() == "RED",
  "the reconciliation disagrees: RED, with the reason", b.problem)
wallet_btc = "1"
local ok = b:reconcile("test")
for i = 24, 27 do sh:candle(i * 3600000, 100, 100.2, 99.8, 100, 5) end
t.ok(ok and sh:state() == "GREEN", "once it agrees (and the recovery candles): GREEN again", sh:state())
journal:close()
t.done()
