-- kill -9 during live trading against the stand-in, at random moments
-- (NOMADE_CRASHES times, default 20; `make soak` runs more): after every
-- restart the run reconciles, and its book equals the exchange's account;
-- across all of them no order was sent twice (the orders of the journal
-- alternate buy, sell, buy...) and no fill was lost (the position is the
-- account's coins).
local t = require "testlib"
local x = require "livex"

local crashes = tonumber(os.getenv("NOMADE_CRASHES")) or 20
-- a fixed seed unless told (make soak draws one): a test run is repeatable
local seed = tonumber(os.getenv("NOMADE_SEED")) or 20261203
math.randomseed(seed)
print("# seed " .. seed .. " (NOMADE_SEED reproduces the kill moments)")

local ex = x.exchange()
t.ok(ex, "the stand-in started")
ex.control { rate_limits = false }
local dir = x.tmpdir()
x.strategy(dir, "max_orders_per_hour = 100000")

local reconciled, agreed, killed, why_not = 0, 0, 0, nil
local adopted, in_flight, missed = 0, 0, 0
for k = 1, crashes do
  local p = x.start(ex, dir)
  local rec = p.ready and x.wait(p, 10, "reconcile")
  if rec and rec.ok then reconciled = reconciled + 1 end
  for _, note in ipairs(rec and rec.notes or {}) do
    if os.getenv("NOMADE_VERBOSE") then print("# " .. k .. ": " .. note) end
    if note:find("adopted", 1, true) then adopted = adopted + 1 end
    if note:find(" -> ", 1, true) then in_flight = in_flight + 1 end
    if note:find("(missed)", 1, true) then missed = missed + 1 end
  end
  local ok, why = x.agrees(p, ex, 10)
  if ok then agreed = agreed + 1 else why_not = why_not or string.format("restart %d: %s", k, why) end
  -- every other time: killed while a slow exchange holds the order
  if k % 2 == 0 then
    ex.control { fault = "latency", ms = 1500, path = "/v5/order/create" }
    x.close_candle(ex)
    x.sleep(string.format("%.3f", 0.4 + math.random() * 0.6))
  end
  -- one to three candles, then kill -9 somewhere in what follows
  for _ = 1, math.random(1, 3) do
    -- now and then a slow exchange, so that kills land with an order in flight
    if math.random() < 0.5 then ex.control { fault = "latency", ms = 300, path = "/v5/order/create" } end
    x.close_candle(ex)
    x.sleep(string.format("%.3f", math.random() * 0.5))
  end
  x.sleep(string.format("%.3f", math.random() * 0.1))
  os.execute("kill -9 " .. p.pid)
  while x.alive(p) do x.sleep(0.02) end
  killed = killed + 1
end
print(string.format("# kills that left an order in flight: %d; fills missed while down, applied at restart: %d",
  in_flight, missed))
t.ok(in_flight >= crashes // 4, "restarts found orders in flight and resolved them (" .. in_flight .. ")")
t.eq(adopted, 0, "no restart found an order of its own the journal lacked (each is written before it is sent)")
t.eq(killed, crashes, "killed with SIGKILL " .. crashes .. " times while trading")
t.eq(reconciled, crashes, "every restart reconciled with the exchange")
t.ok(agreed == crashes, "after every restart the book equals the exchange's account", why_not)

-- a last restart: the journal against the exchange, order by order
local p = x.start(ex, dir)
local ok, why = x.agrees(p, ex, 10)
t.ok(ok, "the final state equals the exchange's", why)
local orders = x.orders(ex)
local alternate, previous = true, nil
for _, o in ipairs(orders) do
  if o.side == previous then alternate = false end
  previous = o.side
end
t.ok(#orders >= crashes // 2, "orders went out in between (" .. #orders .. ")")
t.ok(alternate, "no duplicate: the exchange's orders alternate buy and sell", #orders)
local on_exchange, same = {}, true
for _, o in ipairs(orders) do on_exchange[o.orderLinkId] = true end
local placed = 0
for _, o in ipairs(x.repl(p, "orders(100000)") or {}) do
  if o.status ~= "not_placed" then
    placed = placed + 1
    same = same and on_exchange[o.link] == true
  end
end
t.ok(same and placed == #orders, "the journal's placed orders are exactly the exchange's (" .. placed .. ")")
x.stop(p)
ex.stop()
t.done()
